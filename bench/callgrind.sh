#!/usr/bin/env bash
# Instruction count per operation of one micro benchmark, under callgrind.
#
#   bench/callgrind.sh BENCH LOOP [N]        e.g.  bench/callgrind.sh call_soon eloop
#
# Runs `python bench/micro.py --single BENCH --loop LOOP --n N` under
# valgrind --tool=callgrind with collection OFF at start and toggled on only
# inside operator.call (C symbol _operator_call), which micro.py uses to enter
# the measured run and nothing else.  Interpreter start-up, imports, loop
# creation, the untimed warm-up, verification, loop.close() and shutdown are
# therefore not counted; what is counted is the measured run: the timed work
# plus run_forever/run_until_complete entry and exit (a fixed cost of a few
# thousand instructions, negligible at the default N).  For the
# call_soon_threadsafe_xthread benchmark the producer thread is entered
# through operator.call too (toggling is per thread), so both sides count.
#
# Prints  Ir (total counted instructions), N and Ir/N.  Instruction counts are
# deterministic to within a fraction of a percent (unlike wall time on a shared
# machine), so Ir/N is the number to compare micro-optimisations with.
#
# Environment:
#   PYTHON=python3        interpreter to use
#   KEEP=1                keep the callgrind.out file (path printed) for
#                         callgrind_annotate --inclusive=yes FILE | less
#   VALGRIND_ARGS="..."   extra valgrind options (e.g. --cache-sim=yes)
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
    echo "usage: $0 BENCH LOOP [N]   (LOOP: eloop|asyncio|uvloop; default N=20000)" >&2
    echo "benchmarks:" >&2
    "${PYTHON:-python3}" "$(dirname "$0")/micro.py" --list >&2
    exit 64
fi

BENCH=$1
LOOP=$2
N=${3:-20000}
# resolve to the real binary: `python3` may be a wrapper script (pyenv shim)
# and valgrind does not follow exec'd children by default
PY=$("${PYTHON:-python3}" -c 'import sys; print(sys.executable)')
HERE=$(cd "$(dirname "$0")" && pwd)

command -v valgrind >/dev/null || { echo "valgrind not found" >&2; exit 69; }

OUT=$(mktemp "${TMPDIR:-/tmp}/callgrind.${BENCH}.${LOOP}.XXXXXX")
LOG=$(mktemp "${TMPDIR:-/tmp}/callgrind.${BENCH}.${LOOP}.log.XXXXXX")
cleanup() { rm -f "$LOG"; [[ "${KEEP:-0}" == 1 ]] || rm -f "$OUT"; }
trap cleanup EXIT

# PYTHONMALLOC is left alone (pymalloc on) so the counts reflect normal runs.
export PYTHONHASHSEED=${PYTHONHASHSEED:-0}   # repeatable dict/set layouts
# The watchdog is off: under valgrind everything is ~50x slower.
if ! valgrind --tool=callgrind \
        --collect-atstart=no --toggle-collect=_operator_call \
        --callgrind-out-file="$OUT" ${VALGRIND_ARGS:-} \
        "$PY" "$HERE/micro.py" --single "$BENCH" --loop "$LOOP" --n "$N" --timeout 0 \
        >"$LOG" 2>&1; then
    cat "$LOG" >&2
    echo "callgrind run failed" >&2
    exit 1
fi

# one line like "call_soon asyncio n=20000 seconds=... ops_per_sec=..."
grep -E "^${BENCH} ${LOOP} n=" "$LOG" >&2 || { cat "$LOG" >&2; exit 1; }

IR=$(awk '/^(summary|totals):/ { print $2; exit }' "$OUT")
if [[ -z "$IR" || "$IR" == 0 ]]; then
    cat "$LOG" >&2
    echo "no instructions collected (is _operator_call a visible symbol of libpython?)" >&2
    exit 1
fi
awk -v ir="$IR" -v n="$N" -v b="$BENCH" -v l="$LOOP" \
    'BEGIN { printf "%s %s: Ir=%d N=%d Ir/N=%.1f\n", b, l, ir, n, ir / n }'
if [[ "${KEEP:-0}" == 1 ]]; then
    echo "callgrind output kept: $OUT" >&2
fi
