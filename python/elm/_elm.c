/*
 * _elm.c - the Python extension module elm._elm: elm models from numpy, written against the
 * CPython API and the numpy C API over include/elm.h. The data readers (_data.c) and training
 * (_train.c) are further files of the same module (_elm.h).
 *
 * Objects: Model (an elm_model) and State (an elm_state tied to the Model that made it).
 * Arrays: inputs of any float dtype are converted to the model's dtype; non-contiguous,
 * misaligned, byte-swapped or read-only arrays are copied (inputs are only read), so every
 * numpy array a user can build is accepted or refused with an exception, never crashes.
 * Outputs and parameters are fresh arrays owned by the caller (copies, not views: a view would
 * dangle once the model is freed).
 * Errors: elm's status becomes an exception carrying elm_last_error(): ELM_ERR_IO -> OSError,
 * ELM_ERR_NOMEM -> MemoryError, everything else -> ValueError; wrong Python types -> TypeError.
 * Threads: the GIL is released during forward, gradients and steps. A model is used by one
 * thread at a time (elm.h); a second thread calling into a busy model gets RuntimeError instead
 * of a data race.
 */
#define ELM_PY_MAIN
#include "_elm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int elm_py_threads = 0;

PyObject *elm_py_raise(elm_status st) {
    PyObject *type = st == ELM_ERR_IO ? PyExc_OSError
                     : st == ELM_ERR_NOMEM ? PyExc_MemoryError
                                           : PyExc_ValueError;
    const char *msg = elm_last_error();
    PyErr_SetString(type, msg && *msg ? msg : elm_status_str(st));
    return NULL;
}

/* ---- Model ------------------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD elm_state *s;
    ModelObject *owner; /* strong reference: the state needs its model alive */
    int batch;
} StateObject;

#define ModelType elm_py_ModelType
static PyTypeObject StateType;

static int npy_type(const elm_model *m) {
    return elm_model_dtype(m) == ELM_F64 ? NPY_FLOAT64 : NPY_FLOAT32;
}

PyObject *elm_py_not_initialised(const char *what) {
    return PyErr_Format(PyExc_ValueError, "the %s is not initialised", what);
}

int elm_py_claim(int *busy, const void *handle, const char *what, const char *busy_why) {
    if (!handle) {
        elm_py_not_initialised(what);
        return -1;
    }
    if (*busy) {
        PyErr_Format(PyExc_RuntimeError, "the %s is in use %s", what, busy_why);
        return -1;
    }
    *busy = 1;
    return 0;
}

/* Enters a model for C work; refuses a model busy in another thread. */
static int enter(ModelObject *self) {
    if (elm_py_claim(&self->busy, self->m, "model",
                     "by another thread (an elm model runs one call at a time; use one model "
                     "per thread)"))
        return -1;
    elm_model_set_threads(self->m, elm_py_threads);
    return 0;
}

/*
 * `obj` as a C-contiguous, aligned array of the model's dtype with ndim in [lo, hi]; any float
 * dtype is converted, anything else is a TypeError. `what` names the argument in messages.
 */
static PyArrayObject *as_real(ModelObject *self, PyObject *obj, int lo, int hi, const char *what) {
    PyArrayObject *a = (PyArrayObject *)PyArray_FROM_O(obj);
    if (!a)
        return NULL;
    if (!PyArray_ISFLOAT(a)) {
        PyErr_Format(PyExc_TypeError, "%s must be an array of floats, not %s", what,
                     PyArray_DESCR(a)->typeobj->tp_name);
        Py_DECREF(a);
        return NULL;
    }
    int nd = PyArray_NDIM(a);
    if (nd < lo || nd > hi) {
        if (lo == hi)
            PyErr_Format(PyExc_ValueError, "%s must have %d dimensions, not %d", what, lo, nd);
        else
            PyErr_Format(PyExc_ValueError, "%s must have %d to %d dimensions, not %d", what, lo,
                         hi, nd);
        Py_DECREF(a);
        return NULL;
    }
    PyArrayObject *c = (PyArrayObject *)PyArray_FROM_OTF(
        (PyObject *)a, npy_type(self->m), NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST);
    Py_DECREF(a);
    return c;
}

static int check_int(npy_intp v, const char *what) {
    if (v <= 0 || v > INT32_MAX) {
        PyErr_Format(PyExc_ValueError, "%s is %lld; it must be in 1..%d", what, (long long)v,
                     INT32_MAX);
        return -1;
    }
    return 0;
}

static PyObject *json_module(void) { return PyImport_ImportModule("json"); }

static int parse_dtype(PyObject *o, elm_dtype *dt) {
    if (!o || o == Py_None) {
        *dt = ELM_F32;
        return 0;
    }
    if (!PyUnicode_Check(o)) {
        PyErr_SetString(PyExc_TypeError, "dtype must be \"float32\" or \"float64\"");
        return -1;
    }
    const char *s = PyUnicode_AsUTF8(o);
    if (!s)
        return -1;
    if (!strcmp(s, "float32"))
        *dt = ELM_F32;
    else if (!strcmp(s, "float64"))
        *dt = ELM_F64;
    else {
        PyErr_Format(PyExc_ValueError, "dtype must be \"float32\" or \"float64\", not \"%s\"", s);
        return -1;
    }
    return 0;
}

PyObject *elm_py_wrap_model(elm_model *m) {
    ModelObject *o = PyObject_New(ModelObject, &ModelType);
    if (!o) {
        elm_model_free(m);
        return NULL;
    }
    o->m = m;
    o->busy = 0;
    o->runs = o->train_token = 0;
    o->train_B = o->train_T = 0;
    o->fma = 0;
    elm_model_set_fma(m, 0); /* a wrapped model starts on the default path, as Model() does */
    return (PyObject *)o;
}

static int Model_init(ModelObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"config", "seed", "dtype", NULL};
    PyObject *cfg_obj, *dtype_obj = NULL;
    unsigned long long seed = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!|KO", kwlist, &PyDict_Type, &cfg_obj, &seed,
                                     &dtype_obj))
        return -1;
    elm_dtype dt;
    if (parse_dtype(dtype_obj, &dt))
        return -1;
    PyObject *json = json_module();
    if (!json)
        return -1;
    PyObject *text = PyObject_CallMethod(json, "dumps", "O", cfg_obj);
    Py_DECREF(json);
    if (!text)
        return -1;
    const char *s = PyUnicode_AsUTF8(text);
    if (!s) {
        Py_DECREF(text);
        return -1;
    }
    elm_config c;
    elm_config_default(&c, 0, 0, 0);
    elm_status st = elm_config_from_json(&c, s, "config");
    Py_DECREF(text);
    if (!st)
        st = elm_config_resolve(&c);
    elm_model *m = NULL;
    if (!st)
        st = elm_model_create(&m, &c, dt, (uint64_t)seed);
    if (st) {
        elm_py_raise(st);
        return -1;
    }
    elm_model_free(self->m);
    self->m = m;
    self->busy = 0;
    self->runs = self->train_token = 0;
    return 0;
}

static void Model_dealloc(ModelObject *self) {
    elm_model_free(self->m);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Model_save(ModelObject *self, PyObject *arg) {
    PyObject *b = NULL;
    if (!PyUnicode_FSConverter(arg, &b))
        return NULL;
    if (enter(self)) {
        Py_DECREF(b);
        return NULL;
    }
    elm_status st;
    Py_BEGIN_ALLOW_THREADS st = elm_model_save(self->m, PyBytes_AS_STRING(b));
    Py_END_ALLOW_THREADS self->busy = 0;
    Py_DECREF(b);
    if (st)
        return elm_py_raise(st);
    Py_RETURN_NONE;
}

int elm_py_dict_put(PyObject *d, const char *k, PyObject *v) {
    if (!v)
        return -1;
    int r = PyDict_SetItemString(d, k, v);
    Py_DECREF(v);
    return r;
}

static PyObject *Model_get_config(ModelObject *self, void *closure) {
    if (!self->m)
        return elm_py_not_initialised("model");
    char *s = elm_config_to_json(elm_model_config(self->m));
    if (!s)
        return PyErr_NoMemory();
    PyObject *json = json_module();
    PyObject *d = json ? PyObject_CallMethod(json, "loads", "s", s) : NULL;
    Py_XDECREF(json);
    free(s);
    /* The version too, so that Model(m.config) rebuilds the same kind of model. */
    const elm_config *c = elm_model_config(self->m);
    if (d && c->model_type == ELM_MODEL_ELM &&
        elm_py_dict_put(d, "elm_version", PyUnicode_FromString(c->version == ELM_V2 ? "v2" : "v1")))
        Py_CLEAR(d);
    return d;
}

static PyObject *Model_get_num_params(ModelObject *self, void *closure) {
    if (!self->m)
        return elm_py_not_initialised("model");
    return PyLong_FromSize_t(elm_model_num_params(self->m));
}

static PyObject *Model_get_fma(ModelObject *self, void *closure) {
    if (!self->m)
        return elm_py_not_initialised("model");
    return PyBool_FromLong(self->fma);
}

static int Model_set_fma(ModelObject *self, PyObject *v, void *closure) {
    if (!self->m) {
        elm_py_not_initialised("model");
        return -1;
    }
    int on = v ? PyObject_IsTrue(v) : 0;
    if (on < 0)
        return -1;
    elm_status st = elm_model_set_fma(self->m, on);
    if (st) {
        elm_py_raise(st);
        return -1;
    }
    self->fma = on;
    return 0;
}

static PyObject *Model_get_dtype(ModelObject *self, void *closure) {
    if (!self->m)
        return elm_py_not_initialised("model");
    return PyUnicode_FromString(elm_model_dtype(self->m) == ELM_F64 ? "float64" : "float32");
}

/* A tensor (its parameters, or its gradient when grad != 0) as a fresh array. */
static PyObject *tensor_array(ModelObject *self, const elm_tensor *t, int grad) {
    npy_intp dims[2] = {t->shape[0], t->shape[1]};
    PyObject *a = PyArray_SimpleNew(t->ndim, dims, npy_type(self->m));
    if (a)
        memcpy(PyArray_DATA((PyArrayObject *)a), grad ? t->grad : t->data,
               (size_t)PyArray_NBYTES((PyArrayObject *)a));
    return a;
}

static PyObject *Model_parameters(ModelObject *self, PyObject *unused) {
    if (!self->m)
        return elm_py_not_initialised("model");
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    for (int i = 0; i < elm_model_num_tensors(self->m); i++) {
        elm_tensor t;
        elm_model_tensor(self->m, i, &t);
        if (elm_py_dict_put(d, t.name, tensor_array(self, &t, 0))) {
            Py_DECREF(d);
            return NULL;
        }
    }
    /* The routing, as the reference's state dict holds it (a BOOL mask for neuronio_routing,
     * int64 ones for random_routing). */
    int S = elm_model_num_routes(self->m);
    if (S > 0) {
        npy_intp dims[1] = {S};
        int bool_mask =
            elm_model_config(self->m)->input_to_synapse_routing == ELM_ROUTE_NEURONIO;
        PyObject *ia = PyArray_SimpleNew(1, dims, NPY_INT64);
        PyObject *ma = PyArray_SimpleNew(1, dims, bool_mask ? NPY_BOOL : NPY_INT64);
        double *mask = malloc(sizeof(double) * (size_t)S);
        if (!ia || !ma || !mask) {
            Py_XDECREF(ia);
            Py_XDECREF(ma);
            free(mask);
            Py_DECREF(d);
            return PyErr_NoMemory();
        }
        elm_model_get_routing(self->m, PyArray_DATA((PyArrayObject *)ia), mask);
        for (int k = 0; k < S; k++) {
            if (bool_mask)
                ((npy_bool *)PyArray_DATA((PyArrayObject *)ma))[k] = mask[k] != 0;
            else
                ((int64_t *)PyArray_DATA((PyArrayObject *)ma))[k] = mask[k] != 0;
        }
        free(mask);
        if (elm_py_dict_put(d, "input_to_synapse_indices", ia) ||
            elm_py_dict_put(d, "valid_indices_mask", ma)) {
            Py_DECREF(d);
            return NULL;
        }
    }
    return d;
}

/* Routing tensors from a dict, both or neither; returns 1 if set, 0 if absent, -1 on error. */
static int set_routing(ModelObject *self, PyObject *d) {
    PyObject *io = PyDict_GetItemString(d, "input_to_synapse_indices");
    PyObject *mo = PyDict_GetItemString(d, "valid_indices_mask");
    if (!io && !mo)
        return 0;
    int S = elm_model_num_routes(self->m);
    PyArrayObject *ia = io ? (PyArrayObject *)PyArray_FROMANY(io, NPY_INT64, 0, 1,
                                                              NPY_ARRAY_CARRAY_RO | NPY_ARRAY_FORCECAST)
                           : NULL;
    PyArrayObject *ma = mo ? (PyArrayObject *)PyArray_FROMANY(mo, NPY_FLOAT64, 0, 1,
                                                              NPY_ARRAY_CARRAY_RO | NPY_ARRAY_FORCECAST)
                           : NULL;
    int r = -1;
    if ((io && !ia) || (mo && !ma))
        goto done;
    npy_intp ni = ia ? PyArray_SIZE(ia) : 0, nm = ma ? PyArray_SIZE(ma) : 0;
    if (S == 0) {
        /* An unrouted model: the reference keeps both as empty tensors. */
        if (ni || nm) {
            PyErr_SetString(PyExc_ValueError, "routing tensors are non-empty but the "
                                              "configuration has no input_to_synapse_routing");
            goto done;
        }
        r = 1;
        goto done;
    }
    if (!ia || !ma || ni != S || nm != S) {
        PyErr_Format(PyExc_ValueError,
                     "input_to_synapse_indices and valid_indices_mask must both be [%d]", S);
        goto done;
    }
    elm_status st = elm_model_set_routing(self->m, PyArray_DATA(ia), PyArray_DATA(ma));
    if (st) {
        elm_py_raise(st);
        goto done;
    }
    r = 1;
done:
    Py_XDECREF(ia);
    Py_XDECREF(ma);
    return r;
}

/*
 * m.set_parameters(dict): writes the named tensors (any float arrays of the tensor's shape) and
 * the routing tensors; names not given keep their values. An unknown name or a wrong shape is a
 * ValueError and changes nothing.
 */
static PyObject *Model_set_parameters(ModelObject *self, PyObject *d) {
    if (!PyDict_Check(d))
        return PyErr_Format(PyExc_TypeError, "set_parameters takes a dict of arrays");
    if (enter(self))
        return NULL;
    self->busy = 0;
    PyObject *key, *val;
    Py_ssize_t pos = 0;
    /* Check everything first. */
    while (PyDict_Next(d, &pos, &key, &val)) {
        const char *k = PyUnicode_Check(key) ? PyUnicode_AsUTF8(key) : NULL;
        if (!k)
            return PyErr_Format(PyExc_TypeError, "parameter names must be strings");
        if (!strcmp(k, "input_to_synapse_indices") || !strcmp(k, "valid_indices_mask"))
            continue;
        int i = elm_model_find_tensor(self->m, k);
        if (i < 0)
            return PyErr_Format(PyExc_ValueError, "unknown parameter '%s' for this model", k);
        elm_tensor t;
        elm_model_tensor(self->m, i, &t);
        PyArrayObject *a = as_real(self, val, 1, 2, k);
        if (!a)
            return NULL;
        int ok = (size_t)PyArray_SIZE(a) == t.numel && PyArray_NDIM(a) == t.ndim &&
                 PyArray_DIM(a, 0) == t.shape[0] &&
                 (t.ndim == 1 || PyArray_DIM(a, 1) == t.shape[1]);
        Py_DECREF(a);
        if (!ok) {
            if (t.ndim == 1)
                return PyErr_Format(PyExc_ValueError, "parameter '%s' must be [%d]", k,
                                    t.shape[0]);
            return PyErr_Format(PyExc_ValueError, "parameter '%s' must be [%d, %d]", k,
                                t.shape[0], t.shape[1]);
        }
    }
    if (set_routing(self, d) < 0)
        return NULL;
    self->train_token = 0; /* BPTT must see the parameters its forward pass saw */
    pos = 0;
    while (PyDict_Next(d, &pos, &key, &val)) {
        const char *k = PyUnicode_AsUTF8(key);
        int i = elm_model_find_tensor(self->m, k);
        if (i < 0)
            continue;
        elm_tensor t;
        elm_model_tensor(self->m, i, &t);
        PyArrayObject *a = as_real(self, val, 1, 2, k);
        if (!a)
            return NULL;
        memcpy(t.data, PyArray_DATA(a), (size_t)PyArray_NBYTES(a));
        Py_DECREF(a);
    }
    elm_model_refresh(self->m);
    Py_RETURN_NONE;
}

/* x as [B, T, I] (a 2-D x is one sample); returns the array with *B, *T set, or NULL (also
 * for a model that is not initialised). */
static PyArrayObject *batch_input(ModelObject *self, PyObject *xo, int *B, int *T) {
    if (!self->m) {
        elm_py_not_initialised("model");
        return NULL;
    }
    PyArrayObject *x = as_real(self, xo, 2, 3, "x");
    if (!x)
        return NULL;
    int nd = PyArray_NDIM(x);
    npy_intp b = nd == 3 ? PyArray_DIM(x, 0) : 1, t = PyArray_DIM(x, nd - 2),
             i = PyArray_DIM(x, nd - 1);
    int I = elm_model_config(self->m)->num_input;
    if (i != I) {
        PyErr_Format(PyExc_ValueError,
                     "x must be [B, T, %d] or [T, %d] (num_input %d), not one with %lld inputs",
                     I, I, I, (long long)i);
        Py_DECREF(x);
        return NULL;
    }
    if (check_int(b, "the batch size") || check_int(t, "the number of time steps") ||
        check_int(b * t, "B * T")) {
        Py_DECREF(x);
        return NULL;
    }
    *B = (int)b;
    *T = (int)t;
    return x;
}

/* dloss as the outputs' shape [B, T, O] (a 2-D dloss when B = 1), or NULL. */
static PyArrayObject *dloss_input(ModelObject *self, PyObject *dyo, int B, int T) {
    const int O = elm_model_config(self->m)->num_output;
    PyArrayObject *dy = as_real(self, dyo, 2, 3, "dloss");
    if (!dy)
        return NULL;
    int nd = PyArray_NDIM(dy);
    if ((nd == 3 ? PyArray_DIM(dy, 0) : 1) != B || PyArray_DIM(dy, nd - 2) != T ||
        PyArray_DIM(dy, nd - 1) != O) {
        Py_DECREF(dy);
        PyErr_Format(PyExc_ValueError, "dloss must have the outputs' shape [%d, %d, %d]", B, T, O);
        return NULL;
    }
    return dy;
}

/* A fresh output array of the model's dtype, [rows, steps, num_output] (steps 0: [rows,
 * num_output]), with the model entered for C work (enter()); NULL with the error set and
 * nothing entered. */
static PyArrayObject *output_entered(ModelObject *self, npy_intp rows, npy_intp steps) {
    const npy_intp O = elm_model_config(self->m)->num_output;
    npy_intp d3[3] = {rows, steps, O}, d2[2] = {rows, O};
    PyArrayObject *y = (PyArrayObject *)(steps > 0 ? PyArray_SimpleNew(3, d3, npy_type(self->m))
                                                   : PyArray_SimpleNew(2, d2, npy_type(self->m)));
    if (y && enter(self))
        Py_CLEAR(y);
    return y;
}

/* The end of a call that ran the model on x into y: drops x; y, or NULL with elm's error (y
 * dropped) when st failed. The model's busy flag is already cleared. */
static PyObject *run_result(elm_status st, PyArrayObject *x, PyArrayObject *y) {
    Py_XDECREF(x);
    if (st) {
        Py_DECREF(y);
        return elm_py_raise(st);
    }
    return (PyObject *)y;
}

/* After a training forward pass: records what backward() needs and returns (y, token), taking
 * the reference to y; NULL (y dropped) when y is NULL. */
static PyObject *pending_backward(ModelObject *self, PyObject *y, unsigned long long token, int B,
                                  int T) {
    if (!y)
        return NULL;
    self->train_token = token;
    self->train_B = B;
    self->train_T = T;
    return Py_BuildValue("(NK)", y, token);
}

/* m.forward(x) (train 0) and m.forward_train(x) (train 1) of a dense x. */
static PyObject *dense_forward(ModelObject *self, PyObject *xo, int train) {
    int B, T;
    PyArrayObject *x = batch_input(self, xo, &B, &T);
    if (!x)
        return NULL;
    PyArrayObject *y = output_entered(self, B, T);
    if (!y) {
        Py_DECREF(x);
        return NULL;
    }
    elm_status st;
    void *xp = PyArray_DATA(x), *yp = PyArray_DATA(y);
    const int f64 = elm_model_dtype(self->m) == ELM_F64;
    const unsigned long long token = ++self->runs;
    if (train)
        self->train_token = 0;
    Py_BEGIN_ALLOW_THREADS st = train ? elm_model_forward_train(self->m, xp, yp, B, T)
                                : f64 ? elm_model_forward_f64(self->m, xp, yp, B, T)
                                      : elm_model_forward(self->m, xp, yp, B, T);
    Py_END_ALLOW_THREADS self->busy = 0;
    PyObject *r = run_result(st, x, y);
    return train ? pending_backward(self, r, token, B, T) : r;
}

static PyObject *Model_forward(ModelObject *self, PyObject *xo) {
    return dense_forward(self, xo, 0);
}

/* Every trainable tensor's gradient, by name (fresh arrays). */
static PyObject *grads_dict(ModelObject *self) {
    PyObject *d = PyDict_New();
    for (int i = 0; d && i < elm_model_num_tensors(self->m); i++) {
        elm_tensor t;
        elm_model_tensor(self->m, i, &t);
        if (t.trainable && elm_py_dict_put(d, t.name, tensor_array(self, &t, 1)))
            Py_CLEAR(d);
    }
    return d;
}

/*
 * m.forward_train(x) -> (y, token): the forward pass that keeps what BPTT needs, for a later
 * m.backward(dloss, token). Saves the second forward pass of grad() when the gradient is wanted
 * after the output is used (elm.torch's autograd). The token goes stale when the model runs
 * anything else before backward (forward, grad, step, another forward_train).
 */
static PyObject *Model_forward_train(ModelObject *self, PyObject *xo) {
    return dense_forward(self, xo, 1);
}

/* m.backward(dloss, token) -> dict: the gradients of sum(Y * dloss), Y of forward_train. */
static PyObject *Model_backward(ModelObject *self, PyObject *args) {
    PyObject *dyo;
    unsigned long long token;
    if (!PyArg_ParseTuple(args, "OK", &dyo, &token))
        return NULL;
    if (!self->m)
        return elm_py_not_initialised("model");
    if (!token || token != self->train_token || token != self->runs)
        return PyErr_Format(PyExc_ValueError,
                            "backward: the token is not that of the model's last forward_train "
                            "(the model ran since, or backward was already called): call "
                            "forward_train again, or use grad(x, dloss)");
    PyArrayObject *dy = dloss_input(self, dyo, self->train_B, self->train_T);
    if (!dy)
        return NULL;
    if (enter(self)) {
        Py_DECREF(dy);
        return NULL;
    }
    elm_status st;
    void *dp = PyArray_DATA(dy);
    self->train_token = 0; /* one backward per forward_train */
    Py_BEGIN_ALLOW_THREADS elm_model_zero_grad(self->m);
    st = elm_model_backward(self->m, dp);
    Py_END_ALLOW_THREADS self->busy = 0;
    Py_DECREF(dy);
    if (st)
        return elm_py_raise(st);
    return grads_dict(self);
}

/*
 * m.forward_spikes(ptr, idx, val, steps, train=False): the input as spike lists in the layout of
 * elm_sparse_input (row b * steps + t holds idx[ptr[r] .. ptr[r + 1]), ascending input ids, and
 * their values val, or None for all ones), as elm's trainer feeds NeuronIO and SHD batches.
 * Results are bitwise those of forward / forward_train on the dense input. Returns y, or
 * (y, token) for backward() when train is true. Every list is checked first (lengths, row
 * pointers, ids in range and ascending): bad lists are a ValueError, never read out of bounds.
 */
static PyObject *Model_forward_spikes(ModelObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"ptr", "idx", "val", "steps", "train", NULL};
    PyObject *po, *io, *vo;
    Py_ssize_t steps;
    int train = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOn|p", kwlist, &po, &io, &vo, &steps, &train))
        return NULL;
    if (!self->m)
        return elm_py_not_initialised("model");
    PyArrayObject *ptr = (PyArrayObject *)PyArray_FROMANY(po, NPY_INT64, 1, 1,
                                                          NPY_ARRAY_CARRAY_RO | NPY_ARRAY_FORCECAST);
    PyArrayObject *idx = ptr ? (PyArrayObject *)PyArray_FROMANY(io, NPY_INT32, 1, 1,
                                                                NPY_ARRAY_CARRAY_RO | NPY_ARRAY_FORCECAST)
                             : NULL;
    PyArrayObject *val = NULL, *y = NULL;
    PyObject *res = NULL;
    if (!ptr || !idx)
        goto done;
    if (vo != Py_None && !(val = as_real(self, vo, 1, 1, "val")))
        goto done;
    const npy_intp rows = PyArray_SIZE(ptr) - 1, nnz = PyArray_SIZE(idx);
    const int64_t *pp = PyArray_DATA(ptr);
    const int32_t *ip = PyArray_DATA(idx);
    const int I = elm_model_config(self->m)->num_input;
    if (check_int(steps, "steps") || rows < 1 || rows % steps ||
        check_int(rows / steps, "the batch size")) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "ptr must hold B * steps + 1 row pointers (steps %zd), "
                                           "not %zd",
                         steps, rows + 1);
        goto done;
    }
    if (val && PyArray_SIZE(val) != nnz) {
        PyErr_Format(PyExc_ValueError, "val has %zd values but idx %zd ids", PyArray_SIZE(val),
                     nnz);
        goto done;
    }
    if (pp[0] != 0 || pp[rows] != nnz) {
        PyErr_Format(PyExc_ValueError, "ptr must start at 0 and end at len(idx) = %zd", nnz);
        goto done;
    }
    for (npy_intp r = 0; r < rows; r++) {
        if (pp[r + 1] < pp[r]) {
            PyErr_Format(PyExc_ValueError, "ptr decreases at row %zd", r);
            goto done;
        }
        for (int64_t j = pp[r]; j < pp[r + 1]; j++)
            if (ip[j] < 0 || ip[j] >= I || (j > pp[r] && ip[j] <= ip[j - 1])) {
                PyErr_Format(PyExc_ValueError, "row %zd: input ids must be ascending and in "
                                               "0..%d (entry %lld is %d)",
                             r, I - 1, (long long)j, (int)ip[j]);
                goto done;
            }
    }
    const int B = (int)(rows / steps), T = (int)steps;
    if (!(y = output_entered(self, B, T)))
        goto done;
    elm_sparse_input xs = {pp, ip, val ? PyArray_DATA(val) : NULL};
    void *yp = PyArray_DATA(y);
    const unsigned long long token = ++self->runs;
    self->train_token = 0;
    elm_status st;
    Py_BEGIN_ALLOW_THREADS st = train ? elm_model_forward_train_sparse(self->m, &xs, yp, B, T)
                                      : elm_model_forward_sparse(self->m, &xs, yp, B, T);
    Py_END_ALLOW_THREADS self->busy = 0;
    if (st) {
        elm_py_raise(st);
        goto done;
    }
    Py_INCREF(y);
    res = train ? pending_backward(self, (PyObject *)y, token, B, T) : (PyObject *)y;
done:
    Py_XDECREF(ptr);
    Py_XDECREF(idx);
    Py_XDECREF(val);
    Py_XDECREF(y);
    return res;
}

static PyObject *Model_get_train_token(ModelObject *self, void *closure) {
    return PyLong_FromUnsignedLongLong(self->train_token == self->runs ? self->train_token : 0);
}

/*
 * m.grad(x, dloss, return_output=False): the gradient of sum(Y * dloss) for every trainable
 * tensor (a dict), and Y too when return_output is true ((grads, Y)).
 */
static PyObject *Model_grad(ModelObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"x", "dloss", "return_output", NULL};
    PyObject *xo, *dyo;
    int ret_y = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|p", kwlist, &xo, &dyo, &ret_y))
        return NULL;
    int B, T;
    PyArrayObject *x = batch_input(self, xo, &B, &T), *dy = NULL, *y = NULL;
    if (!x || !(dy = dloss_input(self, dyo, B, T)) || !(y = output_entered(self, B, T))) {
        Py_XDECREF(x);
        Py_XDECREF(dy);
        return NULL;
    }
    elm_status st;
    void *xp = PyArray_DATA(x), *yp = PyArray_DATA(y), *dp = PyArray_DATA(dy);
    self->runs++;
    Py_BEGIN_ALLOW_THREADS elm_model_zero_grad(self->m);
    st = elm_model_forward_train(self->m, xp, yp, B, T);
    if (!st)
        st = elm_model_backward(self->m, dp);
    Py_END_ALLOW_THREADS self->busy = 0;
    Py_DECREF(dy);
    if (!run_result(st, x, y))
        return NULL;
    PyObject *d = grads_dict(self);
    if (!d || !ret_y) {
        Py_DECREF(y);
        return d;
    }
    return Py_BuildValue("(NN)", d, (PyObject *)y);
}

static PyObject *Model_state(ModelObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"batch", NULL};
    Py_ssize_t batch = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|n", kwlist, &batch))
        return NULL;
    if (!self->m)
        return elm_py_not_initialised("model");
    if (check_int(batch, "the batch size"))
        return NULL;
    elm_state *s = NULL;
    elm_status st = elm_state_create(&s, self->m, (int)batch);
    if (st)
        return elm_py_raise(st);
    StateObject *o = PyObject_New(StateObject, &StateType);
    if (!o) {
        elm_state_free(s);
        return NULL;
    }
    o->s = s;
    o->batch = (int)batch;
    Py_INCREF(self);
    o->owner = self;
    return (PyObject *)o;
}

/* m.step(s, x_t): x_t [B, I] (or [I] when B = 1) -> y_t [B, O]. */
static PyObject *Model_step(ModelObject *self, PyObject *args) {
    PyObject *so, *xo;
    if (!PyArg_ParseTuple(args, "OO", &so, &xo))
        return NULL;
    if (!PyObject_TypeCheck(so, &StateType))
        return PyErr_Format(PyExc_TypeError, "step needs a state from m.state(batch), not %s",
                            Py_TYPE(so)->tp_name);
    StateObject *s = (StateObject *)so;
    if (s->owner != self)
        return PyErr_Format(PyExc_ValueError,
                            "the state belongs to another model (make it with this model's "
                            "state(batch))");
    PyArrayObject *x = as_real(self, xo, 1, 2, "x_t");
    if (!x)
        return NULL;
    int I = elm_model_config(self->m)->num_input;
    int nd = PyArray_NDIM(x);
    npy_intp b = nd == 2 ? PyArray_DIM(x, 0) : 1;
    if (b != s->batch || PyArray_DIM(x, nd - 1) != I) {
        PyErr_Format(PyExc_ValueError, "x_t must be [%d, %d] (the state's batch, num_input)",
                     s->batch, I);
        Py_DECREF(x);
        return NULL;
    }
    PyArrayObject *y = output_entered(self, s->batch, 0);
    if (!y) {
        Py_DECREF(x);
        return NULL;
    }
    elm_status st;
    void *xp = PyArray_DATA(x), *yp = PyArray_DATA(y);
    int f64 = elm_model_dtype(self->m) == ELM_F64;
    self->runs++;
    Py_BEGIN_ALLOW_THREADS st = f64 ? elm_model_step_f64(self->m, s->s, xp, yp)
                                    : elm_model_step(self->m, s->s, xp, yp);
    Py_END_ALLOW_THREADS self->busy = 0;
    return run_result(st, x, y);
}

static PyMethodDef Model_methods[] = {
    {"save", (PyCFunction)Model_save, METH_O,
     "save(path): writes the model as safetensors (a folder: model.safetensors and "
     "model_config.json), atomically."},
    {"parameters", (PyCFunction)Model_parameters, METH_NOARGS,
     "parameters() -> dict: the reference's tensor names to numpy arrays (copies)."},
    {"set_parameters", (PyCFunction)Model_set_parameters, METH_O,
     "set_parameters(dict): writes the named tensors (and routing tensors); checked first, so "
     "an unknown name or a wrong shape changes nothing."},
    {"forward", (PyCFunction)Model_forward, METH_O,
     "forward(x) -> y: x [B, T, num_input] or [T, num_input] of any float dtype; y [B, T, "
     "num_output] in the model's dtype (B = 1 for a 2-D x)."},
    {"grad", (PyCFunction)(void (*)(void))Model_grad, METH_VARARGS | METH_KEYWORDS,
     "grad(x, dloss, return_output=False) -> dict: the gradient of sum(Y * dloss) for every "
     "trainable tensor (and Y with return_output)."},
    {"forward_train", (PyCFunction)Model_forward_train, METH_O,
     "forward_train(x) -> (y, token): forward keeping what BPTT needs, for backward(dloss, "
     "token)."},
    {"forward_spikes", (PyCFunction)(void (*)(void))Model_forward_spikes,
     METH_VARARGS | METH_KEYWORDS,
     "forward_spikes(ptr, idx, val, steps, train=False) -> y or (y, token): the input as spike "
     "lists (rows b * steps + t; val None: all ones), bitwise forward / forward_train."},
    {"backward", (PyCFunction)Model_backward, METH_VARARGS,
     "backward(dloss, token) -> dict: the gradients of sum(y * dloss) for the y of "
     "forward_train; ValueError when the model ran anything else since."},
    {"state", (PyCFunction)(void (*)(void))Model_state, METH_VARARGS | METH_KEYWORDS,
     "state(batch=1) -> State: zero traces and memory for `batch` samples."},
    {"step", (PyCFunction)Model_step, METH_VARARGS,
     "step(state, x_t) -> y_t: one time step, x_t [batch, num_input] -> y_t [batch, "
     "num_output]."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Model_getset[] = {
    {"config", (getter)Model_get_config, NULL, "the configuration, defaults filled in", NULL},
    {"num_params", (getter)Model_get_num_params, NULL, "number of trainable scalars", NULL},
    {"dtype", (getter)Model_get_dtype, NULL, "\"float32\" or \"float64\"", NULL},
    {"fma", (getter)Model_get_fma, (setter)Model_set_fma,
     "False (default) or True: float32 passes with fused multiply-adds (1.2-1.4x faster "
     "training of dense models, as accurate, not the default path's bits); ValueError for "
     "float64", NULL},
    {"train_token", (getter)Model_get_train_token, NULL,
     "the token backward() accepts now (that of the last forward_train), or 0", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject elm_py_ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "elm.Model",
    .tp_basicsize = sizeof(ModelObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Model(config: dict, seed=0, dtype=\"float32\"): an ELM neuron with fresh "
              "parameters, initialised as the reference does.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Model_init,
    .tp_dealloc = (destructor)Model_dealloc,
    .tp_methods = Model_methods,
    .tp_getset = Model_getset,
};

/* ---- State ------------------------------------------------------------------------------------ */

static void State_dealloc(StateObject *self) {
    elm_state_free(self->s);
    Py_XDECREF(self->owner);
    PyObject_Free(self);
}

static PyObject *State_reset(StateObject *self, PyObject *unused) {
    elm_state_reset(self->s);
    Py_RETURN_NONE;
}

static PyObject *State_get_batch(StateObject *self, void *closure) {
    return PyLong_FromLong(self->batch);
}

static PyMethodDef State_methods[] = {
    {"reset", (PyCFunction)State_reset, METH_NOARGS, "reset(): back to zero traces and memory."},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef State_getset[] = {
    {"batch", (getter)State_get_batch, NULL, "number of samples", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject StateType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "elm.State",
    .tp_basicsize = sizeof(StateObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The recurrent state of a batch of samples; made by Model.state(batch).",
    .tp_dealloc = (destructor)State_dealloc,
    .tp_methods = State_methods,
    .tp_getset = State_getset,
};

/* ---- Module ----------------------------------------------------------------------------------- */

static PyObject *mod_load(PyObject *mod, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"path", "dtype", NULL};
    PyObject *p, *dtype_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|O", kwlist, PyUnicode_FSConverter, &p,
                                     &dtype_obj))
        return NULL;
    elm_dtype dt;
    if (parse_dtype(dtype_obj, &dt)) {
        Py_DECREF(p);
        return NULL;
    }
    elm_model *m = NULL;
    elm_status st;
    const char *path = PyBytes_AS_STRING(p);
    Py_BEGIN_ALLOW_THREADS st = elm_model_load(&m, path, dt);
    Py_END_ALLOW_THREADS Py_DECREF(p);
    if (st)
        return elm_py_raise(st);
    return elm_py_wrap_model(m);
}

static PyObject *mod_set_num_threads(PyObject *mod, PyObject *arg) {
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 0 || n > 4096)
        return PyErr_Format(PyExc_ValueError, "the number of threads must be in 0..4096 (0: "
                                              "OpenMP's default), not %ld",
                            n);
    elm_py_threads = (int)n;
    Py_RETURN_NONE;
}

static PyObject *mod_fma_fuses(PyObject *mod, PyObject *unused) {
    (void)mod;
    (void)unused;
    return PyBool_FromLong(elm_fma_fuses());
}

static PyMethodDef mod_methods[] = {
    {"load", (PyCFunction)(void (*)(void))mod_load, METH_VARARGS | METH_KEYWORDS,
     "load(path, dtype=\"float32\") -> Model: a .safetensors file or a folder holding "
     "model.safetensors (and model_config.json), as the command line's MODEL."},
    {"fma_fuses", (PyCFunction)mod_fma_fuses, METH_NOARGS,
     "fma_fuses() -> bool: whether Model.fma = True fuses multiply-adds on this CPU with this "
     "build (False: it computes the default path's bits here)."},
    {"set_num_threads", (PyCFunction)mod_set_num_threads, METH_O,
     "set_num_threads(n): threads for every model's C work (0: OpenMP's default)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "_elm",
                                    "elm.s C core (use the elm package).", -1, mod_methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__elm(void) {
    import_array();
    if (PyType_Ready(&ModelType) < 0 || PyType_Ready(&StateType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&moddef);
    if (!m)
        return NULL;
    Py_INCREF(&ModelType);
    Py_INCREF(&StateType);
    if (PyModule_AddFunctions(m, elm_py_data_methods) ||
        PyModule_AddFunctions(m, elm_py_train_methods) || elm_py_train_add_types(m) ||
        PyModule_AddObject(m, "Model", (PyObject *)&ModelType) ||
        PyModule_AddObject(m, "State", (PyObject *)&StateType) ||
        PyModule_AddStringConstant(m, "__version__", ELM_VERSION_STRING)) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
