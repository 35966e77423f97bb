"""elm.data: the data sets of elm's tasks read by elm's own C readers, as numpy arrays.

    from elm.data import neuronio, shd, pathfinder
    d = neuronio.read("L5PC_sim__...p")        # a NeuronIO pickle, never through pickle.load
    d = shd.read("shd_train.h5")               # SHD (HDF5), binned as elm's SHD task bins
    d = pathfinder.read("pathfinder32", split="test")

Each reader checks the file as the CLI and the trainer do; a bad file raises ValueError or
OSError naming the file and the problem. Spike lists follow elm's sparse-input layout: row
r = sample * T + t holds entries spike_ptr[r] .. spike_ptr[r + 1] of spike_idx.
"""
from . import neuronio, pathfinder, shd

__all__ = ["neuronio", "shd", "pathfinder"]
