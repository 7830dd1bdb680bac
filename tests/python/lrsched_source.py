"""Where the tests (and the processes they start) take the `lrsched` package from.

scripts/test.sh's normal pass pip-installs client/python into a venv, runs pytest with that
venv's python and sets LRSCHED_EXPECT_INSTALLED=1: then INSTALLED is true and nothing here
adds the source tree, so every `import lrsched` gets the installed package (test_python_package.py
checks it). Otherwise (the sanitized pass, a developer's PYTHONPATH run) the source tree
client/python is put first on sys.path and on children's PYTHONPATH, as the README's developer
note says. Not a test module.
"""
import os
import pathlib
import sys

SOURCE_DIR = str(pathlib.Path(__file__).resolve().parent.parent.parent / "client" / "python")
INSTALLED = os.environ.get("LRSCHED_EXPECT_INSTALLED") == "1"
# The interpreter for child processes: the one running the tests (the venv's when installed).
PYTHON = sys.executable


def use():
    """Makes `import lrsched` take the source tree, unless the installed package is under test."""
    if not INSTALLED and SOURCE_DIR not in sys.path:
        sys.path.insert(0, SOURCE_DIR)


def child_env(env=None, **extra):
    """A copy of `env` (default os.environ) plus `extra`, whose PYTHONPATH lets a child process
    import the same lrsched as this one."""
    env = dict(os.environ if env is None else env, **extra)
    if not INSTALLED:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (SOURCE_DIR, env.get("PYTHONPATH")) if p)
    return env
