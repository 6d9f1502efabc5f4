#!/usr/bin/env bash
# Packaging check (a CI step of test.sh): `python -m build` makes the sdist
# and then the wheel *from the sdist* (its default), so a file missing from
# the sdist fails the build; the wheel is installed into a fresh virtual
# environment outside the source tree and smoke-tested there.
#   tools/wheel-smoke.sh [OUTDIR]      PYTHON=... selects the interpreter
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
out=${1:-$(mktemp -d)}
mkdir -p "$out"
rm -rf "$out"/dist "$out"/venv "$out"/run

echo "== python -m build: sdist, then the wheel from the sdist"
"$PY" -m build --outdir "$out/dist" . >"$out/build.log" 2>&1 \
    || { tail -n 40 "$out/build.log"; exit 1; }
ls "$out"/dist/eloop-*.tar.gz >/dev/null
wheel=$(ls "$out"/dist/eloop-*.whl)

echo "== fresh venv: install $(basename "$wheel") and smoke-test it"
"$PY" -m venv "$out/venv"
"$out/venv/bin/python" -m pip install -q --disable-pip-version-check "$wheel"
# Run from an empty directory so the source tree's eloop/ cannot be imported.
mkdir -p "$out/run"
cd "$out/run"
"$out/venv/bin/python" -m eloop --version
"$out/venv/bin/python" -m eloop --info
"$out/venv/bin/python" - <<'PY'
import asyncio
import eloop

assert "site-packages" in eloop.__file__, eloop.__file__


async def echo(reader, writer):
    writer.write(await reader.read(100))
    await writer.drain()
    writer.close()


async def main():
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"ping")
    data = await reader.read(100)
    writer.close()
    server.close()
    await server.wait_closed()
    return type(asyncio.get_running_loop()).__name__, data


assert eloop.run(main()) == ("Loop", b"ping")
print("wheel smoke test: ok")
PY
