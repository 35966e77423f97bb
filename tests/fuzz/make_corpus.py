#!/usr/bin/python3
"""make_corpus.py - writes the seed corpora of the fuzz targets under tests/fuzz/corpus/<target>/.

Seeds are small valid inputs of every shape the parsers accept (so the fuzzer starts deep inside
the formats) plus a few near-misses. Run with the system Python (numpy, h5py):

    /usr/bin/python3 tests/fuzz/make_corpus.py [--only TARGET ...]   (TARGET "findings": the
                                                                     constructed findings)

Every file stays below 50 KB and the whole corpus below 1 MB (checked at the end).
"""
import io
import json
import os
import pickle
import struct
import sys
import zlib

import numpy as np

# h5py must not need a lock: the files are written once, by this script alone.
os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
ST_DT = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "I8": np.int8, "U8": np.uint8,
         "I16": np.int16, "I32": np.int32, "I64": np.int64, "BOOL": np.bool_}


def out(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def st_bytes(tensors, meta=None):
    """safetensors image: tensors is a list of (name, dtype string, numpy array)."""
    header, blobs, off = {}, [], 0
    for name, dt, a in tensors:
        a = np.ascontiguousarray(np.asarray(a, dtype=ST_DT[dt]))
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if meta:
        header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


# ---- models: the parameter table of src/core/model.c for a configuration ----

def model_tensors(c, dt="F32", rng=None):
    rng = rng or np.random.default_rng(0)
    I, O, M = c["num_input"], c["num_output"], c["num_memory"]
    H = c.get("mlp_hidden_size") or 2 * M
    R = c.get("num_branch") or I
    P = c.get("num_synapse_per_branch", 1)
    S, L = R * P, c.get("mlp_num_layers", 1) + 1
    v2 = c.get("elm_version") == "v2"
    t = [("_proto_w_s", dt, np.full(S, 0.5))]
    for l in range(L):
        fi = R + M if l == 0 else H
        fo = M if l == L - 1 else H
        t.append((f"mlp.network.{2 * l}.weight", dt, rng.uniform(-0.5, 0.5, (fo, fi))))
        t.append((f"mlp.network.{2 * l}.bias", dt, rng.uniform(-0.5, 0.5, fo)))
    t.append(("w_y.weight", dt, rng.uniform(-0.5, 0.5, (O, M))))
    t.append(("w_y.bias", dt, rng.uniform(-0.5, 0.5, O)))
    t.append(("_proto_tau_m", dt, np.linspace(-2, 2, M)))
    t.append(("tau_b" if v2 else "tau_s", dt, np.full(R if v2 else S, 5.0)))
    routing = c.get("input_to_synapse_routing")
    if routing:
        idx = np.arange(S) % I
        if routing == "neuronio_routing":
            t.append(("input_to_synapse_indices", "I64", idx))
            t.append(("valid_indices_mask", "BOOL", np.ones(S, bool)))
        else:
            t.append(("input_to_synapse_indices", "I64", idx))
            t.append(("valid_indices_mask", "I64", np.ones(S, np.int64)))
    else:
        t.append(("input_to_synapse_indices", dt, np.zeros(0)))
        t.append(("valid_indices_mask", dt, np.zeros(0)))
    return t


def meta_of(c):
    m = {}
    for k, v in c.items():
        if v is None:
            m[k] = "null"
        elif isinstance(v, bool):
            m[k] = "true" if v else "false"
        else:
            m[k] = str(v)
    return m


MODELS = {
    "v1_plain": {"num_input": 3, "num_output": 2, "num_memory": 2},
    "v1_l0_silu": {"num_input": 2, "num_output": 1, "num_memory": 3, "mlp_num_layers": 0,
                   "mlp_activation": "silu", "learn_memory_tau": True},
    "v1_l2": {"num_input": 2, "num_output": 2, "num_memory": 2, "mlp_num_layers": 2,
              "mlp_hidden_size": 3},
    "v1_branch": {"num_input": 6, "num_output": 2, "num_memory": 2, "num_branch": 3,
                  "num_synapse_per_branch": 2},
    "v1_route": {"num_input": 5, "num_output": 2, "num_memory": 2, "num_branch": 2,
                 "num_synapse_per_branch": 3, "input_to_synapse_routing": "neuronio_routing"},
    "v2_plain": {"elm_version": "v2", "num_input": 3, "num_output": 2, "num_memory": 2},
    "v2_random": {"elm_version": "v2", "num_input": 4, "num_output": 1, "num_memory": 2,
                  "num_branch": 2, "num_synapse_per_branch": 3,
                  "input_to_synapse_routing": "random_routing", "tau_b_value": 7.5},
}


def gen_safetensors():
    rng = np.random.default_rng(1)
    for dt in ST_DT:
        out("safetensors", f"dtype_{dt}", st_bytes([("a", dt, (rng.uniform(-3, 3, (2, 3))))]))
    out("safetensors", "empty_header", st_bytes([]))
    out("safetensors", "metadata_only", st_bytes([], {"k": "v", "format": "pt"}))
    out("safetensors", "scalar_and_empty",
        st_bytes([("s", "F64", np.array(1.5)), ("e", "F32", np.zeros((0, 4)))], {"x": "y"}))
    out("safetensors", "model_v1", st_bytes(model_tensors(MODELS["v1_plain"]),
                                            meta_of(MODELS["v1_plain"])))
    out("safetensors", "three_d", st_bytes([("t", "I32", np.arange(24).reshape(2, 3, 4))]))


def gen_model():
    for name, c in MODELS.items():
        out("model", name, st_bytes(model_tensors(c), meta_of(c)))
    c = MODELS["v1_plain"]
    out("model", "v1_f16", st_bytes(model_tensors(c, "F16"), meta_of(c)))
    out("model", "v1_f64", st_bytes(model_tensors(c, "F64"), meta_of(c)))
    # Folder form: tensors without metadata and model_config.json after the separator.
    for name in ("v1_branch", "v2_random"):
        c = MODELS[name]
        out("model", name + "_folder",
            st_bytes(model_tensors(c)) + b"\n#CONFIG#\n" + json.dumps(c).encode())
    # Near-misses: a missing tensor, a NaN.
    t = model_tensors(c)
    out("model", "missing_tensor", st_bytes(t[1:], meta_of(c)))
    c = MODELS["v1_plain"]
    t = model_tensors(c)
    t[1] = (t[1][0], "F32", np.full(t[1][2].shape, np.nan))
    out("model", "nan_weight", st_bytes(t, meta_of(c)))


def npy_bytes(a, version=1):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, version=(version, 0))
    return buf.getvalue()


def gen_npy():
    rng = np.random.default_rng(2)
    for dt in ("<f2", "<f4", "<f8", "|i1", "|u1", "<i2", "<i4", "<i8", "|b1"):
        a = (rng.uniform(-5, 5, (2, 3)) > 0) if dt == "|b1" else rng.uniform(-5, 5, (2, 3))
        out("npy", "dtype_" + dt[1:], npy_bytes(np.asarray(a).astype(dt)))
    out("npy", "v2", npy_bytes(np.arange(5, dtype="<i4"), 2))
    out("npy", "v3", npy_bytes(np.arange(3, dtype="<f8"), 3))
    out("npy", "scalar", npy_bytes(np.array(2.5, dtype="<f4")))
    out("npy", "empty", npy_bytes(np.zeros((0, 7), dtype="<f4")))
    out("npy", "four_d", npy_bytes(np.zeros((1, 2, 1, 3), dtype="<i2")))
    out("npy", "fortran", npy_bytes(np.asfortranarray(np.zeros((2, 3), dtype="<f4"))))
    out("npy", "big_endian", npy_bytes(np.zeros(3, dtype=">f4")))

    # Headers numpy writes differently or refuses (D14): the header is a dict literal, parsed as
    # one. Each is the 10-byte preamble, the dict padded to 64 bytes, and 8 bytes of data.
    def hdr(d, data=b"\0" * 8):
        n = len(d) + 1
        n += (64 - (10 + n) % 64) % 64
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", n) + d.encode().ljust(n - 1) + b"\n" + data
    out("npy", "hdr_double_quotes", hdr('{"descr": "<f4", "fortran_order": False, "shape": (2,)}'))
    out("npy", "hdr_repeated_key",
        hdr("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), 'descr': '<f4'}"))
    out("npy", "hdr_decoy_key",
        hdr("{'note': \"'shape': (2,)\", 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}"))
    out("npy", "hdr_no_commas", hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (1 2 1)}"))


def gen_config():
    for name, c in MODELS.items():
        out("config", name + ".json", json.dumps(c, indent=1))
    out("config", "full.json", json.dumps({
        "num_input": 8, "num_output": 2, "num_memory": 4, "lambda_value": 5.0,
        "mlp_num_layers": 1, "mlp_hidden_size": None, "mlp_activation": "relu",
        "tau_s_value": 5.0, "memory_tau_min": 1.0, "memory_tau_max": 150.0,
        "learn_memory_tau": False, "w_s_value": 0.5, "num_branch": None,
        "num_synapse_per_branch": 1, "input_to_synapse_routing": None, "delta_t": 1.0,
        "num_synapse": 8, "num_mlp_input": 12}))
    out("config", "unknown_key.json", '{"num_input": 2, "num_outputs": 1}')
    out("config", "not_object.json", "[1, 2, 3]")
    out("config", "nested.json", '{"num_input": {"a": [1, {"b": null}]}}')


# ---- NeuronIO: pickles as the authors' simulation script writes them, and .nioc caches ----

def nio_dict(n_seg=2, T=20, n_sims=1, py2_scalars=False, rng=None):
    rng = rng or np.random.default_rng(3)
    sims = []
    for _ in range(n_sims):
        def times():
            d = {}
            for seg in range(n_seg):
                t = np.sort(rng.integers(0, T, rng.integers(0, 4)))
                key = np.int64(seg) if py2_scalars else seg
                d[key] = [np.int64(x) for x in t] if py2_scalars else t.astype(np.int64)
            return d
        sims.append({"exInputSpikeTimes": times(), "inhInputSpikeTimes": times(),
                     "somaVoltageLowRes": (-70 + 5 * rng.standard_normal(T)).astype(np.float16),
                     "outputSpikeTimes": np.array([3.5, T - 0.6][:rng.integers(0, 3)],
                                                  dtype=np.float16)})
    return {"Params": {"allSegmentsType": ["basal"] * n_seg, "totalSimDurationInSec": T / 1000,
                       "other": (1, 2.5, None, True, b"x")},
            "Results": {"listOfSingleSimulationDicts": sims}}


def nio_memo_dicts():
    """NeuronIO dicts whose objects are shared: Python's pickler writes the second and later
    references as BINGET (memo index < 256) or LONG_BINGET."""
    d = {}
    # One spike list for every segment of both maps (keys in descending order), with repeats.
    n_seg, T = 6, 20
    lst = [0, 3, 3, 7, 0]
    base = nio_dict(n_seg=n_seg, T=T)
    sim = base["Results"]["listOfSingleSimulationDicts"][0]
    sim["exInputSpikeTimes"] = {s: lst for s in reversed(range(n_seg))}
    sim["inhInputSpikeTimes"] = {s: lst for s in range(n_seg)}
    d["nio_memo_shared_list"] = base
    # One simulation dict referenced from every row, its soma array shared too.
    base = nio_dict(n_seg=2, T=T)
    sim = base["Results"]["listOfSingleSimulationDicts"][0]
    base["Results"]["listOfSingleSimulationDicts"] = [sim] * 4
    d["nio_memo_shared_sim"] = base
    # More than 256 memoized objects before the shared one, so references use LONG_BINGET.
    n_seg = 300
    base = nio_dict(n_seg=n_seg, T=T)
    sim = base["Results"]["listOfSingleSimulationDicts"][0]
    arr = np.array([1, 2, 5], dtype=np.int64)
    sim["exInputSpikeTimes"] = {s: [s % T] for s in range(n_seg)}
    sim["inhInputSpikeTimes"] = {s: arr for s in range(n_seg)}
    d["nio_memo_long_binget"] = base
    return d


def gen_pickle(target):
    out(target, "nio_p2", pickle.dumps(nio_dict(), protocol=2))
    out(target, "nio_p0", pickle.dumps(nio_dict(T=10), protocol=0))
    out(target, "nio_p4", pickle.dumps(nio_dict(n_sims=2), protocol=4))
    out(target, "nio_py2_scalars", pickle.dumps(nio_dict(py2_scalars=True, T=8), protocol=2))
    out(target, "nio_py2_scalars_p0", pickle.dumps(nio_dict(py2_scalars=True, T=5), protocol=0))
    # Memo references (BINGET / LONG_BINGET): one object reached from many places. Without such
    # seeds the fuzzer never built one, and missed D2 and D3 (docs/RELIABILITY.md): a shared list
    # expanded once per reference, sorted quadratically.
    for name, d in nio_memo_dicts().items():
        out(target, name, pickle.dumps(d, protocol=2))
    out(target, "nio_memo_shared_list_p0", pickle.dumps(nio_memo_dicts()["nio_memo_shared_list"],
                                                        protocol=0))
    if target == "pickle":
        misc = {"list": [1, -2, 2**40, -2**63, 1.5, "text", "ünï", b"\x00\xff", None, True, False],
                "tuple": (1, (2, (3, ()))), "nested": {"a": {"b": [[], {}, ()]}},
                "f32_2d": np.arange(6, dtype=np.float32).reshape(2, 3),
                "big_endian": np.arange(3, dtype=">i4"), "bool": np.array([True, False]),
                "f64": np.array([0.5, -1e300]), "u8": np.arange(4, dtype=np.uint8),
                "empty": np.zeros((0,), np.float16), "scalar0d": np.array(3.0)}
        for proto in (0, 1, 2, 3, 4):
            out(target, f"misc_p{proto}", pickle.dumps(misc, protocol=proto))
        out(target, "bigint_p2", pickle.dumps([2**70], protocol=2))
        shared = [1, 2]
        out(target, "memo_refs", pickle.dumps({"a": shared, "b": shared, "c": [shared] * 3}, 2))


def fnv1a(b):
    h = 0xcbf29ce484222325
    for x in b:
        h ^= x
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def pad8(b):
    return b + b"\0" * ((8 - len(b) % 8) % 8)


def nioc_bytes(sims, n_in):
    """A .nioc image (docs/DATA.md): sims is a list of (spikes per step, soma, out_times, f16)."""
    blocks, entries, off = [], [], 64
    for steps, soma, outs, f16 in sims:
        T = len(steps)
        ptr = np.cumsum([0] + [len(s) for s in steps]).astype("<i8")
        idx = np.array([i for s in steps for i in sorted(s)], dtype="<u2")
        sb = np.asarray(soma, "<f2" if f16 else "<f4").tobytes()
        blk = ptr.tobytes() + pad8(idx.tobytes()) + pad8(sb) + pad8(
            np.asarray(outs, "<f4").tobytes())
        entries.append(struct.pack("<IIII QQQQ 16x", T, len(outs), 1 if f16 else 2, 0,
                                   len(idx), off, len(blk), fnv1a(blk)))
        blocks.append(blk)
        off += len(blk)
    table = b"".join(entries)
    total = off + len(table)
    head = b"ELMNIOC\0" + struct.pack("<IIII QQQ 16x", 1, 64, len(sims), n_in, off, total,
                                      fnv1a(table))
    return head + b"".join(blocks) + table


def gen_nio_cache():
    s1 = ([[0, 3], [], [1]], [-70.0, -65.5, -60.25], [1.5], True)
    s2 = ([[], [2], [0, 1, 3], [], [3]], [-71.0, -70.0, -69.0, -50.0, -72.0], [], False)
    # The first byte is the driver's control byte (bits: repair size, block sums, table sum).
    out("nio_cache", "one_sim", b"\x07" + nioc_bytes([s1], 4))
    out("nio_cache", "two_sims", b"\x07" + nioc_bytes([s1, s2], 4))
    out("nio_cache", "two_sims_norepair", b"\x00" + nioc_bytes([s2, s1], 4))


# ---- SHD (HDF5) ----

def gen_shd():
    """Inputs of fuzz_shd (a description the driver writes as HDF5; see its opening comment)."""
    rng = np.random.default_rng(5)

    def desc(flags, n, decl=0):
        b = struct.pack("<HB", flags, n)
        for _ in range(n):
            k = int(rng.integers(0, 6))
            b += bytes([k, 0])
            for _ in range(k):
                b += struct.pack("<HH", int(rng.integers(0, 60000)), int(rng.integers(0, 700)))
        b += bytes(int(x) for x in rng.integers(0, 20, n))
        if flags & 0x400:
            b += struct.pack("<I", decl)
        return b

    out("shd", "f16_plain", desc(0, 5))
    out("shd", "f32_speaker_keys", desc(0x1 | 0x8 | 0x20 | 0x1000, 4))
    out("shd", "f64_i32_vlen_keys", desc(0x2 | 0x4 | 0x8 | 0x40, 3))
    out("shd", "empty", desc(0, 0))
    out("shd", "labels_short", desc(0x800, 3))
    out("shd", "declared_small", desc(0x400, 2, 100))


def gen_shd_raw():
    import h5py
    rng = np.random.default_rng(4)
    d = os.path.join(CORPUS, "shd_raw")
    os.makedirs(d, exist_ok=True)

    def write(name, n=4, tdt="float16", udt="uint16", extra=True, keys_vlen=False):
        with h5py.File(os.path.join(d, name), "w", libver="earliest") as f:
            times = f.create_dataset("spikes/times", (n,), dtype=h5py.vlen_dtype(np.dtype(tdt)))
            units = f.create_dataset("spikes/units", (n,), dtype=h5py.vlen_dtype(np.dtype(udt)))
            for i in range(n):
                k = int(rng.integers(0, 6))
                times[i] = np.sort(rng.uniform(0, 1.2, k)).astype(tdt)
                units[i] = rng.integers(0, 700, k).astype(udt)
            f.create_dataset("labels", data=rng.integers(0, 20, n).astype("u2"))
            if extra:
                f.create_dataset("extra/speaker", data=rng.integers(0, 5, n).astype("u2"))
                keys = ["null", "eins", "zwei"]
                if keys_vlen:
                    f.create_dataset("extra/keys", data=keys, dtype=h5py.string_dtype())
                else:
                    f.create_dataset("extra/keys", data=np.array(keys, dtype="S6"))
                f.create_dataset("extra/meta_info/gender", data=np.array([b"f", b"m"]))

    write("f16_extra")
    write("f32_plain", n=5, tdt="float32", extra=False)
    write("f64_vlen_keys", n=3, tdt="float64", udt="int32", keys_vlen=True)
    write("empty", n=0, extra=False)
    # The tiny fixture of tests/shd, as committed.
    fx = os.path.join(HERE, "..", "fixtures", "shd_tiny.h5")
    if os.path.exists(fx):
        with open(fx, "rb") as f:
            out("shd_raw", "fixture_shd_tiny.h5", f.read())


# ---- Pathfinder: PNG files and metadata text ----

def png_bytes(w, h, raw, ct=0, depth=8, interlace=0, extra=b""):
    def chunk(t, b):
        return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" +
            chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ct, 0, 0, interlace)) + extra +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def gen_pf_png():
    rows = lambda w, h, bpp: b"".join(b"\0" + bytes((x * 7 + y) % 256 for x in range(w * bpp))
                                      for y in range(h))
    out("pf_png", "gray8", png_bytes(8, 8, rows(8, 8, 1)))
    out("pf_png", "gray8_wide", png_bytes(16, 3, rows(16, 3, 1)))
    out("pf_png", "gray8_text_chunk", png_bytes(4, 4, rows(4, 4, 1),
                                               extra=b"\0\0\0\x05tEXta\0bcd\0\0\0\0"))
    out("pf_png", "gray16", png_bytes(4, 4, rows(4, 4, 2), depth=16))
    out("pf_png", "rgb8", png_bytes(4, 4, rows(4, 4, 3), ct=2))
    out("pf_png", "gray_alpha", png_bytes(4, 4, rows(4, 4, 2), ct=4))
    # Adam7 interlaced 1x1 (one pass holds the single pixel).
    out("pf_png", "interlaced_1x1", png_bytes(1, 1, b"\0\x80", interlace=1))


def gen_pf_meta():
    line = "imgs/0 sample_{i}.png {i} {label} 1 14 0 0 0 0 0\n"
    out("pf_meta", "four", "".join(line.format(i=i, label=i % 2) for i in range(4)))
    out("pf_meta", "crlf_tabs", "imgs/0\tsample_1.png 1 1 1 14 0 0 0 0 0\r\n\n")
    out("pf_meta", "bad_png", "imgs/0 bad.png 0 0 1 14 0 0 0 0 0\n" + line.format(i=0, label=1))
    out("pf_meta", "missing", line.format(i=9, label=0))
    out("pf_meta", "escape", "../.. etc/passwd 0 0 1 14 0 0 0 0 0\n")


# ---- findings: inputs that once crashed or misbehaved, replayed by run.sh (tests/fuzz/findings).
# Those written here are constructed; the others in that folder are the fuzzer's own artifacts.

def finding(target, name, data):
    d = os.path.join(HERE, "findings", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def gen_findings():
    c = dict(MODELS["v1_plain"])
    # A 1 KB file whose metadata claims ~1.6e9 parameters: elm_model_load allocated them (2 x 6 GB)
    # before noticing the tensors were missing.
    big = dict(c, num_memory=20000, mlp_hidden_size=40000)
    finding("model", "huge_config_tiny_file", st_bytes(model_tensors(c), meta_of(big)))
    # Routing index 2^63 - 1 stored as I64 went through a double and back (UB).
    r = MODELS["v1_route"]
    t = model_tensors(r)
    idx = t[-2][2].copy()
    idx[1] = np.iinfo(np.int64).max
    t[-2] = ("input_to_synapse_indices", "I64", idx)
    finding("model", "routing_index_int64_max", st_bytes(t, meta_of(r)))
    # A 142-byte PNG declaring 65536 x 65536 pixels: 4 GiB allocated before any row is read.
    finding("pf_png", "huge_dimensions.png", png_bytes(65536, 65536, b"\0" * 65537))
    # The same for fuzz_shd's input format: flags 0x400 (declared length), no samples, 2^31 - 1.
    finding("shd", "huge_declared_length", struct.pack("<HBI", 0x400, 0, 2**31 - 1))
    # D3: one list [0]*1000 referenced (BINGET) by all 1278 rows in descending row order: 1.28 M
    # ids in step 0, insertion-sorted from the wrong end, hung `data info` for minutes (13 KB).
    n_seg, T = 639, 6000
    zeros = [0] * 1000
    sim = {"exInputSpikeTimes": {s: zeros for s in reversed(range(n_seg))},
           "inhInputSpikeTimes": {s: zeros for s in reversed(range(n_seg))},
           "somaVoltageLowRes": np.full(T, -70, np.float16),
           "outputSpikeTimes": np.zeros(0, np.float16)}
    root = {"Params": {"allSegmentsType": ["basal"] * n_seg, "totalSimDurationInSec": 6},
            "Results": {"listOfSingleSimulationDicts": [sim]}}
    finding("nio_pickle", "shared_list_descending_rows", pickle.dumps(root, protocol=2))
    # D2: range(6000) shared by every row, and that simulation referenced from 200 rows: 1.5 G
    # spikes in a 30 KB file (the old reader took gigabytes; now refused against the file size).
    sim = dict(sim, exInputSpikeTimes={s: list(range(T)) for s in range(1)})
    every = sim["exInputSpikeTimes"][0]
    sim["exInputSpikeTimes"] = {s: every for s in range(n_seg)}
    sim["inhInputSpikeTimes"] = {s: every for s in range(n_seg)}
    root["Results"]["listOfSingleSimulationDicts"] = [sim] * 200
    finding("nio_pickle", "shared_sim_expansion", pickle.dumps(root, protocol=2))
    # A 3 KB HDF5 file declaring 2^31 - 1 samples in unallocated chunked datasets: the SHD reader
    # allocates 8 GiB of labels (and 16 GiB of offsets) for it.
    import h5py
    path = os.path.join(HERE, "findings", "shd_raw", "huge_declared_length.h5")
    n = 2**31 - 1
    with h5py.File(path, "w") as f:
        f.create_dataset("spikes/times", (n,), dtype=h5py.vlen_dtype(np.dtype("float16")),
                         chunks=(1024,))
        f.create_dataset("spikes/units", (n,), dtype=h5py.vlen_dtype(np.dtype("uint16")),
                         chunks=(1024,))
        f.create_dataset("labels", (n,), dtype="u2", chunks=(1024,))


GENERATORS = {"safetensors": gen_safetensors, "model": gen_model, "npy": gen_npy,
              "config": gen_config, "pickle": lambda: gen_pickle("pickle"),
              "nio_pickle": lambda: gen_pickle("nio_pickle"), "nio_cache": gen_nio_cache,
              "shd": gen_shd, "shd_raw": gen_shd_raw, "pf_png": gen_pf_png, "pf_meta": gen_pf_meta,
              "findings": gen_findings}


def main():
    only = sys.argv[sys.argv.index("--only") + 1:] if "--only" in sys.argv else list(GENERATORS)
    for name in only:
        GENERATORS[name]()
    total = 0
    for root, _, files in os.walk(CORPUS):
        for f in files:
            n = os.path.getsize(os.path.join(root, f))
            assert n < 50 * 1024, f"{f}: {n} bytes, seeds must stay below 50 KB"
            total += n
    assert total < 1024 * 1024, f"corpus is {total} bytes, must stay below 1 MB"
    print(f"corpus: {total} bytes")


if __name__ == "__main__":
    main()
