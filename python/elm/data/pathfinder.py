"""Long Range Arena Pathfinder images through elm's reader (libpng).

read(path, split="all", difficulty=None, size=0, split_seed=20240101, limit=None) -> dict
    path: a difficulty folder (holding metadata/), a pathfinderNN folder or a folder of them;
    difficulty and size pick one when several are there. split: "train", "valid", "test"
    (elm's 80/10/10 split, the one the CLI and the trainer use, fixed by split_seed) or "all"
    (metadata order). limit: read only the split's first `limit` images.
      images      uint8 [N, S, S]   8-bit grayscale
      labels      int64 [N]         1: the two circles are connected
      folder, difficulty, image_size

    The model's input sequence of an image is its pixels in row-major order, each
    (p / 255 - 0.5) / 0.5: images.reshape(N, S * S, 1) / 127.5 - 1.
"""
from .. import _elm

__all__ = ["read"]


def read(path, split="all", difficulty=None, size=0, split_seed=20240101, limit=None):
    return _elm.pathfinder_read(path, split=split, difficulty=difficulty, size=int(size),
                                split_seed=int(split_seed), limit=-1 if limit is None else int(limit))
