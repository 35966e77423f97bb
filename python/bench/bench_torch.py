"""Benchmark: a PyTorch training step with elm.torch.ELM against the same neuron in plain PyTorch
(torch_reference.py, the reference's style: a Python loop over time steps), and against elm's C
forward and BPTT alone, on the standard configurations. docs/PERFORMANCE.md, "Python", says how
to read it.

    PYTHONPATH=python /usr/bin/python3 python/bench/bench_torch.py [--config neuronio|shd|all]
        [--batch 8] [--threads 1] [--reps 5] [--json FILE] [--trainer-data NEURONIO_DATA]
        [--no-torch]

Per configuration and batch size it times (median of --reps after one warm-up):
  c_grad       elm's forward and BPTT from numpy (Model.grad): the C work of a step, no torch
  c_trainer    (neuronio, with --trainer-data) one batch of elm's own trainer
               (elm.Trainer.time_batch: spike-list input, forward, loss, backward)
  elm_torch    one torch training step with elm.torch.ELM: forward, loss, backward, Adam
  elm_torch_spikes  the same step with the batch given as spike lists (elm.torch.Spikes), as
               elm's trainer feeds spiking data
  torch        the same step with the plain-PyTorch neuron (skipped with --no-torch)
and prints sample-steps per second (B * T / seconds) and the ratios. Before timing it checks
that elm.torch and the plain-PyTorch neuron give the same outputs (float32, 1e-4 relative), so
both sides compute the same thing. The threads of torch and elm are set to --threads alike.
Runs for minutes at the full sizes: run it on a quiet machine. --tiny: seconds (CI smoke test).
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import torch

import elm
import elm.torch as et

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_reference import TorchELM  # noqa: E402

# The published models' configurations (docs/TASKS.md) and their training windows.
CONFIGS = {
    "neuronio": dict(model=dict(num_input=1278, num_output=2, num_memory=15, num_branch=45,
                                num_synapse_per_branch=100,
                                input_to_synapse_routing="neuronio_routing",
                                memory_tau_max=150.0),
                     T=500, density=0.011, loss="neuronio"),
    "shd": dict(model=dict(num_input=700, num_output=20, num_memory=100, memory_tau_max=500.0,
                           delta_t=10.0),
                T=100, density=0.02, loss="ce_last"),
}
TINY = {
    "neuronio": dict(model=dict(num_input=40, num_output=2, num_memory=3, num_branch=4,
                                num_synapse_per_branch=10,
                                input_to_synapse_routing="neuronio_routing"),
                     T=20, density=0.05, loss="neuronio"),
    "shd": dict(model=dict(num_input=30, num_output=5, num_memory=4, delta_t=10.0),
                T=10, density=0.1, loss="ce_last"),
}


def make_batch(cfg, B, rng):
    I, T = cfg["model"]["num_input"], cfg["T"]
    x = (rng.random((B, T, I)) < cfg["density"]).astype(np.float32)
    if cfg["loss"] == "neuronio":
        x[..., I // 2:] *= -1  # inhibitory inputs carry the sign, as the NeuronIO task feeds them
        target = np.stack([(rng.random((B, T)) < 0.01), rng.random((B, T))], -1).astype(np.float32)
    else:
        target = rng.integers(0, cfg["model"]["num_output"], B)
    return torch.from_numpy(x), torch.from_numpy(target)


def spikes_of(x, T):
    """The dense batch as elm.torch.Spikes (rows b * T + t)."""
    rows = x.reshape(-1, x.shape[-1]).numpy()
    nz = rows != 0
    ptr = np.concatenate([[0], np.cumsum(nz.sum(1))]).astype(np.int64)
    idx = np.nonzero(nz)[1].astype(np.int32)
    return et.Spikes(ptr, idx, rows[nz].astype(np.float32), T)


def loss_fn(kind, y, target):
    if kind == "neuronio":
        bce = torch.nn.functional.binary_cross_entropy_with_logits(y[..., 0], target[..., 0])
        return 0.5 * bce + 0.5 * torch.mean((y[..., 1] - target[..., 1]) ** 2)
    return torch.nn.functional.cross_entropy(y[:, -1], target)


def timed(fn, reps):
    fn()  # warm-up
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def torch_step(net, opt, kind, x, target):
    def step():
        opt.zero_grad()
        loss_fn(kind, net(x), target).backward()
        opt.step()
    return step


def bench(name, cfg, B, reps, trainer_data, with_torch=True):
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    net = et.ELM(seed=1, dtype=torch.float32, **cfg["model"])
    ref = TorchELM.from_elm(net)
    x, target = make_batch(cfg, B, rng)
    with torch.no_grad():
        y, yr = net(x), ref(x)
    err = (y - yr).abs().max().item() / max(yr.abs().max().item(), 1e-30)
    if err > 1e-4:
        sys.exit(f"{name}: elm.torch and the plain-PyTorch neuron disagree ({err:.2e}): not "
                 "timing different computations")
    T = cfg["T"]
    sp = spikes_of(x, T)
    with torch.no_grad():
        if not torch.equal(net(sp), y):
            sys.exit(f"{name}: spike lists and the dense batch give different outputs")
    res = {"config": name, "batch": B, "T": T, "threads": torch.get_num_threads()}
    core = net.to_model()
    xn = x.numpy()
    dy = np.full((B, T, cfg["model"]["num_output"]), 1.0 / (B * T), np.float32)
    res["c_grad_s"] = timed(lambda: core.grad(xn, dy), reps)
    if trainer_data and name == "neuronio":
        with tempfile.TemporaryDirectory() as run:
            tr = elm.Trainer("neuronio", trainer_data, os.path.join(run, "r"), batch_size=B,
                             seq_len=T, threads=res["threads"], epochs=1, batches_per_epoch=1000,
                             num_memory=cfg["model"]["num_memory"])
            res["c_trainer_s"] = timed(tr.time_batch, reps)
    res["elm_torch_s"] = timed(torch_step(net, torch.optim.Adam(net.parameters(), lr=1e-3),
                                          cfg["loss"], x, target), reps)
    res["elm_torch_spikes_s"] = timed(torch_step(net, torch.optim.Adam(net.parameters(), lr=1e-3),
                                                 cfg["loss"], sp, target), reps)
    if with_torch:
        res["torch_s"] = timed(torch_step(ref, torch.optim.Adam(
            [p for p in ref.parameters() if p.requires_grad], lr=1e-3), cfg["loss"], x, target),
            reps)
    for k in [k for k in res if k.endswith("_s")]:
        res[k[:-2] + "_sample_steps_per_s"] = B * T / res[k]
    if with_torch:
        res["speedup_elm_torch_over_torch"] = res["torch_s"] / res["elm_torch_s"]
    res["elm_torch_overhead_over_c_grad"] = res["elm_torch_s"] / res["c_grad_s"] - 1
    if "c_trainer_s" in res:
        res["elm_torch_overhead_over_c_trainer"] = res["elm_torch_s"] / res["c_trainer_s"] - 1
        res["elm_torch_spikes_overhead_over_c_trainer"] = (res["elm_torch_spikes_s"] /
                                                           res["c_trainer_s"] - 1)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="all", choices=["all"] + sorted(CONFIGS))
    ap.add_argument("--batch", type=int, nargs="+", default=[8])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--trainer-data", help="NeuronIO data for the c_trainer column "
                    "(e.g. elm gen neuronio-teacher --sims 4 --out DIR)")
    ap.add_argument("--no-torch", action="store_true",
                    help="skip the plain-PyTorch column (minutes per step for neuronio, whose "
                    "Python loop over 500 steps and 4500 routed synapses autograd records step "
                    "by step): times elm.torch against elm's C paths only")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes, one repetition (CI)")
    a = ap.parse_args()
    configs = TINY if a.tiny else CONFIGS
    reps = 1 if a.tiny else a.reps
    torch.set_num_threads(a.threads)
    elm.set_num_threads(a.threads)
    names = sorted(configs) if a.config == "all" else [a.config]
    rows = [bench(n, configs[n], B, reps, a.trainer_data, not a.no_torch)
            for n in names for B in a.batch]
    print(f"{'config':10} {'B':>3} {'T':>5} {'c_grad':>11} {'c_trainer':>11} {'elm.torch':>11} "
          f"{'(spikes)':>11} {'torch':>11}   sample-steps/s; elm.torch / torch; time over C")
    for r in rows:
        ct = f"{r['c_trainer_sample_steps_per_s']:11.0f}" if "c_trainer_s" in r else f"{'-':>11}"
        tc = f"{r['torch_sample_steps_per_s']:11.0f}" if "torch_s" in r else f"{'-':>11}"
        vs = (f"elm.torch / torch {r['speedup_elm_torch_over_torch']:.1f}x; "
              if "torch_s" in r else "")
        over = f"{100 * r['elm_torch_overhead_over_c_grad']:.0f} % over c_grad"
        if "c_trainer_s" in r:
            over += (f", {100 * r['elm_torch_overhead_over_c_trainer']:.0f} % (spikes "
                     f"{100 * r['elm_torch_spikes_overhead_over_c_trainer']:.0f} %) over "
                     f"c_trainer")
        print(f"{r['config']:10} {r['batch']:3d} {r['T']:5d} {r['c_grad_sample_steps_per_s']:11.0f} "
              f"{ct} {r['elm_torch_sample_steps_per_s']:11.0f} "
              f"{r['elm_torch_spikes_sample_steps_per_s']:11.0f} {tc}   {vs}{over}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"threads": a.threads, "tiny": a.tiny, "elm": elm.__version__,
                       "torch": torch.__version__, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
