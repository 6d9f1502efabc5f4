#!/usr/bin/env bash
# eloop's test command (the README's second command; .ci/run runs exactly
# this).  Installs the test dependencies, builds the extension with
# -Werror, then runs:
#   1. pytest: every behavioural test on eloop and on stock asyncio, and
#      the C core's own tests under ASan+UBSan (tests/test_core_c.py);
#   2. the same pytest suite against an ASan+UBSan build of the extension;
#   3. CPython's test_asyncio against eloop, checked against
#      tools/conformance/expected_failures_eloop*.txt;
#   4. steps 1 and 3 again on the other CPythons the machine has (pyenv:
#      3.12 and 3.13; pytest on both, conformance on 3.13);
#   5. the documentation site built with warnings as errors (mkdocs
#      --strict: broken internal links and anchors fail; links to other
#      sites cannot be checked offline) -- its examples run in step 1
#      (tests/test_docs_examples.py);
#   6. packaging: `python -m build` makes the sdist and the wheel from it;
#      the wheel is installed into a fresh venv and smoke-tested
#      (tools/wheel-smoke.sh).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}

deps() {
    "$1" -m pip install -q --disable-pip-version-check \
        "pytest>=7" "pytest-timeout>=2" "setuptools>=77" wheel aiohttp uvicorn
}

# Only on the main interpreter: the docs site, the packaging check and the
# chart test need them once.
tool_deps() {
    "$1" -m pip install -q --disable-pip-version-check \
        build "mkdocs>=1.5" "mkdocs-material>=9" "mkdocstrings[python]>=0.24" \
        matplotlib
}

build() {
    ELOOP_CFLAGS="-Werror" "$1" setup.py -q build_ext --inplace 2>&1 \
        | { grep -v -i "warn" || true; }
}

conformance() {
    local ver
    ver=$("$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    echo "== conformance: CPython $ver's test_asyncio on eloop"
    "$1" tools/conformance/run.py --loop eloop --check
}

# The other interpreters: pyenv's newest 3.12 and 3.13.  CI must have them
# (the machines do); elsewhere a missing one is reported and skipped.
other_python() {
    local root p
    root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
    p=$(ls -d "$root"/versions/"$1".*/bin/python3 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$p" ]; then
        if [ "${CI:-}" = true ]; then
            echo "CPython $1 not found under $root/versions" >&2
            exit 1
        fi
        echo "== CPython $1 not found: skipped" >&2
    fi
    echo "$p"
}

echo "== installing test dependencies"
deps "$PY"
tool_deps "$PY"

echo "== building eloop (-Wall -Wextra -Werror)"
build "$PY"

export ELOOP_REQUIRED=1
echo "== pytest: eloop and stock asyncio side by side, C core under ASan"
"$PY" -m pytest -q -p no:cacheprovider tests

echo "== docs: mkdocs build --strict"
site=$(mktemp -d)
NO_MKDOCS_2_WARNING=1 "$PY" -m mkdocs build --strict --quiet --site-dir "$site"
rm -rf "$site"

echo "== packaging: sdist, wheel, fresh-venv smoke test"
pkg=$(mktemp -d)
PYTHON="$PY" tools/wheel-smoke.sh "$pkg"
rm -rf "$pkg"

echo "== pytest against the AddressSanitizer build"
PYTHON="$PY" tools/asan-test.sh --ignore=tests/test_core_c.py

conformance "$PY"

for v in 3.12 3.13; do
    p=$(other_python "$v")
    [ -n "$p" ] || continue
    echo "== CPython $v: dependencies, build, pytest"
    deps "$p"
    build "$p"
    "$p" -m pytest -q -p no:cacheprovider tests --ignore=tests/test_core_c.py
    if [ "$v" = 3.13 ]; then
        conformance "$p"
    fi
done
