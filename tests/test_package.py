"""eloop's own entry points: eloop.run, the policy, install(), python -m
eloop, the NotImplementedError contract.  These are eloop APIs, so unlike
the behavioural tests they have no stock-asyncio twin."""
import asyncio
import inspect
import os
import subprocess
import sys
import textwrap

import pytest

eloop = pytest.importorskip("eloop")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _py(*args, **kw):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(
        os.path.abspath(eloop.__file__))) + os.pathsep + env.get(
            "PYTHONPATH", "")
    return subprocess.run([sys.executable, *args], capture_output=True,
                          text=True, timeout=60, env=env, **kw)


def test_loop_is_an_abstract_event_loop():
    loop = eloop.new_event_loop()
    try:
        assert isinstance(loop, asyncio.AbstractEventLoop)
        assert isinstance(loop, eloop.Loop)
    finally:
        loop.close()


def test_run_returns_result_and_uses_eloop():
    async def main(x):
        return type(asyncio.get_running_loop()), x * 2

    assert eloop.run(main(21)) == (eloop.Loop, 42)


def test_run_debug_flag():
    async def main():
        return asyncio.get_running_loop().get_debug()

    assert eloop.run(main(), debug=True) is True
    assert eloop.run(main(), debug=False) is False


def test_run_refuses_a_running_loop():
    async def main():
        coro = asyncio.sleep(0)
        try:
            with pytest.raises(RuntimeError, match="running event loop"):
                eloop.run(coro)
        finally:
            coro.close()

    eloop.run(main())


def test_policy_and_install():
    old = asyncio.get_event_loop_policy()
    try:
        asyncio.set_event_loop_policy(eloop.EventLoopPolicy())
        loop = asyncio.new_event_loop()
        assert isinstance(loop, eloop.Loop)
        loop.close()

        async def main():
            return type(asyncio.get_running_loop())
        assert asyncio.run(main()) is eloop.Loop
        asyncio.set_event_loop_policy(None)
        eloop.install()
        assert isinstance(asyncio.get_event_loop_policy(),
                          eloop.EventLoopPolicy)
    finally:
        asyncio.set_event_loop_policy(old)


def test_python_m_eloop_runs_a_script(tmp_path):
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent("""
        import asyncio, sys
        async def main():
            return type(asyncio.get_running_loop()).__module__
        print(asyncio.run(main()), __name__, sys.argv[1:])
    """))
    r = _py("-m", "eloop", str(script), "a", "b")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["eloop._loop", "__main__", "['a',", "'b']"]


def test_python_m_eloop_runs_a_module(tmp_path):
    (tmp_path / "progmod.py").write_text(textwrap.dedent("""
        import asyncio
        async def main():
            return type(asyncio.get_running_loop()).__name__
        if __name__ == "__main__":
            print(asyncio.run(main()))
    """))
    r = _py("-m", "eloop", "-m", "progmod", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "Loop"


def test_python_m_eloop_usage():
    r = _py("-m", "eloop")
    assert r.returncode == 2
    assert "usage" in r.stderr


def test_ctrl_c_cancels_main_task_under_eloop_run():
    code = textwrap.dedent("""
        import asyncio, os, signal, eloop
        async def main():
            asyncio.get_running_loop().call_later(
                0.05, os.kill, os.getpid(), signal.SIGINT)
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                print("main cancelled", flush=True)
                raise
        try:
            eloop.run(main())
        except KeyboardInterrupt:
            print("KeyboardInterrupt")
    """)
    r = _py("-c", code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["main cancelled", "KeyboardInterrupt"]


def test_every_abstract_loop_method_is_built():
    # asyncio.AbstractEventLoop's methods raise NotImplementedError; eloop
    # builds every one (nothing is left inherited from it).
    missing = [name for name, fn in vars(asyncio.AbstractEventLoop).items()
               if callable(fn) and not name.startswith("_")
               and getattr(eloop.Loop, name) is fn]
    assert missing == []


def test_entry_points_warn_nothing():
    # Importing eloop and the entry points a program uses (eloop.run,
    # Runner/asyncio.run with loop_factory, python -m eloop) raise no
    # warning, on 3.14 too, where asyncio's policy API is deprecated.
    code = textwrap.dedent("""
        import asyncio, sys, eloop
        async def main(x):
            t = asyncio.get_running_loop().create_task(asyncio.sleep(0, x))
            return type(asyncio.get_running_loop()).__name__, await t
        assert eloop.run(main(1)) == ("Loop", 1)
        with asyncio.Runner(loop_factory=eloop.new_event_loop) as r:
            assert r.run(main(2)) == ("Loop", 2)
        if sys.version_info >= (3, 12):
            assert asyncio.run(main(3), loop_factory=eloop.new_event_loop) \\
                == ("Loop", 3)
        print("ok")
    """)
    r = _py("-W", "error", "-c", code)
    assert r.returncode == 0 and r.stdout == "ok\n", r.stderr


def test_python_m_eloop_warns_nothing(tmp_path):
    prog = tmp_path / "prog.py"
    prog.write_text(textwrap.dedent("""
        import asyncio
        async def main():
            return type(asyncio.get_running_loop()).__name__
        print(asyncio.run(main()))
    """))
    r = _py("-W", "error", "-m", "eloop", str(prog))
    assert r.returncode == 0 and r.stdout == "Loop\n", r.stderr


def test_python_m_eloop_version(tmp_path):
    r = _py("-m", "eloop", "--version", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"eloop {eloop.__version__}\n"
    assert r.stderr == ""


def test_version_is_kept_in_one_place():
    # pyproject.toml reads eloop/_version.py; nothing else spells it out.
    from eloop import _version
    assert eloop.__version__ == _version.__version__
    with open(os.path.join(REPO, "pyproject.toml")) as f:
        text = f.read()
    assert 'dynamic = ["version"]' in text
    assert "eloop._version.__version__" in text
    assert _version.__version__ not in text


def test_python_m_eloop_info(tmp_path):
    import platform
    # From elsewhere than the checkout, so that PYTHONPATH decides which
    # build is imported (the ASan run's, under tools/asan-test.sh).
    r = _py("-m", "eloop", "--info", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = dict(line.split(": ", 1) for line in r.stdout.splitlines()[2:])
    assert r.stdout.splitlines()[0] == f"eloop {eloop.__version__}"
    assert lines["I/O backend"] == "epoll"
    assert platform.python_version() in r.stdout.splitlines()[1]
    assert lines["extension"] == eloop._eloop.__file__
    # setup.py records the flags of the build this interpreter imports.
    assert "-std=c11" in lines["build flags"]
    assert lines["built for"].startswith(
        "Python %d.%d " % sys.version_info[:2])


def test_usage_names_version_and_info():
    r = _py("-m", "eloop", "--help")
    assert r.returncode == 0
    assert "--version" in r.stdout and "--info" in r.stdout
