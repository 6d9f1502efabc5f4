"""python -m eloop script.py [args]: run a script with eloop as the loop.

Also ``python -m eloop -m module [args]``.  The policy is installed before
the script runs, so asyncio.run(), asyncio.new_event_loop() and
asyncio.get_event_loop() all give eloop loops.

``python -m eloop --version`` prints the version, ``--info`` what a bug
report needs: eloop's and Python's versions, the I/O backend a new loop
uses, and the flags the extension was built with.
"""
import platform
import runpy
import sys

import eloop


def info():
    """The lines ``--info`` prints, as a list of strings."""
    loop = eloop.new_event_loop()
    try:
        # The backend is chosen when the loop is made (epoll today).
        backend = loop._backend
    finally:
        loop.close()
    try:
        from eloop._build_info import BUILDS
    except ImportError:  # built by something other than setup.py
        BUILDS = {}
    BUILD = BUILDS.get("%d.%d" % sys.version_info[:2], {})
    unknown = "unknown"
    return [
        f"eloop {eloop.__version__}",
        f"Python {platform.python_version()} "
        f"({platform.python_implementation()}) {sys.executable}",
        f"platform: {platform.platform()}",
        f"I/O backend: {backend}",
        f"extension: {eloop._eloop.__file__}",
        f"built for: Python {BUILD.get('python', unknown)} "
        f"({BUILD.get('platform', unknown)})",
        f"compiler: {BUILD.get('compiler') or unknown}",
        f"build flags: {BUILD.get('cflags') or unknown}",
        f"link flags: {BUILD.get('ldflags') or '(none)'}",
    ]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    usage = ("usage: python -m eloop (script.py | -m module) [args...]\n"
             "       python -m eloop --version | --info")
    if not argv or argv[0] in ("-h", "--help"):
        print(usage, file=sys.stderr if not argv else sys.stdout)
        return 2 if not argv else 0
    if argv[0] == "--version":
        print(f"eloop {eloop.__version__}")
        return 0
    if argv[0] == "--info":
        print("\n".join(info()))
        return 0
    # The policy, set without install()'s 3.14 deprecation warning: the
    # script is run unchanged, and its own asyncio.run() must give eloop.
    eloop._set_policy(eloop.EventLoopPolicy())
    if argv[0] == "-m":
        if len(argv) < 2:
            print(usage, file=sys.stderr)
            return 2
        sys.argv = argv[1:]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = argv
        runpy.run_path(argv[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
