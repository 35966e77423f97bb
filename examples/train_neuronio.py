"""Train an ELM neuron on NeuronIO from Python with elm's trainer (the same run as `elm train`).

    PYTHONPATH=python /usr/bin/python3 examples/train_neuronio.py DATA OUT [--tiny]

DATA: NeuronIO pickles (a file or folder), an elm cache (`elm data convert neuronio`), or a
teacher set (`elm gen neuronio-teacher --sims 4 --out nio`). --tiny: a few batches (CI).
"""
import argparse, json, os

import elm

ap = argparse.ArgumentParser()
ap.add_argument("data"); ap.add_argument("out"); ap.add_argument("--tiny", action="store_true")
a = ap.parse_args()
budget = dict(epochs=1, batches_per_epoch=4, seq_len=200, eval_samples=2, threads=1) if a.tiny \
    else dict(epochs=2, batches_per_epoch=200)
model = elm.train("neuronio", a.data, a.out, num_memory=5, seed=1, force=True, **budget)
print(f"{model.num_params} parameters; best model in {a.out}/model.safetensors")
# valid_*: the scores that selected the model; test_* only with test data (elm train --test).
print("best model's scores:", json.load(open(os.path.join(a.out, "test_metrics.json"))))
