#!/usr/bin/env bash
# The repository stands on its own (issue 16, item 7-8): shipped code, --help and docs name no
# document a user never gets (the development-only reference folder and its pages), every
# relative link in the docs resolves, the licence and citation files exist, and the reference
# figures `elm bench` compares against are the ones docs/PERFORMANCE.md tables.
set -u
SRC=${ELM_SOURCE_DIR:-.}
PY=/usr/bin/python3
cd "$SRC" || exit 1
pass=0; fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }

# 1. No reference to the development-only folder or its pages outside the tests and the test
#    plumbing (CMakeLists.txt, .ci/ may name where the tests look for it).
hits=$(grep -rn -e 'ELM-SPEC' -e 'PERF-BASELINE' -e '\.\./shared' -e '/work/shared' \
    --include='*.c' --include='*.h' --include='*.md' --include='*.sh' --include='*.py' \
    --include='*.txt' --include='*.json' --include='*.cff' \
    README.md docs cli src include scripts grids 2>/dev/null)
[ -z "$hits" ] && ok || bad "references to unshipped material:"$'\n'"$hits"

# 2. Licence and citation.
grep -q '^MIT License' LICENSE && ok || bad "LICENSE is not the MIT licence"
grep -q '^cff-version: 1.2.0' CITATION.cff && grep -q 'preferred-citation:' CITATION.cff \
    && ok || bad "CITATION.cff lacks cff-version or preferred-citation"
grep -q '@inproceedings{spieler2024elm' README.md && ok || bad "README lacks the paper's BibTeX"
grep -q '^## Real data' README.md && ok || bad "README lacks the Real data section"

# 3. Relative links in README and docs resolve (anchors are not checked).
$PY - <<'PYEOF' && ok || bad "dangling links"
import os, re, glob, sys
bad = []
for f in ["README.md"] + glob.glob("docs/*.md") + glob.glob("docs/results/*.md"):
    text = open(f, encoding="utf-8").read()
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = os.path.normpath(os.path.join(os.path.dirname(f), target.split("#")[0]))
        if not os.path.exists(path):
            bad.append(f"{f}: {target}")
print("\n".join(bad))
sys.exit(1 if bad else 0)
PYEOF

# 4. bench's reference figures (cli/bench.c) equal the table in docs/PERFORMANCE.md.
$PY - <<'PYEOF' && ok || bad "bench reference figures differ from docs/PERFORMANCE.md"
import re, sys
src = open("cli/bench.c").read()
names = re.findall(r'^\s*\{"([a-z0-9-]+)", [0-9e.]+, [01],', src, re.M)
cases = re.findall(r"\{(\d), MODE_(TRAIN|INFER), (\d+), (\d+), (\d+)\}", src)
code = {(names[int(c)], m.lower(), int(b), int(t)): int(r) for c, m, b, t, r in cases}
doc = open("docs/PERFORMANCE.md").read()
sec = doc[doc.index("## The reference figures"):]
sec = sec[:sec.index("\n\n", sec.index("| config"))]
table = {}
for row in sec.splitlines():
    cells = [c.strip() for c in row.strip("|").split("|")]
    if len(cells) == 6 and cells[2] in ("train", "infer"):
        name = re.match(r"`([a-z0-9-]+)`", cells[0]).group(1)
        table[(name, cells[2], int(cells[3]), int(cells[4]))] = int(cells[5].replace(",", ""))
if not code or code != table:
    print("bench.c:", sorted(code.items()), "\ndocs:", sorted(table.items()))
    sys.exit(1)
PYEOF

echo "docs_cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
