#!/usr/bin/env bash
# eloop's main job (the README's first command): install eloop (and uvloop
# for comparison), run the demo program on stock asyncio, eloop and uvloop,
# then the micro benchmarks, interleaved, with ratios.
#
# By default the benchmark runs short rounds (3 rounds x 1 repeat, about
# 20 s; the whole script about a minute): enough to see the ratios, noisier
# than the full run.  `bash demo.sh --full` runs bench/micro.py's defaults
# (7 rounds x 3 repeats, about 90 s), the configuration of the published
# tables.  Any other arguments go to bench/micro.py.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
bench_args=(--rounds 3 --repeat 1)
if [ "${1:-}" = "--full" ]; then
    bench_args=()
    shift
fi
"$PY" -m pip install -q --disable-pip-version-check . uvloop
cd examples   # run against the installed package, not the source tree
"$PY" demo.py
cd ..
"$PY" bench/micro.py "${bench_args[@]}" "$@"
