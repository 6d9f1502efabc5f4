"""A callback that cancels its own handle and then raises: asyncio formats
the handle's fields when it reports, and cancel() has dropped them, so the
message is "Exception in callback None()", in debug mode too (where the
handle's repr still names the callback)."""

import logging
import socket

import pytest

MESSAGE = "Exception in callback None()"


@pytest.fixture(params=[False, True], ids=["nodebug", "debug"])
def debug(request):
    return request.param


def check_report(loop_errors, handle, kind):
    assert loop_errors.messages() == [MESSAGE]
    ctx = loop_errors.calls[0]
    assert ctx["handle"] is handle and handle.cancelled()
    assert isinstance(ctx["exception"], ZeroDivisionError)
    assert repr(handle).startswith(f"<{kind} cancelled")


def test_call_soon_handle_cancels_itself(loop, loop_errors, run_briefly,
                                         debug):
    loop.set_debug(debug)

    def cb(x):
        h.cancel()
        1 / 0

    h = loop.call_soon(cb, 1)
    run_briefly(loop)
    check_report(loop_errors, h, "Handle")
    assert ("cb(1) at " in repr(h)) == debug


def test_timer_handle_cancels_itself(loop, loop_errors, run_briefly, debug):
    loop.set_debug(debug)

    def cb(x):
        h.cancel()
        1 / 0

    h = loop.call_later(-1, cb, 2)
    run_briefly(loop)
    check_report(loop_errors, h, "TimerHandle")
    assert ("cb(2) at " in repr(h)) == debug


def test_reader_removed_by_its_callback(loop, loop_errors, run_briefly,
                                        debug):
    loop.set_debug(debug)
    a, b = socket.socketpair()
    handles = []

    def on_readable():
        handles.append(loop._current_handle if debug else None)
        loop.remove_reader(a)
        1 / 0

    try:
        loop.add_reader(a, on_readable)
        b.send(b"x")
        run_briefly(loop, 3)
    finally:
        a.close()
        b.close()
    assert loop_errors.messages() == [MESSAGE]
    ctx = loop_errors.calls[0]
    assert isinstance(ctx["exception"], ZeroDivisionError)
    assert ctx["handle"].cancelled()
    if debug:
        assert ctx["handle"] is handles[0]
        assert "on_readable() at " in repr(ctx["handle"])


def test_logged_by_the_default_handler(loop_factory, run_briefly, caplog):
    loop = loop_factory()
    try:
        def cb():
            h.cancel()
            1 / 0

        h = loop.call_soon(cb)
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            run_briefly(loop)
    finally:
        loop.close()
    [rec] = [r for r in caplog.records if r.name == "asyncio"]
    assert rec.getMessage() == f"{MESSAGE}\nhandle: <Handle cancelled>"
