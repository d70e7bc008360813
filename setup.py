"""Build the optional C recorder (flowtrace._crecorder); metadata lives in pyproject.toml.

The extension is optional: when it cannot be compiled (no compiler, no Python headers, an
unsupported or free-threaded Python) the install still succeeds and flowtrace uses its pure
Python recorder (`flowtrace --version` says which one is active). FLOWTRACE_NO_C=1 skips the
build on purpose.
"""

import glob
import os
import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """build_ext that reports a failed compile as a warning instead of failing the install."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # a missing compiler raises from run() itself
            self._warn(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
            return
        except Exception as exc:  # CCompilerError, DistutilsExecError, CompileError, ...
            if "z" not in ext.libraries:
                self._warn(exc)
                return
        # no zlib headers or library: build without the native writer (the Python one writes)
        ext.libraries.remove("z")
        ext.define_macros = [m for m in ext.define_macros if m[0] != "FT_HAVE_ZLIB"]
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._warn(exc)

    @staticmethod
    def _warn(exc: BaseException) -> None:
        print(
            f"WARNING: flowtrace's C recorder was not built ({exc}); "
            "the pure-Python recorder will be used.",
            file=sys.stderr,
        )


def gcc_flags() -> list:
    """GCC's flags beyond the common ones: packed.c's start_shaped ends each op of its walk with
    a jump to the next op's code (computed goto), and GCC merges those jumps into one unless a
    block of that size may be copied (its default, 8 instructions, is below an op's end): one
    jump for every kind predicts worse (threaded workload, with the ops holding their code's
    address: start_shaped's samples 130.5 -> 115.2 a run, 4 pairs). Other compilers get none (an
    unknown --param could fail the build)."""
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "").split()
    return ["--param=max-goto-duplication-insns=40"] if cc and "gcc" in os.path.basename(cc[0]) else []


def extensions() -> list:
    if os.environ.get("FLOWTRACE_NO_C"):
        return []
    if sys.implementation.name != "cpython" or sys.version_info < (3, 12):
        return []
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        return []  # the C recorder relies on the GIL
    return [
        Extension(
            "flowtrace._crecorder",
            # one file per concern, one private header (see flowtrace/_crecorder_src/crecorder.h)
            sources=sorted(glob.glob("flowtrace/_crecorder_src/*.c")),
            depends=glob.glob("flowtrace/_crecorder_src/*.h"),
            # zlib for the native writer thread (writer.c); retried without it (see above)
            define_macros=[("FT_HAVE_ZLIB", "1")],
            libraries=["z"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wno-unused-function", *gcc_flags()],
            optional=True,
        )
    ]


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
