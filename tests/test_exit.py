"""Interpreter exit with a loop left unclosed: pending tasks, callbacks,
open transports, servers, pipes and children.

Each scenario runs in a fresh interpreter (as a script file and as
``python -c``, with and without ``-X dev``), where the loop, and what it
holds, is torn down at various stages of finalization: by the collection
before the modules go, by a module's dict being cleared, or by the last
collection after _asyncio and our own module state are gone.  asyncio
prints "Task was destroyed but it is pending!" (and, in dev mode, an
unclosed-loop ResourceWarning) when it still can and nothing once its
modules are gone; eloop must say the same in kind, and never crash.
"""

import os
import subprocess
import sys
import textwrap

import pytest

from conftest import CHILD_PRELUDE


# asyncio first, then the loop's module: the import order decides the
# order in which the GC meets their objects at exit.
PRELUDE = "import asyncio, os, socket, sys\n" + CHILD_PRELUDE + """\
loop = loop_factory()


async def forever():
    await asyncio.sleep(3600)


def start_pending_task():
    loop.create_task(forever())
    loop.run_until_complete(asyncio.sleep(0))
"""

DESTROYED = "Task was destroyed but it is pending!"
UNCLOSED = "ResourceWarning: unclosed event loop"

# name -> (body, what stderr holds, what it holds in dev mode)
SCENARIOS = {
    # The loop and its task in a cycle: the collection at the start of
    # finalization finds them, with every module still in place.
    "task_in_cycle": ("""
        loop.me = loop
        start_pending_task()
        del loop
    """, [DESTROYED], [DESTROYED, UNCLOSED]),
    # Freed when __main__'s dict is cleared: the loop's finalizer closes it.
    "task_held_by_loop_global": ("""
        t = loop.create_task(forever())
        loop.run_until_complete(asyncio.sleep(0))
        loop.t = t
        del t
    """, [DESTROYED], [DESTROYED, UNCLOSED]),
    # Held by a module cleared late (os): the last collection, after
    # asyncio's modules (and _asyncio) were torn down, finds the task.
    "task_freed_after_modules": ("""
        start_pending_task()
        os._keep = loop
        del loop
    """, [], []),
    "task_loop_in_cycle_freed_after_modules": ("""
        loop.me = loop
        start_pending_task()
        os._keep = loop
        del loop
    """, [], []),
    # Held by builtins: freed when builtins are restored.
    "task_held_by_builtins": ("""
        import builtins
        start_pending_task()
        builtins._keep = loop
        del loop
    """, [DESTROYED], [DESTROYED, UNCLOSED]),
    # In the main thread's context: freed with the thread state, last.
    "task_held_by_contextvar": ("""
        import contextvars
        start_pending_task()
        contextvars.ContextVar("keep").set(loop)
        del loop
    """, [], []),
    # Held by the loop's class, the loop closed and dropped: at exit the
    # GC clears the module's types before the handles, so a handle's loop
    # is the module's last holder (its dealloc must not touch the module
    # state after letting go of the loop).
    "handles_held_by_loop_class": ("""
        type(loop)._keep = [loop.call_soon(print, "never"),
                            loop.call_later(3600, print, "never")]
        loop.close()
        del loop
    """, [], []),
    "callbacks": ("""
        loop.call_soon(print, "never")
        loop.call_later(3600, print, "never")
        os._keep = loop
    """, [], []),
    "transports_and_server": ("""
        a, b = socket.socketpair()
        async def main():
            srv = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
            tr, _ = await loop.create_connection(asyncio.Protocol, sock=a)
            r, w = os.pipe()
            rp, _ = await loop.connect_read_pipe(
                asyncio.Protocol, os.fdopen(r, "rb", 0))
            wp, _ = await loop.connect_write_pipe(
                asyncio.Protocol, os.fdopen(w, "wb", 0))
            return srv, tr, rp, wp
        keep = loop.run_until_complete(main())
        loop.me = loop
        start_pending_task()
        os._keep = loop
    """, [], []),
    # The child exits once our end of its stdin closes, with us.
    "subprocess": ("""
        async def main():
            return await asyncio.create_subprocess_exec(
                sys.executable, "-c", "import sys; sys.stdin.read()",
                stdin=asyncio.subprocess.PIPE)
        asyncio.set_event_loop(loop)
        proc = loop.run_until_complete(main())
        start_pending_task()
        os._keep = loop
    """, [], []),
}


@pytest.fixture
def run_exit(impl, tmp_path):
    def run(body, *, as_script, dev):
        src = PRELUDE + textwrap.dedent(body)
        env = dict(os.environ)
        env.pop("PYTHONASYNCIODEBUG", None)
        env.pop("PYTHONDEVMODE", None)
        cmd = [sys.executable]
        if dev:
            cmd += ["-X", "dev"]
        if as_script:
            path = tmp_path / "script.py"
            path.write_text(src)
            cmd.append(str(path))
        else:
            cmd += ["-c", src]
        cmd += [impl.spec, impl.extra_path or ""]
        return subprocess.run(cmd, capture_output=True, text=True,
                              env=env, timeout=60, cwd=str(tmp_path))
    return run


@pytest.mark.parametrize("dev", [False, True], ids=["plain", "dev"])
@pytest.mark.parametrize("as_script", [True, False], ids=["script", "c"])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_exit_with_unclosed_loop(run_exit, impl, scenario, as_script, dev):
    body, plain_says, dev_says = SCENARIOS[scenario]
    proc = run_exit(body, as_script=as_script, dev=dev)
    assert proc.returncode == 0, proc.stderr
    assert "Fatal Python error" not in proc.stderr
    if impl.name == "eloop":
        # Stricter than asyncio, whose 3.13 close() in __del__ can fail on
        # an import at shutdown ("sys.meta_path is None"): ours is C.
        assert "Traceback" not in proc.stderr, proc.stderr
    for what in (dev_says if dev else plain_says):
        assert what in proc.stderr, proc.stderr
    if not (dev_says if dev else plain_says):
        assert DESTROYED not in proc.stderr, proc.stderr
