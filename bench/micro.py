#!/usr/bin/env python3
"""Micro benchmarks of event-loop hot paths: eloop vs asyncio vs uvloop.

Run ``python bench/micro.py --help`` for the options and bench/README.md for
the methodology.  In short:

* every measurement builds a fresh loop (outside the timed part), runs
  ``gc.collect()``, disables the cyclic GC (unless ``--gc``), and times only
  the work with ``time.perf_counter`` taken *inside* the loop (first and last
  callback), so loop construction, ``run_forever`` entry/exit and ``close``
  are not part of the number;
* several rounds are run (--rounds, default 7); within a round every
  benchmark is measured for every loop back to back, --repeat times (default
  3), the loop order rotating on every repeat and round, so slow phases of a
  noisy machine hit all loops alike; a loop's value for a round is the best
  of its repeats;
* per benchmark and loop the best and the median ops/s over the rounds are
  reported, plus eloop/asyncio and eloop/uvloop ratios (best/best,
  median/median and the median of per-round ratios);
* every run verifies that all the work really happened (callback counts,
  cancelled handles, task results, no errors reported to the loop's
  exception handler) and aborts with exit status 2 if not.  A watchdog
  (faulthandler) kills a run that hangs.

``--single BENCH --loop NAME --n N`` runs one measurement once (after a small
untimed warm-up); bench/callgrind.sh uses it.  The measured run is entered
through ``operator.call`` -- a C function nothing else uses -- so that
``valgrind --tool=callgrind --collect-atstart=no
--toggle-collect=_operator_call`` counts only the instructions of the
measured run.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import gc
import importlib
import itertools
import json
import operator
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

perf_counter = time.perf_counter
REPO_ROOT = Path(__file__).resolve().parent.parent

LOOP_NAMES = ("eloop", "asyncio", "uvloop")


class VerificationError(AssertionError):
    """A benchmark did not do all of its work (or did too much)."""


def check(cond, bench, loop_name, msg):
    if not cond:
        raise VerificationError(f"[{bench} / {loop_name}] VERIFICATION FAILED: {msg}")


# --------------------------------------------------------------------------
# loop factories
# --------------------------------------------------------------------------

def _import_eloop():
    """Returns (factory, info) or (None, reason).

    Tries an installed ``eloop`` first; if that fails (or is not the real
    package, e.g. the bare source directory seen as a namespace package),
    retries with the repository root on sys.path (in-place build)."""
    reasons = []
    for attempt in ("installed", "repo"):
        if attempt == "repo":
            for k in [k for k in sys.modules if k == "eloop" or k.startswith("eloop.")]:
                del sys.modules[k]
            if str(REPO_ROOT) not in sys.path:
                sys.path.insert(0, str(REPO_ROOT))
            importlib.invalidate_caches()
        try:
            mod = importlib.import_module("eloop")
        except Exception as e:  # ImportError, or a broken extension
            reasons.append(f"{attempt}: {type(e).__name__}: {e}")
            continue
        factory = getattr(mod, "new_event_loop", None)
        if factory is None:
            reasons.append(f"{attempt}: 'eloop' ({getattr(mod, '__file__', None) or list(getattr(mod, '__path__', []))}) has no new_event_loop")
            continue
        where = getattr(mod, "__file__", None) or str(list(getattr(mod, "__path__", [])))
        return factory, {"version": getattr(mod, "__version__", "?"), "from": where}
    return None, "; ".join(reasons)


def _import_uvloop():
    try:
        import uvloop
    except Exception as e:
        return None, f"{type(e).__name__}: {e}"
    return uvloop.new_event_loop, {"version": getattr(uvloop, "__version__", "?"),
                                   "from": uvloop.__file__}


def available_loops(wanted):
    """{name: factory}, {name: info}, {name: reason-missing}."""
    factories, infos, missing = {}, {}, {}
    for name in wanted:
        if name == "asyncio":
            factories[name] = asyncio.SelectorEventLoop
            infos[name] = {"version": platform.python_version(), "from": asyncio.__file__}
            continue
        fac, info = (_import_eloop() if name == "eloop" else _import_uvloop())
        if fac is None:
            missing[name] = info
        else:
            factories[name], infos[name] = fac, info
    return factories, infos, missing


# --------------------------------------------------------------------------
# benchmarks
#
# Each takes (loop, n, run, name) and returns a dict with at least
# "seconds" (timed part) and "ops" (operations counted); it raises
# VerificationError if the work was not done exactly.  `run` is how the loop
# is entered (operator.call for measured runs, see module docstring).
# --------------------------------------------------------------------------

def _finisher(loop, times):
    def finish():
        times[1] = perf_counter()
        loop.stop()
    return finish


def bench_call_soon(loop, n, run, name):
    """Driver callback schedules n call_soon(cb) + a final stop callback."""
    counter = itertools.count()
    cb = counter.__next__           # C-level 0-arg callable: minimal callback cost
    times = [0.0, 0.0]
    finish = _finisher(loop, times)

    def driver():
        call_soon = loop.call_soon
        times[0] = perf_counter()
        for _ in range(n):
            call_soon(cb)
        call_soon(finish)

    loop.call_soon(driver)
    run(loop.run_forever)
    ran = next(counter)
    check(ran == n, "call_soon", name, f"{ran} of {n} callbacks ran")
    check(times[1] > 0, "call_soon", name, "final callback did not run")
    return {"seconds": times[1] - times[0], "ops": n}


def bench_call_soon_chain(loop, n, run, name):
    """Steady state: 100 chains, each callback schedules the next one.

    Unlike call_soon (a burst of n pending handles), only ~100 handles are
    alive at any time, as when tasks and futures schedule each other; the
    n/100 rounds each run 100 callbacks per loop iteration."""
    width = 100
    left = [n]
    times = [0.0, 0.0]
    finish = _finisher(loop, times)
    call_soon = loop.call_soon

    def step():
        left[0] -= 1
        if left[0] >= width:
            call_soon(step)
        elif left[0] == 0:
            finish()

    def driver():
        times[0] = perf_counter()
        for _ in range(width):
            call_soon(step)

    loop.call_soon(driver)
    run(loop.run_forever)
    check(left[0] == 0, "call_soon_chain", name, f"{left[0]} callbacks left")
    check(times[1] > 0, "call_soon_chain", name, "final callback did not run")
    return {"seconds": times[1] - times[0], "ops": n}


def bench_call_soon_3args(loop, n, run, name):
    """n call_soon(operator.setitem, buf, i, 1): every callback marks its own slot."""
    buf = bytearray(n)
    setitem = operator.setitem      # C-level 3-arg callable
    times = [0.0, 0.0]
    finish = _finisher(loop, times)

    def driver():
        call_soon = loop.call_soon
        times[0] = perf_counter()
        for i in range(n):
            call_soon(setitem, buf, i, 1)
        call_soon(finish)

    loop.call_soon(driver)
    run(loop.run_forever)
    missing = buf.count(0)
    check(missing == 0, "call_soon_3args", name, f"{missing} of {n} callbacks did not run")
    check(times[1] > 0, "call_soon_3args", name, "final callback did not run")
    return {"seconds": times[1] - times[0], "ops": n}


def bench_call_soon_threadsafe(loop, n, run, name):
    """Like call_soon, but through call_soon_threadsafe, called on the loop thread."""
    counter = itertools.count()
    cb = counter.__next__
    times = [0.0, 0.0]
    finish = _finisher(loop, times)

    def driver():
        cst = loop.call_soon_threadsafe
        times[0] = perf_counter()
        for _ in range(n):
            cst(cb)
        cst(finish)

    loop.call_soon(driver)
    run(loop.run_forever)
    ran = next(counter)
    check(ran == n, "call_soon_threadsafe", name, f"{ran} of {n} callbacks ran")
    check(times[1] > 0, "call_soon_threadsafe", name, "final callback did not run")
    return {"seconds": times[1] - times[0], "ops": n}


def bench_call_soon_threadsafe_xthread(loop, n, run, name):
    """A second thread calls call_soon_threadsafe(cb) n times, then (finish).

    The loop is running (idle in its poller) when the producer starts; the
    time is from the producer's first call to the moment the final callback
    runs on the loop thread, i.e. it covers hand-off, wake-ups and execution
    of all n callbacks.  Both threads share the GIL (default switch interval),
    so this measures the real contended path, not parallel speed."""
    counter = itertools.count()
    cb = counter.__next__
    times = [0.0, 0.0]
    finish = _finisher(loop, times)
    errors = []

    def producer():
        try:
            cst = loop.call_soon_threadsafe
            times[0] = perf_counter()
            for _ in range(n):
                cst(cb)
            cst(finish)
        except BaseException as e:  # make sure the loop stops even then
            errors.append(e)
            loop.call_soon_threadsafe(loop.stop)

    th = threading.Thread(target=run, args=(producer,), name="bench-producer")
    loop.call_soon(th.start)
    run(loop.run_forever)
    th.join()
    check(not errors, "call_soon_threadsafe_xthread", name, f"producer raised {errors!r}")
    ran = next(counter)
    check(ran == n, "call_soon_threadsafe_xthread", name, f"{ran} of {n} callbacks ran")
    check(times[1] > 0, "call_soon_threadsafe_xthread", name, "final callback did not run")
    return {"seconds": times[1] - times[0], "ops": n}


def _far_delays(n):
    d = [1000.0 + i * 1e-3 for i in range(n)]     # distinct, ms-apart (libuv ms resolution)
    random.Random(12345).shuffle(d)               # random heap insertion order
    return d


def bench_call_later_cancel(loop, n, run, name):
    """n call_later(far future, cb) then cancel all n; one op = one schedule+cancel.

    The timed part ends in a call_soon'd callback, i.e. after the next loop
    iteration, so loops that purge cancelled timers lazily (asyncio rebuilds
    its heap at the start of the next iteration) pay for it too."""
    delays = _far_delays(n)
    counter = itertools.count()
    cb = counter.__next__
    times = [0.0, 0.0]
    finish = _finisher(loop, times)
    hs = []

    def driver():
        call_later = loop.call_later
        times[0] = perf_counter()
        handles = [call_later(d, cb) for d in delays]
        for h in handles:
            h.cancel()
        loop.call_soon(finish)
        hs.append(handles)

    loop.call_soon(driver)
    run(loop.run_forever)
    check(times[1] > 0, "call_later_cancel", name, "final callback did not run")
    handles = hs[0]
    check(len(handles) == n, "call_later_cancel", name, f"{len(handles)} handles for {n}")
    not_cancelled = sum(1 for h in handles if not h.cancelled())
    check(not_cancelled == 0, "call_later_cancel", name, f"{not_cancelled} handles not cancelled")
    ran = next(counter)
    check(ran == 0, "call_later_cancel", name, f"{ran} cancelled callbacks ran")
    return {"seconds": times[1] - times[0], "ops": n}


def _spread_delays(n, spread=0.010):
    """n distinct delays in [0, spread): decreasing with scheduling order,
    shuffled within blocks of n/100 (random heap insertion positions).

    Decreasing overall so that deadlines (scheduling time + delay) of late-
    scheduled timers do not lie far beyond the end of scheduling: when
    scheduling takes longer than `spread` every timer is due by the time the
    loop gets to run, and the loop never sits idle in the poller."""
    step = spread / n
    d = [(n - 1 - i) * step for i in range(n)]
    block = max(1, n // 100)
    rnd = random.Random(54321)
    out = []
    for i in range(0, n, block):
        chunk = d[i:i + block]
        rnd.shuffle(chunk)
        out.extend(chunk)
    return out


TIMER_SPREAD = 0.010


def bench_timers_fire(loop, n, run, name):
    """n call_later(d_i, cb) with distinct d_i in [0, 10ms), run until all fired.

    Timed from the first call_later to the last timer callback (scheduling
    included).  The callback is a small Python function counting fires.
    If scheduling all n takes less than the 10ms spread, the loop has to
    wait for the last deadline and the result is bounded by the spread
    (flagged as "spread_bound"; use a larger N then)."""
    delays = _spread_delays(n, TIMER_SPREAD)
    times = [0.0, 0.0, 0.0]
    fired = 0

    def cb():
        nonlocal fired
        fired += 1
        if fired == n:
            times[1] = perf_counter()
            loop.stop()

    def driver():
        call_later = loop.call_later
        times[0] = perf_counter()
        for d in delays:
            call_later(d, cb)
        times[2] = perf_counter()

    loop.call_soon(driver)
    run(loop.run_forever)
    check(fired == n, "timers_fire", name, f"{fired} of {n} timers fired")
    check(times[1] > 0, "timers_fire", name, "last timer did not stop the loop")
    return {"seconds": times[1] - times[0], "ops": n,
            "schedule_seconds": times[2] - times[0],
            "spread_bound": times[2] - times[0] < TIMER_SPREAD}


def bench_sleep0(loop, n, run, name):
    """One task: n x `await asyncio.sleep(0)` (one loop iteration each)."""
    times = [0.0, 0.0]
    state = {"iters": 0, "yielded": False}

    def mark():
        state["yielded"] = True

    async def main():
        sleep = asyncio.sleep
        loop.call_soon(mark)
        times[0] = perf_counter()
        i = 0
        for i in range(n):
            await sleep(0)
        times[1] = perf_counter()
        state["iters"] = i + 1 if n else 0

    run(loop.run_until_complete, main())
    check(state["iters"] == n, "sleep0", name, f"{state['iters']} of {n} iterations")
    check(state["yielded"], "sleep0", name, "sleep(0) never yielded to the loop")
    return {"seconds": times[1] - times[0], "ops": n}


def bench_gather_tasks(loop, n, run, name):
    """loop.create_task(f()) x n for `async def f()` + await asyncio.gather(*tasks)."""
    counter = itertools.count()
    tick = counter.__next__
    times = [0.0, 0.0]
    out = []

    async def f():
        tick()

    async def main():
        create_task = loop.create_task
        times[0] = perf_counter()
        tasks = [create_task(f()) for _ in range(n)]
        res = await asyncio.gather(*tasks)
        times[1] = perf_counter()
        out.append((tasks, res))

    run(loop.run_until_complete, main())
    tasks, res = out[0]
    ran = next(counter)
    check(ran == n, "gather_tasks", name, f"{ran} of {n} task bodies ran")
    check(len(res) == n and res.count(None) == n, "gather_tasks", name,
          f"gather returned {len(res)} results, {res.count(None)} None")
    bad = sum(1 for t in tasks if not t.done() or t.cancelled() or t.exception() is not None)
    check(bad == 0, "gather_tasks", name, f"{bad} tasks not done cleanly")
    return {"seconds": times[1] - times[0], "ops": n}


def bench_getaddrinfo_numeric(loop, n, run, name):
    """One task: n x `await loop.getaddrinfo('127.0.0.1', 80, type=SOCK_STREAM)`.

    A numeric host needs no lookup; asyncio still sends every call to its
    executor, eloop and uvloop answer it in the loop's thread."""
    times = [0.0, 0.0]
    out = []

    async def main():
        getaddrinfo = loop.getaddrinfo
        stream = socket.SOCK_STREAM
        res = None
        times[0] = perf_counter()
        for _ in range(n):
            res = await getaddrinfo('127.0.0.1', 80, type=stream)
        times[1] = perf_counter()
        out.append(res)

    run(loop.run_until_complete, main())
    want = socket.getaddrinfo('127.0.0.1', 80, type=socket.SOCK_STREAM)
    check(out == [want], "getaddrinfo_numeric", name, f"got {out!r}, want {want!r}")
    return {"seconds": times[1] - times[0], "ops": n}


# name -> (function, default N, short description)
BENCHES = {
    "call_soon": (bench_call_soon, 200_000, "call_soon(cb), 0 args"),
    "call_soon_chain": (bench_call_soon_chain, 200_000,
                        "call_soon(cb) in 100 chains (steady state)"),
    "call_soon_3args": (bench_call_soon_3args, 200_000, "call_soon(cb, a, b, c)"),
    "call_soon_threadsafe": (bench_call_soon_threadsafe, 100_000,
                             "call_soon_threadsafe(cb) on the loop thread"),
    "call_soon_threadsafe_xthread": (bench_call_soon_threadsafe_xthread, 100_000,
                                     "call_soon_threadsafe(cb) from another thread"),
    "call_later_cancel": (bench_call_later_cancel, 100_000,
                          "call_later(far) + cancel() pairs"),
    "timers_fire": (bench_timers_fire, 100_000, "timers with 0..10ms delays firing"),
    "sleep0": (bench_sleep0, 100_000, "await asyncio.sleep(0) in one task"),
    "gather_tasks": (bench_gather_tasks, 100_000, "create_task x N + gather"),
    "getaddrinfo_numeric": (bench_getaddrinfo_numeric, 20_000,
                            "await loop.getaddrinfo('127.0.0.1', 80, type=SOCK_STREAM)"),
}

QUICK_DIVISOR = 20


# --------------------------------------------------------------------------
# harness
# --------------------------------------------------------------------------

def _direct(f, *args):
    return f(*args)


def measure(bench, loop_name, factory, n, *, keep_gc=False, measured=True, timeout=0):
    """One measurement on a fresh loop.  Returns the bench's result dict."""
    fn = BENCHES[bench][0]
    run = operator.call if measured else _direct
    loop = factory()
    errors = []

    def on_error(lp, ctx):
        # record, and stop the loop: a failing driver callback would
        # otherwise leave it idle forever (until the watchdog fires)
        errors.append(ctx)
        lp.stop()

    loop.set_exception_handler(on_error)
    asyncio.set_event_loop(loop)
    gc.collect()
    if timeout:
        faulthandler.dump_traceback_later(timeout, exit=True)
    if not keep_gc:
        gc.disable()
    try:
        res = fn(loop, n, run, loop_name)
    except VerificationError:
        if errors:  # the root cause is more useful than the symptom
            raise VerificationError(f"[{bench} / {loop_name}] VERIFICATION FAILED: "
                                    f"{len(errors)} errors reported to the exception "
                                    f"handler, first: {errors[0]!r}") from None
        raise
    finally:
        gc.enable()
        if timeout:
            faulthandler.cancel_dump_traceback_later()
        asyncio.set_event_loop(None)
    check(not errors, bench, loop_name,
          f"{len(errors)} errors reported to the exception handler, first: {errors[0]!r}"
          if errors else "")
    check(not loop.is_running(), bench, loop_name, "loop still running")
    loop.close()
    check(res["seconds"] > 0, bench, loop_name, f"non-positive time {res['seconds']!r}")
    res["ops_per_sec"] = res["ops"] / res["seconds"]
    return res


def fmt_ops(x):
    if x is None:
        return "n/a"
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e3:
        return f"{x / 1e3:.0f}k"
    return f"{x:.0f}"


def fmt_ratio(x):
    return "n/a" if x is None else f"{x:.2f}x"


def _ratio(a, b):
    return a / b if a and b else None


def summarize(samples, loops):
    """samples: {bench: {loop: [ops/s per round]}} -> {bench: {...}}."""
    out = {}
    for bench, per_loop in samples.items():
        s = {"loops": {}, "ratios": {}}
        for ln in loops:
            v = per_loop.get(ln) or []
            if not v:
                continue
            s["loops"][ln] = {"rounds": v, "best": max(v), "median": statistics.median(v),
                              "worst": min(v)}
        L = s["loops"]
        for a, b in itertools.permutations(loops, 2):
            if a in L and b in L:
                va, vb = per_loop[a], per_loop[b]
                s["ratios"][f"{a}/{b}"] = {
                    "best": _ratio(L[a]["best"], L[b]["best"]),
                    "median": _ratio(L[a]["median"], L[b]["median"]),
                    # ratio within each round (loops measured back to back),
                    # then the median: robust to slow phases of the machine
                    "paired_median": statistics.median(
                        [x / y for x, y in zip(va, vb)]) if len(va) == len(vb) else None,
                }
        out[bench] = s
    return out


def markdown_table(summary, loops, benches):
    ref = "eloop" if "eloop" in loops else None
    cols = ["benchmark"] + [f"{ln} best" for ln in loops]
    ratio_cols = []  # (header, key, field)
    if ref:
        if "asyncio" in loops:
            ratio_cols.append(("eloop/asyncio", "eloop/asyncio", "best"))
        if "uvloop" in loops:
            ratio_cols.append(("eloop/uvloop (best)", "eloop/uvloop", "best"))
            ratio_cols.append(("eloop/uvloop (median)", "eloop/uvloop", "median"))
    elif "asyncio" in loops and "uvloop" in loops:
        ratio_cols.append(("uvloop/asyncio (best)", "uvloop/asyncio", "best"))
        ratio_cols.append(("uvloop/asyncio (median)", "uvloop/asyncio", "median"))
    cols += [h for h, _, _ in ratio_cols]
    lines = ["| " + " | ".join(cols) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(cols) - 1)) + "|"]
    for b in benches:
        s = summary[b]
        row = [b]
        for ln in loops:
            row.append(fmt_ops(s["loops"].get(ln, {}).get("best")))
        for _, key, field in ratio_cols:
            row.append(fmt_ratio(s["ratios"].get(key, {}).get(field)))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def details_table(summary, loops, benches):
    lines = ["| benchmark | loop | best | median | worst | spread |",
             "|---|---|---:|---:|---:|---:|"]
    for b in benches:
        for ln in loops:
            d = summary[b]["loops"].get(ln)
            if not d:
                continue
            spread = (d["best"] - d["worst"]) / d["median"] * 100
            lines.append(f"| {b} | {ln} | {fmt_ops(d['best'])} | {fmt_ops(d['median'])} | "
                         f"{fmt_ops(d['worst'])} | {spread:.0f}% |")
    return "\n".join(lines)


def ratios_table(summary, loops, benches):
    pairs = [f"eloop/{o}" for o in ("asyncio", "uvloop") if "eloop" in loops and o in loops]
    if not pairs and "asyncio" in loops and "uvloop" in loops:
        pairs = ["uvloop/asyncio"]
    if not pairs:
        return ""
    lines = ["| benchmark | ratio | best/best | median/median | median of per-round ratios |",
             "|---|---|---:|---:|---:|"]
    for b in benches:
        for pr in pairs:
            r = summary[b]["ratios"].get(pr)
            if r:
                lines.append(f"| {b} | {pr} | {fmt_ratio(r['best'])} | {fmt_ratio(r['median'])} | "
                             f"{fmt_ratio(r['paired_median'])} |")
    return "\n".join(lines)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="eloop micro benchmarks (see bench/README.md)")
    p.add_argument("--rounds", type=int, default=None, help="rounds (default 7, --quick: 2)")
    p.add_argument("--repeat", type=int, default=None,
                   help="interleaved back-to-back repeats per benchmark within a round; "
                        "a round's value is the best of them (default 3, --quick: 1)")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke test: N/{QUICK_DIVISOR}, 2 rounds, 1 repeat")
    p.add_argument("--only", default=None, help="comma-separated benchmark names")
    p.add_argument("--loops", default=",".join(LOOP_NAMES),
                   help="comma-separated loops (default: eloop,asyncio,uvloop)")
    p.add_argument("--n", type=int, default=None,
                   help="override N for every benchmark (with --single: N of that run)")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every default N")
    p.add_argument("--warmup", type=int, default=1,
                   help="untimed warm-up passes at N/10 before round 1 (default 1)")
    p.add_argument("--gc", action="store_true",
                   help="keep the cyclic GC enabled during the timed part")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="watchdog per measurement in seconds, 0 = off (default 120)")
    p.add_argument("--json", metavar="FILE", help="also write all results as JSON")
    p.add_argument("--list", action="store_true", help="list benchmarks and exit")
    p.add_argument("--single", metavar="BENCH", help="run one measurement once (callgrind)")
    p.add_argument("--loop", metavar="NAME", help="loop for --single")
    p.add_argument("--in-process", action="store_true",
                   help="measure every loop in this one process instead of one "
                        "worker process per loop (loops then share the allocator's "
                        "state, see bench/README.md)")
    p.add_argument("--worker", metavar="NAME", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.rounds is None:
        args.rounds = 2 if args.quick else 7
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    if args.rounds < 1 or args.repeat < 1:
        p.error("--rounds and --repeat must be >= 1")
    return p, args


# One worker process per loop: a program runs one event loop, and loops in
# one process share pymalloc's arenas, so one loop's retained or freed memory
# decides whether the next loop's burst page-faults (measured: uvloop's
# call_soon ran 30% faster after eloop's bursts than on its own).  The
# coordinator still interleaves every measurement across loops.
_RESULT = "@@micro-result "


def run_worker(loop_name):
    factories, _, missing = available_loops([loop_name])
    fac = factories.get(loop_name)
    for line in sys.stdin:
        req = json.loads(line)
        try:
            if fac is None:
                raise RuntimeError(f"loop {loop_name} not available: {missing[loop_name]}")
            res = {"ok": measure(req["bench"], loop_name, fac, req["n"], keep_gc=req["gc"],
                                 measured=req["measured"], timeout=req["timeout"])}
        except VerificationError as e:
            res = {"verification": str(e)}
        sys.stdout.write(_RESULT + json.dumps(res) + "\n")
        sys.stdout.flush()
    return 0


class Worker:
    """measure() of one loop, run in its own process."""

    def __init__(self, loop_name):
        self.name = loop_name
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", loop_name],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def measure(self, bench, n, *, keep_gc, measured, timeout):
        self.proc.stdin.write(json.dumps({"bench": bench, "n": n, "gc": keep_gc,
                                          "measured": measured, "timeout": timeout}) + "\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith(_RESULT):
                res = json.loads(line[len(_RESULT):])
                if "verification" in res:
                    raise VerificationError(res["verification"])
                return res["ok"]
            sys.stdout.write(line)      # whatever else the benchmark printed
        raise RuntimeError(f"{self.name} worker exited ({self.proc.wait()})")

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


class InProcess:
    def __init__(self, loop_name, factory):
        self.name, self.factory = loop_name, factory

    def measure(self, bench, n, **kw):
        return measure(bench, self.name, self.factory, n, **kw)

    def close(self):
        pass


def run_single(p, args):
    if args.single not in BENCHES:
        p.error(f"unknown benchmark {args.single!r}; known: {', '.join(BENCHES)}")
    if args.loop not in LOOP_NAMES:
        p.error(f"--single needs --loop, one of {', '.join(LOOP_NAMES)}")
    factories, infos, missing = available_loops([args.loop])
    if args.loop in missing:
        log(f"loop {args.loop} not available: {missing[args.loop]}")
        return 3
    n = args.n or BENCHES[args.single][1]
    fac = factories[args.loop]
    # warm-up outside operator.call, i.e. not counted by callgrind's toggle
    measure(args.single, args.loop, fac, min(n, 1000), keep_gc=args.gc,
            measured=False, timeout=args.timeout)
    res = measure(args.single, args.loop, fac, n, keep_gc=args.gc, measured=True,
                  timeout=args.timeout)
    print(f"{args.single} {args.loop} n={n} seconds={res['seconds']:.6f} "
          f"ops_per_sec={res['ops_per_sec']:.0f}")
    return 0


def main(argv=None):
    p, args = parse_args(argv)
    if args.list:
        for name, (_, n, desc) in BENCHES.items():
            print(f"{name:30s} N={n:<8d} {desc}")
        return 0
    if args.single:
        return run_single(p, args)
    if args.worker:
        return run_worker(args.worker)

    benches = list(BENCHES)
    if args.only:
        benches = [b.strip() for b in args.only.split(",") if b.strip()]
        bad = [b for b in benches if b not in BENCHES]
        if bad:
            p.error(f"unknown benchmark(s) {bad}; known: {', '.join(BENCHES)}")
    wanted = [ln.strip() for ln in args.loops.split(",") if ln.strip()]
    bad = [ln for ln in wanted if ln not in LOOP_NAMES]
    if bad:
        p.error(f"unknown loop(s) {bad}; known: {', '.join(LOOP_NAMES)}")
    factories, infos, missing = available_loops(wanted)
    for ln, why in missing.items():
        print(f"> note: loop '{ln}' not available, skipped ({why})")
    loops = [ln for ln in wanted if ln in factories]
    if not loops:
        log("no loop available")
        return 3

    ns = {}
    for b in benches:
        n = args.n or int(BENCHES[b][1] * args.scale)
        if args.quick and not args.n:
            n = max(100, n // QUICK_DIVISOR)
        ns[b] = n

    versions = ", ".join(f"{ln} {infos[ln]['version']}" for ln in loops)
    log(f"loops: {versions}; "
        f"rounds: {args.rounds}; benchmarks: {', '.join(benches)}")
    t_start = time.monotonic()
    runners = {ln: InProcess(ln, factories[ln]) if args.in_process else Worker(ln)
               for ln in loops}
    try:
        for w in range(args.warmup):
            for b in benches:
                for ln in loops:
                    runners[ln].measure(b, max(100, ns[b] // 10), keep_gc=args.gc,
                                        measured=False, timeout=args.timeout)
        samples = {b: {ln: [] for ln in loops} for b in benches}
        extras = {b: {ln: [] for ln in loops} for b in benches}
        for r in range(args.rounds):
            for b in benches:
                best = {}
                for rep in range(args.repeat):
                    k = (r + rep) % len(loops)
                    order = loops[k:] + loops[:k]
                    for ln in order:
                        res = runners[ln].measure(b, ns[b], keep_gc=args.gc,
                                                  measured=True, timeout=args.timeout)
                        best[ln] = max(best.get(ln, 0.0), res["ops_per_sec"])
                        extra = {k2: v for k2, v in res.items() if k2 != "ops"}
                        extra.update(round=r, rep=rep)
                        extras[b][ln].append(extra)
                for ln in loops:
                    samples[b][ln].append(best[ln])
            k = r % len(loops)
            log(f"round {r + 1}/{args.rounds} done (first order {', '.join(loops[k:] + loops[:k])}) "
                f"[{time.monotonic() - t_start:.0f}s]")
    except VerificationError as e:
        log("")
        log("!" * 72)
        log(str(e))
        log("!" * 72)
        return 2
    finally:
        for r in runners.values():
            r.close()

    summary = summarize(samples, loops)
    print()
    print(f"ops/s, best of {args.rounds} rounds x {args.repeat} repeats (higher is better); "
          f"ratios > 1 mean the first loop is faster.")
    print()
    print(markdown_table(summary, loops, benches))
    print()
    print("Details (per-round values, each the best of its repeats; "
          "spread = (best - worst) / median):")
    print()
    print(details_table(summary, loops, benches))
    print()
    rt = ratios_table(summary, loops, benches)
    if rt:
        print("Ratios (per-round ratios compare loops measured back to back, so they are "
              "the most robust to machine load):")
        print()
        print(rt)
        print()
    print(f"N: {', '.join(f'{b}={ns[b]}' for b in benches)}; "
          f"gc {'enabled' if args.gc else 'disabled'} during timing; "
          f"{'all loops in one process' if args.in_process else 'one process per loop'}; "
          f"Python {platform.python_version()}; "
          + "; ".join(f"{ln} {infos[ln]['version']}" for ln in loops))
    for b in benches:
        for ln in loops:
            nb = sum(1 for e in extras[b][ln] if e.get("spread_bound"))
            if nb and args.quick:
                print(f"> note: {b}/{ln} is bounded by the {TIMER_SPREAD * 1e3:.0f}ms delay "
                      f"spread at --quick sizes (expected)")
            elif nb:
                print(f"> warning: {b}/{ln}: in {nb} of {args.rounds} rounds scheduling took less "
                      f"than the {TIMER_SPREAD * 1e3:.0f}ms delay spread, so the result is bounded "
                      f"by waiting for the last deadline; raise N (--scale) for a meaningful number")
    print(f"total time {time.monotonic() - t_start:.0f}s")

    if args.json:
        doc = {
            "meta": {
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "python": sys.version,
                "platform": platform.platform(),
                "machine": platform.machine(),
                "cpu_count": os.cpu_count(),
                "rounds": args.rounds,
                "repeat": args.repeat,
                "warmup": args.warmup,
                "quick": args.quick,
                "gc_enabled_during_timing": args.gc,
                "one_process_per_loop": not args.in_process,
                "loops": {ln: infos[ln] for ln in loops},
                "missing_loops": missing,
                "n": ns,
                "argv": sys.argv[1:] if argv is None else argv,
            },
            "results": {b: dict(summary[b], n=ns[b], description=BENCHES[b][2],
                                extras=extras[b]) for b in benches},
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
