"""A fresh install's first run says, in one line, that numba is compiling (nndl.backend)."""
import os
import subprocess
import sys

import pytest

from nndl import backend

pytestmark = pytest.mark.skipif(not backend.HAS_NUMBA, reason="needs numba (JIT enabled)")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TRAIN = """
import numpy as np
from nndl import Network
rng = np.random.default_rng(0)
x, y = rng.random((20, 4)), rng.integers(0, 2, 20)
Network([4, 3, 2], seed=0).SGD((x, y), 1, 10, 0.5, fast=False)
"""


def a_new_kernel(module):
    """A jitted function, defined as if in ``module``, that numba has never compiled."""
    def double(v):
        return 2 * v

    double.__module__ = module
    return backend.numba.njit(cache=False)(double)


def test_one_line_when_an_nndl_kernel_is_compiled(capsys):
    backend.announce_compilation()
    a_new_kernel("nndl.probe")(1.0)
    a_new_kernel("nndl.probe")(2.0)  # a second compile in the same run: no second line
    assert capsys.readouterr().err.splitlines() == [backend.COMPILE_NOTICE]


def test_no_line_for_other_code_or_when_not_asked(capsys):
    backend.announce_compilation()
    a_new_kernel("someone_else")(1.0)
    assert capsys.readouterr().err == ""
    a_new_kernel("nndl.probe")(1.0)  # armed still: the line waits for an nndl kernel
    assert capsys.readouterr().err.splitlines() == [backend.COMPILE_NOTICE]
    a_new_kernel("nndl.probe")(1.0)  # not re-armed
    assert capsys.readouterr().err == ""


def test_the_first_run_says_so_and_the_second_loads_from_the_cache(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"),
               PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    env.pop("NUMBA_DISABLE_JIT", None)

    def stderr_of_a_run():
        done = subprocess.run([sys.executable, "-c", TRAIN], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stderr.splitlines()

    assert stderr_of_a_run().count(backend.COMPILE_NOTICE) == 1
    assert backend.COMPILE_NOTICE not in stderr_of_a_run()

