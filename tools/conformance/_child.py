"""Child process of the conformance runner: runs ONE test_asyncio module with
the target event loop injected, streaming one JSON line per event to a file.

Not meant to be run by hand (use run.py), but it works standalone:

    python tools/conformance/_child.py --loop uvloop:new_event_loop \
        --module events --events /tmp/ev.jsonl [-k test_sock_]

Events written (one JSON object per line, flushed immediately):
    {"ev": "plan", "ids": [...], "deduped": N, "loop": "...", "loop_type": "..."}
    {"ev": "start", "id": ID}
    {"ev": "loop", "id": ID}            first target-loop creation in the test
    {"ev": "end", "id": ID, "outcome": ..., "kind": ..., "dur": S, "tb": ...}
    {"ev": "done"}
outcome: pass | fail | error | skip | xfail | xpass
kind:    target   -- the target loop factory was called during the test
         testloop -- only test_asyncio.utils.TestLoop (mock time) was created
         stdlib   -- only a stock asyncio loop was created (exempt classes,
                     test_runners' mocked BaseEventLoop, ...)
         none     -- no event loop at all (mocks, pure Future/Task logic)
         fixture  -- setUpClass/setUpModule/... error (no startTest)
"""

import argparse
import faulthandler
import importlib
import json
import os
import signal
import sys
import threading
import time
import traceback
import unittest

# Test classes that are written against the stdlib selector loop's private
# internals (they call private methods and mock asyncio.unix_events
# module globals).  They keep getting a stock asyncio loop, so they end up
# counted as "not on target loop".  Keyed by unittest class id.
EXEMPT_CLASSES = {
    'test.test_asyncio.test_unix_events.SelectorEventLoopSignalTests':
        'private _check_signal/_handle_signal/_signal_handlers with '
        'asyncio.unix_events.signal mocked',
    'test.test_asyncio.test_unix_events.SelectorEventLoopUnixSockSendfileTests':
        'private _sock_sendfile_native*/_selector of the stdlib loop',
}

# The selector-variant classes in test_events / test_sendfile /
# test_sock_lowlevel only differ by the selector they pass to
# asyncio.SelectorEventLoop(); once the target loop is injected they are
# identical, so only the first one present is kept (unless --all-variants).
VARIANT_PREFERENCE = ['EPollEventLoopTests', 'KqueueEventLoopTests',
                      'PollEventLoopTests', 'SelectEventLoopTests']

ALIASES = {
    'asyncio': 'asyncio:SelectorEventLoop',
    'uvloop': 'uvloop:new_event_loop',
    'eloop': 'eloop:new_event_loop',
}


def resolve_loop_spec(spec):
    spec = ALIASES.get(spec, spec)
    if ':' not in spec:
        raise SystemExit(f'--loop must be MODULE:FACTORY, got {spec!r}')
    modname, attr = spec.split(':', 1)
    obj = importlib.import_module(modname)
    for part in attr.split('.'):
        obj = getattr(obj, part)
    if not callable(obj):
        raise SystemExit(f'{spec}: {obj!r} is not callable')
    return spec, obj


class _Events:
    def __init__(self, path):
        self._f = open(path, 'a', buffering=1, encoding='utf-8')
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def emit(self, **kw):
        if os.getpid() != self._pid:      # forked child of a test: stay quiet
            return
        line = json.dumps(kw)
        with self._lock:
            self._f.write(line + '\n')
            self._f.flush()


class _State:
    current_id = None
    current_cls = None       # unittest class id of the running test
    target_created = False
    testloop_created = False
    stdlib_created = False
    announced = False


STATE = _State()
_tls = threading.local()


def install(factory, events):
    """Patch asyncio so that every loop the suite builds is the target."""
    import asyncio
    import asyncio.base_events
    import asyncio.events
    import asyncio.unix_events
    from test.test_asyncio import utils as test_utils

    real_selector_loop = asyncio.unix_events.SelectorEventLoop
    default_policy = asyncio.DefaultEventLoopPolicy
    stdlib_factory = default_policy._loop_factory      # _UnixSelectorEventLoop

    def target_factory(*args, **kwargs):
        # Re-entrancy (a factory that itself calls asyncio.new_event_loop()
        # or asyncio.SelectorEventLoop()) and exempt classes get stock loops.
        if getattr(_tls, 'depth', 0) or STATE.current_cls in EXEMPT_CLASSES:
            return stdlib_factory(*args, **kwargs)
        _tls.depth = 1
        try:
            STATE.target_created = True
            if not STATE.announced and STATE.current_id is not None:
                STATE.announced = True
                events.emit(ev='loop', id=STATE.current_id)
            return factory()
        finally:
            _tls.depth = 0

    # 1. Default policy: DefaultEventLoopPolicy (the class the suite's
    #    asyncio.set_event_loop_policy(None) resets re-instantiate, and the
    #    one asyncio.new_event_loop()/asyncio.run()/Runner/
    #    IsolatedAsyncioTestCase go through) builds target loops.  Patching
    #    the class keeps the unix policy's child-watcher API working.
    default_policy._loop_factory = staticmethod(target_factory)

    # 2. asyncio.SelectorEventLoop(...) -- used by the create_event_loop() /
    #    new_loop() mixins of test_events, test_sendfile, test_sock_lowlevel,
    #    test_server, test_buffered_proto and setUp()s of test_unix_events.
    #    The selector argument is ignored.
    class _SelectorProxyMeta(type(real_selector_loop)):
        def __call__(cls, *args, **kwargs):
            return target_factory()

        def __instancecheck__(cls, obj):
            return isinstance(obj, real_selector_loop)

        def __subclasscheck__(cls, sub):
            return issubclass(sub, real_selector_loop)

    proxy = _SelectorProxyMeta('SelectorEventLoop', (real_selector_loop,),
                               {'__module__': 'asyncio.unix_events'})
    asyncio.SelectorEventLoop = proxy
    asyncio.unix_events.SelectorEventLoop = proxy

    # Drop any policy/loop created so far (e.g. at import time).
    asyncio.set_event_loop_policy(None)

    # 3. Book-keeping: which non-target loops does a test create?
    orig_testloop_init = test_utils.TestLoop.__init__

    def testloop_init(self, *a, **kw):
        STATE.testloop_created = True
        return orig_testloop_init(self, *a, **kw)
    test_utils.TestLoop.__init__ = testloop_init

    orig_base_init = asyncio.base_events.BaseEventLoop.__init__

    def base_init(self, *a, **kw):
        if not getattr(_tls, 'depth', 0) and \
                not isinstance(self, test_utils.TestLoop):
            STATE.stdlib_created = True
        return orig_base_init(self, *a, **kw)
    asyncio.base_events.BaseEventLoop.__init__ = base_init

    # 4. Harness shim: test_utils.TestCase.close_loop() (the cleanup every
    #    test_utils.TestCase test registers via set_event_loop()) reads the
    #    private loop._default_executor.  For loops that do not have it, do
    #    the same through the public API instead of erroring every test.
    orig_close_loop = test_utils.TestCase.close_loop

    def close_loop(loop):
        if hasattr(loop, '_default_executor'):
            return orig_close_loop(loop)
        if not loop.is_closed():
            loop.run_until_complete(loop.shutdown_default_executor())
        # Reuse the stock tail (loop.close() + child watcher wait) via a
        # stand-in that has no executor.
        class _Shim:
            _default_executor = None

            def close(self):
                loop.close()
        return orig_close_loop(_Shim())
    test_utils.TestCase.close_loop = staticmethod(close_loop)
    return target_factory


def patch_module(mod, target_factory):
    """Per-module injection for tests that build a stdlib BaseEventLoop()
    with a mocked selector instead of calling asyncio.SelectorEventLoop().
    The replacements keep what the tests observe (test_runners' tearDown
    checks loop.shutdown_ag_run) and drop the private-attribute mocks a
    real loop does not need."""
    name = mod.__name__.rsplit('.', 1)[-1]
    if name == 'test_pep492' and hasattr(mod, 'BaseTest'):
        base_setup = mod.BaseTest.__mro__[1].setUp

        def setUp(self):
            base_setup(self)
            self.loop = target_factory()
            self.set_event_loop(self.loop)
        mod.BaseTest.setUp = setUp

    if name == 'test_runners' and hasattr(mod, 'BaseTest'):
        def new_loop(self):
            loop = target_factory()
            loop.shutdown_ag_run = False
            real_shutdown_asyncgens = loop.shutdown_asyncgens

            async def shutdown_asyncgens():
                loop.shutdown_ag_run = True
                await real_shutdown_asyncgens()
            loop.shutdown_asyncgens = shutdown_asyncgens
            return loop
        mod.BaseTest.new_loop = new_loop


class StreamingResult(unittest.TestResult):
    def __init__(self, events):
        super().__init__()
        self.events = events
        self._outcome = None
        self._tb = []
        self._t0 = 0.0

    def _fmt(self, err):
        return ''.join(traceback.format_exception(*err))[-8000:]

    def startTest(self, test):
        super().startTest(test)
        STATE.current_id = test.id()
        STATE.current_cls = f'{type(test).__module__}.{type(test).__qualname__}'
        STATE.target_created = STATE.testloop_created = False
        STATE.stdlib_created = STATE.announced = False
        self._outcome = 'pass'
        self._tb = []
        self._t0 = time.monotonic()
        self.events.emit(ev='start', id=test.id())
        sys.stderr.write(f'\n=== START {test.id()}\n')
        sys.stderr.flush()

    _RANK = {'pass': 0, 'xfail': 0, 'skip': 1, 'xpass': 2, 'fail': 3,
             'error': 4}

    def _set(self, outcome, err=None, sub=None):
        if self._RANK[outcome] >= self._RANK[self._outcome]:
            self._outcome = outcome
        if err is not None:
            head = f'[subtest {sub}]\n' if sub else ''
            self._tb.append(head + (err if isinstance(err, str)
                                    else self._fmt(err)))

    def _is_current(self, test):
        return STATE.current_id is not None and test.id() == STATE.current_id

    def addSuccess(self, test):
        super().addSuccess(test)

    def addError(self, test, err):
        super().addError(test, err)
        if self._is_current(test):
            self._set('error', err)
        else:   # setUpClass / setUpModule / tearDownClass ... (_ErrorHolder)
            self.events.emit(ev='end', id=test.id(), outcome='error',
                             kind='fixture', dur=0.0, tb=self._fmt(err))

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._set('fail', err)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        if self._is_current(test):
            self._set('skip', f'skipped: {reason}')
        else:   # skipped class/module fixture
            self.events.emit(ev='end', id=test.id(), outcome='skip',
                             kind='fixture', dur=0.0, tb=reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._set('xfail')

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._set('xpass', 'unexpected success')

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            kind = 'fail' if issubclass(err[0], test.failureException) \
                else 'error'
            self._set(kind, err, sub=subtest._subDescription())

    def stopTest(self, test):
        super().stopTest(test)
        if STATE.target_created:
            kind = 'target'
        elif STATE.testloop_created:
            kind = 'testloop'
        elif STATE.stdlib_created:
            kind = 'stdlib'
        else:
            kind = 'none'
        tb = '\n'.join(self._tb)
        if self._outcome == 'skip' and len(tb) > 500:
            tb = tb[:500]
        self.events.emit(ev='end', id=test.id(), outcome=self._outcome,
                         kind=kind, dur=round(time.monotonic() - self._t0, 4),
                         tb=tb)
        STATE.current_id = None
        STATE.current_cls = None


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--loop', required=True)
    ap.add_argument('--module', required=True)
    ap.add_argument('--events', required=True)
    ap.add_argument('--skip-file')
    ap.add_argument('--only-file', help='run only these test ids')
    ap.add_argument('--all-variants', action='store_true')
    ap.add_argument('-k', action='append', default=[])
    args = ap.parse_args()

    faulthandler.enable(all_threads=True)
    if hasattr(signal, 'SIGUSR1'):
        # The parent sends SIGUSR1 before killing a hung child, so the log
        # shows where every thread was stuck.
        faulthandler.register(signal.SIGUSR1, all_threads=True, chain=False)
    # A shell without job control starts background commands with SIGINT
    # ignored, and Python then leaves it ignored: test_runners' interrupt
    # tests (_thread.interrupt_main()) would hang on any loop, stock
    # asyncio included.  The suite assumes Python's default handler.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)

    events = _Events(args.events)
    spec, factory = resolve_loop_spec(args.loop)

    import test.test_asyncio  # noqa: F401  (requires_working_socket etc.)
    target_factory = install(factory, events)

    modname = args.module
    if not modname.startswith('test.'):
        modname = 'test.test_asyncio.' + (
            modname if modname.startswith('test_') else 'test_' + modname)
    suite = unittest.defaultTestLoader.loadTestsFromName(modname)
    if modname in sys.modules:
        patch_module(sys.modules[modname], target_factory)
    tests = list(iter_tests(suite))

    # Import failures show up as a _FailedTest: let them run (-> error).
    deduped = 0
    if not args.all_variants:
        present = {type(t).__name__ for t in tests}
        keep = next((c for c in VARIANT_PREFERENCE if c in present), None)
        if keep is not None:
            drop = set(VARIANT_PREFERENCE) - {keep}
            before = len(tests)
            tests = [t for t in tests if type(t).__name__ not in drop]
            deduped = before - len(tests)

    if args.k:
        tests = [t for t in tests if any(k in t.id() for k in args.k)]

    if args.only_file:
        with open(args.only_file, encoding='utf-8') as f:
            only = {line.strip() for line in f if line.strip()}
        tests = [t for t in tests if t.id() in only]

    skip = set()
    if args.skip_file:
        with open(args.skip_file, encoding='utf-8') as f:
            skip = {line.strip() for line in f if line.strip()}
    plan_ids = [t.id() for t in tests]
    tests = [t for t in tests if t.id() not in skip]

    probe = None
    try:
        probe = factory()
        loop_type = f'{type(probe).__module__}.{type(probe).__qualname__}'
    except Exception as e:      # reported, tests will error on their own
        loop_type = f'<factory failed: {e!r}>'
    finally:
        if probe is not None:
            try:
                probe.close()
            except Exception:
                pass

    events.emit(ev='plan', ids=plan_ids, deduped=deduped, loop=spec,
                loop_type=loop_type, python=sys.version.split()[0])

    result = StreamingResult(events)
    unittest.TestSuite(tests).run(result)
    events.emit(ev='done')
    sys.stdout.flush()
    sys.stderr.flush()


if __name__ == '__main__':
    main()
