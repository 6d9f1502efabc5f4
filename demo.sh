#!/usr/bin/env bash
# eloop's main job (the README's first command): install eloop (and uvloop
# for comparison), run the demo program on stock asyncio, eloop and uvloop,
# then the micro benchmarks, interleaved, with ratios.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
"$PY" -m pip install -q --disable-pip-version-check . uvloop
cd examples   # run against the installed package, not the source tree
"$PY" demo.py
cd ..
"$PY" bench/micro.py "$@"
