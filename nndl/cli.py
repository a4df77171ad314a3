"""Running nndl's scripts: bad input ends in one line and a non-zero status, not a traceback."""
import os
import sys

from .errors import NNDLError


def run_script(main):
    """Call ``main()`` and exit: status 0 (or main's int), or 2 with an nndl error in one line."""
    try:
        status = main()
        sys.exit(status if isinstance(status, int) else 0)
    except NNDLError as e:
        print(f"{os.path.basename(sys.argv[0])}: error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
