#!/usr/bin/env python3
"""Assembles docs/RESULTS.md from the per-area reports in docs/results/ (edit those, not RESULTS.md).

Usage: python3 scripts/make_results.py      (standard library only)
"""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RES = os.path.join(ROOT, "docs", "results")

# (file, section title); files that do not exist are listed as missing, not silently dropped.
ORDER = [
    ("parity.md", "1. Parity with the authors' PyTorch code"),
    ("neuronio_eval.md", "2. NeuronIO: the authors' models evaluated by elm"),
    ("teacher.md", "3. NeuronIO: the built-in teacher neuron"),
    ("ablations.md", "4. Ablations and the d_m sweep (elm sweep), ELM versus LSTM"),
    ("shd_gen.md", "5. SHD: the generated data set"),
    ("shd.md", "6. SHD and SHD-Adding"),
    ("shd_adding.md", "6b. SHD-Adding at the full protocol"),
    ("pathfinder_gen.md", "7. Pathfinder: generated versus authentic images"),
    ("pathfinder.md", "8. Pathfinder and Path-X training"),
    ("pathx_memory.md", "9. Path-X: memory of BPTT with and without checkpointing"),
    ("performance.md", "10. Speed against the reference"),
]

HEADER = """# Results

Every number elm reports, with the command that reproduces it. This page is assembled by
`scripts/make_results.py` from the reports in `docs/results/`; each section below is one of them.
The machine throughout: 2 vCPUs (AMD EPYC, AVX-512) and 24 GiB, usually shared with other jobs
while these were measured, so wall times are upper bounds.

Paths. Some commands below read material that elm does not ship (the README's "Real data" says
where the public parts come from): `$MODELS` is the authors' 15 released NeuronIO models as
safetensors folders (`num_memory_1` .. `num_memory_100`, `best_elm_neuron`, and their
`eval_results.csv`); `$NIO` is a set of NeuronIO pickles made with the authors' published
simulation pipeline (a dev file of 8 simulations, Python-2-style copies of it in `py2/`, 17
files of 8 in `train/`, and the authors' evaluation of the dev file, `expected_metrics.json`);
`$PF` is Pathfinder images made with the original generator at LRA's settings (`pathfinder32`,
200 images, and `pathfinder128`, 40); `$REF` is the folder of reference material the tests read
through `ELM_SHARED` (parity vectors made with the reference's code). Tests that need any of
these skip, saying so, when it is absent.

"""


def demote(text):
    """Nests a report's headings one level deeper; lines inside code fences are left alone."""
    out, fenced = [], False
    for line in text.split("\n"):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#+ ", line):
            line = "#" + line
        out.append(line)
    return "\n".join(out)


def relink(text):
    """Rewrites a report's relative links (written from docs/results/) to work from docs/."""
    def fix(m):
        target = m.group(2)
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            return m.group(0)
        return m.group(1) + os.path.normpath(os.path.join("results", target)) + ")"
    return re.sub(r"(\]\()([^)\s]+)\)", fix, text)


def main():
    parts = [HEADER, "## Contents\n\n"]
    for fname, title in ORDER:
        parts.append(f"- {title} (`docs/results/{fname}`)\n")
    parts.append("\n")
    for fname, title in ORDER:
        path = os.path.join(RES, fname)
        parts.append(f"## {title}\n\n")
        if not os.path.exists(path):
            parts.append(f"*Not measured yet: `docs/results/{fname}` is missing.*\n\n")
            continue
        body = open(path, encoding="utf-8").read().strip()
        body = re.sub(r"\A# [^\n]*\n+", "", body)  # the section title replaces the report's
        parts.append(relink(demote(body)) + "\n\n")
    with open(os.path.join(ROOT, "docs", "RESULTS.md"), "w", encoding="utf-8") as f:
        f.write("".join(parts).rstrip() + "\n")


if __name__ == "__main__":
    main()
