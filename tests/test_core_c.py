"""Runs the C core's tests (tests/c) under pytest, one pytest test each.

The binary is built with `make -C tests/c build` (ASan+UBSan) when this
module is collected; each test then runs as `el-tests NAME` in its own
process, and exit status 77 maps to a skip.
"""
import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest

C_DIR = Path(__file__).resolve().parent / "c"
BINARY = C_DIR / "build" / "el-tests"
SKIP = 77


def _build():
    """Returns None on success, else (skip?, message)."""
    for tool in ("make", os.environ.get("CC", "gcc")):
        if shutil.which(tool) is None:
            return True, f"{tool} not found"
    (C_DIR / "build").mkdir(exist_ok=True)
    # pytest-xdist workers collect concurrently; one make at a time.
    with open(C_DIR / "build" / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.run(["make", "-C", str(C_DIR), "build"],
                              capture_output=True, text=True)
    if proc.returncode != 0:
        return False, f"make failed:\n{proc.stdout}{proc.stderr}"
    return None


def _names():
    proc = subprocess.run([str(BINARY), "--list"], capture_output=True,
                          text=True, check=True)
    return proc.stdout.split()


BUILD_ERROR = _build()
NAMES = _names() if BUILD_ERROR is None else ["build"]


@pytest.mark.parametrize("name", NAMES)
def test_core(name):
    if BUILD_ERROR is not None:
        skip, message = BUILD_ERROR
        if skip:
            pytest.skip(message)
        pytest.fail(message)
    proc = subprocess.run([str(BINARY), name], capture_output=True,
                          text=True, timeout=300)
    output = proc.stdout + proc.stderr
    if proc.returncode == SKIP:
        pytest.skip(output.strip())
    assert proc.returncode == 0, output
