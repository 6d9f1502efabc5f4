"""eloop: asyncio's event loop, implemented in C.

Switch any asyncio program with one line::

    eloop.run(main())
    asyncio.Runner(loop_factory=eloop.new_event_loop)
    asyncio.set_event_loop_policy(eloop.EventLoopPolicy())

The loop itself lives in the C extension ``eloop._eloop``; this module only
binds it to ``asyncio.AbstractEventLoop`` and adds setup-time glue.
"""
import asyncio as _asyncio
import sys as _sys
from asyncio import unix_events as _unix_events

from . import _eloop
from ._loop import Loop
from ._version import __version__

__all__ = ("Loop", "new_event_loop", "EventLoopPolicy", "run", "install")

Handle = _eloop.Handle
TimerHandle = _eloop.TimerHandle


def new_event_loop():
    """Return a new eloop event loop."""
    return Loop()


# The platform's default policy class by its private name: 3.14 deprecates
# the public alias asyncio.DefaultEventLoopPolicy (reading it warns), and
# importing eloop must not warn.
class EventLoopPolicy(_unix_events._UnixDefaultEventLoopPolicy):
    """An asyncio event loop policy whose loops are eloop loops.

    Derived from the platform's default policy so that the rest of its
    API (child watchers on Unix before 3.12) keeps working.  Policies are
    deprecated from Python 3.14 on: prefer ``eloop.run()`` or
    ``loop_factory=eloop.new_event_loop``."""

    def _loop_factory(self):
        return new_event_loop()


if _sys.version_info < (3, 12):
    import os as _os

    def _forget_loop_after_fork():
        # What asyncio's own fork hook does from 3.12 on (events.on_fork),
        # for eloop's policy on 3.11: the child must not get the parent's
        # loop from get_event_loop().  The C module's hook does the rest
        # (the loops' kernel objects, the running loop, the wakeup fd).
        policy = _asyncio.events._event_loop_policy
        if isinstance(policy, EventLoopPolicy):
            policy._local = policy._Local()

    _os.register_at_fork(after_in_child=_forget_loop_after_fork)


def _set_policy(policy):
    # 3.14 deprecates set_event_loop_policy(); its private twin does the
    # same without the warning.
    setter = getattr(_asyncio.events, "_set_event_loop_policy", None)
    (setter or _asyncio.set_event_loop_policy)(policy)


def install():
    """Make eloop the loop asyncio creates by default (via the policy).

    Deprecated on Python 3.14+, as asyncio's policies are."""
    if _sys.version_info >= (3, 14):
        import warnings
        warnings.warn(
            "eloop.install() relies on asyncio's event loop policies, "
            "deprecated since Python 3.14; use eloop.run() or "
            "loop_factory=eloop.new_event_loop", DeprecationWarning,
            stacklevel=2)
    _set_policy(EventLoopPolicy())


def run(main, *, debug=None):
    """Run the coroutine *main* on a new eloop loop, as asyncio.run()."""
    if _asyncio.events._get_running_loop() is not None:
        # Checked before a loop exists, as asyncio.run() does.
        raise RuntimeError(
            "asyncio.run() cannot be called from a running event loop")
    if hasattr(_asyncio, "Runner"):
        with _asyncio.Runner(debug=debug, loop_factory=new_event_loop) as r:
            return r.run(main)
    # Python 3.9/3.10: asyncio.Runner does not exist yet.
    loop = new_event_loop()
    try:
        _asyncio.set_event_loop(loop)
        if debug is not None:
            loop.set_debug(debug)
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_all_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            _asyncio.set_event_loop(None)
            loop.close()


def _cancel_all_tasks(loop):
    to_cancel = _asyncio.all_tasks(loop)
    if not to_cancel:
        return
    for task in to_cancel:
        task.cancel()
    loop.run_until_complete(
        _asyncio.gather(*to_cancel, return_exceptions=True))
    for task in to_cancel:
        if task.cancelled():
            continue
        if task.exception() is not None:
            loop.call_exception_handler({
                "message": "unhandled exception during asyncio.run() "
                           "shutdown",
                "exception": task.exception(),
                "task": task,
            })
