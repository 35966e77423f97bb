"""elm.data's readers against independent readings of the same files: the authentic NeuronIO
pickles (../shared; Python's own pickle.load on these trusted reference files is the oracle),
elm's NeuronIO caches, the SHD fixtures (h5py and numpy binning as the oracle) and a generated
Pathfinder set (matplotlib's PNG decoder and the metadata text as the oracle); bad files raise
exceptions naming the file and the problem."""
import glob
import os
import pickle
import shutil
import subprocess

import numpy as np
import pytest

import elm
from elm.data import neuronio, pathfinder, shd
from conftest import ROOT, cli_path, shared_path

FIX = os.path.join(ROOT, "tests", "fixtures")


def dense_of(ptr, idx, val, rows, width):
    x = np.zeros((rows, width), np.float32)
    for r in range(rows):
        a, b = ptr[r], ptr[r + 1]
        x[r, idx[a:b]] = 1 if val is None else val[a:b]
    return x


# ---- NeuronIO -----------------------------------------------------------------------------------

def dev_file():
    return glob.glob(os.path.join(shared_path("data", "neuronio"), "L5PC_sim__*.p"))[0]


def reference_arrays(path):
    """The reference loader's arrays, from Python's pickle of a trusted file."""
    with open(path, "rb") as f:
        d = pickle.load(f)
    sims = d["Results"]["listOfSingleSimulationDicts"]
    n_seg = len(d["Params"]["allSegmentsType"])
    T = len(sims[0]["somaVoltageLowRes"])
    X = np.zeros((len(sims), T, 2 * n_seg), bool)
    for k, s in enumerate(sims):
        for seg, times in s["exInputSpikeTimes"].items():
            X[k, np.asarray(times, int), seg] = True
        for seg, times in s["inhInputSpikeTimes"].items():
            X[k, np.asarray(times, int), n_seg + seg] = True
    soma = np.stack([np.asarray(s["somaVoltageLowRes"], np.float32) for s in sims])
    spikes = [np.asarray(s["outputSpikeTimes"], np.float32) for s in sims]
    return X, soma, spikes


def test_neuronio_pickle_matches_pickle_load():
    path = dev_file()
    X, soma, spikes = reference_arrays(path)
    d = neuronio.read(path, dense=True)
    assert d["inputs"].dtype == np.bool_ and d["inputs"].shape == X.shape == (8, 6000, 1278)
    assert d["num_inputs"] == 1278 and d["T"] == 6000
    assert X.sum() > 100000 and np.array_equal(d["inputs"], X)
    assert np.array_equal(d["soma"], soma)  # float16 in the file: exact in float32
    assert len(d["output_spike_times"]) == 8
    for k in range(8):
        assert np.array_equal(d["output_spike_times"][k], spikes[k])
        want = np.zeros(6000, bool)
        want[np.floor(spikes[k].astype(np.float64) - 0.5).astype(int)] = True
        assert np.array_equal(d["output_spikes"][k], want)
    assert d["files"] == [(path, 0, 8)]
    # The spike lists are the same spikes.
    s = neuronio.read(path)
    assert "inputs" not in s and s["spike_ptr"].shape == (8 * 6000 + 1,)
    assert s["spike_ptr"][-1] == X.sum() == len(s["spike_idx"])
    k, t = 5, 4321
    row = s["spike_idx"][s["spike_ptr"][k * 6000 + t]:s["spike_ptr"][k * 6000 + t + 1]]
    assert np.array_equal(row, np.flatnonzero(X[k, t]))
    dense = dense_of(s["spike_ptr"], s["spike_idx"], None, 8 * 6000, 1278)
    assert np.array_equal(dense.reshape(X.shape).astype(bool), X)


def test_neuronio_python2_files():
    """The released files' Python 2 pickles (protocols 2 and 0) hold the dev file's first
    simulations: the same arrays."""
    dev = neuronio.read(dev_file(), dense=True)
    for name, n in (("L5PC_sim__py2style__simXsec_2x6_randseed_700001.p", 2),
                    ("L5PC_sim__py2style_protocol0__simXsec_1x6_randseed_700001.p", 1)):
        d = neuronio.read(shared_path("data", "neuronio", "py2", name), dense=True)
        assert d["inputs"].shape[0] == n
        for key in ("inputs", "soma", "output_spikes"):
            assert np.array_equal(d[key], dev[key][:n]), (name, key)


def test_neuronio_cache_equals_pickle(tmp_path):
    """`elm data convert neuronio` then elm.data: the cache reads back as the pickle."""
    path = dev_file()
    out = tmp_path / "cache"
    r = subprocess.run([cli_path(), "data", "convert", "neuronio", path, "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    a, b = neuronio.read(path), neuronio.read(str(out))
    for key in ("spike_ptr", "spike_idx", "soma", "output_spikes"):
        assert np.array_equal(a[key], b[key]), key


def test_neuronio_teacher_cache(tmp_path):
    """A generated cache (no ../shared needed): spike lists and dense agree."""
    out = tmp_path / "nio"
    r = subprocess.run([cli_path(), "gen", "neuronio-teacher", "--sims", "2", "--seed", "5",
                        "--duration-ms", "300", "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    s, d = neuronio.read(out), neuronio.read(out, dense=True)
    S, T, n = d["inputs"].shape
    assert (S, T) == (2, 300) and n == d["num_inputs"]
    assert s["spike_ptr"][-1] > 0
    dense = dense_of(s["spike_ptr"], s["spike_idx"], None, S * T, n).reshape(S, T, n)
    assert np.array_equal(dense.astype(bool), d["inputs"])
    assert np.all(np.isfinite(d["soma"]))


def test_neuronio_bad_files(tmp_path):
    missing = tmp_path / "L5PC_sim__absent.p"
    with pytest.raises(OSError, match="L5PC_sim__absent.p"):
        neuronio.read(missing)
    text = tmp_path / "L5PC_sim__text.p"
    text.write_text("not a pickle at all\n")
    with pytest.raises((ValueError, OSError), match="L5PC_sim__text.p"):
        neuronio.read(text)
    # A pickle that would run a command under pickle.load: refused, and nothing runs.
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "L5PC_sim__evil.p"
    evil.write_bytes(pickle.dumps({"Results": Evil()}, protocol=2))
    with pytest.raises(ValueError, match="L5PC_sim__evil.p"):
        neuronio.read(evil)
    assert not marker.exists()
    with pytest.raises(TypeError):
        neuronio.read(12.5)


def test_neuronio_truncated_pickle(tmp_path):
    src = dev_file()
    bad = tmp_path / "L5PC_sim__cut.p"
    with open(src, "rb") as f:
        bad.write_bytes(f.read()[: 3 * 1024 * 1024])
    with pytest.raises(ValueError, match="L5PC_sim__cut.p"):
        neuronio.read(bad)


# ---- SHD ----------------------------------------------------------------------------------------

def shd_oracle(path, bin_ms=10.0, duration_ms=1000.0):
    h5py = pytest.importorskip("h5py", reason="h5py (python3-h5py) is not installed")
    with h5py.File(path, "r") as f:
        times = [np.asarray(t, np.float64) for t in f["spikes/times"]]
        units = [np.asarray(u, np.int64) for u in f["spikes/units"]]
        labels = np.asarray(f["labels"], np.int64)
        speakers = np.asarray(f["extra/speaker"], np.int64) if "extra/speaker" in f else None
    T = int(np.ceil(duration_ms / bin_ms))
    x = np.zeros((len(times), T, 700), np.float32)
    for i, (t, u) in enumerate(zip(times, units)):
        ms = t * 1000.0
        keep = ms < duration_ms
        np.add.at(x[i], (np.floor(ms[keep] / bin_ms).astype(int), u[keep]), 1)
    return x, labels, speakers


@pytest.mark.parametrize("name", ["shd_tiny.h5", "shd_tiny_f32.h5"])
def test_shd_matches_h5py(name):
    path = os.path.join(FIX, name)
    x, labels, speakers = shd_oracle(path)
    d = shd.read(path, dense=True)
    assert d["inputs"].shape == (10, 100, 700) and d["inputs"].dtype == np.float32
    assert x.sum() > 100 and np.array_equal(d["inputs"], x)
    assert np.array_equal(d["labels"], labels)
    if speakers is None:
        assert d["speakers"] is None and d["keys"] == []
    else:
        assert np.array_equal(d["speakers"], speakers)
        assert d["keys"][:3] == ["zero", "one", "two"] and len(d["keys"]) == 20
    assert d["kept_spikes"] == x.sum() and d["total_spikes"] > d["kept_spikes"]
    s = shd.read(path)
    dense = dense_of(s["spike_ptr"], s["spike_idx"], s["spike_count"], 10 * 100, 700)
    assert np.array_equal(dense.reshape(x.shape), x)
    # The hand-made sample 0 of make_tiny_shd.py: two spikes in bin 50 on channel 350.
    assert d["inputs"][0, 50, 350] == 2


def test_shd_binning_options():
    path = os.path.join(FIX, "shd_tiny.h5")
    x, _, _ = shd_oracle(path, bin_ms=25.0, duration_ms=1200.0)
    d = shd.read(path, dense=True, bin_ms=25.0, duration_ms=1200.0)
    assert d["num_bins"] == 48 and np.array_equal(d["inputs"], x)
    with pytest.raises(ValueError, match="bins of"):
        shd.read(path, bin_ms=0.0)


def test_shd_bad_files(tmp_path):
    bad = sorted(glob.glob(os.path.join(FIX, "shd_bad", "*.h5")))
    assert len(bad) >= 10
    for p in bad:
        with pytest.raises((ValueError, OSError)) as e:
            shd.read(p)
        assert os.path.basename(p) in str(e.value), (p, str(e.value))
    with pytest.raises(OSError, match="absent.h5"):
        shd.read(tmp_path / "absent.h5")
    notes = tmp_path / "notes.h5"
    notes.write_text("hello")
    with pytest.raises(ValueError, match="notes.h5: not an HDF5 file"):
        shd.read(notes)


# ---- Pathfinder ---------------------------------------------------------------------------------

def test_pathfinder_matches_png_and_metadata(tmp_path):
    image = pytest.importorskip("matplotlib.image", reason="matplotlib is not installed")
    out = tmp_path / "pf"
    r = subprocess.run([cli_path(), "gen", "pathfinder", "--n", "20", "--seed", "5",
                        "--contour-length", "6", "--threads", "1", "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    d = pathfinder.read(out, split="all")
    assert d["images"].shape == (20, 32, 32) and d["images"].dtype == np.uint8
    folder = d["folder"]
    lines = [ln.split() for ln in open(os.path.join(folder, "metadata", "0.npy"))]
    assert len(lines) == 20
    for k, f in enumerate(lines):
        png = image.imread(os.path.join(folder, f[0], f[1]))
        assert np.array_equal(d["images"][k], np.round(png * 255).astype(np.uint8))
        assert d["labels"][k] == int(f[3])
    parts = [pathfinder.read(out, split=s) for s in ("train", "valid", "test")]
    assert [len(p["labels"]) for p in parts] == [16, 2, 2]
    assert len(pathfinder.read(out, split="train", limit=3)["labels"]) == 3
    with pytest.raises(ValueError, match="split must be"):
        pathfinder.read(out, split="dev")
    shutil.rmtree(os.path.join(folder, "imgs"))
    with pytest.raises((ValueError, OSError), match="sample_"):
        pathfinder.read(out)


def test_data_module_is_reachable():
    assert elm.data.neuronio.read is neuronio.read
