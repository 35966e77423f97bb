"""Fit a small ELM neuron with elm.torch inside an ordinary PyTorch training loop.

    PYTHONPATH=python /usr/bin/python3 examples/torch_fit.py [--steps N]

The task needs memory: 8 input channels of random spikes; the target at each step is the
difference of the spike counts of channels 0 and 1 over the last 25 steps. elm.torch.ELM is a
torch.nn.Module: any torch loss and optimiser work, and autograd runs elm's exact BPTT in C.
"""
import argparse

import torch

import elm.torch

ap = argparse.ArgumentParser()
ap.add_argument("--steps", type=int, default=300)
a = ap.parse_args()
torch.manual_seed(0)


def batch(B=16, T=100, window=25):
    x = (torch.rand(B, T, 8) < 0.1).float()
    c = torch.cumsum(x[..., 0] - x[..., 1], dim=1)
    target = c - torch.nn.functional.pad(c, (window, 0))[:, :T]
    return x, target.unsqueeze(-1)


net = elm.torch.ELM(num_input=8, num_output=1, num_memory=10, memory_tau_max=100.0)
opt = torch.optim.Adam(net.parameters(), lr=1e-2)
for step in range(a.steps + 1):
    x, target = batch()
    loss = torch.nn.functional.mse_loss(net(x), target)
    if step % max(1, a.steps // 10) == 0:
        print(f"step {step:4d}  loss {loss.item():.4f}")
    if step == a.steps:
        break
    opt.zero_grad()
    loss.backward()
    opt.step()
# The state dict has the reference's layout: torch.save(net.state_dict(), ...) as usual, or
# net.to_model().save("fit/") for elm's format (the CLI and elm.load read it).
