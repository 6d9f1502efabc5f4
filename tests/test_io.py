"""add_reader / remove_reader / add_writer / remove_writer."""

import errno
import os
import socket
import tempfile

import pytest


@pytest.fixture
def pipe():
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    fds = {"r": r, "w": w}
    yield fds
    for fd in fds.values():
        try:
            os.close(fd)
        except OSError:
            pass


class FileLike:
    def __init__(self, fd):
        self.fd = fd

    def fileno(self):
        return self.fd


# ---------------------------------------------------------------- readers

def test_reader_socketpair(loop, sockpair, run_loop):
    a, b = sockpair
    got = []

    def on_read(tag):
        got.append((tag, a.recv(100)))
        loop.remove_reader(a)
        loop.stop()

    assert loop.add_reader(a, on_read, "tag") is None
    b.send(b"hello")
    run_loop(loop)
    assert got == [("tag", b"hello")]


def test_reader_pipe_int_fd(loop, pipe, run_loop):
    got = []

    def on_read():
        got.append(os.read(pipe["r"], 100))
        loop.stop()

    loop.add_reader(pipe["r"], on_read)
    os.write(pipe["w"], b"data")
    run_loop(loop)
    assert got == [b"data"]
    assert loop.remove_reader(pipe["r"]) is True


def test_reader_file_like_object(loop, pipe, run_loop):
    got = []
    reader = FileLike(pipe["r"])

    def on_read():
        got.append(os.read(pipe["r"], 100))
        loop.stop()

    loop.add_reader(reader, on_read)
    os.write(pipe["w"], b"x")
    run_loop(loop)
    assert got == [b"x"]
    # Removal works through an equal fd number or the object.
    assert loop.remove_reader(reader) is True
    assert loop.remove_reader(pipe["r"]) is False


def test_reader_registered_as_int_removed_via_object(loop, sockpair):
    a, _ = sockpair
    loop.add_reader(a.fileno(), lambda: None)
    assert loop.remove_reader(a) is True
    assert loop.remove_reader(a.fileno()) is False


def test_reader_waits_for_data(loop, sockpair, run_loop):
    a, b = sockpair
    got = []
    phase = ["idle"]

    def on_read():
        got.append(phase[0])
        if phase[0] == "sent":
            loop.stop()

    loop.add_reader(a, on_read)
    loop.call_later(0.01, loop.stop)
    run_loop(loop)
    assert got == []  # nothing to read: never called

    def send():
        phase[0] = "sent"
        b.send(b"!")

    loop.call_soon(send)
    run_loop(loop)
    assert got == ["sent"]
    assert loop.remove_reader(a) is True


def test_reader_is_level_triggered(loop, sockpair, run_loop):
    a, b = sockpair
    count = 0

    def on_read():
        nonlocal count
        count += 1
        if count == 5:
            loop.remove_reader(a)
            loop.stop()

    loop.add_reader(a, on_read)
    b.send(b"unread data")
    run_loop(loop)
    assert count == 5
    assert a.recv(100) == b"unread data"


def test_reader_fires_once_per_iteration(loop, sockpair, run_briefly):
    a, b = sockpair
    count = 0

    def on_read():
        nonlocal count
        count += 1

    loop.add_reader(a, on_read)
    b.send(b"x")
    for expected in range(1, 4):
        run_briefly(loop)
        assert count == expected
    loop.remove_reader(a)


def test_reader_sees_eof(loop, sockpair, run_loop):
    a, b = sockpair
    got = []

    def on_read():
        got.append(a.recv(100))
        loop.remove_reader(a)
        loop.stop()

    loop.add_reader(a, on_read)
    b.shutdown(socket.SHUT_WR)
    run_loop(loop)
    assert got == [b""]


def test_replace_reader(loop, sockpair, run_loop):
    a, b = sockpair
    got = []
    loop.add_reader(a, got.append, "old")

    def new():
        got.append("new")
        loop.stop()

    loop.add_reader(a, new)
    b.send(b"x")
    run_loop(loop)
    assert got == ["new"]
    assert loop.remove_reader(a) is True
    assert loop.remove_reader(a) is False


def test_remove_reader_return_values(loop, sockpair):
    a, _ = sockpair
    assert loop.remove_reader(a) is False
    assert loop.remove_reader(a.fileno()) is False
    loop.add_reader(a, lambda: None)
    assert loop.remove_writer(a) is False  # only a reader is registered
    assert loop.remove_reader(a) is True
    assert loop.remove_reader(a) is False


def test_remove_reader_inside_callback_stops_callbacks(loop, sockpair,
                                                      run_briefly):
    a, b = sockpair
    count = 0

    def on_read():
        nonlocal count
        count += 1
        assert loop.remove_reader(a) is True

    loop.add_reader(a, on_read)
    b.send(b"x")
    run_briefly(loop, 5)
    assert count == 1


def test_reader_removed_before_it_runs(loop, sockpair, run_briefly):
    # A reader that became ready in this iteration but was removed by an
    # earlier callback of the same iteration must not run.
    a, b = sockpair
    c, d = socket.socketpair()
    try:
        got = []

        def first():
            got.append("first")
            loop.remove_reader(c)
            loop.remove_reader(a)

        def second():
            got.append("second")

        loop.add_reader(a, first)
        loop.add_reader(c, second)
        b.send(b"x")
        d.send(b"x")
        run_briefly(loop, 3)
        # If "first" ran first, "second" (already ready in the same
        # iteration) must not run; the other order is also possible.
        assert got in (["first"], ["second", "first"])
    finally:
        loop.remove_reader(c)
        c.close()
        d.close()


# ---------------------------------------------------------------- writers

def test_writer_socketpair(loop, sockpair, run_loop):
    a, b = sockpair
    got = []

    def on_write(x):
        got.append(x)
        a.send(b"payload")
        loop.remove_writer(a)
        loop.stop()

    assert loop.add_writer(a, on_write, 1) is None
    run_loop(loop)
    assert got == [1]
    assert b.recv(100) == b"payload"


def test_writer_pipe(loop, pipe, run_loop):
    got = []

    def on_write():
        got.append(os.write(pipe["w"], b"abc"))
        loop.stop()

    loop.add_writer(pipe["w"], on_write)
    run_loop(loop)
    assert got == [3]
    assert loop.remove_writer(pipe["w"]) is True
    assert loop.remove_writer(pipe["w"]) is False
    assert os.read(pipe["r"], 10) == b"abc"


def test_writer_waits_until_writable(loop, sockpair, run_loop):
    a, b = sockpair
    # Fill the send buffer.
    try:
        while True:
            a.send(b"x" * 65536)
    except BlockingIOError:
        pass
    got = []
    phase = ["full"]

    def on_write():
        got.append(phase[0])
        if phase[0] == "drained":
            loop.stop()

    loop.add_writer(a, on_write)
    loop.call_later(0.01, loop.stop)
    run_loop(loop)
    assert got == []

    def drain():
        phase[0] = "drained"
        try:
            while True:
                if not b.recv(1 << 20):
                    break
        except BlockingIOError:
            pass

    loop.call_soon(drain)
    run_loop(loop)
    assert got == ["drained"]
    assert loop.remove_writer(a) is True


def test_replace_writer(loop, sockpair, run_loop):
    a, _ = sockpair
    got = []
    loop.add_writer(a, got.append, "old")

    def new():
        got.append("new")
        loop.stop()

    loop.add_writer(a, new)
    run_loop(loop)
    assert got == ["new"]
    assert loop.remove_writer(a) is True


def test_reader_and_writer_on_same_fd(loop, sockpair, run_loop):
    a, b = sockpair
    got = set()

    def maybe_stop():
        if got == {"r", "w"}:
            loop.stop()

    def on_read():
        got.add("r")
        maybe_stop()

    def on_write():
        got.add("w")
        maybe_stop()

    loop.add_reader(a, on_read)
    loop.add_writer(a, on_write)
    b.send(b"x")
    run_loop(loop)
    assert got == {"r", "w"}
    # Removing the reader leaves the writer active.
    assert loop.remove_reader(a) is True
    wrote = []

    def on_write2():
        wrote.append(1)
        loop.stop()

    loop.add_writer(a, on_write2)
    run_loop(loop)
    assert wrote == [1]
    assert loop.remove_writer(a) is True
    assert loop.remove_reader(a) is False


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("method", ["add_reader", "add_writer"])
@pytest.mark.parametrize("bad", [object(), "abc", 1.5, None])
def test_invalid_file_object(loop, method, bad):
    with pytest.raises(ValueError) as ei:
        getattr(loop, method)(bad, lambda: None)
    assert str(ei.value) == f"Invalid file object: {bad!r}"


@pytest.mark.parametrize("method", ["remove_reader", "remove_writer"])
def test_remove_invalid_file_object(loop, method):
    bad = object()
    with pytest.raises(ValueError, match="^Invalid file object: "):
        getattr(loop, method)(bad)


def test_fileno_returning_garbage(loop):
    class Bad:
        def fileno(self):
            return "nope"

    with pytest.raises(ValueError, match="^Invalid file object: "):
        loop.add_reader(Bad(), lambda: None)

    class Raises:
        def fileno(self):
            raise ValueError("closed")

    with pytest.raises(ValueError, match="^Invalid file object: "):
        loop.add_reader(Raises(), lambda: None)


@pytest.mark.parametrize("method", ["add_reader", "add_writer",
                                    "remove_reader", "remove_writer"])
def test_negative_fd(loop, method):
    args = (lambda: None,) if method.startswith("add") else ()
    with pytest.raises(ValueError, match="^Invalid file descriptor: -1$"):
        getattr(loop, method)(-1, *args)
    with pytest.raises(ValueError, match="^Invalid file descriptor: -5$"):
        getattr(loop, method)(FileLike(-5), *args)


def test_closed_fd_number(loop):
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError) as ei:
        loop.add_reader(r, lambda: None)
    assert ei.value.errno == errno.EBADF
    # The failed registration left nothing behind.
    assert loop.remove_reader(r) is False


def test_regular_file_not_supported(loop):
    with tempfile.TemporaryFile() as f:
        with pytest.raises(PermissionError):
            loop.add_reader(f, lambda: None)
        assert loop.remove_reader(f) is False
        with pytest.raises(PermissionError):
            loop.add_writer(f.fileno(), lambda: None)
        assert loop.remove_writer(f.fileno()) is False


def test_fd_closed_while_watched(loop, run_briefly):
    r, w = os.pipe()
    got = []
    loop.add_reader(r, got.append, "r")
    os.close(r)
    os.close(w)
    run_briefly(loop)
    # asyncio keeps the registration; removing it afterwards is fine.
    assert loop.remove_reader(r) is True
    assert loop.remove_reader(r) is False


def test_socket_closed_while_watched(loop, run_briefly):
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    loop.add_reader(a, lambda: None)
    loop.add_writer(c, lambda: None)
    for s in (a, b, c, d):
        s.close()
    assert a.fileno() == -1
    run_briefly(loop)
    # The closed socket object is still recognised (asyncio's selector
    # falls back to searching its registrations for the object).
    assert loop.remove_reader(a) is True
    assert loop.remove_writer(c) is True
    # Once forgotten, a closed socket is just fd -1.
    with pytest.raises(ValueError, match="^Invalid file descriptor: -1$"):
        loop.remove_reader(a)
    with pytest.raises(ValueError, match="^Invalid file descriptor: -1$"):
        loop.remove_writer(c)


def test_reader_exception_is_reported(loop, loop_errors, sockpair,
                                      run_briefly):
    a, b = sockpair

    def on_read():
        raise ValueError("reader failed")

    loop.add_reader(a, on_read)
    b.send(b"x")
    run_briefly(loop)
    loop.remove_reader(a)
    assert len(loop_errors.calls) == 1
    ctx = loop_errors.calls[0]
    assert ctx["message"].startswith("Exception in callback ")
    assert "on_read()" in ctx["message"]
    assert isinstance(ctx["exception"], ValueError)


# ---------------------------------------------------------------- closed loop

def test_closed_loop_io(loop, sockpair):
    a, _ = sockpair
    loop.add_reader(a, lambda: None)
    loop.close()
    with pytest.raises(RuntimeError, match="^Event loop is closed$"):
        loop.add_reader(a, lambda: None)
    with pytest.raises(RuntimeError, match="^Event loop is closed$"):
        loop.add_writer(a, lambda: None)
    assert loop.remove_reader(a) is False
    assert loop.remove_writer(a) is False
    # The file object is validated before the closed check.
    with pytest.raises(ValueError, match="Invalid file object"):
        loop.add_reader(object(), lambda: None)


def test_many_fds(loop, run_loop):
    pairs = [socket.socketpair() for _ in range(200)]
    try:
        got = set()

        def on_read(i, s):
            got.add(i)
            s.recv(10)
            loop.remove_reader(s)
            if len(got) == len(pairs):
                loop.stop()

        for i, (a, b) in enumerate(pairs):
            loop.add_reader(a, on_read, i, a)
        for a, b in pairs:
            b.send(b"x")
        run_loop(loop)
        assert got == set(range(len(pairs)))
    finally:
        for a, b in pairs:
            a.close()
            b.close()
