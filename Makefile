# Convenience front end to CMake: `make` builds everything and leaves the CLI at build/elm.
BUILD ?= build
# CI sets ELM_WERROR=ON (warnings are errors); users keep the default.
ELM_WERROR ?= OFF
CMAKE_FLAGS ?=

.PHONY: all test asan clean blas-compare install mutate mutate-check
all: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j2

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DELM_WERROR=$(ELM_WERROR) $(CMAKE_FLAGS)

# Installs bin/elm, share/elm/ (the plotting scripts), lib/libelm.{so,a}, include/elm*.h and
# lib/pkgconfig/elm.pc under PREFIX (default /usr/local).
PREFIX ?= /usr/local
install: all
	cmake --install $(BUILD) --prefix $(PREFIX)

test: all
	ctest --test-dir $(BUILD) --output-on-failure -j2

# The suite under AddressSanitizer + UndefinedBehaviorSanitizer, in its own build folder. Tests
# labelled "slow" (speech synthesis through espeak-ng, minutes under ASan) run only in `make test`.
asan:
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-O1 -g" \
	    -DELM_SANITIZE=ON -DELM_WERROR=$(ELM_WERROR) $(CMAKE_FLAGS)
	cmake --build build-asan -j2
	ctest --test-dir build-asan --output-on-failure -j2 -LE slow

# Mutation testing (docs/TESTING.md): applies each deliberate bug of tests/mutants.txt in a copy
# of the tree (build-mutate/), rebuilds and runs only the tests named to catch it, and reports
# the kill rate and every survivor. Needs the reference folder ELM_SHARED (test_parity).
# mutate-check: the list still applies to the sources (no build).
mutate:
	python3 tests/mutate.py

mutate-check:
	python3 tests/mutate.py --check

# elm's products against OpenBLAS's sgemm (docs/PERFORMANCE.md); needs libopenblas-dev.
blas-compare: all
	@pkg-config --exists openblas || { echo "blas-compare needs OpenBLAS: apt-get install libopenblas-dev"; exit 1; }
	$(CC) -O3 -g -std=gnu11 -fopenmp -Wno-unused-function -Iinclude -Isrc -Isrc/core \
	    $$(pkg-config --cflags openblas) scripts/blas_compare.c $(BUILD)/libelm.a \
	    $$(pkg-config --libs openblas) -lcjson -lm -o $(BUILD)/blas_compare
	$(BUILD)/blas_compare

clean:
	rm -rf $(BUILD) build-asan build-mutate
