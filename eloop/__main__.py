"""python -m eloop script.py [args]: run a script with eloop as the loop.

Also ``python -m eloop -m module [args]``.  The policy is installed before
the script runs, so asyncio.run(), asyncio.new_event_loop() and
asyncio.get_event_loop() all give eloop loops.
"""
import runpy
import sys

import eloop


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    usage = "usage: python -m eloop (script.py | -m module) [args...]"
    if not argv or argv[0] in ("-h", "--help"):
        print(usage, file=sys.stderr if not argv else sys.stdout)
        return 2 if not argv else 0
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
