"""NeuronIO simulations (Beniaguev et al. 2021) through elm's safe reader.

read(path, dense=False) -> dict
    path: a NeuronIO pickle (the released Python 2 files and Python 3 ones), a folder of them
    (the reference's glob "*sim__*", sorted by name), an elm cache file (.nioc) or a folder of
    caches (`elm data convert neuronio`). The pickle is parsed by elm's C pickle subset, which
    accepts only the numpy data these files hold: it never runs pickle.load, which executes
    whatever a downloaded file asks for.

    S simulations of T steps (1 ms) each, n_in inputs (1278: 639 excitatory, then 639
    inhibitory):
      soma               float32 [S, T]   somatic voltage in mV, unclipped
      output_spikes      bool [S, T]      1 in the 1 ms bin of each output spike (the
                                          reference's spike target: bin int(t - 0.5))
      output_spike_times list of S float32 arrays, ms
      inputs             bool [S, T, n_in]   (dense=True) 1 where an input spiked, unsigned
      spike_ptr          int64 [S * T + 1]   (dense=False) row pointers: row k * T + t ...
      spike_idx          int32 [nnz]         ... holds the ids of the inputs that spiked
      num_inputs, T      ints
      files              list of (path, first simulation, count)

    dense=True needs S * T * n_in bytes (1 GB for one released file of 128 simulations); the
    spike lists need 4 bytes a spike. Inputs are unsigned spikes; the model's input is spikes * sign, sign +1 for the first
    n_in / 2 inputs and -1 for the rest (what elm's NeuronIO task feeds the model).
"""
from .. import _elm

__all__ = ["read", "input_sign"]


def read(path, dense=False):
    return _elm.neuronio_read(path, dense=bool(dense))


def input_sign(num_inputs=1278):
    """The synapse sign per input: +1 for the excitatory first half, -1 for the rest."""
    import numpy as np
    s = np.ones(num_inputs, np.float32)
    s[num_inputs // 2:] = -1
    return s
