"""elm.train: a whole training run from Python, the same run as `elm train`.

elm.Trainer and elm.Task are the C trainer and tasks of include/elm_train.h (_train.c); this
file adds the one-call form and the knob list.
"""
import os
import sys

from . import _elm

__all__ = ["train", "knobs", "tasks"]


def knobs():
    """Every training knob's name and its one-line description (as `elm train --help`)."""
    return _elm.train_knobs()


def tasks():
    """The task names elm trains: neuronio, shd, shd-adding, pathfinder."""
    return _elm.task_names()


def _print_epoch(e):
    print(f"epoch {e['epoch']}: train loss {e['train_loss']:.5f}, {e['select_metric']} "
          f"{e['score']:.5f}{' (best, saved)' if e['saved'] else ''}", file=sys.stderr)


def train(task, data, out, valid=None, init=None, config=None, force=False, resume=False,
          verbose=True, progress=None, epoch_end=None, test=None, **settings):
    """Trains `task` on `data` into the run folder `out`, exactly as

        elm train TASK --data DATA --out OUT [--valid V] [--test T] [--init M] [--config F]
                  [--force | --resume] --set KEY=VALUE ...

    with **settings as the --set pairs (training knobs and model options: epochs, batch_size,
    lr, seed, threads, num_memory, ...; see elm.knobs()). The run writes the CLI's files
    (config.json, metrics.csv/.json, model.safetensors, checkpoint/, test_metrics.json), and a
    run started here continues with `elm train --resume` and vice versa. With the same
    settings, seed and thread count the model is bit for bit the CLI's.

    test is separate test data (--test): scored once, by the best model, at the end; test data
    that is the training or validation data is refused (ValueError, before anything is
    written). Without it shd tests on DATA/shd_test.h5, pathfinder on the 10 % of the images
    held out, and neuronio has no test data.

    verbose prints one line per epoch to stderr; progress(d) / epoch_end(d) are called after
    each batch / epoch with dicts. Returns the best model on validation (an elm.Model); its
    validation scores (valid_*) and, where the task has test data, test scores (test_*) are in
    OUT/test_metrics.json.
    """
    tr = _elm.Trainer(task, data, out, valid=valid, init=init, config=config, force=force,
                      resume=resume, test=test, **settings)
    if verbose and epoch_end is None:
        epoch_end = _print_epoch
    tr.run(progress=progress, epoch_end=epoch_end)
    return _elm.load(os.path.join(os.fspath(out), "model.safetensors"),
                     dtype=tr.model().dtype)
