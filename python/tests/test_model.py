"""elm's numpy API: the contract's spellings, forward/grad/streaming against each other and
against finite differences, save/load, set_num_threads, and bad input raising ValueError,
TypeError or OSError with elm's message instead of crashing."""
import os
import shutil
import subprocess
import threading

import numpy as np
import pytest

import elm

from conftest import shared_path

CFG = {"num_input": 20, "num_output": 3, "num_memory": 7, "num_branch": 4,
       "num_synapse_per_branch": 5, "input_to_synapse_routing": "neuronio_routing",
       "mlp_activation": "silu", "learn_memory_tau": True}


def inputs(B=2, T=25, I=20, seed=0):
    return np.random.default_rng(seed).random((B, T, I))


def test_contract_members():
    m = elm.Model(CFG, seed=3, dtype="float64")
    assert isinstance(m, elm.Model) and m.dtype == "float64"
    assert elm.Model(CFG).dtype == "float32"
    c = m.config
    assert c["num_memory"] == 7 and c["mlp_hidden_size"] == 14 and c["lambda_value"] == 5
    p = m.parameters()
    assert set(p) >= {"_proto_w_s", "_proto_tau_m", "tau_s", "mlp.network.0.weight",
                      "w_y.weight", "w_y.bias", "input_to_synapse_indices",
                      "valid_indices_mask"}
    assert p["mlp.network.0.weight"].shape == (14, 4 + 7)
    assert m.num_params == sum(p[k].size for k in m.grad(inputs(1, 3), np.ones((1, 3, 3))))
    # Same seed, same model; another seed, another.
    same = elm.Model(CFG, seed=3, dtype="float64").parameters()
    assert all(np.array_equal(p[k], same[k]) for k in p)
    assert not np.array_equal(p["w_y.weight"], elm.Model(CFG, seed=4).parameters()["w_y.weight"])


def test_forward_shapes_and_dtypes():
    m = elm.Model(CFG, seed=1)
    x = inputs()
    y = m.forward(x)
    assert y.shape == (2, 25, 3) and y.dtype == np.float32
    # Any float dtype is converted; a [T, I] input is one sample.
    assert np.array_equal(m.forward(x.astype(np.float32)), y)
    assert np.array_equal(m.forward(x.astype(np.float16).astype(np.float64)),
                          m.forward(x.astype(np.float16)))
    assert np.array_equal(m.forward(x[1]), y[1:2])
    # Non-contiguous and read-only arrays are copied, not refused.
    big = np.zeros((2, 25, 40))
    big[:, :, ::2] = x
    assert np.array_equal(m.forward(big[:, :, ::2]), y)
    ro = x.copy()
    ro.flags.writeable = False
    assert np.array_equal(m.forward(ro), y)


def test_grad_by_finite_differences():
    m = elm.Model(CFG, seed=2, dtype="float64")
    x = inputs(2, 15)
    w = np.random.default_rng(1).standard_normal((2, 15, 3))
    g, y = m.grad(x, w, return_output=True)
    assert np.array_equal(y, m.forward(x))
    assert set(g) == {"_proto_w_s", "_proto_tau_m", "mlp.network.0.weight", "mlp.network.0.bias",
                      "mlp.network.2.weight", "mlp.network.2.bias", "w_y.weight", "w_y.bias"}
    p = m.parameters()
    h = 1e-6
    for name in g:
        flat = p[name].reshape(-1)
        for k in (0, flat.size // 2, flat.size - 1):
            v = flat[k]
            vals = []
            for s in (1, -1):
                q = p[name].copy().reshape(-1)
                q[k] = v + s * h
                m.set_parameters({name: q.reshape(p[name].shape)})
                vals.append(np.sum(m.forward(x) * w))
            m.set_parameters({name: p[name]})
            fd = (vals[0] - vals[1]) / (2 * h)
            gk = g[name].reshape(-1)[k]
            # tests/tolerance.h TOL_FD
            assert abs(fd - gk) <= 1e-6 * max(1, abs(gk), abs(fd)), (name, k, fd, gk)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_streaming_equals_forward(dtype):
    m = elm.Model(CFG, seed=5, dtype=dtype)
    x = inputs(3, 30)
    y = m.forward(x)
    s = m.state(3)
    ys = np.stack([m.step(s, x[:, t]) for t in range(30)], axis=1)
    assert ys.dtype == y.dtype and np.array_equal(ys, y)
    s.reset()
    assert np.array_equal(m.step(s, x[:, 0]), y[:, 0])


def test_save_load(tmp_path):
    m = elm.Model(CFG, seed=6, dtype="float64")
    m.save(str(tmp_path / "m.safetensors"))
    m.save(str(tmp_path / "folder") + "/")
    x = inputs()
    for path in (tmp_path / "m.safetensors", tmp_path / "folder"):
        r = elm.load(str(path), dtype="float64")
        assert r.config == m.config
        assert np.array_equal(r.forward(x), m.forward(x))
    assert elm.load(tmp_path / "m.safetensors").dtype == "float32"  # path-like, default dtype


def test_released_model_loads():
    m = elm.load(shared_path("models", "neuronio", "num_memory_15"))
    assert m.num_params == 6827 and m.config["num_memory"] == 15


def test_threads():
    m = elm.Model(CFG, seed=7)
    x = inputs(8, 40)
    elm.set_num_threads(1)
    y1 = m.forward(x)
    elm.set_num_threads(2)
    assert np.array_equal(m.forward(x), y1)
    elm.set_num_threads(0)
    with pytest.raises(ValueError):
        elm.set_num_threads(-1)
    # Distinct models in threads at once (the GIL is released during C work).
    models = [elm.Model(CFG, seed=7) for _ in range(3)]
    out = [None] * 3

    def run(i):
        out[i] = models[i].forward(x)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert all(np.array_equal(o, y1) for o in out)


def test_bad_input():
    m = elm.Model(CFG, seed=1)
    with pytest.raises(ValueError, match="num_input 20"):
        m.forward(np.zeros((2, 5, 19)))
    with pytest.raises(ValueError, match="dimensions"):
        m.forward(np.zeros(20))
    with pytest.raises(ValueError, match="dimensions"):
        m.forward(np.zeros((1, 2, 3, 20)))
    with pytest.raises(ValueError, match="batch size"):
        m.forward(np.zeros((0, 5, 20)))
    with pytest.raises(TypeError, match="floats"):
        m.forward(np.zeros((2, 5, 20), dtype=np.int32))
    with pytest.raises(TypeError, match="floats"):
        m.forward(np.zeros((2, 5, 20), dtype=np.complex128))
    with pytest.raises(TypeError, match="floats"):
        m.forward([["a"] * 20])
    with pytest.raises(ValueError, match="dloss"):
        m.grad(np.zeros((2, 5, 20)), np.zeros((2, 5, 2)))
    s = m.state(2)
    with pytest.raises(ValueError, match="x_t must be"):
        m.step(s, np.zeros((3, 20)))
    with pytest.raises(ValueError, match="another model"):
        elm.Model(CFG, seed=1).step(s, np.zeros((2, 20)))
    with pytest.raises(TypeError, match="state"):
        m.step("state", np.zeros((2, 20)))
    with pytest.raises(ValueError, match="batch size"):
        m.state(0)
    with pytest.raises(ValueError, match="nonsense"):
        elm.Model(dict(CFG, nonsense=1))
    with pytest.raises(ValueError, match="float32"):
        elm.Model(CFG, dtype="float16")
    with pytest.raises(TypeError):
        elm.Model("not a dict")
    with pytest.raises(ValueError, match="unknown parameter"):
        m.set_parameters({"w_z.weight": np.zeros(3)})
    with pytest.raises(ValueError, match=r"must be \[3, 7\]"):
        m.set_parameters({"w_y.weight": np.zeros((7, 3))})
    with pytest.raises(ValueError, match="input_to_synapse_indices"):
        m.set_parameters({"input_to_synapse_indices": np.full(20, 25),
                          "valid_indices_mask": np.ones(20, bool)})


def test_bad_files(tmp_path):
    with pytest.raises(OSError, match="nowhere"):
        elm.load(str(tmp_path / "nowhere.safetensors"))
    bad = tmp_path / "corrupt.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises((ValueError, OSError), match="corrupt.safetensors"):
        elm.load(str(bad))
    with pytest.raises(OSError):
        elm.Model(CFG).save(str(tmp_path / "no" / "such" / "dir" / "m.safetensors"))


def test_forward_train_then_backward():
    """forward_train + backward is grad, bit for bit; the token goes stale when the model runs
    anything else or its parameters are written, and serves one backward."""
    for dtype in ("float32", "float64"):
        m = elm.Model(CFG, seed=5, dtype=dtype)
        x, dy = inputs(2, 30), np.random.default_rng(1).standard_normal((2, 30, 3))
        g, y = m.grad(x, dy, return_output=True)
        y2, tok = m.forward_train(x)
        assert m.train_token == tok and np.array_equal(y, y2)
        g2 = m.backward(dy, tok)
        assert set(g) == set(g2) and all(np.array_equal(g[k], g2[k]) for k in g)
        with pytest.raises(ValueError, match="forward_train again"):
            m.backward(dy, tok)  # one backward per forward pass
        _, tok = m.forward_train(x)
        m.forward(x)
        assert m.train_token == 0
        with pytest.raises(ValueError, match="the model ran since"):
            m.backward(dy, tok)
        _, tok = m.forward_train(x)
        m.set_parameters({"w_y.bias": np.zeros(3)})
        with pytest.raises(ValueError, match="token"):
            m.backward(dy, tok)
        _, tok = m.forward_train(x)
        with pytest.raises(ValueError, match=r"dloss must have the outputs' shape \[2, 30, 3\]"):
            m.backward(dy[:, :10], tok)


def spike_lists(x):
    """x [B, T, I] as (ptr, idx, val) over rows b * T + t."""
    B, T, I = x.shape
    rows = x.reshape(B * T, I)
    nz = [np.flatnonzero(r) for r in rows]
    ptr = np.concatenate([[0], np.cumsum([len(n) for n in nz])]).astype(np.int64)
    idx = np.concatenate(nz).astype(np.int32)
    return ptr, idx, rows[rows != 0]


def test_forward_spikes():
    """Spike lists give bitwise the dense results (forward, and forward_train + backward)."""
    rng = np.random.default_rng(4)
    for dtype in ("float32", "float64"):
        m = elm.Model(CFG, seed=6, dtype=dtype)
        x = (rng.random((3, 17, 20)) < 0.2) * rng.random((3, 17, 20)) * 3
        x = x.astype(np.float32 if dtype == "float32" else np.float64)
        ptr, idx, val = spike_lists(x)
        assert np.array_equal(m.forward_spikes(ptr, idx, val, 17), m.forward(x))
        ones = (x != 0).astype(x.dtype)
        assert np.array_equal(m.forward_spikes(ptr, idx, None, 17), m.forward(ones))
        dy = rng.standard_normal((3, 17, 3))
        g = m.grad(x, dy)
        y, tok = m.forward_spikes(ptr, idx, val, 17, train=True)
        g2 = m.backward(dy, tok)
        assert all(np.array_equal(g[k], g2[k]) for k in g)
    bad = [
        (dict(steps=5), "B \\* steps \\+ 1"),
        (dict(ptr=ptr[::-1].copy()), "ptr must start at 0"),
        (dict(idx=np.where(idx == idx.max(), 20, idx).astype(np.int32)), "in 0..19"),
        (dict(val=val[:-1]), "val has"),
    ]
    p2 = ptr.copy()
    r = int(np.argmax(ptr > 0))
    p2[r + 1] = ptr[r] - 1
    bad.append((dict(ptr=p2), f"ptr decreases at row {r}"))
    i2 = idx.copy()
    r = next(r for r in range(len(ptr) - 1) if ptr[r + 1] - ptr[r] >= 2)
    i2[ptr[r]], i2[ptr[r] + 1] = i2[ptr[r] + 1], i2[ptr[r]]
    bad.append((dict(idx=i2), "ascending"))
    for change, msg in bad:
        a = dict(ptr=ptr, idx=idx, val=val, steps=17)
        a.update(change)
        with pytest.raises(ValueError, match=msg):
            m.forward_spikes(**a)


def test_extension_exports_only_pyinit():
    """The extension links elm statically and hides it (and its own helpers): its only dynamic
    symbol is PyInit__elm, so a process that also loads libelm.so never binds to this copy."""
    nm = shutil.which("nm")
    if not nm:
        pytest.skip("nm (binutils) is not installed")
    r = subprocess.run([nm, "-D", "--defined-only", elm._elm.__file__], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    names = [line.split()[-1] for line in r.stdout.splitlines() if line.strip()]
    assert names == ["PyInit__elm"], names


def test_fma():
    """Model.fma: off by default; on, the float32 passes fuse multiply-adds: outputs and
    gradients within float32 rounding of the default path's (and not its bits where
    elm.fma_fuses(): the switch reached other kernels); off again, the default bits; float64
    refuses it."""
    cfg = {"num_input": 16, "num_output": 2, "num_memory": 20, "mlp_hidden_size": 40}
    m = elm.Model(cfg, seed=5)
    x = inputs(3, 40, 16)
    assert m.fma is False
    y0 = m.forward(x)
    g0 = m.grad(x, np.ones_like(y0))
    m.fma = True
    assert m.fma is True
    y1 = m.forward(x)
    g1 = m.grad(x, np.ones_like(y1))
    np.testing.assert_allclose(y1, y0, rtol=0, atol=1e-5 * np.abs(y0).max())
    for k in g0:
        np.testing.assert_allclose(g1[k], g0[k], rtol=0, atol=1e-4 * max(np.abs(g0[k]).max(), 1e-6))
    if elm.fma_fuses():
        assert not np.array_equal(y1, y0)
    m.fma = False
    assert np.array_equal(m.forward(x), y0)
    with pytest.raises(ValueError, match="float64"):
        elm.Model(cfg, dtype="float64").fma = True
