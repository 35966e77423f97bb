"""Fine-tune a trained NeuronIO neuron with a torch optimiser, on elm's own NeuronIO batches.

    PYTHONPATH=python /usr/bin/python3 examples/finetune.py MODEL DATA [--steps N] [--out DIR]

MODEL: a NeuronIO model (an elm run's model.safetensors or folder, or the authors' released
folder); DATA: NeuronIO data as `elm train` takes it. elm.Task gives the trainer's batches and
evaluation; the update is torch's (AdamW here); the result is saved in elm's format (--out).
"""
import argparse

import torch

import elm
import elm.torch

ap = argparse.ArgumentParser()
ap.add_argument("model"); ap.add_argument("data")
ap.add_argument("--steps", type=int, default=100); ap.add_argument("--out")
a = ap.parse_args()

net = elm.torch.load(a.model)
task = elm.Task("neuronio", a.data, batch_size=8, seq_len=500, eval_samples=4)


def show(when, metrics):  # AUC is None when the data has no output spike
    print(when, {k: metrics[k] for k in ("AUC", "soma_RMSE", "soma_explained_variance_percent")})


show("before:", task.evaluate(net.to_model()))
opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-4)
bce = torch.nn.BCEWithLogitsLoss()
for step in range(a.steps):
    x, target = task.batch(step, seed=1234)          # the trainer's batch `step` of seed 1234
    target = torch.from_numpy(target).view(x.shape[0], x.shape[1], 2)  # (spike, soma) per step
    y = net(torch.from_numpy(x))
    loss = 0.5 * bce(y[..., 0], target[..., 0]) + 0.5 * torch.mean((y[..., 1] - target[..., 1]) ** 2)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % max(1, a.steps // 5) == 0:
        print(f"step {step}: loss {loss.item():.5f}")
model = net.to_model()
show("after: ", task.evaluate(model))
if a.out:
    model.save(a.out.rstrip("/") + "/")               # a folder: model.safetensors + config
    print("saved", a.out)
