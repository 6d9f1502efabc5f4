"""Debug mode: set_debug/get_debug, environment defaults, slow callback
logging, source tracebacks, coroutine origin tracking, unclosed loop
warnings."""

import asyncio
import gc
import logging
import re
import sys
import warnings

import pytest


THIS_FILE = re.escape(__file__)


def _cb():
    pass


def test_set_get_debug(loop):
    assert loop.get_debug() is False
    loop.set_debug(True)
    assert loop.get_debug() is True
    loop.set_debug(False)
    assert loop.get_debug() is False


def test_set_debug_while_running(loop, run_briefly):
    seen = []

    def cb():
        loop.set_debug(True)
        seen.append(loop.get_debug())

    loop.call_soon(cb)
    run_briefly(loop)
    assert seen == [True]
    assert loop.get_debug() is True


def test_slow_callback_duration_default(loop):
    assert loop.slow_callback_duration == 0.1
    loop.slow_callback_duration = 0.5
    assert loop.slow_callback_duration == 0.5


DEBUG_CHILD = """
loop = loop_factory()
try:
    print(loop.get_debug())
finally:
    loop.close()
"""


@pytest.mark.parametrize("env, flags, expected", [
    ({}, (), "False"),
    ({"PYTHONASYNCIODEBUG": "1"}, (), "True"),
    ({"PYTHONASYNCIODEBUG": ""}, (), "False"),
    ({}, ("-X", "dev"), "True"),
    ({"PYTHONDEVMODE": "1"}, (), "True"),
    ({"PYTHONASYNCIODEBUG": "1"}, ("-E",), "False"),
], ids=["default", "env", "env-empty", "xdev", "devmode-env", "ignore-env"])
def test_debug_default_from_environment(child_python, env, flags, expected):
    proc = child_python(DEBUG_CHILD, env=env, python_flags=flags)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == expected


def test_slow_callback_logged(loop, caplog, run_briefly):
    caplog.set_level(logging.WARNING, logger="asyncio")
    loop.set_debug(True)
    loop.slow_callback_duration = 0
    loop.call_soon(_cb)
    run_briefly(loop)
    msgs = [r.getMessage() for r in caplog.records
            if r.name == "asyncio" and r.levelno == logging.WARNING]
    pat = (rf"Executing <Handle _cb\(\) at {THIS_FILE}:\d+ "
           rf"created at {THIS_FILE}:\d+> took \d+\.\d\d\d seconds")
    assert any(re.fullmatch(pat, m) for m in msgs), msgs


def test_slow_callback_not_logged_without_debug(loop, caplog, run_briefly):
    caplog.set_level(logging.DEBUG, logger="asyncio")
    loop.slow_callback_duration = 0
    loop.call_soon(_cb)
    run_briefly(loop)
    assert not [r for r in caplog.records
                if r.getMessage().startswith("Executing")]


def test_slow_task_step_logged(loop, caplog):
    caplog.set_level(logging.WARNING, logger="asyncio")
    loop.set_debug(True)
    loop.slow_callback_duration = 0

    async def main():
        await asyncio.sleep(0)

    loop.run_until_complete(main())
    msgs = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert any(re.match(r"Executing <Task .*main\(\).*> took \d+\.\d{3} "
                        r"seconds", m) for m in msgs), msgs


def test_handle_source_traceback_in_debug(loop):
    loop.set_debug(True)
    h = loop.call_soon(_cb); line = sys._getframe().f_lineno  # noqa: E702
    assert re.fullmatch(
        rf"<Handle _cb\(\) at {THIS_FILE}:\d+ created at {THIS_FILE}:{line}>",
        repr(h))
    th = loop.call_later(10, _cb); line = sys._getframe().f_lineno  # noqa
    assert re.fullmatch(
        rf"<TimerHandle when=\S+ _cb\(\) at {THIS_FILE}:\d+ "
        rf"created at {THIS_FILE}:{line}>", repr(th))
    th2 = loop.call_at(10, _cb); line = sys._getframe().f_lineno  # noqa
    assert re.fullmatch(
        rf"<TimerHandle when=10 _cb\(\) at {THIS_FILE}:\d+ "
        rf"created at {THIS_FILE}:{line}>", repr(th2))
    h2 = loop.call_soon_threadsafe(_cb); line = sys._getframe().f_lineno  # noqa
    assert repr(h2).endswith(f"created at {__file__}:{line}>")
    # In debug mode a cancelled handle keeps its full repr.
    h.cancel()
    assert re.fullmatch(
        rf"<Handle cancelled _cb\(\) at {THIS_FILE}:\d+ "
        rf"created at {THIS_FILE}:\d+>", repr(h))
    th.cancel()
    assert re.fullmatch(
        rf"<TimerHandle cancelled when=\S+ _cb\(\) at {THIS_FILE}:\d+ "
        rf"created at {THIS_FILE}:\d+>", repr(th))
    th2.cancel()


def test_no_source_traceback_without_debug(loop):
    h = loop.call_soon(_cb)
    assert "created at" not in repr(h)
    h.cancel()


def test_debug_callback_exception_has_source_traceback(loop, loop_errors,
                                                       run_briefly):
    loop.set_debug(True)

    def boom():
        raise ValueError

    loop.call_soon(boom)
    run_briefly(loop)
    ctx = loop_errors.calls[0]
    assert "source_traceback" in ctx
    last = ctx["source_traceback"][-1]
    assert last[0] == __file__


def test_debug_default_handler_logs_creation_traceback(make_loop, caplog,
                                                       run_briefly):
    loop = make_loop(record=False)
    caplog.set_level(logging.ERROR, logger="asyncio")
    loop.set_debug(True)

    def boom():
        raise ValueError

    loop.call_soon(boom)
    run_briefly(loop)
    msgs = [r.getMessage() for r in caplog.records
            if r.name == "asyncio" and r.levelno >= logging.ERROR]
    assert len(msgs) == 1
    assert msgs[0].startswith("Exception in callback ")
    assert "\nsource_traceback: Object created at (most recent call " \
           "last):\n" in msgs[0]


def test_coroutine_origin_tracking_in_debug(loop, run_briefly):
    assert sys.get_coroutine_origin_tracking_depth() == 0
    loop.set_debug(True)
    seen = []
    loop.call_soon(lambda: seen.append(
        sys.get_coroutine_origin_tracking_depth()))
    run_briefly(loop)
    assert seen and seen[0] > 0
    assert sys.get_coroutine_origin_tracking_depth() == 0


def test_no_coroutine_origin_tracking_without_debug(loop, run_briefly):
    seen = []
    loop.call_soon(lambda: seen.append(
        sys.get_coroutine_origin_tracking_depth()))
    run_briefly(loop)
    assert seen == [0]


def test_unclosed_loop_resource_warning(loop_factory):
    loop = loop_factory()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del loop
        gc.collect()
    msgs = [str(w.message) for w in caught
            if issubclass(w.category, ResourceWarning)]
    assert any(re.fullmatch(r"unclosed event loop <\w+ running=False "
                            r"closed=False debug=False>", m)
               for m in msgs), msgs


def test_closed_loop_no_resource_warning(loop_factory):
    loop = loop_factory()
    loop.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del loop
        gc.collect()
    assert not [w for w in caught
                if "unclosed event loop" in str(w.message)]


def test_debug_close_logs(loop, caplog):
    caplog.set_level(logging.DEBUG, logger="asyncio")
    loop.set_debug(True)
    loop.close()
    assert any(re.fullmatch(r"Close <\w+ running=False closed=\w+ "
                            r"debug=True>", r.getMessage())
               for r in caplog.records if r.name == "asyncio")
