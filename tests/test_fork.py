"""fork() inside a running program: the child builds and runs a loop of its
own (with pipes and children of its own), the parent's loop keeps working
(its pipe transports and its children's exits included), multiprocessing's
fork and forkserver start methods work from inside a running loop.

Every scenario runs in a fresh interpreter (a script written to a file, so
that forkserver can import its __main__), which forks there: the pytest
process itself never forks.  The scripts report by exit status and print
what went wrong.  Those marked eloop-only test eloop's choice for the loop
the child inherits (it refuses to run there, and closing it leaves the
parent alone); stock asyncio's inherited loop has other rules (it keeps
running the parent's callbacks in the child, and its close() unregisters
its self-pipe from the epoll set it shares with the parent).
"""

import os
import subprocess
import sys
import textwrap

import pytest

from conftest import CHILD_PRELUDE, skip_if_asan_fork

pytestmark = skip_if_asan_fork


PRELUDE = CHILD_PRELUDE + """\
import asyncio, os, signal, socket, sys, threading
IS_ELOOP = _mod == "eloop"


def check(cond, what):
    if not cond:
        print("FAILED:", what, flush=True)
        os._exit(3)


async def exercise(loop):
    '''What a fresh loop must do: timers, call_soon_threadsafe from a
    thread, a socket round trip, a signal handler, the executor.'''
    fired = loop.create_future()
    loop.call_later(0.001, fired.set_result, "timer")
    check(await fired == "timer", "timer")

    woken = loop.create_future()
    t = threading.Thread(target=loop.call_soon_threadsafe,
                         args=(woken.set_result, "woken"))
    t.start()
    check(await woken == "woken", "call_soon_threadsafe")
    t.join()

    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    await loop.sock_sendall(a, b"ping" * 1000)
    got = b""
    while len(got) < 4000:
        got += await loop.sock_recv(b, 65536)
    check(got == b"ping" * 1000, "socket round trip")
    a.close()
    b.close()

    sig = loop.create_future()
    loop.add_signal_handler(signal.SIGUSR2, sig.set_result, "signal")
    os.kill(os.getpid(), signal.SIGUSR2)
    check(await sig == "signal", "signal")
    loop.remove_signal_handler(signal.SIGUSR2)

    check(await loop.run_in_executor(None, os.getpid) == os.getpid(),
          "executor")
    return "ok"


def run_fresh():
    '''Builds, runs and closes a new loop; returns what exercise() did.'''
    loop = loop_factory()
    try:
        return loop.run_until_complete(asyncio.wait_for(exercise(loop), 20))
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


def reap(pid):
    '''The child's exit status, waited for in a thread.'''
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def fork_child(body):
    '''Forks: the child runs body() and exits, 0 if it returned, 4 (saying
    what) if it raised; the parent gets the child's pid.'''
    pid = os.fork()
    if pid == 0:
        try:
            body()
        except BaseException as e:
            print("child:", repr(e), flush=True)
            os._exit(4)
        os._exit(0)
    return pid


async def child_done(loop, pid):
    '''Waits, without blocking loop, for the child to exit 0.'''
    code = await loop.run_in_executor(None, reap, pid)
    check(code == 0, f"child exit code {code}")


def check_refuses_to_run(loop):
    '''eloop's loop inherited across fork() raises instead of running.'''
    try:
        loop.run_until_complete(asyncio.sleep(0))
    except RuntimeError as e:
        check("fork" in str(e), str(e))
    else:
        check(False, "the inherited loop ran")


def run_and_close(loop, coro):
    '''coro's result, run on loop, which is then shut down and closed.'''
    result = loop.run_until_complete(coro)
    loop.run_until_complete(loop.shutdown_default_executor())
    asyncio.set_event_loop(None)
    loop.close()
    return result
"""


@pytest.fixture
def run_script(impl, tmp_path):
    def run(body, timeout=60):
        path = tmp_path / "script.py"
        path.write_text(PRELUDE + textwrap.dedent(body))
        proc = subprocess.run(
            [sys.executable, str(path), impl.spec, impl.extra_path or ""],
            capture_output=True, text=True, timeout=timeout,
            cwd=str(tmp_path))
        assert proc.returncode == 0, (proc.stdout, proc.stderr)
        return proc.stdout
    return run


def test_child_runs_fresh_loop_parent_keeps_working(run_script):
    out = run_script("""
        def child():
            # Inside the parent's running loop: a new one runs here.
            check(asyncio.events._get_running_loop() is None,
                  "running loop forgotten")
            check(run_fresh() == "ok", "child loop")

        async def main(loop):
            await child_done(loop, fork_child(child))
            # The parent's loop, with all it uses, is unharmed.
            return await exercise(loop)

        loop = loop_factory()
        print(run_and_close(loop, main(loop)))
    """)
    assert out.split() == ["ok"]


def test_child_signals_do_not_reach_parent(run_script, impl):
    if impl.name == "asyncio" and sys.version_info < (3, 12):
        pytest.skip("asyncio resets the signal wakeup fd at fork from "
                    "3.12 on; 3.11's child writes into the parent's")
    out = run_script("""
        got = []

        async def main(loop):
            loop.add_signal_handler(signal.SIGUSR1, got.append, "sig")
            await child_done(loop, fork_child(
                lambda: os.kill(os.getpid(), signal.SIGUSR1)))
            # The child's byte, had it leaked, was written before the
            # child exited, so it would be read before the parent's own.
            os.kill(os.getpid(), signal.SIGUSR1)
            while not got:
                await asyncio.sleep(0)
            for _ in range(5):
                await asyncio.sleep(0)
            loop.remove_signal_handler(signal.SIGUSR1)
            return got

        loop = loop_factory()
        print(*run_and_close(loop, main(loop)))
    """)
    assert out.split() == ["sig"]


def test_child_policy_forgets_parent_loop(run_script, impl):
    if impl.name == "asyncio" and sys.version_info < (3, 12):
        pytest.skip("asyncio resets the policy's loop at fork from 3.12 on")
    out = run_script("""
        import warnings
        if IS_ELOOP:
            import eloop
            eloop._set_policy(eloop.EventLoopPolicy())
        policy = asyncio.get_event_loop_policy()
        loop = loop_factory()
        policy.set_event_loop(loop)
        pid = os.fork()
        if pid == 0:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                child = policy.get_event_loop()
            check(child is not loop, "the parent's loop")
            child.close()
            os._exit(0)
        check(reap(pid) == 0, "child")
        check(policy.get_event_loop() is loop, "the parent's loop kept")
        policy.set_event_loop(None)
        loop.close()
        print("ok")
    """)
    assert out.split() == ["ok"]


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_multiprocessing_from_running_loop(run_script, method):
    out = run_script("""
        import multiprocessing

        def target(q):
            q.put(run_fresh())

        async def main(loop, ctx):
            q = ctx.Queue()
            p = ctx.Process(target=target, args=(q,))
            p.start()
            result = await loop.run_in_executor(None, q.get, True, 30)
            await loop.run_in_executor(None, p.join)
            check(p.exitcode == 0, f"exit code {p.exitcode}")
            return result, await exercise(loop)

        if __name__ == "__main__":
            ctx = multiprocessing.get_context(sys.argv[3])
            loop = loop_factory()
            print(*run_and_close(loop, main(loop, ctx)))
    """.replace("sys.argv[3]", repr(method)))
    assert out.split() == ["ok", "ok"]


@pytest.mark.parametrize("impl", ["eloop"], indirect=True)
def test_inherited_loop_refuses_to_run_close_spares_parent(run_script):
    # eloop-only: the rules for the inherited loop are eloop's (see the
    # module docstring); asyncio's close() in the child would unregister
    # the parent's self-pipe from their shared epoll set.
    out = run_script("""
        loop = loop_factory()
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        readable = []
        loop.add_reader(a, lambda: readable.append(a.recv(100)))
        loop.add_signal_handler(signal.SIGUSR1, lambda: None)
        loop.run_until_complete(asyncio.sleep(0))
        def child():
            check_refuses_to_run(loop)
            check(not loop.is_running(), "is_running")
            # close() detaches the reader and drops the signal handler
            # without touching the shared epoll set or the process's
            # signal state.
            loop.close()
            check(signal.set_wakeup_fd(-1) == -1, "wakeup fd reset")
            check(run_fresh() == "ok", "child loop")

        pid = fork_child(child)

        async def main():
            await child_done(loop, pid)
            # The parent's registration survived the child's close().
            b.send(b"x")
            while not readable:
                await asyncio.sleep(0)
            check(readable == [b"x"], readable)
            loop.remove_reader(a)
            loop.remove_signal_handler(signal.SIGUSR1)
            return await exercise(loop)

        print(run_and_close(loop, main()))
    """)
    assert out.split() == ["ok"]


@pytest.mark.parametrize("impl", ["eloop"], indirect=True)
def test_fork_in_callback_child_stops_at_once(run_script):
    # eloop-only: asyncio's child would go on running the rest of the
    # parent's batch of callbacks.  eloop's child runs none of them and
    # sends nothing the parent's transports queued: it leaves the inherited
    # loop with RuntimeError at once.
    out = run_script("""
        me = os.getpid()
        loop = loop_factory()
        r, w = os.pipe()
        os.set_blocking(r, False)
        received = []
        forked = []

        async def serve(reader, writer):
            received.append(await reader.read())
            writer.close()

        def fork_cb(writer):
            writer.write(b"once")       # queued, sent after the batch
            pid = os.fork()
            if pid:
                forked.append(pid)

        async def main():
            srv = await asyncio.start_server(serve, "127.0.0.1", 0)
            reader, writer = await asyncio.open_connection(
                *srv.sockets[0].getsockname())
            loop.call_soon(fork_cb, writer)
            loop.call_soon(os.write, w, b"m")   # the same batch
            while not forked:
                await asyncio.sleep(0)
            await child_done(loop, forked[0])
            writer.close()
            await writer.wait_closed()
            while not received:
                await asyncio.sleep(0)
            srv.close()
            await srv.wait_closed()
            return received[0], os.read(r, 10)

        try:
            data, marks = loop.run_until_complete(asyncio.wait_for(main(), 20))
        except BaseException as e:
            if os.getpid() == me:
                raise
            ok = isinstance(e, RuntimeError) and "fork" in str(e)
            if ok:
                loop.close()
            else:
                print("child:", repr(e), flush=True)
            os._exit(0 if ok else 4)
        check(os.getpid() == me, "the child ran on")
        check(data == b"once", data)
        check(marks == b"m", marks)
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
        print("ok")
    """)
    assert out.split() == ["ok"]


PIPES_AND_CHILD = """
    CHILD = [sys.executable, "-c",
             "import sys; sys.stdout.write(sys.stdin.readline())"]

    async def pipes_and_child(loop):
        '''A round trip through a read and a write pipe transport, and a
        child process run to its exit: what a loop's pipes and children
        must do, in the parent as in a fork child.'''
        r, w = os.pipe()
        got = loop.create_future()

        class Reader(asyncio.Protocol):
            def data_received(self, data):
                if not got.done():
                    got.set_result(data)

        rt, _ = await loop.connect_read_pipe(Reader, os.fdopen(r, "rb", 0))
        wt, _ = await loop.connect_write_pipe(asyncio.Protocol,
                                              os.fdopen(w, "wb", 0))
        wt.write(b"through")
        check(await got == b"through", "pipe round trip")
        wt.close()
        rt.close()
        proc = await asyncio.create_subprocess_exec(
            *CHILD, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate(b"child\\n")
        check(out == b"child\\n" and proc.returncode == 0,
              f"subprocess {out!r} {proc.returncode}")
        return "ok"

    def run_fresh_pipes():
        loop = loop_factory()
        asyncio.set_event_loop(loop)
        try:
            return loop.run_until_complete(
                asyncio.wait_for(pipes_and_child(loop), 20))
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    async def open_pipe_and_child(loop):
        '''The parent's open pipe transports (a read end fed by a write
        transport) and a running child, waiting on its stdin.'''
        r, w = os.pipe()
        q = asyncio.Queue()

        class Reader(asyncio.Protocol):
            def data_received(self, data):
                q.put_nowait(data)

        rt, _ = await loop.connect_read_pipe(Reader, os.fdopen(r, "rb", 0))
        wt, _ = await loop.connect_write_pipe(asyncio.Protocol,
                                              os.fdopen(w, "wb", 0))
        proc = await asyncio.create_subprocess_exec(
            *CHILD, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE)
        return rt, wt, q, proc

    async def still_works(rt, wt, q, proc):
        '''After the fork child is gone: the parent's pipe transports carry
        data and its child's output and exit reach it.'''
        wt.write(b"after")
        check(await asyncio.wait_for(q.get(), 20) == b"after",
              "the parent's pipe")
        out, _ = await asyncio.wait_for(proc.communicate(b"parent\\n"), 20)
        check(out == b"parent\\n" and proc.returncode == 0,
              f"the parent's child {out!r} {proc.returncode}")
        wt.close()
        rt.close()
        return "ok"
"""


def test_child_runs_own_pipes_and_subprocess(run_script):
    # Forked inside the running loop, with an open pipe transport pair and
    # a running child: the fork child's fresh loop has pipes and children
    # of its own; the parent keeps both of its.
    out = run_script(textwrap.dedent(PIPES_AND_CHILD) + textwrap.dedent("""
        async def main(loop):
            held = await open_pipe_and_child(loop)
            await child_done(loop, fork_child(
                lambda: check(run_fresh_pipes() == "ok", "child loop")))
            return await still_works(*held)

        loop = loop_factory()
        asyncio.set_event_loop(loop)
        print(run_and_close(loop, main(loop)))
    """))
    assert out.split() == ["ok"]


@pytest.mark.parametrize("impl", ["eloop"], indirect=True)
def test_inherited_pipes_and_child_watch_spare_parent(run_script):
    # eloop-only (see the module docstring): in the fork child the
    # inherited loop's pipe transports are closed and the loop with them;
    # neither touches the parent's epoll set, pipes or child watch.
    # asyncio's close() there would unregister the parent's fds.
    out = run_script(textwrap.dedent(PIPES_AND_CHILD) + textwrap.dedent("""
        loop = loop_factory()
        asyncio.set_event_loop(loop)
        held = loop.run_until_complete(open_pipe_and_child(loop))
        rt, wt, q, proc = held
        def child():
            check_refuses_to_run(loop)
            wt.close()
            rt.close()
            # Not our child here: closing its transport must not kill it,
            # nor its watch reap anything of the parent's.
            proc._transport.close()
            loop.close()
            check(run_fresh_pipes() == "ok", "child loop")

        pid = fork_child(child)

        async def main():
            await child_done(loop, pid)
            return await still_works(*held)

        print(run_and_close(loop, main()))
    """))
    assert out.split() == ["ok"]
