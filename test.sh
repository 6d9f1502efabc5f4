#!/usr/bin/env bash
# eloop's test command (the README's second command; .ci/run runs exactly
# this).  Installs the test dependencies, builds the extension with
# -Werror, then runs:
#   1. pytest: every behavioural test on eloop and on stock asyncio, and
#      the C core's own tests under ASan+UBSan (tests/test_core_c.py);
#   2. the same pytest suite against an ASan+UBSan build of the extension;
#   3. CPython's test_asyncio against eloop, checked against
#      tools/conformance/expected_failures_eloop.txt.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}

echo "== installing test dependencies"
"$PY" -m pip install -q --disable-pip-version-check \
    "pytest>=7" "pytest-timeout>=2" "setuptools>=61" wheel aiohttp uvicorn

echo "== building eloop (-Wall -Wextra -Werror)"
ELOOP_CFLAGS="-Werror" "$PY" setup.py -q build_ext --inplace 2>&1 \
    | { grep -v -i "warn" || true; }

export ELOOP_REQUIRED=1
echo "== pytest: eloop and stock asyncio side by side, C core under ASan"
"$PY" -m pytest -q -p no:cacheprovider tests

echo "== pytest against the AddressSanitizer build"
PYTHON="$PY" tools/asan-test.sh --ignore=tests/test_core_c.py

if [ -f tools/conformance/expected_failures_eloop.txt ]; then
    echo "== conformance: CPython's test_asyncio on eloop"
    "$PY" tools/conformance/run.py --loop eloop --check
fi
