"""The documentation's examples (docs/examples/*.py) run as they are shown.

Each example is a program written against eloop (``import eloop``).  It is
run as a child process on eloop, and on stock asyncio through a stand-in
``eloop`` module that hands out asyncio's own loop, and its output must
match docs/examples/<name>.out on both: the examples explain asyncio, so
stock asyncio must print the same.  In a .out file ``<N>`` stands for a
number (for the measured examples; their timings are never asserted).

The uvicorn test and the inclusion check are eloop-only: they check what
the pages say about eloop itself (its loop factory on uvicorn's command
line, and that every example is shown on some page)."""
import glob
import os
import re
import select
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(REPO, "docs")
EXAMPLES = os.path.join(DOCS, "examples")
NAMES = sorted(os.path.splitext(os.path.basename(p))[0]
               for p in glob.glob(os.path.join(EXAMPLES, "*.py")))
# Programs that do not print (served by another program): no .out file.
SERVED = {"uvicorn_app"}

# The stand-in: the eloop API the examples use, backed by stock asyncio.
ASYNCIO_ELOOP = textwrap.dedent('''
    import asyncio
    Loop = asyncio.SelectorEventLoop
    EventLoopPolicy = asyncio.DefaultEventLoopPolicy
    def new_event_loop():
        return asyncio.SelectorEventLoop()
    def install():
        asyncio.set_event_loop_policy(EventLoopPolicy())
    run = asyncio.run
''')


def _expected_re(text):
    parts = [re.escape(p) for p in text.split("<N>")]
    return re.compile(r"[0-9]+(?:\.[0-9]+)?".join(parts) + r"\Z")


def _env(path):
    env = dict(os.environ)
    env["PYTHONPATH"] = path + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("PYTHONASYNCIODEBUG", None)
    return env


@pytest.fixture
def eloop_path(impl, tmp_path):
    """PYTHONPATH entry that makes ``import eloop`` give the loop under
    test."""
    if impl.name == "eloop":
        return impl.extra_path
    shim = tmp_path / "shim" / "eloop"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text(ASYNCIO_ELOOP)
    return str(shim.parent)


@pytest.mark.parametrize("name", [n for n in NAMES if n not in SERVED])
def test_example_output(name, eloop_path, tmp_path):
    if name.startswith("aiohttp"):
        pytest.importorskip("aiohttp")
    script = os.path.join(EXAMPLES, name + ".py")
    with open(os.path.join(EXAMPLES, name + ".out")) as f:
        expected = f.read()
    # From an empty directory, so that only PYTHONPATH decides which eloop
    # is imported; warnings are errors (an example must not warn).
    r = subprocess.run([sys.executable, "-W", "error", script],
                       capture_output=True, text=True, timeout=60,
                       cwd=tmp_path, env=_env(eloop_path))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert _expected_re(expected).match(r.stdout), (
        f"output of {name}.py:\n{r.stdout}\nexpected:\n{expected}")


def test_every_example_is_shown_and_checked():
    pages = ""
    for md in glob.glob(os.path.join(DOCS, "**", "*.md"), recursive=True):
        with open(md) as f:
            pages += f.read()
    for name in NAMES:
        assert f"examples/{name}.py" in pages, f"{name}.py is on no page"
        if name not in SERVED:
            assert os.path.exists(os.path.join(EXAMPLES, name + ".out"))


def test_uvicorn_loop_option_runs_eloop(tmp_path):
    """`uvicorn app --loop eloop:new_event_loop`, as getting-started.md
    shows, serves on eloop."""
    pytest.importorskip("uvicorn")
    eloop = pytest.importorskip("eloop")
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    port = lsock.getsockname()[1]
    env = _env(os.path.dirname(os.path.dirname(eloop.__file__))
               + os.pathsep + EXAMPLES)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "uvicorn_app:app",
         "--loop", "eloop:new_event_loop", "--fd", str(lsock.fileno()),
         "--no-access-log"],
        pass_fds=[lsock.fileno()], cwd=tmp_path, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lsock.close()
    log = b""
    try:
        # Raw reads: select() cannot see what a buffered reader already
        # holds.
        deadline = time.monotonic() + 30
        # "Application startup complete" comes before the server listens;
        # "Uvicorn running on" after.
        while b"Uvicorn running on" not in log:
            left = deadline - time.monotonic()
            assert left > 0 and proc.poll() is None, log.decode()
            if select.select([proc.stderr], [], [], left)[0]:
                log += os.read(proc.stderr.fileno(), 4096)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/",
                                    timeout=30) as resp:
            body = resp.read().decode()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert body == "eloop._loop.Loop\n"
