"""Training from Python with elm's trainer (elm.Task, elm.Trainer, elm.train): the same run as
`elm train` bit for bit, runs continued across front ends, a torch optimisation step through
elm.torch equal to the trainer's step, and bad settings refused with elm's message.

Data: a small NeuronIO teacher set made by `elm gen neuronio-teacher` (no ../shared needed).
"""
import filecmp
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

import elm
from conftest import cli_path

# A tiny NeuronIO run: 2 epochs x 3 batches of 4 windows of 200 steps, d_m 3, one thread.
SETTINGS = dict(epochs=2, batches_per_epoch=3, batch_size=4, threads=1, num_memory=3, seed=9,
                seq_len=200, eval_samples=2, checkpoint_every=2, lr=3e-3)


def cli_args(settings):
    out = []
    for k, v in settings.items():
        out += ["--set", f"{k}={v}"]
    return out


@pytest.fixture(scope="module")
def nio_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("nio") / "data"
    r = subprocess.run([cli_path(), "gen", "neuronio-teacher", "--sims", "3", "--seed", "5",
                        "--duration-ms", "2000", "--out", str(d)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return str(d)


def run_files(run):
    """The files a run leaves whose bytes must agree (metrics hold wall times: compared apart)."""
    ck = sorted(f for f in os.listdir(os.path.join(run, "checkpoint")) if f.startswith("step-"))
    return ["model.safetensors", "model_config.json"] + [os.path.join("checkpoint", f) for f in ck]


def test_python_train_equals_cli_train(nio_data, tmp_path):
    cli_run, py_run = str(tmp_path / "cli"), str(tmp_path / "py")
    r = subprocess.run([cli_path(), "train", "neuronio", "--data", nio_data, "--out", cli_run]
                       + cli_args(SETTINGS), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    epochs = []
    m = elm.train("neuronio", nio_data, py_run, verbose=False, epoch_end=epochs.append,
                  **SETTINGS)
    assert isinstance(m, elm.Model) and m.config["num_memory"] == 3
    assert [e["epoch"] for e in epochs] == [1, 2]
    files = run_files(cli_run)
    assert len(files) >= 4 and files == run_files(py_run)
    for f in files:
        assert filecmp.cmp(os.path.join(cli_run, f), os.path.join(py_run, f), shallow=False), f
    a = json.load(open(os.path.join(cli_run, "metrics.json")))
    b = json.load(open(os.path.join(py_run, "metrics.json")))
    assert len(a) == len(b) == 2
    for ra, rb in zip(a, b):
        for k in ra:
            if "time" not in k and "second" not in k and "per_s" not in k:
                assert ra[k] == rb[k], k
    # The returned model is the saved best model.
    saved = elm.load(os.path.join(py_run, "model.safetensors"))
    for k, v in saved.parameters().items():
        assert np.array_equal(m.parameters()[k], v), k


def test_python_run_resumed_by_cli(nio_data, tmp_path):
    """Three batches and a checkpoint from Python, the rest by `elm train --resume`: the model
    of an uninterrupted CLI run."""
    ref, mixed = str(tmp_path / "ref"), str(tmp_path / "mixed")
    args = ["train", "neuronio", "--data", nio_data] + cli_args(SETTINGS)
    assert subprocess.run([cli_path()] + args + ["--out", ref], capture_output=True).returncode == 0
    tr = elm.Trainer("neuronio", nio_data, mixed, **SETTINGS)
    assert tr.info["total_steps"] == 6 and tr.info["step"] == 0
    losses = [tr.step() for _ in range(3)]
    assert all(np.isfinite(losses)) and tr.info["step"] == 3
    tr.end_epoch()
    tr.checkpoint()
    del tr
    r = subprocess.run([cli_path()] + args + ["--out", mixed, "--resume"], capture_output=True,
                       text=True)
    assert r.returncode == 0 and "resuming" in r.stderr, r.stderr
    for f in run_files(ref):
        assert filecmp.cmp(os.path.join(ref, f), os.path.join(mixed, f), shallow=False), f


def test_task_batches_are_the_trainers(nio_data):
    """elm.Task's batch k and loss are the trainer's: the loss of the trainer's first step is the
    task's loss of batch 0 under the initial model (the same numbers, in double)."""
    task = elm.Task("neuronio", nio_data, **SETTINGS)
    info = task.info
    assert info["num_input"] == 1278 and info["seq_len"] == 200 and info["sparse"]
    x, target = task.batch(0)
    assert x.shape == (4, 200, 1278) and target.shape == (4, 400)
    (ptr, idx, val), target2 = task.batch(0, dense=False)
    assert np.array_equal(target, target2) and ptr[-1] == len(idx) == np.count_nonzero(x)
    x1, _ = task.batch(1)
    assert not np.array_equal(x, x1)
    assert np.array_equal(task.batch(0)[0], x)  # reproducible from (seed, step)
    assert not np.array_equal(task.batch(0, seed=10)[0], x)
    with _tmp() as run:
        tr = elm.Trainer("neuronio", nio_data, run, **SETTINGS)
        m0 = tr.model()
        y = m0.forward(x)
        loss, dy = task.loss(y, target)
        assert dy.shape == y.shape
        assert tr.step() == pytest.approx(loss, rel=1e-6)
    with pytest.raises(ValueError, match=r"y must be \[B, 200, 2\]"):
        task.loss(np.zeros((4, 100, 2), np.float32), target)


class _tmp:
    def __enter__(self):
        import tempfile
        self.d = tempfile.TemporaryDirectory()
        return os.path.join(self.d.name, "run")

    def __exit__(self, *a):
        self.d.cleanup()


@pytest.mark.parametrize("optimizer,inputs", [("adam", "dense"), ("adamw", "spikes")])
def test_torch_step_equals_trainer_step(nio_data, optimizer, inputs):
    """Two optimisation steps of elm.torch in a plain torch loop (the reference's NeuronIO loss
    written in torch, torch.optim.Adam/AdamW, gradient clipping) against two steps of elm's
    trainer on the same batches from the same initial model.

    Tolerance: |p_torch - p_trainer| <= 2e-3 * lr + 1e-6 * |p|. The two sides share elm's BPTT
    but differ in float32 details: torch's loss gradient is computed in float32 (the trainer's
    in double, rounded once), the trainer feeds spike lists (torch a dense batch, summed in
    another order), and torch keeps Adam's moments in float32 (elm in double). Each is a
    relative error of ~1e-6 in a gradient; an Adam step moves a parameter by lr * m / (sqrt(v)
    + eps), whose sensitivity to a relative error d of the gradients is below lr * d, so the
    steps agree to far below 2e-3 * lr; 1e-6 * |p| allows float32 rounding of the parameter
    itself (2 ulp). A wrong batch, loss weight, learning rate, bias correction, weight decay or
    clipping moves parameters by O(lr) and fails. With inputs="spikes" the module gets the
    batch as the trainer does, as spike lists (elm.torch.Spikes).
    """
    torch = pytest.importorskip("torch", reason="PyTorch (python3-torch) is not installed")
    import elm.torch as et
    settings = dict(SETTINGS, optimizer=optimizer, grad_clip=0.05, weight_decay=0.01)
    lr = settings["lr"]
    with _tmp() as run:
        tr = elm.Trainer("neuronio", nio_data, run, **settings)
        net = et.ELM._from_core(tr.model())
        task = elm.Task("neuronio", nio_data, **settings)
        params = [p for p in net.parameters() if p.requires_grad]
        initial = {n: p.detach().numpy().copy() for n, p in net.named_parameters()}
        opt = (torch.optim.AdamW if optimizer == "adamw" else torch.optim.Adam)(
            params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
        bce = torch.nn.BCEWithLogitsLoss()
        for step in range(2):
            if inputs == "spikes":
                x, target = task.batch(step, dense=False)
                x = et.Spikes(*x, steps=200)
            else:
                x, target = task.batch(step)
                x = torch.from_numpy(x)
            target = torch.from_numpy(target).view(4, 200, 2)
            y = net(x)
            loss = 0.5 * bce(y[..., 0], target[..., 0]) + 0.5 * torch.mean(
                (y[..., 1] - target[..., 1]) ** 2)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 0.05)
            # The cosine schedule over 6 batches: lr at step 1 is below lr.
            for g in opt.param_groups:
                g["lr"] = 0.5 * lr * (1 + np.cos(np.pi * step / 6))
            opt.step()
            tl = tr.step()
            assert tl == pytest.approx(loss.item(), rel=1e-5)
        got = tr.model().parameters()
        moved = 0
        for name, p in net.named_parameters():
            if not p.requires_grad:
                continue
            a, b = p.detach().numpy(), got[name]
            err = np.abs(a - b) - (2e-3 * lr + 1e-6 * np.abs(b))
            assert err.max() <= 0, (name, np.abs(a - b).max())
            moved += int(np.sum(np.abs(b - initial[name]) > 0.5 * lr))
        assert moved > 100  # the steps did move the parameters (by about lr each)


def test_bad_settings(nio_data, tmp_path):
    with pytest.raises(ValueError, match="num_memmory"):
        elm.Trainer("neuronio", nio_data, str(tmp_path / "a"), num_memmory=3)
    with pytest.raises(ValueError, match="neuronx"):
        elm.Task("neuronx", nio_data)
    with pytest.raises(ValueError, match="batch_size"):
        elm.Task("neuronio", nio_data, batch_size=-2)
    with pytest.raises(TypeError, match="epochs"):
        elm.Trainer("neuronio", nio_data, str(tmp_path / "b"), epochs=[1])
    with pytest.raises((ValueError, OSError), match="absent"):
        elm.Trainer("neuronio", str(tmp_path / "absent"), str(tmp_path / "c"))
    # A run folder that holds a run is refused unless force (never overwritten unasked).
    run = str(tmp_path / "d")
    elm.train("neuronio", nio_data, run, verbose=False, **dict(SETTINGS, epochs=1))
    before = open(os.path.join(run, "model.safetensors"), "rb").read()
    with pytest.raises(ValueError, match="overwrite"):
        elm.Trainer("neuronio", nio_data, run, **SETTINGS)
    assert open(os.path.join(run, "model.safetensors"), "rb").read() == before
    with pytest.raises(ValueError, match="give one"):
        elm.Trainer("neuronio", nio_data, run, force=True, resume=True, **SETTINGS)
    # A model from init keeps its configuration: a contradicting model option is refused, and
    # the refused run leaves no folder behind.
    init = os.path.join(run, "model.safetensors")
    with pytest.raises(ValueError, match="the model has num_memory = 3, the run sets 5"):
        elm.Trainer("neuronio", nio_data, str(tmp_path / "e"), init=init,
                    **dict(SETTINGS, num_memory=5))
    assert not os.path.exists(tmp_path / "e")


@pytest.fixture(scope="module")
def pf_data(tmp_path_factory):
    """Two tiny generated Pathfinder folders: training (40 images) and separate test (20)."""
    d = tmp_path_factory.mktemp("pf")
    for name, n, seed in (("train", 40, 5), ("test", 20, 6)):
        r = subprocess.run([cli_path(), "gen", "pathfinder", "--n", str(n), "--seed", str(seed),
                            "--contour-length", "6", "--threads", "1", "--out", str(d / name)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    return str(d / "train"), str(d / "test")


PF_SETTINGS = dict(epochs=1, batches_per_epoch=1, batch_size=4, num_memory=2,
                   mlp_hidden_size=4, threads=1)


def test_train_test_data(pf_data, tmp_path):
    """elm.train(test=DIR) is `elm train --test DIR`: the best model scores all of DIR once at
    the end (test_* in test_metrics.json, beside valid_*), the same scores `elm eval --split all`
    gives for that model and folder, and elm.Task(test=DIR).evaluate(m, "test") too. Test data
    that is the training or validation folder is refused with elm's message, writing nothing.

    Tolerance: both sides run the same evaluation of the same model on the same images with one
    thread; the only difference is the JSON round trip of the numbers (printed with 17
    significant digits), so they agree to 1e-12 relative."""
    train, test = pf_data
    run = str(tmp_path / "run")
    m = elm.train("pathfinder", train, run, test=test, verbose=False, **PF_SETTINGS)
    t = json.load(open(os.path.join(run, "test_metrics.json")))
    assert json.load(open(os.path.join(run, "config.json")))["test"] == test
    assert t["test_num_samples"] == 20, t  # all of the test folder
    assert "valid_accuracy" in t and "note" not in t, t
    r = subprocess.run([cli_path(), "eval", "pathfinder", "--model", run, "--data", test,
                        "--split", "all", "--json", "--threads", "1"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    e = json.loads(r.stdout)
    task = elm.Task("pathfinder", train, test=test, **PF_SETTINGS)
    via_task = task.evaluate(m, "test")
    compared = 0
    for k, v in e.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            assert abs(t["test_" + k] - v) <= 1e-12 * max(1, abs(v)), (k, t, e)
            assert abs(via_task[k] - v) <= 1e-12 * max(1, abs(v)), (k, via_task, e)
            compared += 1
    assert compared >= 3 and "accuracy" in e and "num_samples" in e, e

    refused = str(tmp_path / "refused")
    with pytest.raises(ValueError, match=r"the test folder .* is the training folder"):
        elm.train("pathfinder", train, refused, test=train, verbose=False, **PF_SETTINGS)
    with pytest.raises(ValueError, match=r"the test folder .* is the validation folder"):
        elm.train("pathfinder", train, refused, valid=test, test=test, verbose=False,
                  **PF_SETTINGS)
    with pytest.raises(ValueError, match="is the training folder"):
        elm.Task("pathfinder", train, test=train, **PF_SETTINGS)
    assert not os.path.exists(os.path.join(refused, "config.json"))


def test_pixel_levels_task(pf_data):
    """elm.Task(pixel_levels=16) is the paper's LRA pixel encoding: 16 inputs a step, exactly one
    of them 1, at level floor(p * 16 / 256) of the grey value p that the plain task's batch holds
    (as (p / 255 - 0.5) / 0.5); the labels are the same batch's. Nonsense levels are refused."""
    train, _ = pf_data
    plain = elm.Task("pathfinder", train, **PF_SETTINGS)
    onehot = elm.Task("pathfinder", train, pixel_levels=16, **PF_SETTINGS)
    assert plain.info["num_input"] == 1 and onehot.info["num_input"] == 16
    x1, t1 = plain.batch(0)
    x16, t16 = onehot.batch(0)
    assert x16.shape == (4, 1024, 16) and np.array_equal(t1, t16)
    assert np.array_equal(np.count_nonzero(x16, axis=2), np.ones((4, 1024)))
    assert set(np.unique(x16)) == {0.0, 1.0}
    grey = np.rint((x1[:, :, 0] * 0.5 + 0.5) * 255).astype(int)
    assert np.array_equal(np.argmax(x16, axis=2), grey * 16 // 256)
    for bad in (1, 257):
        with pytest.raises(ValueError, match="pixel_levels"):
            elm.Task("pathfinder", train, pixel_levels=bad, **PF_SETTINGS)
    with pytest.raises(ValueError, match="only pathfinder encodes pixels"):
        elm.Task("neuronio", train, pixel_levels=16)


def test_shd_task_bins(tmp_path):
    """elm.Task(bin_ms=B) bins SHD spikes at B ms, as `elm train --set bin_ms=B` does: a
    1-second sample is ceil(1000 / B) steps of B ms."""
    fix = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "shd_tiny.h5")
    for name in ("shd_train.h5", "shd_test.h5"):
        shutil.copy(fix, tmp_path / name)
    for b, steps in ((10, 100), (20, 50), (25, 40)):
        info = elm.Task("shd", str(tmp_path), bin_ms=b, threads=1).info
        assert (info["seq_len"], info["delta_t"]) == (steps, b), (b, info)


def test_callback_exception_stops_the_run(nio_data, tmp_path):
    def boom(p):
        if p["step"] == 2:
            raise KeyError("stop here")

    tr = elm.Trainer("neuronio", nio_data, str(tmp_path / "r"), **SETTINGS)
    with pytest.raises(KeyError, match="stop here"):
        tr.run(progress=boom)
    assert tr.info["step"] == 2 and tr.info["stopped"] == "request_stop"
    assert tr.run() == "finished" and tr.info["step"] == 6
    # No test data given: the validation scores that selected the model, named so, and no
    # test_* score (issue 16).
    assert set(tr.test_metrics) >= {"valid_soma_RMSE", "valid_AUC", "note"}
    assert not [k for k in tr.test_metrics if k.startswith("test_") or k == "AUC"]


def test_knobs_and_tasks():
    k = elm.knobs()
    assert {"epochs", "lr", "batch_size", "seed", "grad_clip"} <= set(k)
    assert elm.tasks() == ["neuronio", "shd", "shd-adding", "pathfinder"]
