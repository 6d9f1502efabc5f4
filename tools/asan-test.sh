#!/usr/bin/env bash
# Runs the pytest suite against an AddressSanitizer + UBSan build of the
# extension.  The interpreter is not instrumented, so the sanitizer runtime
# is preloaded and PYTHONMALLOC=malloc routes every Python allocation
# through it: a refcount bug in the binding then shows as a use-after-free.
# Leak detection is off because CPython itself does not free everything at
# exit; refcount leaks are caught by the tests' own checks instead.
# The tests that fork and go on running Python in the child skip here
# (tests/conftest.py, skip_if_asan_fork): this libasan can deadlock there.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/asan
rm -rf "$out"
mkdir -p "$out"
san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
ELOOP_CFLAGS="$san -O1 -g -Werror" ELOOP_LDFLAGS="$san" \
    "${PYTHON:-python3}" setup.py -q build_ext --build-lib "$out" --build-temp "$out/tmp" \
    >"$out/build.log" 2>&1 || { cat "$out/build.log"; exit 1; }
# Not _build_info.py: the build wrote the sanitizer build's own next to it.
for f in eloop/*.py eloop/py.typed; do
    [ "$f" = eloop/_build_info.py ] || cp "$f" "$out/eloop/"
done
preload="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export PYTHONMALLOC=malloc
# -P: do not put the checkout first on sys.path, so the ASan build is used.
LD_PRELOAD="$preload" PYTHONPATH="$PWD/$out" "${PYTHON:-python3}" -P -c \
    'import eloop._eloop as m, sys; assert "build/asan" in m.__file__, m.__file__'
LD_PRELOAD="$preload" PYTHONPATH="$PWD/$out" exec "${PYTHON:-python3}" -P -m pytest \
    -p no:cacheprovider -q "$@" tests
