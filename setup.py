"""Build glue for the C extension eloop._eloop.

The core (src/core, no Python.h) and the binding (src/ext) compile into one
extension module.  ELOOP_CFLAGS adds flags (CI uses it for -Werror and for
the AddressSanitizer build).  Next to the extension the build writes
eloop/_build_info.py (compiler and flags per Python version), which ``python -m eloop --info``
prints: flags given through the environment are otherwise lost once the
module is built."""
import ast
import glob
import os
import shlex
import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

extra = ["-std=c11", "-Wall", "-Wextra", "-fvisibility=hidden"]
extra += shlex.split(os.environ.get("ELOOP_CFLAGS", ""))
ldextra = shlex.split(os.environ.get("ELOOP_LDFLAGS", ""))


class build_ext_info(build_ext):
    def run(self):
        super().run()
        for ext in self.extensions:
            target = os.path.join(
                os.path.dirname(self.get_ext_fullpath(ext.name)),
                "_build_info.py")
            compiler = getattr(self.compiler, "compiler_so", None) or []
            info = {
                "python": "%d.%d" % sys.version_info[:2],
                "compiler": " ".join(compiler[:1]),
                "cflags": " ".join(compiler[1:] + ext.extra_compile_args),
                "ldflags": " ".join(ext.extra_link_args),
                "platform": sysconfig.get_platform(),
            }
            # One entry per Python version: in-place builds for several
            # interpreters share the package directory.  A wheel's build
            # directory may hold a copy of that file: start afresh there.
            builds = {}
            try:
                if self.inplace:
                    with open(target) as f:
                        builds = ast.literal_eval(f.read().split("=", 1)[1])
            except (OSError, ValueError, SyntaxError, IndexError):
                pass
            builds[info["python"]] = info
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w") as f:
                f.write("# Written by setup.py when the extension was built."
                        "\nBUILDS = %r\n" % (builds,))


setup(
    cmdclass={"build_ext": build_ext_info},
    ext_modules=[
        Extension(
            "eloop._eloop",
            sources=sorted(glob.glob("src/core/*.c"))
            + sorted(glob.glob("src/ext/*.c")),
            include_dirs=["src/core", "src/ext"],
            depends=glob.glob("src/core/*.h") + glob.glob("src/ext/*.h"),
            extra_compile_args=extra,
            extra_link_args=ldextra,
        )
    ],
)
