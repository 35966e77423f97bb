#!/usr/bin/env bash
# Installs the Debian packages elm needs to build, test and run its built-in data generators.
# Run as root (or with sudo available). Safe to run again.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
PKGS=(build-essential cmake pkg-config
      libcjson-dev libhdf5-dev libpng-dev      # JSON, SHD files, Pathfinder images
      libzip-dev                               # PyTorch .pt archives
      espeak-ng                                # speech for the built-in SHD generator
      python3-numpy python3-matplotlib python3-h5py   # plots and format cross-checks
      python3-pil                              # scripts/pf_position_probe.py reads PNGs
      python3-dev python3-pytest               # the Python package (python/) and its tests
      python3-torch                            # elm.torch; tests: torch.load reads what elm writes
      libopenmpi-dev openmpi-bin               # data-parallel training (mpirun -np N elm train)
      clang libclang-rt-14-dev valgrind)       # fuzzing and memory checks
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "setup: all packages present"
