"""elm: the Expressive Leaky Memory neuron (Spieler et al., ICLR 2024) from Python, at C speed.

    import elm
    m = elm.load("num_memory_15")                  # .safetensors file or folder, as the CLI's MODEL
    y = m.forward(x)                               # x [B, T, num_input] -> y [B, T, num_output]
    g = m.grad(x, dloss)                           # d sum(y * dloss) / d tensor, by name
    s = m.state(batch=1); y_t = m.step(s, x_t)     # one time step at a time

    m = elm.Model({"num_input": 20, "num_output": 3, "num_memory": 7}, seed=0, dtype="float64")

elm.torch.ELM is a torch.nn.Module with the reference's constructor and state dict (import
elm.torch; needs PyTorch). Errors raise ValueError, TypeError or OSError with elm's message.
"""
from ._elm import Model, State, Task, Trainer, fma_fuses, load, set_num_threads, __version__
from . import data
from ._train import knobs, tasks, train

__all__ = ["Model", "State", "Task", "Trainer", "data", "fma_fuses", "knobs", "load",
           "set_num_threads", "tasks", "train", "__version__"]
