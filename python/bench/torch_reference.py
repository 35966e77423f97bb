"""A plain-PyTorch ELM neuron written from the model's equations (docs/MODEL.md, sections 1-3),
in the style of the authors' reference: a Python loop over time steps of torch operations, with
autograd differentiating the unrolled loop. It is the baseline of python/bench/bench_torch.py;
python/tests/test_bench_reference.py checks it against elm.torch (outputs and every gradient).

    ref = TorchELM.from_elm(net)   # net: an elm.torch.ELM; same parameters, same config
    y = ref(x)                     # x [B, T, num_input] -> [B, T, num_output]
"""

import torch

__all__ = ["TorchELM"]


class TorchELM(torch.nn.Module):
    def __init__(self, config, state):
        super().__init__()
        c = dict(config)
        self.v2 = c.get("elm_version") == "v2"
        self.M = c["num_memory"]
        self.dt = float(c.get("delta_t", 1.0))
        self.lam = float(c["lambda_value"])
        self.tau_min, self.tau_max = float(c["memory_tau_min"]), float(c["memory_tau_max"])
        if self.v2:
            self.tau_max = max(self.tau_max, self.tau_min + 3e-6)
        self.P = c["num_synapse_per_branch"]
        self.R = c["num_branch"]
        dt = state["_proto_w_s"].dtype
        self.w_s_proto = torch.nn.Parameter(state["_proto_w_s"].clone())
        self.tau_m_proto = torch.nn.Parameter(state["_proto_tau_m"].clone(),
                                              requires_grad=bool(c["learn_memory_tau"]))
        tau = state["tau_b" if self.v2 else "tau_s"].clone()
        self.register_buffer("tau", tau)
        idx = state.get("input_to_synapse_indices")
        if idx is not None and idx.numel():
            self.register_buffer("route_idx", idx.long().clone())
            self.register_buffer("route_mask", state["valid_indices_mask"].to(dt).clone())
        else:
            self.route_idx = None
        layers, n = [], 0
        while f"mlp.network.{2 * n}.weight" in state:
            n += 1
        act = torch.nn.SiLU if c["mlp_activation"] == "silu" else torch.nn.ReLU
        for i in range(n):
            w = state[f"mlp.network.{2 * i}.weight"]
            lin = torch.nn.Linear(w.shape[1], w.shape[0], dtype=dt)
            with torch.no_grad():
                lin.weight.copy_(w)
                lin.bias.copy_(state[f"mlp.network.{2 * i}.bias"])
            layers.append(lin)
            if i + 1 < n:
                layers.append(act())
        self.mlp = torch.nn.Sequential(*layers)
        wy = state["w_y.weight"]
        self.w_y = torch.nn.Linear(wy.shape[1], wy.shape[0], dtype=dt)
        with torch.no_grad():
            self.w_y.weight.copy_(wy)
            self.w_y.bias.copy_(state["w_y.bias"])

    @classmethod
    def from_elm(cls, net):
        """The same neuron as the elm.torch.ELM `net` (a copy of its parameters)."""
        return cls(net.config, {k: v.detach() for k, v in net.state_dict().items()})

    def forward(self, x):
        B, T, _ = x.shape
        w_s = torch.relu(self.w_s_proto)
        tau_m = self.tau_min + (self.tau_max - self.tau_min) * torch.sigmoid(self.tau_m_proto)
        tau_m = torch.clamp(tau_m, min=1e-6)
        kappa_m = torch.exp(-self.dt / tau_m)
        kappa_t = torch.exp(-self.dt / torch.clamp(self.tau, min=1e-6))
        gain = (1 - torch.exp(-self.dt * self.lam / tau_m)) if self.v2 else self.lam * (1 - kappa_m)
        u = x[..., self.route_idx] * self.route_mask if self.route_idx is not None else x
        syn = u * w_s                                   # [B, T, S]
        if self.v2:                                     # traces per branch
            inp = syn.view(B, T, self.R, self.P).sum(-1)
        else:
            inp = syn
        trace = torch.zeros(B, inp.shape[-1], dtype=x.dtype)
        m = torch.zeros(B, self.M, dtype=x.dtype)
        ys = []
        for t in range(T):
            trace = kappa_t * trace + inp[:, t]
            b = trace if self.v2 else trace.view(B, self.R, self.P).sum(-1)
            z = torch.cat([b, kappa_m * m], dim=-1)
            d = 1.7159 * torch.tanh((2.0 / 3.0) * self.mlp(z))
            m = kappa_m * m + gain * d
            ys.append(self.w_y(m))
        return torch.stack(ys, dim=1)

    def grads_by_elm_name(self):
        """Gradients under elm's / the reference's tensor names."""
        out = {"_proto_w_s": self.w_s_proto.grad, "_proto_tau_m": self.tau_m_proto.grad,
               "w_y.weight": self.w_y.weight.grad, "w_y.bias": self.w_y.bias.grad}
        for i, layer in enumerate(self.mlp):
            if isinstance(layer, torch.nn.Linear):
                out[f"mlp.network.{i}.weight"] = layer.weight.grad
                out[f"mlp.network.{i}.bias"] = layer.bias.grad
        return {k: v for k, v in out.items() if v is not None}
