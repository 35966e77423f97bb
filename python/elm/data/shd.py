"""Spiking Heidelberg Digits (Cramer et al. 2020) through elm's HDF5 reader.

read(path, dense=False, bin_ms=10.0, duration_ms=1000.0) -> dict
    path: an SHD file (shd_train.h5, shd_test.h5, or one in that layout). The whole file is
    checked (dataset types, matching lengths, channel ids, finite non-negative times, labels)
    and binned as elm's SHD task bins it: bin b holds the spikes with
    b * bin_ms <= t * 1000 < (b + 1) * bin_ms; spikes at or after duration_ms are dropped.

    N samples, T = ceil(duration_ms / bin_ms) bins, C = 700 channels:
      labels        int64 [N]            0..19
      speakers      int64 [N] or None    extra/speaker when the file has it
      keys          list of str          extra/keys (class names), [] when absent
      inputs        float32 [N, T, C]    (dense=True) spike counts per bin and channel
      spike_ptr     int64 [N * T + 1]    (dense=False) row n * T + t holds the entries
      spike_idx     int32 [nnz]          spike_ptr[r] .. spike_ptr[r + 1]: channels, ascending,
      spike_count   float32 [nnz]        and their counts (the nonzeros of inputs)
      num_bins, num_channels, bin_ms, duration_ms
      total_spikes, kept_spikes          spikes in the file, and those inside the window

    dense=True needs N * T * C * 4 bytes (2.3 GB for shd_train.h5): prefer the spike lists for
    whole files.
"""
from .. import _elm

__all__ = ["read"]


def read(path, dense=False, bin_ms=10.0, duration_ms=1000.0):
    return _elm.shd_read(path, dense=bool(dense), bin_ms=float(bin_ms),
                         duration_ms=float(duration_ms))
