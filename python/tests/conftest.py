"""Shared helpers for elm's Python tests: where ../shared is (a test that needs it skips when it
is absent, and fails instead under ELM_REQUIRE_SHARED=1, as CI sets), where the elm CLI is, and
a small safetensors reader (the parity vectors are safetensors; the reader is the format's spec:
8-byte length, JSON header, raw little-endian data)."""
import json
import os
import struct

import numpy as np
import pytest

SHARED = os.environ.get("ELM_SHARED") or os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "shared")

_DT = {"F64": "<f8", "F32": "<f4", "I64": "<i8", "BOOL": "?"}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    meta = head.pop("__metadata__", {})
    out = {}
    for k, v in head.items():
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(data[a:b], dtype=_DT[v["dtype"]]).reshape(v["shape"]).copy()
    return out, meta


ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def missing_shared(what):
    """../shared lacks `what`: skip, or fail when ELM_REQUIRE_SHARED=1 (CI always has it)."""
    msg = f"{what} is absent (the shared reference data beside the checkout)"
    if os.environ.get("ELM_REQUIRE_SHARED") == "1":
        pytest.fail("ELM_REQUIRE_SHARED=1 but " + msg)
    pytest.skip(msg)


def shared_path(*parts):
    p = os.path.join(SHARED, *parts)
    if not os.path.exists(p):
        missing_shared(p)
    return p


def cli_path():
    """The elm command line (CTest sets ELM_CLI; else build/elm of this checkout)."""
    p = os.environ.get("ELM_CLI") or os.path.join(ROOT, "build", "elm")
    if not os.access(p, os.X_OK):
        pytest.skip(f"{p} is not built (make)")
    return p
