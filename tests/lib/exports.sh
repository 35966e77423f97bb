#!/usr/bin/env bash
# tests/lib/exports.sh LIB - libelm.so exports exactly the public API (issue 12): every dynamic
# symbol it defines is a function declared with ELM_API in include/*.h, every such function is
# exported, nothing else is (no elm__ internal, no helper of another prefix, no data), and its
# soname is libelm.so.MAJOR with MAJOR the ELM_VERSION_MAJOR of include/elm.h.
set -u
LIB=${1:?usage: exports.sh path/to/libelm.so}
SRC=${ELM_SOURCE_DIR:-.}
source "$SRC/tests/testlib.sh"
command -v nm >/dev/null && command -v readelf >/dev/null || { echo "SKIP: needs binutils"; exit 77; }
[ -f "$LIB" ] || { echo "FAIL: $LIB not built"; exit 1; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT

# The dynamic symbols the library defines, with their kind (T: function, D/B/R: data, ...).
nm -D --defined-only "$LIB" | awk '{print $2, $3}' | sort -k2 >"$T/kinds"
awk '{print $2}' "$T/kinds" >"$T/exported"
# The functions the public headers declare with ELM_API: a declaration starts a line, and its
# name is on that line, before the '('.
grep -h '^ELM_API .*(' "$SRC"/include/*.h | sed 's/(.*//; s/.*[ *]//' | sort -u >"$T/declared"
# A top-level declaration without ELM_API would be hidden, and missing from both lists.
bare=$(grep -hE '^(const |unsigned |struct )?[a-z_][a-z0-9_]* \**elm_[a-z0-9_]+\(' "$SRC"/include/*.h |
    head -3)
[ -z "$bare" ] && ok || bad "public declarations without ELM_API: $bare"
n=$(wc -l <"$T/exported"); nd=$(wc -l <"$T/declared")
echo "$n symbols exported, $nd functions declared ELM_API in include/*.h"
[ "$nd" -ge 50 ] && ok || bad "only $nd ELM_API declarations found: the header parse is broken"

bad_prefix=$(grep -v '^elm_[a-z0-9]' "$T/exported" | head -5)
[ -z "$bad_prefix" ] && ok || bad "exported symbols outside elm_ or internal elm__: $bad_prefix"
not_fn=$(awk '$1 != "T" {print $2}' "$T/kinds" | head -5)
[ -z "$not_fn" ] && ok || bad "exported symbols that are not functions: $not_fn"
extra=$(comm -23 "$T/exported" "$T/declared" | head -5)
[ -z "$extra" ] && ok || bad "exported but not declared ELM_API in include/*.h: $extra"
missing=$(comm -13 "$T/exported" "$T/declared" | head -5)
[ -z "$missing" ] && ok || bad "declared ELM_API but not exported (no definition?): $missing"

major=$(sed -n 's/^#define ELM_VERSION_MAJOR *\([0-9]*\).*/\1/p' "$SRC/include/elm.h")
soname=$(readelf -d "$LIB" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
echo "soname $soname"
[ -n "$major" ] && [ "$soname" = "libelm.so.$major" ] && ok ||
    bad "soname '$soname', want libelm.so.${major:-(ELM_VERSION_MAJOR missing)}"
finish
