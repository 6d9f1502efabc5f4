"""Subprocesses: loop.subprocess_exec()/subprocess_shell() and
asyncio.create_subprocess_exec()/create_subprocess_shell(), with asyncio's
semantics (unix_events._UnixSubprocessTransport over real pipes).

Every test runs on stock asyncio (the specification) and on eloop.  The
tests marked with the ``waiter`` fixture run on eloop twice: once with the
pidfd child watcher (src/ext/loop_child.c) and once with the fallback that
kernels without pidfd_open() get (a waitpid thread per child), forced the
way ELOOP_NO_PIDFD=1 forces it.
"""

import asyncio
import contextlib
import gc
import os
import signal
import subprocess
import sys
import threading
import warnings

import pytest

from _netutil import run
from conftest import skip_if_asan_fork

PIPE = asyncio.subprocess.PIPE
DEVNULL = asyncio.subprocess.DEVNULL
STDOUT = asyncio.subprocess.STDOUT
PY = sys.executable


@pytest.fixture(params=["pidfd", "thread"])
def waiter(request, impl, monkeypatch):
    """How eloop learns of a child's exit; stock asyncio has one way."""
    if request.param == "thread":
        if impl.name != "eloop":
            pytest.skip("the waitpid-thread fallback is eloop's")
        import eloop._loop
        monkeypatch.setattr(eloop._loop, "_use_pidfd", False)
    return request.param


def open_fds():
    return set(os.listdir("/proc/self/fd"))


def assert_reaped(*pids):
    """Nobody is left to reap: each pid is gone (not a zombie of ours)."""
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


@pytest.fixture
def no_leaks():
    """Fails the test if it leaves an fd open (pipes, pidfds)."""
    gc.collect()
    before = open_fds()
    yield
    gc.collect()
    leaked = open_fds() - before
    # An fd the listing itself used may show up; anything else is a leak.
    leaked = {fd for fd in leaked if os.path.exists(f"/proc/self/fd/{fd}")}
    assert not leaked, {fd: os.readlink(f"/proc/self/fd/{fd}")
                        for fd in leaked}


# ---- create_subprocess_exec / _shell ----------------------------------------

@pytest.mark.usefixtures("waiter", "no_leaks")
def test_exec_communicate_stdout_stderr(loop):
    async def main():
        p = await asyncio.create_subprocess_exec(
            "sh", "-c", "echo out; echo err >&2; exit 3",
            stdout=PIPE, stderr=PIPE)
        out, err = await p.communicate()
        return out, err, p.returncode, p.pid

    out, err, rc, pid = run(loop, main())
    assert (out, err, rc) == (b"out\n", b"err\n", 3)
    assert_reaped(pid)


@pytest.mark.usefixtures("waiter", "no_leaks")
def test_shell_communicate_input(loop):
    async def main():
        p = await asyncio.create_subprocess_shell(
            "tr a-z A-Z; exit 7", stdin=PIPE, stdout=PIPE)
        out, err = await p.communicate(b"hello")
        return out, err, p.returncode

    assert run(loop, main()) == (b"HELLO", None, 7)


@pytest.mark.usefixtures("no_leaks")
def test_devnull_and_stderr_to_stdout(loop):
    async def main():
        p = await asyncio.create_subprocess_exec(
            "sh", "-c", "cat; echo out; echo err >&2",
            stdin=DEVNULL, stdout=PIPE, stderr=STDOUT)
        both = await p.communicate()
        q = await asyncio.create_subprocess_exec(
            "sh", "-c", "echo out; echo err >&2",
            stdout=DEVNULL, stderr=DEVNULL)
        none = await q.communicate()
        return both, p.returncode, none, q.returncode

    both, rc, none, rc2 = run(loop, main())
    assert both == (b"out\nerr\n", None) and rc == 0
    assert none == (None, None) and rc2 == 0


def test_stdout_to_fd_and_file(loop, tmp_path):
    path = tmp_path / "out"

    async def main(r, w, f):
        p = await asyncio.create_subprocess_exec(
            "sh", "-c", "echo to-fd; echo to-file >&2", stdout=w, stderr=f)
        return await p.wait()

    r, w = os.pipe()
    try:
        with open(path, "wb") as f:
            assert run(loop, main(r, w, f)) == 0
        os.close(w)
        w = -1
        assert os.read(r, 100) == b"to-fd\n"
        assert path.read_bytes() == b"to-file\n"
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


@pytest.mark.usefixtures("waiter")
def test_wait_returncode(loop):
    async def main():
        p = await asyncio.create_subprocess_exec("sh", "-c", "exit 42")
        assert p.returncode is None or p.returncode == 42
        return await p.wait(), p.returncode, await p.wait()

    assert run(loop, main()) == (42, 42, 42)


def test_cwd_and_env(loop, tmp_path):
    async def main():
        p = await asyncio.create_subprocess_exec(
            "sh", "-c", 'pwd; echo "$ELOOP_T"', cwd=str(tmp_path),
            env={"ELOOP_T": "value", "PATH": os.environ["PATH"]},
            stdout=PIPE)
        return await p.communicate()

    out, _ = run(loop, main())
    assert out.decode().split("\n")[:2] == [
        os.path.realpath(tmp_path), "value"]


def test_pass_fds(loop):
    r, w = os.pipe()

    async def main():
        p = await asyncio.create_subprocess_exec(
            PY, "-c", f"import os; os.write({w}, b'passed')",
            pass_fds=(w,))
        return await p.wait()

    try:
        assert run(loop, main()) == 0
        assert os.read(r, 100) == b"passed"
    finally:
        os.close(r)
        os.close(w)


def test_fds_not_inherited_without_pass_fds(loop):
    r, w = os.pipe()

    async def main():
        p = await asyncio.create_subprocess_exec(
            PY, "-c", f"import os; os.write({w}, b'leaked')",
            stderr=DEVNULL)
        return await p.wait()

    try:
        assert run(loop, main()) != 0       # fd w is closed in the child
    finally:
        os.close(r)
        os.close(w)


def test_start_new_session(loop):
    async def main():
        p = await asyncio.create_subprocess_exec(
            PY, "-c", "import os; print(os.getsid(0) == os.getpid())",
            start_new_session=True, stdout=PIPE)
        out, _ = await p.communicate()
        q = await asyncio.create_subprocess_exec(
            PY, "-c", "import os; print(os.getsid(0) == os.getpid())",
            stdout=PIPE)
        out2, _ = await q.communicate()
        return out, out2

    assert run(loop, main()) == (b"True\n", b"False\n")


@pytest.mark.parametrize("kwargs, message", [
    ({"text": True}, "text must be False"),
    ({"universal_newlines": True}, "universal_newlines must be False"),
    ({"encoding": "utf-8"}, "encoding must be None"),
    ({"errors": "strict"}, "errors must be None"),
    ({"bufsize": 1}, "bufsize must be 0"),
])
def test_text_mode_refused(loop, kwargs, message):
    async def main(shell):
        if shell:
            await asyncio.create_subprocess_shell("true", **kwargs)
        else:
            await asyncio.create_subprocess_exec("true", **kwargs)

    for shell in (False, True):
        with pytest.raises(ValueError, match=message):
            run(loop, main(shell))


def test_loop_level_argument_checks(loop):
    async def main():
        proto = asyncio.SubprocessProtocol
        with pytest.raises(ValueError, match="cmd must be a string"):
            await loop.subprocess_shell(proto, ["true"])
        with pytest.raises(ValueError, match="shell must be False"):
            await loop.subprocess_exec(proto, "true", shell=True)
        with pytest.raises(ValueError, match="shell must be True"):
            await loop.subprocess_shell(proto, "true", shell=False)
        with pytest.raises(TypeError):
            await loop.subprocess_exec(proto, "true", 1.5)

    run(loop, main())


# ---- the transport and the protocol --------------------------------------

class Proto(asyncio.SubprocessProtocol):
    def __init__(self, loop):
        self.events = []
        self.data = {1: bytearray(), 2: bytearray()}
        self.done = loop.create_future()
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")

    def pipe_data_received(self, fd, data):
        self.data[fd] += data
        if self.events[-1] != ("data", fd):
            self.events.append(("data", fd))

    def pipe_connection_lost(self, fd, exc):
        self.events.append(("pipe_lost", fd, exc))

    def process_exited(self):
        self.events.append("exited")

    def connection_lost(self, exc):
        self.events.append(("lost", exc))
        self.done.set_result(None)


@pytest.mark.usefixtures("waiter", "no_leaks")
def test_protocol_callback_order(loop):
    async def main():
        tr, proto = await loop.subprocess_exec(
            lambda: Proto(loop), "sh", "-c", "echo out; echo err >&2",
            stdin=PIPE, stdout=PIPE, stderr=PIPE)
        tr.get_pipe_transport(0).close()
        await proto.done
        rc = tr.get_returncode()
        tr.close()
        return proto, rc

    proto, rc = run(loop, main())
    ev = proto.events
    assert rc == 0
    assert ev[0] == "made" and ev[-1] == ("lost", None)
    assert sorted(map(str, ev[1:-1])) == sorted(map(str, [
        ("data", 1), ("data", 2), ("pipe_lost", 0, None),
        ("pipe_lost", 1, None), ("pipe_lost", 2, None), "exited"]))
    for fd in (1, 2):
        assert ev.index(("data", fd)) < ev.index(("pipe_lost", fd, None))
    assert proto.data == {1: bytearray(b"out\n"), 2: bytearray(b"err\n")}


def test_transport_methods(loop):
    async def main():
        tr, proto = await loop.subprocess_exec(
            lambda: Proto(loop), "cat", stdin=PIPE, stdout=PIPE,
            stderr=None)
        assert isinstance(tr, asyncio.SubprocessTransport)
        pid = tr.get_pid()
        assert isinstance(pid, int) and pid > 0
        assert tr.get_returncode() is None
        assert isinstance(tr.get_pipe_transport(0), asyncio.WriteTransport)
        assert isinstance(tr.get_pipe_transport(1), asyncio.ReadTransport)
        assert tr.get_pipe_transport(2) is None
        popen = tr.get_extra_info("subprocess")
        assert isinstance(popen, subprocess.Popen) and popen.pid == pid
        assert not tr.is_closing()
        tr.send_signal(signal.SIGTERM)
        await proto.done
        assert tr.get_returncode() == -signal.SIGTERM
        # The process is gone: asyncio's transport forgets its Popen.
        with pytest.raises(ProcessLookupError):
            tr.send_signal(signal.SIGTERM)
        with pytest.raises(ProcessLookupError):
            tr.kill()
        tr.close()
        assert tr.is_closing()
        return pid

    assert_reaped(run(loop, main()))


@pytest.mark.parametrize("how, code", [
    ("terminate", -signal.SIGTERM), ("kill", -signal.SIGKILL)])
def test_terminate_kill(loop, how, code):
    async def main():
        p = await asyncio.create_subprocess_exec("sleep", "30")
        getattr(p, how)()
        return await p.wait()

    assert run(loop, main()) == code


@pytest.mark.usefixtures("waiter", "no_leaks")
def test_close_kills_running_child(loop):
    async def main():
        tr, proto = await loop.subprocess_exec(
            lambda: Proto(loop), "sleep", "30")
        tr.close()
        await proto.done
        return tr.get_returncode(), tr.get_pid()

    rc, pid = run(loop, main())
    assert rc == -signal.SIGKILL
    assert_reaped(pid)


# ---- faults ---------------------------------------------------------------

@pytest.mark.usefixtures("waiter")
def test_killed_by_signal(loop):
    async def main():
        p = await asyncio.create_subprocess_shell("kill -9 $$", stdout=PIPE)
        out, _ = await p.communicate()
        return out, p.returncode

    assert run(loop, main()) == (b"", -9)


@pytest.mark.usefixtures("no_leaks")
def test_exec_failure(loop):
    async def main():
        with pytest.raises(FileNotFoundError):
            await asyncio.create_subprocess_exec(
                "/nonexistent/program", stdin=PIPE, stdout=PIPE,
                stderr=PIPE)
        with pytest.raises(FileNotFoundError):
            await asyncio.create_subprocess_exec(
                "true", cwd="/nonexistent/dir")
        # Still usable afterwards.
        p = await asyncio.create_subprocess_exec("true")
        return await p.wait()

    assert run(loop, main()) == 0


@pytest.mark.usefixtures("waiter")
def test_write_to_exited_child(loop):
    async def main():
        p = await asyncio.create_subprocess_exec("true", stdin=PIPE)
        await p.wait()
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            for _ in range(10):
                p.stdin.write(b"x" * 65536)
                await p.stdin.drain()
        # communicate() ignores a reader that went away, as asyncio does.
        q = await asyncio.create_subprocess_exec("true", stdin=PIPE)
        await q.wait()
        return await q.communicate(b"y" * 1000000), q.returncode

    assert run(loop, main()) == ((None, None), 0)


@pytest.mark.usefixtures("waiter")
def test_100mb_output_no_deadlock(loop):
    size = 50 << 20

    async def main():
        # Both pipes at once: reading one only would deadlock the child.
        p = await asyncio.create_subprocess_exec(
            "sh", "-c", f"head -c {size} /dev/zero; "
                        f"head -c {size} /dev/zero >&2",
            stdout=PIPE, stderr=PIPE)
        out, err = await p.communicate()
        return len(out), len(err), p.returncode

    assert run(loop, main(), timeout=60) == (size, size, 0)


def test_large_stdin_roundtrip(loop):
    data = os.urandom(1 << 20) * 16

    async def main():
        p = await asyncio.create_subprocess_exec(
            "cat", stdin=PIPE, stdout=PIPE)
        out, _ = await p.communicate(data)
        return out == data, p.returncode

    assert run(loop, main(), timeout=60) == (True, 0)


@pytest.mark.usefixtures("waiter", "no_leaks")
def test_200_concurrent_children(loop):
    async def one(i):
        p = await asyncio.create_subprocess_exec(
            "sh", "-c", f"echo {i}; exit {i % 7}", stdout=PIPE)
        out, _ = await p.communicate()
        return p.pid, out, p.returncode

    async def main():
        return await asyncio.gather(*(one(i) for i in range(200)))

    results = run(loop, main(), timeout=60)
    assert [(out, rc) for _, out, rc in results] == [
        (f"{i}\n".encode(), i % 7) for i in range(200)]
    assert_reaped(*(pid for pid, _, _ in results))


def test_close_loop_with_child_running(make_loop):
    loop = make_loop()

    async def main():
        return await asyncio.create_subprocess_exec("sleep", "30")

    proc = run(loop, main())
    pid = proc.pid
    loop.close()
    os.kill(pid, 0)             # close() leaves the child running
    os.kill(pid, signal.SIGKILL)
    # The closed loop watches it no more (asyncio's waitpid thread may
    # still reap it, then log that its loop is closed).
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    for t in threading.enumerate():
        if "waitpid-" in t.name:     # asyncio's and eloop's fallback's
            t.join(10)
    # asyncio's transport warns when it is collected unclosed.
    with pytest.warns(ResourceWarning,
                      match="unclosed transport <_UnixSubprocessTransport"):
        del proc
        gc.collect()


needs_watchers_or_eloop = pytest.mark.skipif(
    not hasattr(asyncio, "PidfdChildWatcher"),
    reason="child watchers are gone (Python 3.14)")


@contextlib.contextmanager
def pidfd_watcher_for(impl, loop):
    """Stock asyncio: its PidfdChildWatcher, set for the test.  eloop:
    nothing (that type is what eloop's own watcher stands in for)."""
    if impl.name == "eloop":
        yield
        return
    policy = asyncio.get_event_loop_policy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        watcher = asyncio.PidfdChildWatcher()
        watcher.attach_loop(loop)
        policy.set_child_watcher(watcher)
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            policy.set_child_watcher(None)


# ---- eloop internals --------------------------------------------------------

def test_eloop_watches_pidfd_not_thread(impl, loop):
    """eloop-only: with pidfd_open(), the loop's epoll set watches the
    child (no thread per child, no SIGCHLD handler)."""
    if impl.name != "eloop":
        pytest.skip("eloop's watcher")

    async def main():
        threads = threading.active_count()
        p = await asyncio.create_subprocess_exec("sleep", "30")
        watched = loop._watched_children()
        assert threading.active_count() == threads
        p.kill()
        await p.wait()
        return p.pid, watched, loop._watched_children()

    pid, watched, after = run(loop, main())
    assert watched == [pid] and after == []
    assert signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL


def test_eloop_close_drops_watches(impl, loop):
    """eloop-only: close() closes the pidfds of children still running."""
    if impl.name != "eloop":
        pytest.skip("eloop's watcher")

    async def main():
        return await asyncio.create_subprocess_exec("sleep", "30")

    fds = open_fds()
    proc = run(loop, main())
    assert len(open_fds() - fds) == 1       # the pidfd
    loop.close()
    assert open_fds() - fds == set()
    proc.kill()
    assert os.waitpid(proc.pid, 0)[0] == proc.pid
    proc._transport.close()


@needs_watchers_or_eloop
def test_child_reaped_elsewhere_reports_255(impl, loop, caplog):
    """A child someone else reaped first: asyncio's pidfd watcher reports
    255 with a warning; so does eloop's.  (asyncio's default waitpid
    thread races the program's own wait() here, so stock asyncio runs
    with the PidfdChildWatcher.)"""
    async def main():
        p = await asyncio.create_subprocess_exec("sleep", "30")
        popen = p._transport.get_extra_info("subprocess")
        popen.kill()
        popen.wait()            # reaps it behind the loop's back
        return await p.wait()

    with pidfd_watcher_for(impl, loop):
        with caplog.at_level("WARNING", logger="asyncio"):
            assert run(loop, main()) == 255
    assert any("255" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("err, for_good", [
    ("ENOSYS", True), ("EPERM", True), ("EMFILE", False)])
def test_eloop_falls_back_when_pidfd_open_fails(impl, loop, monkeypatch,
                                               err, for_good):
    """eloop-only: pidfd_open() missing (old kernel) or refused (seccomp)
    switches to the waitpid thread for good; out of fds, for this child
    only."""
    if impl.name != "eloop":
        pytest.skip("eloop's watcher")
    import errno
    import eloop._loop

    def refuse(self, pid, callback):
        raise OSError(getattr(errno, err), os.strerror(getattr(errno, err)))

    monkeypatch.setattr(eloop._loop, "_use_pidfd", True)
    monkeypatch.setattr(type(loop), "_watch_child", refuse)

    async def main():
        p = await asyncio.create_subprocess_exec(
            "sh", "-c", "echo hi; exit 6", stdout=PIPE)
        return await p.communicate(), p.returncode

    assert run(loop, main()) == ((b"hi\n", None), 6)
    assert eloop._loop._use_pidfd is not for_good


def test_eloop_no_pidfd_env(impl, child_python):
    """eloop-only: ELOOP_NO_PIDFD=1 forces the waitpid thread."""
    if impl.name != "eloop":
        pytest.skip("eloop's switch")
    r = child_python("""
        import asyncio, threading
        import eloop._loop
        names = []

        async def main():
            p = await asyncio.create_subprocess_exec("sleep", "30")
            names.extend(t.name for t in threading.enumerate())
            p.kill()
            return await p.wait()

        loop = loop_factory()
        print(loop.run_until_complete(main()), eloop._loop._use_pidfd,
              any(n.startswith("waitpid-") for n in names))
        loop.close()
    """, env={"ELOOP_NO_PIDFD": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout == "-9 False True\n"


# ---- child watchers (3.11-3.13) ---------------------------------------------

needs_watchers = pytest.mark.skipif(
    not hasattr(asyncio, "SafeChildWatcher"),
    reason="child watchers are gone (Python 3.14)")


@pytest.fixture
def quiet_deprecation():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


@needs_watchers
@pytest.mark.usefixtures("quiet_deprecation")
def test_program_child_watcher_is_used(loop):
    """A watcher the program set is asked for the loop's children, as
    asyncio asks it."""
    policy = asyncio.get_event_loop_policy()
    seen = []

    class Watcher(asyncio.ThreadedChildWatcher):
        def add_child_handler(self, pid, callback, *args):
            seen.append(pid)
            super().add_child_handler(pid, callback, *args)

    async def main():
        p = await asyncio.create_subprocess_exec("sh", "-c", "exit 5")
        return p.pid, await p.wait()

    watcher = Watcher()
    policy.set_child_watcher(watcher)
    try:
        pid, rc = run(loop, main())
    finally:
        policy.set_child_watcher(None)
    assert rc == 5 and seen == [pid]


@needs_watchers
@pytest.mark.usefixtures("quiet_deprecation")
def test_safe_child_watcher(loop):
    policy = asyncio.get_event_loop_policy()
    watcher = asyncio.SafeChildWatcher()
    watcher.attach_loop(loop)
    policy.set_child_watcher(watcher)

    async def main():
        p = await asyncio.create_subprocess_exec(
            "sh", "-c", "echo hi; exit 3", stdout=PIPE)
        return await p.communicate(), p.returncode

    try:
        assert run(loop, main()) == ((b"hi\n", None), 3)
    finally:
        policy.set_child_watcher(None)
        watcher.attach_loop(None)
        watcher.close()


@needs_watchers
@pytest.mark.usefixtures("quiet_deprecation")
def test_inactive_child_watcher_refuses(loop):
    policy = asyncio.get_event_loop_policy()
    watcher = asyncio.SafeChildWatcher()     # not attached: inactive
    policy.set_child_watcher(watcher)

    async def main():
        with pytest.raises(RuntimeError, match="not activated"):
            await asyncio.create_subprocess_exec("true")

    try:
        run(loop, main())
    finally:
        policy.set_child_watcher(None)


@needs_watchers
@pytest.mark.usefixtures("quiet_deprecation")
def test_own_add_child_handler(loop):
    """A program's own add_child_handler() on the default watcher, for a
    Popen of its own, keeps working next to the loop's subprocesses."""
    got = loop.create_future()

    async def main():
        watcher = asyncio.get_child_watcher()
        mine = subprocess.Popen(["sh", "-c", "exit 9"])
        watcher.add_child_handler(
            mine.pid, lambda pid, rc: loop.call_soon_threadsafe(
                got.set_result, (pid, rc)))
        p = await asyncio.create_subprocess_exec("sh", "-c", "exit 4")
        rc = await p.wait()
        pid, mine_rc = await got
        mine.returncode = mine_rc
        return rc, pid == mine.pid, mine_rc

    assert run(loop, main()) == (4, True, 9)


# ---- fork --------------------------------------------------------------------

@skip_if_asan_fork
def test_fork_child_leaves_parents_children(impl, child_python):
    """A fork child runs subprocesses on a fresh loop; the parent's child,
    watched while it forked, is still the parent's to see exit.  On eloop
    the fork child also closes the loop it inherited, which must release
    only its own copies (stock asyncio's close() there would unregister
    fds from the epoll set it shares with the parent)."""
    r = child_python("""
        import asyncio, os, sys, warnings
        warnings.simplefilter("ignore", DeprecationWarning)
        IS_ELOOP = sys.argv[1].startswith("eloop")

        async def child_work():
            p = await asyncio.create_subprocess_exec(
                "sh", "-c", "echo child; exit 2",
                stdout=asyncio.subprocess.PIPE)
            out, _ = await p.communicate()
            return out, p.returncode

        async def start():
            return await asyncio.create_subprocess_exec(
                "cat", stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE)

        loop = loop_factory()
        proc = loop.run_until_complete(start())
        pid = os.fork()
        if pid == 0:
            if IS_ELOOP:
                loop.close()
            fresh = loop_factory()
            res = fresh.run_until_complete(
                asyncio.wait_for(child_work(), 20))
            fresh.close()
            os._exit(0 if res == (b"child\\n", 2) else 3)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        out, _ = loop.run_until_complete(
            asyncio.wait_for(proc.communicate(b"parent"), 20))
        print(out.decode(), proc.returncode)
        loop.close()
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "parent 0\n"
