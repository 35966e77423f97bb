/*
 * _train.c - elm's training library (include/elm_train.h) in the extension: Task (a task's
 * batches, loss and evaluation) and Trainer (the whole run over a run folder), so that a Python
 * user trains with the CLI's batches, losses, optimiser, checkpoints and metrics.
 *
 * Settings: knobs and model options are passed as keyword arguments and go through
 * elm_train_config_set() as strings, exactly as `elm train --set KEY=VALUE` does (after the task
 * defaults and an optional config file, in the order given), so `elm.Trainer(task, data, out,
 * **knobs).run()` is the same run as `elm train` with those settings: the same model bit for bit
 * with the same seed and thread count.
 *
 * Hooks: the run releases the GIL; the progress and epoch callbacks take it back to call Python.
 * An exception raised in a callback, or Ctrl-C, stops the run after the current batch (with a
 * checkpoint, as elm_trainer_request_stop does) and is raised from run().
 */
#include "_elm.h"

#include "elm_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Settings --------------------------------------------------------------------------------- */

/* A setting's value as the text elm_train_config_set() reads; NULL with the error set. */
static PyObject *setting_text(PyObject *key, PyObject *v) {
    if (v == Py_True)
        return PyUnicode_FromString("true");
    if (v == Py_False)
        return PyUnicode_FromString("false");
    if (v == Py_None)
        return PyUnicode_FromString("null");
    if (PyUnicode_Check(v)) {
        Py_INCREF(v);
        return v;
    }
    if (PyLong_Check(v))
        return PyObject_Str(v);
    if (PyFloat_Check(v)) {
        char buf[64];
        snprintf(buf, sizeof buf, "%.17g", PyFloat_AS_DOUBLE(v));
        return PyUnicode_FromString(buf);
    }
    return PyErr_Format(PyExc_TypeError, "setting '%U' must be a str, int, float or bool, not %s",
                        key, Py_TYPE(v)->tp_name);
}

/*
 * The task's defaults, then the config file (may be None), then each keyword setting: the
 * precedence of `elm train` (defaults < --config < flags). origin names the caller in messages.
 */
static int apply_settings(elm_train_config *tc, elm_config *mc, const char *task,
                          PyObject *config, PyObject *kw, const char *origin) {
    elm_status st = elm_train_config_default(tc, mc, task);
    if (st) {
        elm_py_raise(st);
        return -1;
    }
    if (config && config != Py_None) {
        PyObject *b = NULL;
        if (!PyUnicode_FSConverter(config, &b))
            return -1;
        st = elm_train_config_load(tc, mc, PyBytes_AS_STRING(b));
        Py_DECREF(b);
        if (st) {
            elm_py_raise(st);
            return -1;
        }
    }
    PyObject *key, *val;
    Py_ssize_t pos = 0;
    while (kw && PyDict_Next(kw, &pos, &key, &val)) {
        PyObject *text = setting_text(key, val);
        if (!text)
            return -1;
        const char *k = PyUnicode_AsUTF8(key), *v = PyUnicode_AsUTF8(text);
        st = k && v ? elm_train_config_set(tc, mc, k, v, origin) : ELM_OK;
        Py_DECREF(text);
        if (!k || !v)
            return -1;
        if (st) {
            elm_py_raise(st);
            return -1;
        }
    }
    return 0;
}

/* A JSON text (elm's metrics) as a Python object. */
static PyObject *from_json(const char *s) {
    PyObject *json = PyImport_ImportModule("json");
    PyObject *r = json ? PyObject_CallMethod(json, "loads", "s", s) : NULL;
    Py_XDECREF(json);
    return r;
}

/*
 * Splits a constructor's arguments: up to `npos` positionals, then the keywords named in
 * fixed[0..n), go to vals[0..n) (which hold the defaults; NULL: required, checked by the
 * caller); every other keyword goes to the dict returned, the settings. NULL with the error set:
 * `too_many` is the message for more than npos positionals; `who` names the type when a fixed
 * argument is given twice.
 */
static PyObject *split_args(PyObject *args, PyObject *kw, const char *who, const char *too_many,
                            const char *const *fixed, int n, Py_ssize_t npos, PyObject **vals) {
    Py_ssize_t na = PyTuple_GET_SIZE(args);
    if (na > npos) {
        PyErr_SetString(PyExc_TypeError, too_many);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < na; i++)
        vals[i] = PyTuple_GET_ITEM(args, i);
    PyObject *settings = PyDict_New();
    PyObject *key, *val;
    Py_ssize_t pos = 0;
    while (settings && kw && PyDict_Next(kw, &pos, &key, &val)) {
        const char *k = PyUnicode_AsUTF8(key);
        int j = 0;
        while (k && j < n && strcmp(k, fixed[j]))
            j++;
        if (k && j < n) {
            if (j < na) {
                PyErr_Format(PyExc_TypeError, "%s got '%s' twice", who, k);
                Py_CLEAR(settings);
            } else
                vals[j] = val;
        } else if (!k || PyDict_SetItem(settings, key, val))
            Py_CLEAR(settings);
    }
    return settings;
}

/* ---- Task ------------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD elm_task *t;
    elm_train_config tc; /* the settings it was opened with: batch seed and size by default */
    int busy;
} TaskObject;

static PyTypeObject TaskType;

static int Task_init(TaskObject *self, PyObject *args, PyObject *kw) {
    /* Task(name, data, valid=None, config=None, for_training=True, test=None, **settings) */
    static const char *const fixed[] = {"name", "data", "valid", "config", "for_training", "test"};
    PyObject *vals[6] = {NULL, NULL, Py_None, Py_None, Py_True, Py_None};
    PyObject *settings = split_args(args, kw, "Task", "Task takes at most 5 positional arguments",
                                    fixed, 6, 5, vals);
    if (!settings)
        return -1;
    PyObject *data_b = NULL, *valid_b = NULL, *test_b = NULL;
    int rc = -1;
    if (!vals[0] || !PyUnicode_Check(vals[0]) || !vals[1]) {
        PyErr_SetString(PyExc_TypeError, "Task(name: str, data, valid=None, config=None, "
                                         "for_training=True, test=None, **settings)");
        goto done;
    }
    if (!PyUnicode_FSConverter(vals[1], &data_b) ||
        (vals[2] != Py_None && !PyUnicode_FSConverter(vals[2], &valid_b)) ||
        (vals[5] != Py_None && !PyUnicode_FSConverter(vals[5], &test_b)))
        goto done;
    const char *name = PyUnicode_AsUTF8(vals[0]);
    elm_config mc;
    if (!name || apply_settings(&self->tc, &mc, name, vals[3], settings, "elm.Task"))
        goto done;
    const elm_train_config *o = &self->tc;
    elm_task_opts to = {.data = PyBytes_AS_STRING(data_b),
                        .valid = valid_b ? PyBytes_AS_STRING(valid_b) : NULL,
                        .test = test_b ? PyBytes_AS_STRING(test_b) : NULL,
                        .seed = (uint64_t)o->seed,
                        .threads = (int)o->threads,
                        .input_dropout = o->input_dropout,
                        .bin_ms = o->bin_ms,
                        .pixel_levels = (int)o->pixel_levels,
                        .seq_len = (int)o->seq_len,
                        .batches_per_epoch = o->batches_per_epoch,
                        .batch_size = (int)o->batch_size,
                        .eval_samples = o->eval_samples,
                        .eval_batch = (int)o->eval_batch,
                        .for_training = PyObject_IsTrue(vals[4])};
    elm_task *t = NULL;
    elm_status st;
    Py_BEGIN_ALLOW_THREADS st = elm_task_create(&t, name, &to);
    Py_END_ALLOW_THREADS if (st) {
        elm_py_raise(st);
        goto done;
    }
    elm_task_free(self->t);
    self->t = t;
    self->busy = 0;
    rc = 0;
done:
    Py_XDECREF(data_b);
    Py_XDECREF(valid_b);
    Py_XDECREF(test_b);
    Py_DECREF(settings);
    return rc;
}

static void Task_dealloc(TaskObject *self) {
    elm_task_free(self->t);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int task_enter(TaskObject *self) {
    return elm_py_claim(&self->busy, self->t, "task", "by another thread");
}

static PyObject *task_info_dict(const elm_task_info *in) {
    return Py_BuildValue("{s:s,s:i,s:i,s:i,s:d,s:n,s:l,s:s,s:O,s:O}", "name", in->name,
                         "num_input", in->num_input, "num_output", in->num_output, "seq_len",
                         in->seq_len, "delta_t", in->delta_t, "target_len",
                         (Py_ssize_t)in->target_len, "batches_per_epoch", in->batches_per_epoch,
                         "select_metric", in->select_metric, "select_larger_is_better",
                         in->select_larger_is_better ? Py_True : Py_False, "sparse",
                         in->sparse ? Py_True : Py_False);
}

static PyObject *Task_get_info(TaskObject *self, void *closure) {
    if (!self->t)
        return elm_py_not_initialised("task");
    elm_task_info in;
    elm_task_get_info(self->t, &in);
    return task_info_dict(&in);
}

/*
 * task.batch(step, batch_size=None, seed=None, dense=True) -> (x, target): training batch `step`
 * of a run seeded `seed`, the batch the trainer draws at that step. x is [B, T, I] float32, or
 * for a spiking task with dense=False the spike lists (ptr, idx, val) of elm_sparse_input.
 */
static PyObject *Task_batch(TaskObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"step", "batch_size", "seed", "dense", NULL};
    long step;
    PyObject *bo = Py_None, *so = Py_None;
    int dense = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "l|OOp", kwlist, &step, &bo, &so, &dense))
        return NULL;
    if (!self->t)
        return elm_py_not_initialised("task");
    long B = bo == Py_None ? self->tc.batch_size : PyLong_AsLong(bo);
    if (B == -1 && PyErr_Occurred())
        return NULL;
    unsigned long long seed =
        so == Py_None ? (unsigned long long)self->tc.seed : PyLong_AsUnsignedLongLong(so);
    if (seed == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    if (B < 1 || B > 1 << 20)
        return PyErr_Format(PyExc_ValueError, "batch_size must be in 1..%d, not %ld", 1 << 20, B);
    if (step < 0)
        return PyErr_Format(PyExc_ValueError, "step must be >= 0, not %ld", step);
    elm_task_info in;
    elm_task_get_info(self->t, &in);
    npy_intp dx[3] = {B, in.seq_len, in.num_input}, dt[2] = {B, (npy_intp)in.target_len};
    PyObject *x = (!in.sparse || dense) ? PyArray_ZEROS(3, dx, NPY_FLOAT32, 0) : NULL;
    PyObject *tg = PyArray_ZEROS(2, dt, NPY_FLOAT32, 0);
    if ((!x && (!in.sparse || dense)) || !tg || task_enter(self)) {
        Py_XDECREF(x);
        Py_XDECREF(tg);
        return NULL;
    }
    elm_sparse_input xs = {0};
    elm_status st;
    float *xp = x ? PyArray_DATA((PyArrayObject *)x) : NULL;
    float *tp = PyArray_DATA((PyArrayObject *)tg);
    Py_BEGIN_ALLOW_THREADS st =
        elm_task_batch(self->t, (uint64_t)seed, step, (int)B, in.sparse ? NULL : xp,
                       in.sparse ? &xs : NULL, tp);
    if (!st && in.sparse && xp) {
        /* Spike lists to the dense array the model's forward would see. */
        const size_t rows = (size_t)B * (size_t)in.seq_len;
        for (size_t r = 0; r < rows; r++)
            for (int64_t j = xs.ptr[r]; j < xs.ptr[r + 1]; j++)
                xp[r * (size_t)in.num_input + (size_t)xs.idx[j]] =
                    xs.val ? ((const float *)xs.val)[j] : 1.0f;
    }
    Py_END_ALLOW_THREADS self->busy = 0;
    if (st) {
        Py_XDECREF(x);
        Py_DECREF(tg);
        return elm_py_raise(st);
    }
    if (!x) {
        const npy_intp rows = (npy_intp)B * in.seq_len, nnz = (npy_intp)xs.ptr[rows];
        npy_intp dp[1] = {rows + 1}, dn[1] = {nnz};
        PyObject *p = PyArray_SimpleNew(1, dp, NPY_INT64), *i = PyArray_SimpleNew(1, dn, NPY_INT32),
                 *v = PyArray_SimpleNew(1, dn, NPY_FLOAT32);
        if (!p || !i || !v) {
            Py_XDECREF(p);
            Py_XDECREF(i);
            Py_XDECREF(v);
            Py_DECREF(tg);
            return NULL;
        }
        memcpy(PyArray_DATA((PyArrayObject *)p), xs.ptr, sizeof(int64_t) * (size_t)(rows + 1));
        memcpy(PyArray_DATA((PyArrayObject *)i), xs.idx, sizeof(int32_t) * (size_t)nnz);
        float *vp = PyArray_DATA((PyArrayObject *)v);
        for (npy_intp j = 0; j < nnz; j++)
            vp[j] = xs.val ? ((const float *)xs.val)[j] : 1.0f;
        x = Py_BuildValue("(NNN)", p, i, v);
        if (!x) {
            Py_DECREF(tg);
            return NULL;
        }
    }
    return Py_BuildValue("(NN)", x, tg);
}

/* task.loss(y, target) -> (loss, dy): the task's mean loss and its gradient dL/dy. */
static PyObject *Task_loss(TaskObject *self, PyObject *args) {
    PyObject *yo, *to;
    if (!PyArg_ParseTuple(args, "OO", &yo, &to))
        return NULL;
    if (!self->t)
        return elm_py_not_initialised("task");
    elm_task_info in;
    elm_task_get_info(self->t, &in);
    PyArrayObject *y = (PyArrayObject *)PyArray_FROMANY(yo, NPY_FLOAT32, 3, 3,
                                                        NPY_ARRAY_CARRAY_RO | NPY_ARRAY_FORCECAST);
    if (!y)
        return NULL;
    const npy_intp B = PyArray_DIM(y, 0);
    if (B < 1 || B > INT32_MAX || PyArray_DIM(y, 1) != in.seq_len ||
        PyArray_DIM(y, 2) != in.num_output) {
        Py_DECREF(y);
        return PyErr_Format(PyExc_ValueError, "y must be [B, %d, %d] (B >= 1; the task's seq_len "
                                              "and num_output)",
                            in.seq_len, in.num_output);
    }
    PyArrayObject *tg = (PyArrayObject *)PyArray_FROMANY(to, NPY_FLOAT32, 1, 2,
                                                         NPY_ARRAY_CARRAY_RO | NPY_ARRAY_FORCECAST);
    if (!tg || (size_t)PyArray_SIZE(tg) != (size_t)B * in.target_len) {
        if (tg)
            PyErr_Format(PyExc_ValueError, "target must be [%ld, %ld] (the batch's target)",
                         (long)B, (long)in.target_len);
        Py_DECREF(y);
        Py_XDECREF(tg);
        return NULL;
    }
    npy_intp dd[3] = {B, in.seq_len, in.num_output};
    PyObject *dy = PyArray_SimpleNew(3, dd, NPY_FLOAT32);
    if (!dy || task_enter(self)) {
        Py_DECREF(y);
        Py_DECREF(tg);
        Py_XDECREF(dy);
        return NULL;
    }
    double loss;
    const float *yp = PyArray_DATA(y), *tp = PyArray_DATA(tg);
    float *dp = PyArray_DATA((PyArrayObject *)dy);
    Py_BEGIN_ALLOW_THREADS loss = elm_task_loss(self->t, yp, tp, dp, (int)B);
    Py_END_ALLOW_THREADS self->busy = 0;
    Py_DECREF(y);
    Py_DECREF(tg);
    return Py_BuildValue("(dN)", loss, dy);
}

/* task.evaluate(model, split="valid") -> dict of the task's metrics. */
static PyObject *Task_evaluate(TaskObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"model", "split", NULL};
    PyObject *mo;
    const char *split = "valid";
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!|s", kwlist, &elm_py_ModelType, &mo, &split))
        return NULL;
    ModelObject *m = (ModelObject *)mo;
    if (elm_py_claim(&m->busy, m->m, "model", "by another thread"))
        return NULL;
    if (task_enter(self)) {
        m->busy = 0;
        return NULL;
    }
    m->runs++;
    elm_model_set_threads(m->m, (int)self->tc.threads ? (int)self->tc.threads : elm_py_threads);
    char *json = NULL;
    elm_status st;
    Py_BEGIN_ALLOW_THREADS st = elm_task_evaluate(self->t, m->m, split, &json);
    Py_END_ALLOW_THREADS self->busy = 0;
    m->busy = 0;
    if (st)
        return elm_py_raise(st);
    PyObject *r = from_json(json);
    free(json);
    return r;
}

static PyMethodDef Task_methods[] = {
    {"batch", (PyCFunction)(void (*)(void))Task_batch, METH_VARARGS | METH_KEYWORDS,
     "batch(step, batch_size=None, seed=None, dense=True) -> (x, target): the trainer's batch "
     "`step` of a run seeded `seed` (defaults: the task's settings)."},
    {"loss", (PyCFunction)Task_loss, METH_VARARGS,
     "loss(y, target) -> (loss, dy): the task's mean loss of y [B, T, O] and dL/dy."},
    {"evaluate", (PyCFunction)(void (*)(void))Task_evaluate, METH_VARARGS | METH_KEYWORDS,
     "evaluate(model, split=\"valid\") -> dict: the task's metrics (\"valid\" or \"test\")."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Task_getset[] = {
    {"info", (getter)Task_get_info, NULL, "the sizes and choices the task fixes", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject TaskType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "elm.Task",
    .tp_basicsize = sizeof(TaskObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Task(name, data, valid=None, config=None, for_training=True, test=None, "
              "**settings): a training task's data, batches, loss and evaluation "
              "(elm_train.h); test: separate test data, as `elm train --test DIR`.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Task_init,
    .tp_dealloc = (destructor)Task_dealloc,
    .tp_methods = Task_methods,
    .tp_getset = Task_getset,
};

/* ---- Trainer ---------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD elm_trainer *tr;
    int busy;
    /* During run(): the callbacks and the first exception a callback raised. */
    PyObject *on_progress, *on_epoch;
    PyObject *exc_type, *exc_value, *exc_tb;
} TrainerObject;

static PyTypeObject TrainerType;

static int Trainer_init(TrainerObject *self, PyObject *args, PyObject *kw) {
    static const char *const fixed[] = {"task",   "data",  "out",    "valid", "init",
                                        "config", "force", "resume", "test"};
    enum { NFIXED = 9 };
    PyObject *vals[NFIXED] = {NULL,    NULL,     NULL,     Py_None, Py_None,
                              Py_None, Py_False, Py_False, Py_None};
    PyObject *settings = split_args(args, kw, "Trainer",
                                    "Trainer takes 3 positional arguments (task, data, out); the "
                                    "rest are keywords",
                                    fixed, NFIXED, 3, vals);
    if (!settings)
        return -1;
    /* data, out, valid, init and test (vals[1..4], vals[8]) as bytes, in b[1..5] */
    PyObject *b[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
    int rc = -1;
    if (!vals[0] || !PyUnicode_Check(vals[0]) || !vals[1] || !vals[2]) {
        PyErr_SetString(PyExc_TypeError, "Trainer(task: str, data, out, valid=None, init=None, "
                                         "config=None, force=False, resume=False, test=None, "
                                         "**settings)");
        goto done;
    }
    for (int i = 1; i <= 5; i++) {
        PyObject *v = vals[i == 5 ? 8 : i];
        if (v != Py_None && !PyUnicode_FSConverter(v, &b[i]))
            goto done;
    }
    const char *task = PyUnicode_AsUTF8(vals[0]);
    if (!task)
        goto done;
    elm_train_spec s;
    memset(&s, 0, sizeof s);
    if (apply_settings(&s.train, &s.model, task, vals[5], settings, "elm.Trainer"))
        goto done;
    s.task = task;
    s.data = PyBytes_AS_STRING(b[1]);
    s.out = PyBytes_AS_STRING(b[2]);
    s.valid = b[3] ? PyBytes_AS_STRING(b[3]) : NULL;
    s.init = b[4] ? PyBytes_AS_STRING(b[4]) : NULL;
    s.test = b[5] ? PyBytes_AS_STRING(b[5]) : NULL;
    s.force = PyObject_IsTrue(vals[6]);
    const int resume = PyObject_IsTrue(vals[7]);
    if (s.force < 0 || resume < 0)
        goto done;
    if (s.force && resume) {
        PyErr_SetString(PyExc_ValueError, "resume continues the run in `out` and force starts it "
                                          "over; give one");
        goto done;
    }
    elm_trainer *tr = NULL;
    elm_status st;
    Py_BEGIN_ALLOW_THREADS st = resume ? elm_trainer_resume(&tr, &s) : elm_trainer_create(&tr, &s);
    Py_END_ALLOW_THREADS if (st) {
        elm_py_raise(st);
        goto done;
    }
    elm_trainer_free(self->tr);
    self->tr = tr;
    self->busy = 0;
    rc = 0;
done:
    for (int i = 0; i < 6; i++)
        Py_XDECREF(b[i]);
    Py_DECREF(settings);
    return rc;
}

static void Trainer_dealloc(TrainerObject *self) {
    elm_trainer_free(self->tr);
    Py_XDECREF(self->on_progress);
    Py_XDECREF(self->on_epoch);
    Py_XDECREF(self->exc_type);
    Py_XDECREF(self->exc_value);
    Py_XDECREF(self->exc_tb);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int trainer_enter(TrainerObject *self) {
    return elm_py_claim(&self->busy, self->tr, "trainer", "(run() or another thread)");
}

static PyObject *Trainer_get_info(TrainerObject *self, void *closure) {
    if (!self->tr)
        return elm_py_not_initialised("trainer");
    elm_train_info in;
    elm_trainer_get_info(self->tr, &in);
    static const char *const stops[] = {"finished", "request_stop", "time_limit"};
    return Py_BuildValue("{s:s,s:l,s:l,s:l,s:i,s:i,s:l,s:l,s:O,s:d,s:l,s:s,s:d}", "task",
                         in.task, "epochs", in.epochs, "batches_per_epoch", in.batches_per_epoch,
                         "total_steps", in.total_steps, "batch_size", in.batch_size, "seq_len",
                         in.seq_len, "step", in.step, "resumed_from", in.resumed_from, "resumed",
                         in.resumed ? Py_True : Py_False, "best", in.best, "best_epoch",
                         in.best_epoch, "stopped",
                         in.stopped >= 0 && in.stopped <= 2 ? stops[in.stopped] : "?",
                         "elapsed_s", in.elapsed_s);
}

/* The step's work with the GIL released; the trainer marked busy around it. */
#define TRAINER_CALL(self, call)                                                                   \
    do {                                                                                           \
        if (trainer_enter(self))                                                                   \
            return NULL;                                                                           \
        elm_status st_;                                                                            \
        Py_BEGIN_ALLOW_THREADS st_ = (call);                                                       \
        Py_END_ALLOW_THREADS(self)->busy = 0;                                                      \
        if (st_)                                                                                   \
            return elm_py_raise(st_);                                                              \
    } while (0)

static PyObject *Trainer_step(TrainerObject *self, PyObject *unused) {
    double loss = NAN;
    TRAINER_CALL(self, elm_trainer_step(self->tr, &loss));
    return PyFloat_FromDouble(loss);
}

static PyObject *Trainer_end_epoch(TrainerObject *self, PyObject *unused) {
    TRAINER_CALL(self, elm_trainer_end_epoch(self->tr));
    Py_RETURN_NONE;
}

static PyObject *Trainer_checkpoint(TrainerObject *self, PyObject *unused) {
    TRAINER_CALL(self, elm_trainer_checkpoint(self->tr));
    Py_RETURN_NONE;
}

static PyObject *Trainer_time_batch(TrainerObject *self, PyObject *unused) {
    double secs = 0;
    TRAINER_CALL(self, elm_trainer_time_batch(self->tr, &secs));
    return PyFloat_FromDouble(secs);
}

/* Calls a Python callback from a hook; an exception is kept and stops the run. */
static void hook_call(TrainerObject *self, PyObject *fn, PyObject *arg) {
    PyObject *r = arg ? PyObject_CallOneArg(fn, arg) : NULL;
    if (!r) {
        PyErr_Fetch(&self->exc_type, &self->exc_value, &self->exc_tb);
        elm_trainer_request_stop(self->tr);
    }
    Py_XDECREF(r);
    Py_XDECREF(arg);
}

static void on_progress(void *user, const elm_train_progress *p) {
    TrainerObject *self = user;
    PyGILState_STATE g = PyGILState_Ensure();
    /* Ctrl-C reaches Python's handler, which only sets a flag: honour it here. */
    if (!self->exc_type && PyErr_CheckSignals()) {
        PyErr_Fetch(&self->exc_type, &self->exc_value, &self->exc_tb);
        elm_trainer_request_stop(self->tr);
    }
    if (self->on_progress && !self->exc_type)
        hook_call(self, self->on_progress,
                  Py_BuildValue("{s:l,s:l,s:l,s:d,s:d,s:d,s:d,s:d,s:O}", "epoch", p->epoch,
                                "batch", p->batch, "step", p->step, "loss", p->loss, "lr", p->lr,
                                "sample_steps_per_s", p->sample_steps_per_s, "eta_s", p->eta_s,
                                "elapsed_s", p->elapsed_s, "epoch_end",
                                p->epoch_end ? Py_True : Py_False));
    PyGILState_Release(g);
}

static void on_epoch(void *user, const elm_train_epoch *e) {
    TrainerObject *self = user;
    PyGILState_STATE g = PyGILState_Ensure();
    if (self->on_epoch && !self->exc_type) {
        PyObject *metrics = e->metrics ? from_json(e->metrics) : (Py_INCREF(Py_None), Py_None);
        hook_call(self, self->on_epoch,
                  metrics ? Py_BuildValue("{s:l,s:d,s:s,s:d,s:O,s:O,s:N}", "epoch", e->epoch,
                                          "train_loss", e->train_loss, "select_metric",
                                          e->select_metric, "score", e->score, "saved",
                                          e->saved ? Py_True : Py_False, "diverged",
                                          e->diverged ? Py_True : Py_False, "metrics", metrics)
                          : NULL);
    }
    PyGILState_Release(g);
}

/*
 * trainer.run(progress=None, epoch_end=None): the run to its end (elm_trainer_run). progress(d)
 * is called after every batch and epoch_end(d) after each epoch's validation, with dicts of
 * elm_train_progress / elm_train_epoch. Returns info["stopped"].
 */
static PyObject *Trainer_run(TrainerObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"progress", "epoch_end", NULL};
    PyObject *pr = Py_None, *ep = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|OO", kwlist, &pr, &ep))
        return NULL;
    if ((pr != Py_None && !PyCallable_Check(pr)) || (ep != Py_None && !PyCallable_Check(ep)))
        return PyErr_Format(PyExc_TypeError, "progress and epoch_end must be callables or None");
    if (trainer_enter(self))
        return NULL;
    Py_CLEAR(self->on_progress);
    Py_CLEAR(self->on_epoch);
    if (pr != Py_None) {
        Py_INCREF(pr);
        self->on_progress = pr;
    }
    if (ep != Py_None) {
        Py_INCREF(ep);
        self->on_epoch = ep;
    }
    elm_train_hooks h = {.user = self, .progress = on_progress, .epoch_end = on_epoch};
    elm_trainer_set_hooks(self->tr, &h);
    elm_status st;
    Py_BEGIN_ALLOW_THREADS st = elm_trainer_run(self->tr);
    Py_END_ALLOW_THREADS elm_train_hooks none = {0};
    elm_trainer_set_hooks(self->tr, &none);
    Py_CLEAR(self->on_progress);
    Py_CLEAR(self->on_epoch);
    self->busy = 0;
    if (self->exc_type) {
        PyErr_Restore(self->exc_type, self->exc_value, self->exc_tb);
        self->exc_type = self->exc_value = self->exc_tb = NULL;
        return NULL;
    }
    if (st)
        return elm_py_raise(st);
    elm_train_info in;
    elm_trainer_get_info(self->tr, &in);
    return PyUnicode_FromString(in.stopped == 0 ? "finished"
                                : in.stopped == 1 ? "request_stop"
                                                  : "time_limit");
}

static PyObject *Trainer_request_stop(TrainerObject *self, PyObject *unused) {
    if (self->tr)
        elm_trainer_request_stop(self->tr);
    Py_RETURN_NONE;
}

/* trainer.model() -> Model: a copy of the model being trained, as it is now (on the default
 * path even when the run trains with fma=1: Model.fma switches it). */
static PyObject *Trainer_model(TrainerObject *self, PyObject *unused) {
    if (trainer_enter(self))
        return NULL;
    const elm_model *m = elm_trainer_model(self->tr);
    elm_model *c = NULL;
    elm_status st = elm_model_clone(&c, m, elm_model_dtype(m));
    self->busy = 0;
    if (st)
        return elm_py_raise(st);
    return elm_py_wrap_model(c);
}

static PyObject *Trainer_get_task_info(TrainerObject *self, void *closure) {
    if (!self->tr)
        return elm_py_not_initialised("trainer");
    elm_task_info in;
    elm_task_get_info(elm_trainer_task(self->tr), &in);
    return task_info_dict(&in);
}

static PyObject *Trainer_get_test_metrics(TrainerObject *self, void *closure) {
    const char *s = self->tr ? elm_trainer_test_metrics(self->tr) : NULL;
    if (!s)
        Py_RETURN_NONE;
    return from_json(s);
}

static PyMethodDef Trainer_methods[] = {
    {"step", (PyCFunction)Trainer_step, METH_NOARGS,
     "step() -> loss: one training batch (draw, forward, loss, backward, clip, optimiser)."},
    {"end_epoch", (PyCFunction)Trainer_end_epoch, METH_NOARGS,
     "end_epoch(): validation, metrics rows, and the best model saved when it improves."},
    {"checkpoint", (PyCFunction)Trainer_checkpoint, METH_NOARGS,
     "checkpoint(): writes a checkpoint of the current step."},
    {"time_batch", (PyCFunction)Trainer_time_batch, METH_NOARGS,
     "time_batch() -> seconds: times the next batch without applying it."},
    {"run", (PyCFunction)(void (*)(void))Trainer_run, METH_VARARGS | METH_KEYWORDS,
     "run(progress=None, epoch_end=None) -> str: the run to its end (\"finished\", "
     "\"request_stop\" or \"time_limit\"); callbacks get dicts."},
    {"request_stop", (PyCFunction)Trainer_request_stop, METH_NOARGS,
     "request_stop(): run() stops after the current batch, with a checkpoint."},
    {"model", (PyCFunction)Trainer_model, METH_NOARGS,
     "model() -> Model: a copy of the model being trained."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Trainer_getset[] = {
    {"info", (getter)Trainer_get_info, NULL, "where the run stands (elm_train_info)", NULL},
    {"task_info", (getter)Trainer_get_task_info, NULL, "the task's sizes (elm_task_info)", NULL},
    {"test_metrics", (getter)Trainer_get_test_metrics, NULL,
     "after a finished run: test_metrics.json (dict): the best model's "
     "validation scores (valid_*) and test scores (test_*, where the task has test data), "
     "else None", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject TrainerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "elm.Trainer",
    .tp_basicsize = sizeof(TrainerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Trainer(task, data, out, valid=None, init=None, config=None, force=False, "
              "resume=False, test=None, **settings): a training run in folder `out`, as `elm "
              "train` (test: its --test DIR).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Trainer_init,
    .tp_dealloc = (destructor)Trainer_dealloc,
    .tp_methods = Trainer_methods,
    .tp_getset = Trainer_getset,
};

/* ---- Module ----------------------------------------------------------------------------------- */

static PyObject *py_train_knobs(PyObject *mod, PyObject *unused) {
    const char *const *names, *const *help;
    int n = elm_train_knobs(&names, &help);
    PyObject *d = PyDict_New();
    for (int i = 0; d && i < n; i++)
        if (elm_py_dict_put(d, names[i], PyUnicode_FromString(help[i])))
            Py_CLEAR(d);
    return d;
}

static PyObject *py_task_names(PyObject *mod, PyObject *unused) {
    const char *const *names;
    int n = elm_task_names(&names);
    PyObject *l = PyList_New(n);
    for (int i = 0; l && i < n; i++) {
        PyObject *s = PyUnicode_FromString(names[i]);
        if (!s) {
            Py_CLEAR(l);
            break;
        }
        PyList_SET_ITEM(l, i, s);
    }
    return l;
}

PyMethodDef elm_py_train_methods[] = {
    {"train_knobs", (PyCFunction)py_train_knobs, METH_NOARGS,
     "train_knobs() -> dict: every training knob's name and description."},
    {"task_names", (PyCFunction)py_task_names, METH_NOARGS,
     "task_names() -> list: the tasks Task and Trainer know."},
    {NULL, NULL, 0, NULL}};

int elm_py_train_add_types(PyObject *module) {
    if (PyType_Ready(&TaskType) < 0 || PyType_Ready(&TrainerType) < 0)
        return -1;
    Py_INCREF(&TaskType);
    Py_INCREF(&TrainerType);
    if (PyModule_AddObject(module, "Task", (PyObject *)&TaskType) ||
        PyModule_AddObject(module, "Trainer", (PyObject *)&TrainerType))
        return -1;
    return 0;
}
