"""Builds elm's Python extension for `pip install ./python` from the checkout: the extension
(elm/_elm.c, _data.c, _train.c) and the library's sources (../src: core, the NeuronIO, SHD and
Pathfinder readers and tasks, the trainer) compiled together, so the installed package needs no
libelm beside it. Needs python3-dev, numpy, libcjson-dev, libzip-dev, libhdf5-dev, libpng-dev,
pkg-config and an OpenMP compiler (scripts/setup.sh installs them)."""
import glob
import os
import subprocess
import sys

import numpy
from setuptools import Extension, setup

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(here)
core = sorted(p for area in ("core", "neuronio", "shd", "pathfinder", "train")
              for p in glob.glob(os.path.join(root, "src", area, "*.c")))
if not any(p.endswith(os.path.join("core", "model.c")) for p in core):
    sys.exit("setup.py: ../src/core is missing: install from an elm checkout "
             "(pip install ./python from its root)")


def pkg_config(flag, pkg):
    try:
        out = subprocess.run(["pkg-config", flag, pkg], check=True, capture_output=True,
                             text=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        sys.exit(f"setup.py: pkg-config {flag} {pkg} failed: install pkg-config and the "
                 f"library's -dev package (scripts/setup.sh)")
    return [w[2:] for w in out]


hdf5_inc = pkg_config("--cflags-only-I", "hdf5")
hdf5_dirs = pkg_config("--libs-only-L", "hdf5")
hdf5_libs = pkg_config("--libs-only-l", "hdf5")

ext = Extension(
    "elm._elm",
    sources=[os.path.relpath(p, here) for p in
             [os.path.join(here, "elm", f) for f in ("_elm.c", "_data.c", "_train.c")] + core],
    include_dirs=[os.path.join(root, "include"), os.path.join(root, "src"),
                  os.path.join(root, "src", "core"), numpy.get_include()] + hdf5_inc,
    library_dirs=hdf5_dirs,
    # Only PyInit__elm is exported: everything is compiled hidden, elm's API (ELM_API) too, so
    # that a process that also loads libelm.so binds each to its own copy.
    define_macros=[("_POSIX_C_SOURCE", "200809L"), ("ELM_API", "")],
    extra_compile_args=["-std=c11", "-O3", "-fopenmp", "-fvisibility=hidden"],
    extra_link_args=["-fopenmp"],
    libraries=["cjson", "zip", "png"] + hdf5_libs + ["m"],
)
setup(ext_modules=[ext])
