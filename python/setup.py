"""Builds elm's Python extension for `pip install ./python` from the checkout: the extension
(elm/_elm.c) and the core library's sources (../src/core) compiled together, so the installed
package needs no libelm beside it. Needs python3-dev, numpy, libcjson-dev, libzip-dev and an
OpenMP compiler (scripts/setup.sh installs them)."""
import glob
import os
import sys

import numpy
from setuptools import Extension, setup

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(here)
core = sorted(glob.glob(os.path.join(root, "src", "core", "*.c")))
if not core:
    sys.exit("setup.py: ../src/core is missing: install from an elm checkout "
             "(pip install ./python from its root)")

ext = Extension(
    "elm._elm",
    sources=[os.path.relpath(p, here) for p in [os.path.join(here, "elm", "_elm.c")] + core],
    include_dirs=[os.path.join(root, "include"), os.path.join(root, "src"),
                  os.path.join(root, "src", "core"), numpy.get_include()],
    define_macros=[("_POSIX_C_SOURCE", "200809L")],
    extra_compile_args=["-std=c11", "-O3", "-fopenmp"],
    extra_link_args=["-fopenmp"],
    libraries=["cjson", "zip", "m"],
)
setup(ext_modules=[ext])
