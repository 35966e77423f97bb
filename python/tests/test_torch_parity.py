"""elm.torch against the authors' PyTorch reference: every gradient case of ../shared/parity
(outputs and every parameter gradient in float64, through load_state_dict and autograd) and the
released NeuronIO models' outputs, with the C tests' tolerances (tests/tolerance.h)."""
import glob
import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch (python3-torch) is not installed")
import elm.torch  # noqa: E402

from conftest import SHARED, read_safetensors, shared_path  # noqa: E402

TOL_F64_REL_TO_MAX = 1e-10  # tests/tolerance.h: float64 outputs, relative to max |ref|
TOL_GRAD_REL_TO_MAX = 1e-9  # tests/tolerance.h: float64 gradients, per tensor
TOL_F32_REL_TO_MAX = 1e-4
TOL_F32_ABS = 2e-3


def rel_to_max(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-300)


def cases():
    names = sorted(os.path.basename(p)[:-len(".safetensors")]
                   for p in glob.glob(os.path.join(SHARED, "parity", "grad", "*.safetensors")))
    return names or ["(absent)"]  # one case that skips with a message


@pytest.mark.parametrize("name", cases())
def test_grad_case(name):
    path = shared_path("parity", "grad", name + ".safetensors")
    t, meta = read_safetensors(path)
    case = json.loads(meta["case_json"])
    kw = dict(case["ctor_kwargs"])
    kw["elm_version"] = case["reference_version"]
    net = elm.torch.ELM(dtype=torch.float64, seed=1, **kw)
    sd = {k[6:]: torch.from_numpy(v) for k, v in t.items() if k.startswith("param.")}
    # Without routing the reference holds both routing tensors empty: so do we.
    missing, unexpected = net.load_state_dict(sd, strict=True)
    assert not missing and not unexpected
    for k, v in net.state_dict().items():
        assert tuple(v.shape) == tuple(sd[k].shape), k
    x = torch.from_numpy(t["input.X"])
    y = net(x)
    assert y.dtype == torch.float64
    err = rel_to_max(y.detach().numpy(), t["output.Y"])
    assert err <= TOL_F64_REL_TO_MAX, f"{name} output rel-to-max {err:.3g}"
    loss = (y * torch.from_numpy(t["loss.weights"])).sum()
    loss.backward()
    n = 0
    for pname, p in net.named_parameters():
        ref = t.get("grad." + pname)
        if not p.requires_grad:
            assert ref is None, f"reference has a gradient for non-trainable {pname}"
            continue
        assert ref is not None and p.grad is not None, pname
        e = rel_to_max(p.grad.numpy(), ref)
        assert e <= TOL_GRAD_REL_TO_MAX, f"{name} grad {pname} rel-to-max {e:.3g}"
        n += 1
    assert n == sum(1 for k in t if k.startswith("grad.") and k != "grad.input.X")


@pytest.mark.parametrize("model", ["num_memory_1", "num_memory_15", "best_elm_neuron"])
def test_released_models(model):
    folder = shared_path("models", "neuronio", model)
    X = np.load(shared_path("parity", "pretrained", "X.npy"))
    yref = np.load(shared_path("parity", "pretrained", f"{model}_y_f64.npy"))
    sd = torch.load(os.path.join(folder, "neuronio_best_model_state.pt"), map_location="cpu")
    cfg = json.load(open(os.path.join(folder, "model_config.json")))
    net = elm.torch.ELM(dtype=torch.float32, **cfg)
    net.load_state_dict(sd)
    got = net.state_dict()
    assert list(got) == list(sd), "state-dict keys or their order differ from the reference's"
    for k in sd:
        assert got[k].shape == sd[k].shape and got[k].dtype == sd[k].dtype, k
    with torch.no_grad():
        y32 = net(torch.from_numpy(X)).numpy()
        assert np.max(np.abs(y32 - yref)) <= TOL_F32_ABS
        assert rel_to_max(y32, yref) <= TOL_F32_REL_TO_MAX
        net.double()
        assert net.w_y.weight.dtype == torch.float64
        y64 = net(torch.from_numpy(X)).numpy()
    assert y64.dtype == np.float64
    assert rel_to_max(y64, yref) <= TOL_F64_REL_TO_MAX
    # elm.torch.load reads the safetensors file to the same module.
    net2 = elm.torch.load(folder, dtype=torch.float64)
    with torch.no_grad():
        assert np.array_equal(net2(torch.from_numpy(X)).numpy(), y64)


def test_two_forwards_before_backward():
    """The module called twice before one backward (the first call's BPTT state overwritten by
    the second): the gradients are still those of both calls (float64, 1e-12 relative)."""
    net = elm.torch.ELM(num_input=6, num_output=2, num_memory=4, seed=2, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    x1 = torch.rand(2, 15, 6, generator=g, dtype=torch.float64)
    x2 = torch.rand(3, 9, 6, generator=g, dtype=torch.float64)
    d1 = torch.randn(2, 15, 2, generator=g, dtype=torch.float64)
    d2 = torch.randn(3, 9, 2, generator=g, dtype=torch.float64)
    ((net(x1) * d1).sum() + (net(x2) * d2).sum()).backward()
    core = net.to_model()
    want1 = core.grad(x1.numpy(), d1.numpy())
    want2 = core.grad(x2.numpy(), d2.numpy())
    for name, p in net.named_parameters():
        if p.requires_grad:
            w = want1[name] + want2[name]
            assert np.abs(p.grad.numpy() - w).max() <= 1e-12 * np.abs(w).max(), name


def test_spikes_input():
    """elm.torch.Spikes (spike lists, as elm.Task.batch(dense=False) gives them) compute the
    dense batch's outputs and gradients bit for bit, also through the recomputing fallback."""
    from test_model import spike_lists
    net = elm.torch.ELM(num_input=12, num_output=2, num_memory=4, num_branch=3,
                        num_synapse_per_branch=6, input_to_synapse_routing="neuronio_routing",
                        seed=3, dtype=torch.float32)
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(4, 21, 12, generator=g) < 0.2).float()
    d = torch.randn(4, 21, 2, generator=g)
    sp = elm.torch.Spikes(*spike_lists(x.numpy())[:2], None, 21)
    grads = []
    for inp in (x, sp):
        net.zero_grad()
        y = net(inp)
        (y * d).sum().backward()
        grads.append({n: p.grad.clone() for n, p in net.named_parameters() if p.requires_grad})
        if inp is x:
            y_dense = y.detach()
        else:
            assert torch.equal(y.detach(), y_dense)
    assert all(torch.equal(grads[0][n], grads[1][n]) for n in grads[0])
    net.zero_grad()
    ((net(sp) * d).sum() + (net(x) * d).sum()).backward()  # the first call's state is gone
    assert all(torch.equal(p.grad, 2 * grads[0][n]) for n, p in net.named_parameters()
               if p.requires_grad)
    with pytest.raises(TypeError, match="Spikes"):
        net([1, 2])
