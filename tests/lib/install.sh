#!/usr/bin/env bash
# tests/lib/install.sh - `cmake --install` into a temporary prefix gives a usable libelm (issue
# 12): the CLI, both libraries, the public headers and elm.pc land there; a small program outside
# the tree compiles with `pkg-config --cflags --libs elm` against the installed copy and runs (so
# the headers are self-contained and the shared library resolves from the prefix), and links the
# static libelm.a with `pkg-config --static` too. Environment: ELM_BUILD_DIR (the build to
# install), CC, ELM_TEST_CFLAGS (extra compile and link flags: the sanitizers of an ASan build).
set -u
SRC=${ELM_SOURCE_DIR:-.}
BUILD=${ELM_BUILD_DIR:-build}
CC=${CC:-cc}
source "$SRC/tests/testlib.sh"
command -v pkg-config >/dev/null || { echo "SKIP: needs pkg-config"; exit 77; }
command -v cmake >/dev/null || { echo "SKIP: needs cmake"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
P=$T/prefix

cmake --install "$BUILD" --prefix "$P" >"$T/install.log" 2>&1 ||
    { echo "FAIL: cmake --install: $(tail -5 "$T/install.log")"; exit 1; }
pc=$(find "$P" -name elm.pc | head -1)
[ -n "$pc" ] || { echo "FAIL: no elm.pc installed under $P"; exit 1; }
libdir=$(dirname "$(dirname "$pc")")
major=$(sed -n 's/^#define ELM_VERSION_MAJOR *\([0-9]*\).*/\1/p' "$SRC/include/elm.h")
version=$(sed -n 's/^#define ELM_VERSION_STRING *"\(.*\)"/\1/p' "$SRC/include/elm.h")
for f in bin/elm include/elm.h include/elm_train.h share/elm/plot_curves.py; do
    [ -e "$P/$f" ] && ok || bad "not installed: $f"
done
for f in libelm.a "libelm.so.$major" libelm.so; do
    [ -e "$libdir/$f" ] && ok || bad "not installed: $libdir/$f"
done

export PKG_CONFIG_PATH=$(dirname "$pc")
v=$(pkg-config --modversion elm)
[ "$v" = "$version" ] && ok || bad "pkg-config --modversion elm: '$v', want '$version'"
[ "$(pkg-config --variable=prefix elm)" = "$P" ] && ok ||
    bad "elm.pc names prefix '$(pkg-config --variable=prefix elm)', not the install's $P"

# The program: a fresh model's forward pass, a task name from elm_train.h, the library's version.
mkdir "$T/app"
cat >"$T/app/app.c" <<'C'
#include <elm.h>
#include <elm_train.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
int main(void) {
    elm_config c;
    elm_config_default(&c, 4, 2, 3);
    elm_model *m = NULL;
    if (elm_config_resolve(&c) != ELM_OK || elm_model_create(&m, &c, ELM_F32, 1) != ELM_OK) {
        fprintf(stderr, "%s\n", elm_last_error());
        return 1;
    }
    float x[2 * 5 * 4], y[2 * 5 * 2];
    for (int i = 0; i < 2 * 5 * 4; i++)
        x[i] = (float)(i % 3);
    if (elm_model_forward(m, x, y, 2, 5) != ELM_OK)
        return 1;
    for (int i = 0; i < 2 * 5 * 2; i++)
        if (!isfinite(y[i]))
            return 1;
    const char *const *names = NULL;
    int nt = elm_task_names(&names);
    if (strcmp(elm_version(), ELM_VERSION_STRING) != 0)
        return 1;
    printf("elm %s: %zu parameters, %d tasks (%s)\n", elm_version(), elm_model_num_params(m), nt,
           names[0]);
    elm_model_free(m);
    return 0;
}
C
cd "$T/app" || exit 1
flags=${ELM_TEST_CFLAGS:-}
# shellcheck disable=SC2046,SC2086
if $CC -std=c11 $flags app.c $(pkg-config --cflags --libs elm) -lm -o app_shared 2>cc.log; then
    ok
    out=$(LD_LIBRARY_PATH=$libdir ./app_shared 2>&1) && ok || bad "app (shared) failed: $out"
    echo "shared: $out"
    grep -q "^elm $version: .* parameters, [1-9][0-9]* tasks" <<<"$out" && ok || bad "app said: $out"
    LD_LIBRARY_PATH=$libdir ldd ./app_shared | grep -q "libelm.so.$major => $libdir/" && ok ||
        bad "app_shared does not load $libdir/libelm.so.$major: $(ldd ./app_shared | grep elm)"
else
    bad "compiling against the installed libelm failed: $(head -5 cc.log)"
fi
# Static: the archive itself, then what pkg-config --static says the library needs.
libs=$(pkg-config --static --libs elm | sed 's/ -lelm\b//; s/^-lelm\b//')
# shellcheck disable=SC2046,SC2086
if $CC -std=c11 $flags app.c $(pkg-config --cflags elm) "$libdir/libelm.a" $libs -lm \
    -o app_static 2>cc.log; then
    ok
    out=$(./app_static 2>&1) && ok || bad "app (static) failed: $out"
    echo "static: $out"
    ldd ./app_static | grep -q libelm && bad "app_static loads a libelm.so" || ok
else
    bad "linking the installed libelm.a with pkg-config --static failed: $(head -5 cc.log)"
fi
"$P/bin/elm" --version | grep -qx "elm $version" && ok || bad "installed elm --version: $("$P/bin/elm" --version)"
finish
