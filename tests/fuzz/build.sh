#!/usr/bin/env bash
# build.sh - builds the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer against the project's own sources.
#
# Usage: tests/fuzz/build.sh [OUT_DIR] [TARGET...]
#   OUT_DIR defaults to build-fuzz/libfuzzer in the repository root (an empty argument too);
#   TARGETs (e.g. safetensors npy) default to every tests/fuzz/fuzz_*.c. Binaries land in
#   OUT_DIR/fuzz_<target>.
# Environment: CC (default clang), FUZZ_CFLAGS (extra flags).
#
# Each area of src/ is compiled once into OUT_DIR/lib<area>.a with -fsanitize=fuzzer-no-link (so
# the library's branches feed libFuzzer's coverage) and every driver links the areas it names on
# its "// fuzz-areas:" line. Exits non-zero when anything fails to compile.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-$ROOT/build-fuzz/libfuzzer}
shift || true
CC=${CC:-clang}
mkdir -p "$OUT/obj"
OUT=$(cd "$OUT" && pwd)

SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
CFLAGS="-std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -fopenmp $SAN ${FUZZ_CFLAGS:-}"
INC="-I$ROOT/include -I$ROOT/src -I$ROOT/src/core $(pkg-config --cflags libcjson libpng libzip hdf5)"
LIBS="$(pkg-config --libs libcjson libpng libzip hdf5) -lm"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for f in "$ROOT"/tests/fuzz/fuzz_*.c; do
        b=$(basename "$f" .c)
        targets+=("${b#fuzz_}")
    done
fi

# The areas the chosen drivers need, dependencies last (core is always needed and linked last).
declare -A want=()
for t in "${targets[@]}"; do
    src="$ROOT/tests/fuzz/fuzz_$t.c"
    [ -f "$src" ] || { echo "build.sh: no driver $src" >&2; exit 2; }
    for a in $(sed -n 's|^// fuzz-areas: *||p' "$src"); do want[$a]=1; done
done
want[core]=1

build_area() {
    local area=$1 objs=()
    mkdir -p "$OUT/obj/$area"
    for c in "$ROOT"/src/"$area"/*.c; do
        local o="$OUT/obj/$area/$(basename "$c" .c).o"
        # Rebuild when the source or any header of src/ or include/ is newer than the object.
        if [ ! -f "$o" ] || [ "$c" -nt "$o" ] ||
            [ -n "$(find "$ROOT/src" "$ROOT/include" -name '*.h' -newer "$o" -print -quit)" ]; then
            $CC $CFLAGS -fsanitize=fuzzer-no-link $INC -c "$c" -o "$o"
        fi
        objs+=("$o")
    done
    rm -f "$OUT/lib$area.a"
    ar rcs "$OUT/lib$area.a" "${objs[@]}"
}

for a in "${!want[@]}"; do
    echo "build.sh: area $a"
    build_area "$a"
done

for t in "${targets[@]}"; do
    src="$ROOT/tests/fuzz/fuzz_$t.c"
    libs=()
    for a in $(sed -n 's|^// fuzz-areas: *||p' "$src"); do libs+=("$OUT/lib$a.a"); done
    echo "build.sh: fuzz_$t"
    # The drivers themselves build warning-free (an implicit declaration there once truncated a
    # pointer); the library sources keep the project's own warning set, checked by CMake.
    $CC $CFLAGS -Wall -Wextra -Wno-unused-parameter -Werror -fsanitize=fuzzer $INC \
        -I"$ROOT/tests/fuzz" "$src" "${libs[@]}" "$OUT/libcore.a" \
        $LIBS -o "$OUT/fuzz_$t"
done
