"""Build of fastcnn's one native extension: C99 kernels in csrc/ behind fastcnn/_kernels.pyx.

Everything else (metadata, dependencies, extras) lives in pyproject.toml. This file only lists the
extension and probes the compiler for OpenMP: without it the build still succeeds, says so loudly,
and the kernels run on one thread.

Environment switches:
  FASTCNN_DEBUG=1      Cython boundscheck/wraparound on, C asserts on, -O1 -g (sanitizer builds)
  FASTCNN_NO_OPENMP=1  build without OpenMP even when the compiler has it
"""
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("FASTCNN_DEBUG", "") not in ("", "0")
NO_OPENMP = os.environ.get("FASTCNN_NO_OPENMP", "") not in ("", "0")

C_SOURCES = sorted(
    os.path.join("csrc", f) for f in os.listdir("csrc") if f.endswith(".c")
)
# setuptools does not scan #includes: without this, editing a type-generic *_impl.h body would
# leave a stale extension behind.
C_HEADERS = sorted(
    os.path.join("csrc", f) for f in os.listdir("csrc") if f.endswith(".h")
) + ["fastcnn/_kernels.pxd"]


def _compiler_has_openmp(compiler):
    """Compile and link a tiny OpenMP program with the compiler setuptools will use."""
    tmp = tempfile.mkdtemp(prefix="fastcnn-omp-")
    src = os.path.join(tmp, "probe.c")
    with open(src, "w") as f:
        f.write("#include <omp.h>\nint main(void){int n=0;\n#pragma omp parallel reduction(+:n)\nn+=1;\nreturn n>0?0:1;}\n")
    try:
        objs = compiler.compile([src], output_dir=tmp, extra_postargs=["-fopenmp"])
        compiler.link_executable(objs, "probe", output_dir=tmp, extra_postargs=["-fopenmp"])
        return True
    except Exception:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class BuildExt(build_ext):
    def build_extensions(self):
        use_omp = not NO_OPENMP and _compiler_has_openmp(self.compiler)
        if not use_omp:
            bar = "!" * 78
            reason = "FASTCNN_NO_OPENMP is set" if NO_OPENMP else "the compiler cannot build OpenMP code"
            print(f"\n{bar}\nfastcnn: building WITHOUT OpenMP ({reason}).\n"
                  f"fastcnn: kernels will run on ONE thread; set_num_threads(n > 1) will warn and keep 1.\n{bar}\n",
                  file=sys.stderr)
        for ext in self.extensions:
            if use_omp:
                ext.extra_compile_args.append("-fopenmp")
                ext.extra_link_args.append("-fopenmp")
            elif self.compiler.compiler_type == "unix":
                # keep `#pragma omp simd` vectorisation hints without the runtime
                ext.extra_compile_args.append("-fopenmp-simd")
            ext.define_macros.append(("FASTCNN_OPENMP", "1" if use_omp else "0"))
            flags = " ".join(ext.extra_compile_args)
            ext.define_macros.append(("FASTCNN_CFLAGS", '"' + flags.replace('"', "") + '"'))
        super().build_extensions()


if DEBUG:
    cflags = ["-O1", "-g", "-fno-omit-frame-pointer", "-UNDEBUG"]
    directives = {"boundscheck": True, "wraparound": True, "initializedcheck": True}
else:
    # -fno-math-errno lets sqrt vectorise (nothing reads errno); no -ffast-math: IEEE stays
    cflags = ["-O3", "-DNDEBUG", "-fno-math-errno"]
    directives = {"boundscheck": False, "wraparound": False, "initializedcheck": False}
directives.update(language_level=3, cdivision=True, embedsignature=True)

extensions = [
    Extension(
        "fastcnn._kernels",
        sources=["fastcnn/_kernels.pyx"] + C_SOURCES,
        depends=C_HEADERS,
        include_dirs=["csrc", np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=list(cflags),
        extra_link_args=[],
    )
]

setup(
    ext_modules=cythonize(extensions, compiler_directives=directives),
    cmdclass={"build_ext": BuildExt},
)
