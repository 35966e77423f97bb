"""elm.torch: the ELM neuron as a torch.nn.Module, computed by elm's C forward and BPTT.

    import torch, elm.torch
    net = elm.torch.ELM(num_input=1278, num_output=2, num_memory=15,
                        input_to_synapse_routing="neuronio_routing", num_branch=45,
                        num_synapse_per_branch=100)
    net.load_state_dict(torch.load("neuronio_best_model_state.pt", map_location="cpu"))
    y = net(x)                     # x [B, T, num_input] -> y [B, T, num_output]
    loss_fn(y, target).backward()  # gradients from elm's BPTT, any torch optimiser

The constructor takes the reference's keyword arguments (num_input, num_output, num_memory,
lambda_value, mlp_num_layers, mlp_hidden_size, mlp_activation, tau_s_value / tau_b_value,
memory_tau_min, memory_tau_max, learn_memory_tau, w_s_value, num_branch,
num_synapse_per_branch, input_to_synapse_routing, delta_t) and elm_version ("v1" or "v2"); the
state dict has the reference's keys, shapes and dtypes. Two additions: seed (the C
initialisation's seed; by default drawn from torch's generator, so torch.manual_seed makes it
reproducible) and dtype (torch.float32 or torch.float64; by default torch's default dtype).
.double() / .float() switch the dtype. to_model() copies the module into an elm.Model. The
input may also be spike lists (elm.torch.Spikes), as elm's trainer feeds spiking data.

Limits: CPU tensors only; the input gets no gradient (elm's BPTT gives the parameters'
gradients, not dL/dx), so the module must be the first layer of a network that needs gradients.
"""
import collections

import numpy as np
import torch

from . import _elm

__all__ = ["ELM", "Spikes", "load"]

Spikes = collections.namedtuple("Spikes", ["ptr", "idx", "val", "steps"])
Spikes.__doc__ = """A batch [B, steps, num_input] as spike lists, elm's sparse input layout: row
r = b * steps + t holds the input ids idx[ptr[r] .. ptr[r + 1]] (ascending) with values val
(None: all ones). numpy arrays or CPU tensors. elm.Task.batch(step, dense=False) gives (ptr,
idx, val): Spikes(*x, steps=task.info["seq_len"]). The module computes bitwise what it computes
on the dense batch, without scanning the dense [B, T, I] array (elm's trainer feeds spike lists
too)."""


def _np(a, dtype):
    if a is None:
        return None
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return np.ascontiguousarray(a, dtype=dtype)


def _dense(sp, num_input, dtype):
    """The dense batch of spike lists (for the recomputing fallback of backward)."""
    ptr = _np(sp.ptr, np.int64)
    rows = len(ptr) - 1
    x = np.zeros((rows, num_input), dtype)
    r = np.repeat(np.arange(rows), np.diff(ptr))
    x[r, _np(sp.idx, np.int64)] = 1 if sp.val is None else _np(sp.val, dtype)
    return x.reshape(rows // sp.steps, sp.steps, num_input)


def _dtype_name(dt):
    if dt == torch.float64:
        return "float64"
    if dt == torch.float32:
        return "float32"
    raise TypeError(f"elm computes in torch.float32 or torch.float64, not {dt}")


class _ELMFunction(torch.autograd.Function):
    """y = ELM(x) with the parameters as inputs, so autograd hands their gradients back.

    When a parameter needs a gradient, forward runs elm's training forward, which keeps what
    BPTT needs, and backward runs only BPTT on it. If the C model ran anything else in between
    (the module called again before backward), backward recomputes the forward pass with
    Model.grad: the same gradients, at the cost of one more forward.
    """

    @staticmethod
    def forward(ctx, x, module, spikes, *params):
        core = module._sync()
        ctx.token = None
        train = any(ctx.needs_input_grad[3:])
        if spikes is not None:
            dt = np.float64 if core.dtype == "float64" else np.float32
            args = (_np(spikes.ptr, np.int64), _np(spikes.idx, np.int32),
                    _np(spikes.val, dt), int(spikes.steps))
            r = core.forward_spikes(*args, train=train)
            y, ctx.token = r if train else (r, None)
        elif train:
            y, ctx.token = core.forward_train(x.detach().cpu().numpy())
        else:
            y = core.forward(x.detach().cpu().numpy())
        ctx.module = module
        ctx.core = core
        ctx.spikes = spikes
        ctx.save_for_backward(x, *params)
        return torch.from_numpy(y)

    @staticmethod
    def backward(ctx, dy):
        x, *params = ctx.saved_tensors
        module, core = ctx.module, ctx.core
        dyn = dy.detach().cpu().contiguous().numpy()
        # The parameters cannot have changed in place since forward (an optimiser step):
        # autograd's version counter check makes that an error before we get here.
        if ctx.token is not None and core.train_token == ctx.token:
            grads = core.backward(dyn, ctx.token)
        else:
            module._sync()
            xn = (x.detach().cpu().numpy() if ctx.spikes is None else
                  _dense(ctx.spikes, core.config["num_input"], dyn.dtype))
            grads = core.grad(xn, dyn)
        out = [None, None, None]
        for name, p in zip(module._trainable_names(), params):
            g = grads.get(name)
            out.append(None if g is None else torch.from_numpy(g).to(p.dtype))
        return tuple(out)


class ELM(torch.nn.Module):
    def __init__(self, seed=None, dtype=None, **kwargs):
        super().__init__()
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        dt = torch.get_default_dtype() if dtype is None else dtype
        core = _elm.Model(dict(kwargs), seed=seed, dtype=_dtype_name(dt))
        self._build(core)

    @classmethod
    def _from_core(cls, core):
        self = cls.__new__(cls)
        torch.nn.Module.__init__(self)
        self._build(core)
        return self

    def _build(self, core):
        cfg = core.config
        p = core.parameters()
        dt = torch.float64 if core.dtype == "float64" else torch.float32
        self.config = cfg
        self._cores = {core.dtype: core}
        self._tau_name = "tau_b" if cfg.get("elm_version") == "v2" else "tau_s"

        def param(name, grad=True):
            return torch.nn.Parameter(torch.tensor(p[name], dtype=dt), requires_grad=grad)

        # Registration order gives the reference's state-dict order.
        self._proto_w_s = param("_proto_w_s")
        setattr(self, self._tau_name, param(self._tau_name, grad=False))
        self._proto_tau_m = param("_proto_tau_m", grad=bool(cfg["learn_memory_tau"]))
        if "input_to_synapse_indices" in p:
            self.register_buffer("input_to_synapse_indices",
                                 torch.tensor(p["input_to_synapse_indices"]))
            self.register_buffer("valid_indices_mask", torch.tensor(p["valid_indices_mask"]))
        else:  # the reference registers both as empty tensors of the default dtype
            self.register_buffer("input_to_synapse_indices", torch.empty(0, dtype=dt))
            self.register_buffer("valid_indices_mask", torch.empty(0, dtype=dt))
        layers = []
        n = 0
        while f"mlp.network.{2 * n}.weight" in p:
            n += 1
        act = torch.nn.SiLU if cfg["mlp_activation"] == "silu" else torch.nn.ReLU
        for i in range(n):
            w = p[f"mlp.network.{2 * i}.weight"]
            lin = torch.nn.Linear(w.shape[1], w.shape[0], dtype=dt)
            with torch.no_grad():
                lin.weight.copy_(torch.tensor(w))
                lin.bias.copy_(torch.tensor(p[f"mlp.network.{2 * i}.bias"]))
            layers.append(lin)
            if i + 1 < n:
                layers.append(act())
        self.mlp = torch.nn.Module()
        self.mlp.network = torch.nn.Sequential(*layers)
        wy = p["w_y.weight"]
        self.w_y = torch.nn.Linear(wy.shape[1], wy.shape[0], dtype=dt)
        with torch.no_grad():
            self.w_y.weight.copy_(torch.tensor(wy))
            self.w_y.bias.copy_(torch.tensor(p["w_y.bias"]))

    def _trainable_names(self):
        return [n for n, q in self.named_parameters() if q.requires_grad]

    def _core(self):
        dt = _dtype_name(self._proto_w_s.dtype)
        core = self._cores.get(dt)
        if core is None:
            core = _elm.Model(self.config, dtype=dt)
            self._cores[dt] = core
        return core

    def _sync(self):
        """The C model of the parameters' dtype, holding the module's current values."""
        core = self._core()
        vals = {}
        for name, t in self.state_dict().items():
            if t.numel() == 0:
                continue
            vals[name] = t.detach().cpu().numpy()
        core.set_parameters(vals)
        return core

    def forward(self, x):
        """x: a tensor [B, T, num_input] (or [T, num_input]), or a Spikes batch."""
        spikes = None
        if isinstance(x, Spikes):
            spikes, x = x, torch.empty(0, dtype=self._proto_w_s.dtype)
        elif not isinstance(x, torch.Tensor):
            raise TypeError(f"ELM.forward takes a torch.Tensor or elm.torch.Spikes, not "
                            f"{type(x).__name__}")
        if x.device.type != "cpu":
            raise ValueError("elm computes on the CPU: move the input there (x.cpu())")
        names = self._trainable_names()
        params = dict(self.named_parameters())
        return _ELMFunction.apply(x, self, spikes, *[params[n] for n in names])

    def to_model(self):
        """An elm.Model holding a copy of the module's current parameters: to save in elm's
        format (.save), evaluate with elm.Task, or run from numpy (forward, step)."""
        core = _elm.Model(self.config, dtype=_dtype_name(self._proto_w_s.dtype))
        core.set_parameters({name: t.detach().cpu().numpy()
                             for name, t in self.state_dict().items() if t.numel()})
        return core

    def extra_repr(self):
        c = self.config
        return (f"elm_version={c.get('elm_version')}, num_input={c['num_input']}, "
                f"num_output={c['num_output']}, num_memory={c['num_memory']}")


def load(path, dtype=None):
    """An ELM module from a .safetensors file or a folder holding model.safetensors."""
    dt = torch.get_default_dtype() if dtype is None else dtype
    return ELM._from_core(_elm.load(path, dtype=_dtype_name(dt)))
