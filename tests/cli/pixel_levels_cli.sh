#!/bin/bash
# pixel_levels_cli.sh - the Pathfinder pixel encoding knob from outside: a run trained with
# --set pixel_levels=4 has 4 inputs and records the knob in config.json; `elm eval` encodes the
# pixels as the model's 4 inputs say (from the run folder, the model file, or a copy of the model
# without its run) and scores exactly what --set pixel_levels=4 scores; the plain encoding forced
# on it is refused with a shape error naming the model; `elm plot pathfinder` draws it.
# Nonsense levels (1, 257, -1), the knob on another task, and a --resume that would change it are
# refused. The model trains one batch: only shapes and equal scores are checked, not quality.
# Skips (77) when the elm CLI is not built.
set -u
. "$(dirname "$0")/../testlib.sh"
cli_test_in_tmp

"$ELM" gen pathfinder --n 40 --seed 3 --out "$T/pf" --threads 1 >/dev/null || bad "generation failed"
set_a="$T/pf/pathfinder32/curv_contour_length_14"
A=(pathfinder --data "$set_a" --epochs 1 --batch-size 4 --set batches_per_epoch=1
   --set num_memory=4 --set mlp_hidden_size=6 --threads 1)
"$ELM" train "${A[@]}" --out "$T/run" --set pixel_levels=4 >"$T/train.log" 2>&1 ||
    { bad "training failed: $(tail -5 "$T/train.log")"; finish; }

/usr/bin/python3 - "$T/run" <<'PY' || bad "the run does not record 4 levels and 4 inputs"
import json, sys
d = sys.argv[1]
assert json.load(open(f"{d}/config.json"))["train"]["pixel_levels"] == 4
assert json.load(open(f"{d}/model_config.json"))["num_input"] == 4
PY

# From the run folder, the model file, and a copy of the model alone: the model's encoding.
mkdir -p "$T/alone"
cp "$T/run/model.safetensors" "$T/run/model_config.json" "$T/alone/"
"$ELM" eval pathfinder --model "$T/run" --data "$set_a" --split all --json \
    --set pixel_levels=4 >"$T/set.json" 2>/dev/null || bad "eval --set pixel_levels=4 failed"
grep -Eq '"num_samples":[[:space:]]*40' "$T/set.json" || bad "eval --split all: $(cat "$T/set.json")"
for m in "$T/run" "$T/run/model.safetensors" "$T/alone/model.safetensors"; do
    "$ELM" eval pathfinder --model "$m" --data "$set_a" --split all --json >"$T/ev.json" \
        2>"$T/ev.err" || bad "eval of $m failed: $(cat "$T/ev.err")"
    grep -q "one-hot over 4 grey levels (the model's 4 inputs)" "$T/ev.err" ||
        bad "eval of $m does not say how it encodes: $(cat "$T/ev.err")"
    cmp -s "$T/ev.json" "$T/set.json" || bad "eval of $m and --set pixel_levels=4 score apart"
done
check_cmd_err 1 "the model has 4 inputs and 2 outputs; pathfinder data needs 1 and 2" -- \
    "$ELM" eval pathfinder --model "$T/alone/model.safetensors" --data "$set_a" \
    --set pixel_levels=0

if /usr/bin/python3 -c "import numpy, matplotlib" 2>/dev/null; then
    check_cmd 0 "" "" -- "$ELM" plot pathfinder --model "$T/run" --data "$set_a" --index 3 \
        --out "$T/pl.png"
    [ -s "$T/pl.png" ] || bad "plot pathfinder drew no file"
else
    skip_part "no numpy/matplotlib for the plot"
fi

# Refusals.
check_cmd_err 1 "pixel_levels 1: 0 (the pixel as one input) or 2 to 256 grey levels" -- \
    "$ELM" train "${A[@]}" --out "$T/r1" --set pixel_levels=1
check_cmd_err 1 "pixel_levels" -- "$ELM" train "${A[@]}" --out "$T/r2" --set pixel_levels=257
check_cmd_err 1 "pixel_levels" -- "$ELM" train "${A[@]}" --out "$T/r3" --set pixel_levels=-1
check_cmd_err 1 "shd-adding: pixel_levels 4: only pathfinder encodes pixels" -- \
    "$ELM" train shd-adding --data "$T/none" --out "$T/r4" --set pixel_levels=4
check_cmd_err 1 "pixel_levels" -- "$ELM" train "${A[@]}" --out "$T/run" --resume \
    --set pixel_levels=8
[ -z "$(find "$T/r1" -type f 2>/dev/null)" ] || bad "a refused run left files in $T/r1"

finish
