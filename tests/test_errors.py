"""Exception handlers: call_exception_handler, default_exception_handler,
set/get_exception_handler, and errors raised by callbacks."""

import logging
import re
import sys

import pytest


THIS_FILE = re.escape(__file__)


def _boom():
    raise ValueError("boom")


@pytest.fixture
def default_handler_loop(make_loop):
    """A loop with the default exception handler (no recorder)."""
    return make_loop(record=False)


def asyncio_errors(caplog):
    return [r for r in caplog.records
            if r.name == "asyncio" and r.levelno >= logging.ERROR]


# ---------------------------------------------------------------- get/set

def test_exception_handler_get_set(default_handler_loop):
    loop = default_handler_loop
    assert loop.get_exception_handler() is None

    def handler(lp, ctx):
        pass

    loop.set_exception_handler(handler)
    assert loop.get_exception_handler() is handler
    loop.set_exception_handler(None)
    assert loop.get_exception_handler() is None


def test_set_exception_handler_not_callable(loop):
    with pytest.raises(TypeError) as ei:
        loop.set_exception_handler(1)
    assert str(ei.value) == "A callable object or None is expected, got 1"
    with pytest.raises(TypeError, match="A callable object or None is "
                                        "expected, got 'abc'"):
        loop.set_exception_handler("abc")


def test_call_exception_handler_custom(loop, loop_errors):
    ctx = {"message": "hello", "extra": 1}
    loop.call_exception_handler(ctx)
    assert loop_errors.calls == [ctx]
    assert loop_errors.calls[0] is ctx


def test_custom_handler_receives_loop(default_handler_loop):
    loop = default_handler_loop
    got = []
    loop.set_exception_handler(lambda lp, ctx: got.append((lp, ctx)))
    loop.call_exception_handler({"message": "m"})
    assert got == [(loop, {"message": "m"})]


# ---------------------------------------------------------------- callbacks

def test_callback_exception_reported_and_loop_continues(loop, loop_errors,
                                                        run_briefly):
    out = []
    h = loop.call_soon(_boom)
    loop.call_soon(out.append, "after")
    run_briefly(loop)
    assert out == ["after"]
    assert len(loop_errors.calls) == 1
    ctx = loop_errors.calls[0]
    assert set(ctx) == {"message", "exception", "handle"}
    assert re.fullmatch(rf"Exception in callback _boom\(\) at {THIS_FILE}:\d+",
                        ctx["message"])
    assert isinstance(ctx["exception"], ValueError)
    assert ctx["handle"] is h


def test_timer_callback_exception_reported(loop, loop_errors, run_briefly):
    h = loop.call_later(-1, _boom)
    loop.call_later(-1, _boom)
    run_briefly(loop)
    assert len(loop_errors.calls) == 2
    assert loop_errors.calls[0]["handle"] is h
    assert loop_errors.calls[0]["message"].startswith(
        "Exception in callback _boom()")


def test_callback_exception_with_args_message(loop, loop_errors,
                                              run_briefly):
    def cb(a, b):
        raise RuntimeError

    loop.call_soon(cb, 1, "x")
    run_briefly(loop)
    # 3.13 shows a callback's arguments only in debug mode.
    args = "1, 'x'" if sys.version_info < (3, 13) else ""
    assert re.fullmatch(
        rf"Exception in callback .*cb\({re.escape(args)}\) at .+:\d+",
        loop_errors.calls[0]["message"])


def test_default_handler_logs_callback_exception(default_handler_loop,
                                                 caplog, run_briefly):
    loop = default_handler_loop
    caplog.set_level(logging.ERROR, logger="asyncio")
    loop.call_soon(_boom)
    run_briefly(loop)
    recs = asyncio_errors(caplog)
    assert len(recs) == 1
    rec = recs[0]
    assert re.fullmatch(
        rf"Exception in callback _boom\(\) at {THIS_FILE}:\d+\n"
        rf"handle: <Handle _boom\(\) at {THIS_FILE}:\d+>",
        rec.getMessage())
    assert rec.exc_info[0] is ValueError
    assert str(rec.exc_info[1]) == "boom"


def test_default_handler_message_format(default_handler_loop, caplog):
    loop = default_handler_loop
    caplog.set_level(logging.ERROR, logger="asyncio")
    loop.call_exception_handler({"message": "Top", "zeta": [1], "alpha": "a"})
    loop.call_exception_handler({"other": 1})
    loop.call_exception_handler({"message": ""})
    try:
        raise KeyError("k")
    except KeyError as exc:
        err = exc
    loop.call_exception_handler({"message": "with exc", "exception": err})
    recs = asyncio_errors(caplog)
    msgs = [r.getMessage() for r in recs]
    assert msgs == [
        "Top\nalpha: 'a'\nzeta: [1]",
        "Unhandled exception in event loop\nother: 1",
        "Unhandled exception in event loop",
        "with exc",
    ]
    assert not recs[0].exc_info
    assert recs[3].exc_info[1] is err


def test_default_exception_handler_callable_directly(default_handler_loop,
                                                     caplog):
    loop = default_handler_loop
    caplog.set_level(logging.ERROR, logger="asyncio")
    loop.default_exception_handler({"message": "direct"})
    assert [r.getMessage() for r in asyncio_errors(caplog)] == ["direct"]


def test_custom_handler_can_defer_to_default(default_handler_loop, caplog):
    loop = default_handler_loop
    caplog.set_level(logging.ERROR, logger="asyncio")

    def handler(lp, ctx):
        lp.default_exception_handler(ctx)

    loop.set_exception_handler(handler)
    loop.call_exception_handler({"message": "deferred"})
    assert [r.getMessage() for r in asyncio_errors(caplog)] == ["deferred"]


def test_exception_handler_that_raises(default_handler_loop, caplog,
                                       run_briefly):
    loop = default_handler_loop
    caplog.set_level(logging.ERROR, logger="asyncio")

    def bad_handler(lp, ctx):
        raise TypeError("handler broke")

    loop.set_exception_handler(bad_handler)
    out = []
    loop.call_soon(_boom)
    loop.call_soon(out.append, "still running")
    run_briefly(loop)
    assert out == ["still running"]
    recs = asyncio_errors(caplog)
    assert len(recs) == 1
    msg = recs[0].getMessage()
    assert msg.startswith("Unhandled error in exception handler\ncontext: {")
    assert "'message': 'Exception in callback _boom()" in msg
    assert recs[0].exc_info[0] is TypeError


def test_exception_handler_base_exceptions_propagate(default_handler_loop):
    loop = default_handler_loop

    def handler(lp, ctx):
        raise KeyboardInterrupt

    loop.set_exception_handler(handler)
    with pytest.raises(KeyboardInterrupt):
        loop.call_exception_handler({"message": "x"})


# ---------------------------------------------------------------- subclasses

def test_subclass_default_exception_handler_override(loop_class, make_loop,
                                                     run_briefly):
    seen = []

    class Sub(loop_class):
        def default_exception_handler(self, context):
            seen.append(context)

    loop = make_loop(Sub, record=False)
    loop.call_exception_handler({"message": "direct"})
    h = loop.call_soon(_boom)
    run_briefly(loop)
    assert len(seen) == 2
    assert seen[0] == {"message": "direct"}
    assert seen[1]["handle"] is h
    assert seen[1]["message"].startswith("Exception in callback _boom()")

    # A custom handler that raises falls back to the (overridden) default.
    def bad(lp, ctx):
        raise ValueError("bad handler")

    loop.set_exception_handler(bad)
    loop.call_exception_handler({"message": "m"})
    assert seen[2]["message"] == "Unhandled error in exception handler"
    assert isinstance(seen[2]["exception"], ValueError)
    assert seen[2]["context"] == {"message": "m"}


def test_subclass_default_handler_that_raises(loop_class, make_loop, caplog):
    caplog.set_level(logging.ERROR, logger="asyncio")

    class Sub(loop_class):
        def default_exception_handler(self, context):
            raise RuntimeError("default broke")

    loop = make_loop(Sub, record=False)
    loop.call_exception_handler({"message": "x"})
    recs = asyncio_errors(caplog)
    assert [r.getMessage() for r in recs] == [
        "Exception in default exception handler"]
    assert recs[0].exc_info[0] is RuntimeError

    caplog.clear()

    def bad(lp, ctx):
        raise ValueError("bad")

    loop.set_exception_handler(bad)
    loop.call_exception_handler({"message": "y"})
    recs = asyncio_errors(caplog)
    assert [r.getMessage() for r in recs] == [
        "Exception in default exception handler while handling an "
        "unexpected error in custom exception handler"]
    assert recs[0].exc_info[0] is RuntimeError


def test_subclass_call_soon_override_is_used_by_futures(loop_class,
                                                        make_loop,
                                                        run_briefly):
    # Futures schedule their callbacks through loop.call_soon, so a
    # Python-level override must be honoured.
    calls = []

    class Sub(loop_class):
        def call_soon(self, callback, *args, context=None):
            calls.append(callback)
            return super().call_soon(callback, *args, context=context)

    loop = make_loop(Sub)
    fut = loop.create_future()
    done = []

    def on_done(f):
        done.append(f.result())

    fut.add_done_callback(on_done)
    fut.set_result(1)
    assert on_done in calls
    run_briefly(loop)
    assert done == [1]
