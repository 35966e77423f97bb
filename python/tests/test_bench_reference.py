"""The plain-PyTorch baseline of the benchmark (python/bench/torch_reference.py) computes the
same neuron as elm: outputs and every gradient against elm.torch in float64 (1e-9 relative to
the largest value: both are exact computations of the same equations, differing by rounding
only), for the plain ELM, v2, the NeuronIO routing with a partial last branch, random routing,
learnt memory time constants, a 2-layer SiLU MLP and delta_t != 1; and the benchmark script runs
(tiny sizes, one repetition)."""
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch", reason="PyTorch (python3-torch) is not installed")
import elm.torch as et  # noqa: E402
from conftest import ROOT  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "python", "bench"))
from torch_reference import TorchELM  # noqa: E402

CASES = {
    "plain": dict(num_input=5, num_output=3, num_memory=4),
    "v2": dict(num_input=5, num_output=2, num_memory=4, elm_version="v2", lambda_value=3.0),
    "neuronio_routing": dict(num_input=10, num_output=2, num_memory=3, num_branch=3,
                             num_synapse_per_branch=5, input_to_synapse_routing="neuronio_routing"),
    "random_routing_v2": dict(num_input=6, num_output=2, num_memory=3, num_branch=4,
                              num_synapse_per_branch=3, input_to_synapse_routing="random_routing",
                              elm_version="v2"),
    "learnt_tau_silu": dict(num_input=4, num_output=2, num_memory=5, learn_memory_tau=True,
                            mlp_num_layers=2, mlp_hidden_size=7, mlp_activation="silu",
                            delta_t=2.5, memory_tau_max=50.0),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_reference_equals_elm(case):
    torch.manual_seed(3)
    net = et.ELM(seed=11, dtype=torch.float64, **CASES[case])
    with torch.no_grad():  # move w_s off its constant start, some below 0 (relu's zero branch)
        net._proto_w_s.add_(0.6 * torch.randn_like(net._proto_w_s))
    ref = TorchELM.from_elm(net)
    x = (torch.rand(3, 40, CASES[case]["num_input"], dtype=torch.float64) < 0.3).double()
    x = x * torch.rand_like(x) * 2
    y, yr = net(x), ref(x)
    scale = yr.abs().max().item()
    assert scale > 0.05 and (y - yr).abs().max().item() <= 1e-9 * scale
    dy = torch.randn_like(y)
    (y * dy).sum().backward()
    (yr * dy).sum().backward()
    grads = ref.grads_by_elm_name()
    named = dict(net.named_parameters())
    assert set(grads) == {n for n, p in named.items() if p.requires_grad}
    for name, g in grads.items():
        e = named[name].grad
        s = max(g.abs().max().item(), 1e-30)
        assert (e - g).abs().max().item() <= 1e-9 * s, name


def test_bench_script_runs():
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    r = subprocess.run([sys.executable, os.path.join(ROOT, "python", "bench", "bench_torch.py"),
                        "--tiny"], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "elm.torch / torch" in r.stdout
