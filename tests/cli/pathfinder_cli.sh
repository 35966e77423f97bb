#!/bin/bash
# pathfinder_cli.sh - `elm gen pathfinder` and `elm data info` on Pathfinder folders, end to end:
# a small generation in the LRA layout, the same bytes again for the same seed, usage errors,
# refusal to overwrite, info (text and --json) on generated, authentic and broken folders, and
# a two-epoch training smoke run of the pathfinder task with `elm eval` on its test split.
# Skips (77) when the elm CLI is not built; reports skipped (77) when ../shared is absent, since
# the authentic-data checks then do not run (a failure under ELM_REQUIRE_SHARED=1).
set -u
. "$(dirname "$0")/../testlib.sh"
cli_test_in_tmp

# Usage errors exit 2.
"$ELM" gen pathfinder --out "$T/x" >/dev/null 2>&1; [ $? -eq 2 ] || bad "no --n: want exit 2"
"$ELM" gen pathfinder --n 4 >/dev/null 2>&1; [ $? -eq 2 ] || bad "no --out: want exit 2"
"$ELM" gen pathfinder --n 4 --out "$T/x" --size 48 >/dev/null 2>&1
[ $? -eq 2 ] || bad "--size 48: want exit 2"
"$ELM" gen pathfinder --n 4 --out "$T/x" --bogus >/dev/null 2>&1
[ $? -eq 2 ] || bad "--bogus: want exit 2"
"$ELM" gen pathfinder --help | grep -q "curv_contour_length" || bad "--help does not describe the layout"

# 60 images in batches of 25: imgs/0..2, metadata/0..2.npy, 30 of each label.
out=$("$ELM" gen pathfinder --n 60 --seed 5 --batch-size 25 --out "$T/a" --threads 2) ||
    bad "generation failed"
echo "$out"
set_a="$T/a/pathfinder32/curv_contour_length_14"
[ -f "$set_a/metadata/2.npy" ] && [ -f "$set_a/imgs/2/sample_9.png" ] || bad "layout: missing files"
[ "$(cat "$set_a"/metadata/*.npy | wc -l)" -eq 60 ] || bad "metadata lines != 60"
awk 'NF != 11 { exit 1 }' "$set_a"/metadata/*.npy || bad "a metadata line without 11 fields"
[ "$(cat "$set_a"/metadata/*.npy | awk '$4 == 1' | wc -l)" -eq 30 ] || bad "labels not 30/30"
head -c 8 "$set_a/imgs/0/sample_0.png" | od -An -c | grep -q "P   N   G" || bad "not a PNG"

# Same seed, one thread: identical bytes. Another seed: different images.
"$ELM" gen pathfinder --n 60 --seed 5 --batch-size 25 --out "$T/b" --threads 1 >/dev/null ||
    bad "second generation failed"
diff -r "$set_a" "$T/b/pathfinder32/curv_contour_length_14" >/dev/null ||
    bad "same seed, different files"
"$ELM" gen pathfinder --n 60 --seed 6 --batch-size 25 --out "$T/c" >/dev/null || bad "seed 6"
cmp -s "$set_a/imgs/0/sample_0.png" "$T/c/pathfinder32/curv_contour_length_14/imgs/0/sample_0.png" &&
    bad "another seed gave the same image"

# No silent overwrite; --force overwrites.
msg=$("$ELM" gen pathfinder --n 4 --out "$T/a" 2>&1); rc=$?
[ $rc -eq 1 ] || bad "overwrite: exit $rc, want 1"
echo "$msg" | grep -q -- "--force" || bad "overwrite message lacks the hint: $msg"
"$ELM" gen pathfinder --n 60 --seed 5 --batch-size 25 --out "$T/a" --force >/dev/null ||
    bad "--force failed"

# Other sizes and difficulties land in their own folders.
"$ELM" gen pathfinder --n 4 --size 64 --contour-length 6 --out "$T/a" >/dev/null || bad "64/6"
[ -f "$T/a/pathfinder64/curv_baseline/metadata/0.npy" ] || bad "64/6 layout"

# data info: text and JSON; the root now holds two sets, so it needs --size.
info=$("$ELM" data info "$set_a") || bad "data info failed"
echo "$info" | grep -q "60 of 32x32" || bad "info text: $info"
json=$("$ELM" data info "$T/a" --size 32 --json --check) || bad "data info --json failed"
for pat in '"format":[[:space:]]*"pathfinder"' '"samples":[[:space:]]*60' '"classes":[[:space:]]*2' \
    '"image_size":[[:space:]]*32' '"label_balance":[[:space:]]*0.5' \
    '"difficulty":[[:space:]]*"curv_contour_length_14"' '"train":[[:space:]]*48' \
    '"seq_len":[[:space:]]*1024'; do
    echo "$json" | grep -Eq "$pat" || bad "info --json lacks $pat: $json"
done
msg=$("$ELM" data info "$T/a" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$msg" | grep -q "several Pathfinder sets" || bad "ambiguous root: $rc $msg"

# Broken folders: a malformed metadata line, a missing image, a non-Pathfinder folder.
cp -r "$set_a" "$T/broken"
sed -i '3s/ 1.0 14/ 14/' "$T/broken/metadata/1.npy"
msg=$("$ELM" data info "$T/broken" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$msg" | grep -q "metadata/1.npy:3: 10 fields" || bad "malformed line: $rc $msg"
cp -r "$set_a" "$T/missing"
rm "$T/missing/imgs/1/sample_4.png"
msg=$("$ELM" data info "$T/missing" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$msg" | grep -q "sample_4.png.*missing" || bad "missing image: $rc $msg"
mkdir -p "$T/empty"
msg=$("$ELM" data info "$T/empty" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$msg" | grep -q "not a data set elm knows" || bad "empty folder: $rc $msg"

# The authentic sets, when the shared folder is there.
if [ -n "${ELM_SHARED:-}" ] && [ -d "$ELM_SHARED/data/pathfinder/pathfinder32" ]; then
    json=$("$ELM" data info "$ELM_SHARED/data/pathfinder/pathfinder32" --json) || bad "authentic info"
    echo "$json" | grep -Eq '"samples":[[:space:]]*200' || bad "authentic samples: $json"
    echo "$json" | tr -d ' \t\n' | grep -q '"label_counts":\[100,100\]' || bad "authentic labels: $json"
else
    shared_missing_part "no authentic Pathfinder set in \$ELM_SHARED (${ELM_SHARED:-unset}): its checks not run"
fi

# Training smoke run (tiny model, 2 epochs) and evaluation of the best model on the test split.
if "$ELM" train pathfinder --data "$set_a" --out "$T/run" --epochs 2 --batch-size 8 \
    --set num_memory=4 --set mlp_hidden_size=6 --threads 2 >"$T/train.log" 2>&1; then
    grep -q '"test_num_samples":[[:space:]]*6' "$T/run/test_metrics.json" ||
        bad "test metrics: want 6 test samples: $(cat "$T/run/test_metrics.json")"
    ev=$("$ELM" eval pathfinder --data "$set_a" --model "$T/run" 2>&1) || bad "eval failed: $ev"
    echo "$ev" | grep -Eq "num_samples +6" || bad "eval: $ev"
else
    bad "training failed: $(tail -5 "$T/train.log")"
fi

finish
