"""Build glue for the C extension eloop._eloop.

The core (src/core, no Python.h) and the binding (src/ext) compile into one
extension module.  ELOOP_CFLAGS adds flags (CI uses it for -Werror and for
the AddressSanitizer build)."""
import glob
import os
import shlex

from setuptools import Extension, setup

extra = ["-std=c11", "-Wall", "-Wextra", "-fvisibility=hidden"]
extra += shlex.split(os.environ.get("ELOOP_CFLAGS", ""))
ldextra = shlex.split(os.environ.get("ELOOP_LDFLAGS", ""))

setup(
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
    ]
)
