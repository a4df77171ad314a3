"""The exceptions nndl raises for bad input.

Every message names the argument or file at fault, what was expected and what was
given, so a learner can fix the call without reading a traceback.
"""


class NNDLError(Exception):
    """Base class of every error nndl raises on purpose."""


class DataError(NNDLError, ValueError):
    """A data file or array is missing, corrupt, truncated or holds bad values."""


class ShapeError(NNDLError, ValueError):
    """An array or a layer has the wrong shape for where it is used."""


class ConfigError(NNDLError, ValueError):
    """A hyper-parameter or option is out of range or unknown."""


class DivergenceError(NNDLError, FloatingPointError):
    """Training produced a non-finite cost or weight."""


class FormatError(DataError):
    """A saved model or checkpoint file is foreign, newer than this nndl, or damaged."""


class SaveError(NNDLError, OSError):
    """A file could not be written: the target is not a regular file, its folder is
    missing, or the system refused (read-only, disk full, ...).  An OSError too, so code
    that already catches OSError keeps working."""

    def __str__(self):
        # OSError would print "[Errno 28] ...: path" once errno and filename are set.
        return str(self.args[0]) if self.args else ""
