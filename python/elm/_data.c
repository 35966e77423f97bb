/*
 * _data.c - elm.data's readers in the extension: NeuronIO, SHD and Pathfinder files read by elm's
 * own C readers (src/neuronio, src/shd, src/pathfinder) and handed to Python as numpy arrays.
 *
 * Nothing here parses a file: every check (pickle opcodes and globals, cache checksums, HDF5
 * types and ranges, PNG format) is the C reader's, so Python sees exactly the data the CLI and
 * the trainer see, and a bad file is an exception naming the file and the problem. The NeuronIO
 * pickle is read by elm's safe pickle subset, never by Python's pickle.load.
 *
 * Spike lists use the layout of elm_sparse_input (include/elm.h): row r = sample * T + t holds
 * the entries spike_ptr[r] .. spike_ptr[r + 1] of spike_idx (and spike_count for SHD).
 */
#include "_elm.h"

#include "neuronio/nio_data.h"
#include "pathfinder/pathfinder.h"
#include "shd/shd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A path argument (str, bytes or os.PathLike) as bytes; NULL with the error set. */
static PyObject *fs_path(PyObject *o) {
    PyObject *b = NULL;
    return PyUnicode_FSConverter(o, &b) ? b : NULL;
}

static PyObject *new_array(int nd, npy_intp *dims, int type) {
    return PyArray_ZEROS(nd, dims, type, 0);
}

#define DATA(a) PyArray_DATA((PyArrayObject *)(a))

/*
 * A new dict of keys[i] -> vals[i]. Takes every reference in vals, whatever happens (NULL
 * entries are skipped: a value made on request only); NULL with the error set on failure.
 */
static PyObject *dict_of(const char *const *keys, PyObject **vals, int n) {
    PyObject *d = PyDict_New();
    for (int i = 0; i < n; i++) {
        if (d && vals[i] && PyDict_SetItemString(d, keys[i], vals[i]))
            Py_CLEAR(d);
        Py_XDECREF(vals[i]);
    }
    return d;
}

/* ---- NeuronIO --------------------------------------------------------------------------------- */

/* Every simulation's length (*T, one for all) and spike count (*nnz), each view verified. Runs
 * without the GIL. */
static elm_status nio_shape(const elm_nio_data *d, int S, int *T, int64_t *nnz) {
    elm_nio_view v;
    elm_status st = ELM_OK;
    *T = -1;
    *nnz = 0;
    for (int k = 0; k < S && !st; k++) {
        st = elm_nio_data_sim(d, k, &v);
        if (st)
            break;
        if (*T < 0)
            *T = v.T;
        else if (v.T != *T) {
            char name[512];
            st = elm__fail(ELM_ERR_FORMAT,
                           "%s: %d steps, but the simulations before it have %d (elm.data reads "
                           "simulations of one length; read the files one by one)",
                           elm_nio_view_name(&v, name, sizeof name), v.T, *T);
            break;
        }
        *nnz += v.spike_ptr[v.T];
    }
    return st;
}

/* The (S, T) soma voltages and output-spike targets, and the inputs: dense (xd, (S, T, n_in))
 * or as spike lists (pp, ip). Runs without the GIL. */
static elm_status nio_fill(const elm_nio_data *d, int S, int T, int n_in, float *so,
                           npy_bool *sp, npy_bool *xd, int64_t *pp, int32_t *ip) {
    elm_nio_view v;
    elm_status st = ELM_OK;
    int64_t at = 0;
    if (pp)
        pp[0] = 0;
    for (int k = 0; k < S && !st; k++) {
        if ((st = elm_nio_data_sim(d, k, &v)))
            break;
        for (int t = 0; t < T; t++) {
            so[(size_t)k * T + t] = elm_nio_view_soma(&v, t);
            for (int64_t j = v.spike_ptr[t]; j < v.spike_ptr[t + 1]; j++) {
                if (xd)
                    xd[((size_t)k * T + t) * (size_t)n_in + v.spike_idx[j]] = 1;
                else
                    ip[at++] = v.spike_idx[j];
            }
            if (pp)
                pp[(size_t)k * T + t + 1] = at;
        }
        /* The reference's spike target: 1 in the 1 ms bin of each output spike. */
        for (int j = 0; j < v.n_out_spikes; j++) {
            int b = elm_nio_spike_bin((double)v.out_spike_times[j]);
            if (b >= 0 && b < T)
                sp[(size_t)k * T + b] = 1;
        }
    }
    return st;
}

/* The files as (path, first simulation, count) and each simulation's output spike times, into
 * the lists files and times; 0, or -1 with a Python error set or *st an elm error. */
static int nio_lists(const elm_nio_data *d, int S, PyObject *files, PyObject *times,
                     elm_status *st) {
    for (int f = 0; f < elm_nio_data_num_files(d); f++) {
        PyObject *t = Py_BuildValue("(Nii)", PyUnicode_DecodeFSDefault(elm_nio_data_file_path(d, f)),
                                    elm_nio_data_file_first(d, f), elm_nio_data_file_count(d, f));
        if (!t)
            return -1;
        PyList_SET_ITEM(files, f, t);
    }
    elm_nio_view v;
    for (int k = 0; k < S; k++) {
        if ((*st = elm_nio_data_sim(d, k, &v)))
            return -1;
        npy_intp dt[1] = {v.n_out_spikes};
        PyObject *a = new_array(1, dt, NPY_FLOAT32);
        if (!a)
            return -1;
        if (v.n_out_spikes)
            memcpy(DATA(a), v.out_spike_times, sizeof(float) * (size_t)v.n_out_spikes);
        PyList_SET_ITEM(times, k, a);
    }
    return 0;
}

/*
 * _elm.neuronio_read(path, dense) -> dict. path: a pickle, a folder of pickles (glob *sim__*),
 * a .nioc cache or a folder of them. Every simulation must have the same length T.
 */
static PyObject *py_neuronio_read(PyObject *mod, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"path", "dense", NULL};
    PyObject *po;
    int dense = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|p", kwlist, &po, &dense))
        return NULL;
    PyObject *pb = fs_path(po);
    if (!pb)
        return NULL;
    const char *path = PyBytes_AS_STRING(pb);
    elm_nio_data *d = NULL;
    elm_status st;
    Py_BEGIN_ALLOW_THREADS st = elm_nio_data_open(&d, &path, 1);
    Py_END_ALLOW_THREADS if (st) {
        Py_DECREF(pb);
        return elm_py_raise(st);
    }
    PyObject *res = NULL, *ptr = NULL, *idx = NULL, *x = NULL, *soma = NULL, *spk = NULL,
             *times = NULL, *files = NULL;
    const int S = elm_nio_data_num_sims(d), n_in = elm_nio_data_n_in(d);
    int T = -1;
    int64_t nnz = 0;
    /* Shapes first: every simulation's view (which verifies it) and its spike count. */
    Py_BEGIN_ALLOW_THREADS st = nio_shape(d, S, &T, &nnz);
    Py_END_ALLOW_THREADS if (st) goto fail;
    if (S == 0) {
        st = elm__fail(ELM_ERR_FORMAT, "%s: no NeuronIO simulations", path);
        goto fail;
    }
    npy_intp d2[2] = {S, T}, d3[3] = {S, T, n_in}, dp[1] = {(npy_intp)S * T + 1},
             dn[1] = {(npy_intp)nnz};
    soma = new_array(2, d2, NPY_FLOAT32);
    spk = new_array(2, d2, NPY_BOOL);
    if (dense)
        x = new_array(3, d3, NPY_BOOL);
    else {
        ptr = new_array(1, dp, NPY_INT64);
        idx = new_array(1, dn, NPY_INT32);
    }
    times = PyList_New(S);
    files = PyList_New(elm_nio_data_num_files(d));
    if (!soma || !spk || !times || !files || (dense ? !x : (!ptr || !idx)))
        goto fail_py;
    if (nio_lists(d, S, files, times, &st))
        goto fail_or_py;
    {
        float *so = DATA(soma);
        npy_bool *sp = DATA(spk), *xd = dense ? DATA(x) : NULL;
        int64_t *pp = dense ? NULL : DATA(ptr);
        int32_t *ip = dense ? NULL : DATA(idx);
        Py_BEGIN_ALLOW_THREADS st = nio_fill(d, S, T, n_in, so, sp, xd, pp, ip);
        Py_END_ALLOW_THREADS if (st) goto fail;
    }
    {
        static const char *const keys[] = {"soma", "output_spikes", "output_spike_times", "files",
                                           "inputs", "spike_ptr", "spike_idx", "num_inputs", "T"};
        PyObject *vals[] = {soma, spk, times, files, x, ptr, idx, PyLong_FromLong(n_in),
                            PyLong_FromLong(T)};
        res = dict_of(keys, vals, 9);
    }
    elm_nio_data_free(d);
    Py_DECREF(pb);
    return res;
fail_or_py:
    if (!st)
        goto fail_py;
fail:
    elm_py_raise(st);
fail_py:
    Py_XDECREF(soma);
    Py_XDECREF(spk);
    Py_XDECREF(x);
    Py_XDECREF(ptr);
    Py_XDECREF(idx);
    Py_XDECREF(times);
    Py_XDECREF(files);
    elm_nio_data_free(d);
    Py_DECREF(pb);
    return NULL;
}

/* ---- SHD -------------------------------------------------------------------------------------- */

/* The samples of d as spike lists: row pointers into ptr ((n * T + 1), made by the caller),
 * entries into *idx and *cnt, made here; 0, or -1 with the error set. */
static int shd_lists(const elm_shd *d, PyObject *ptr, PyObject **idx, PyObject **cnt) {
    const int n = d->n, T = d->num_bins;
    /* Each kept spike is at most one entry (entries are per (bin, channel)), so kept_spikes
     * bounds the lists; they are cut to the entries written. */
    npy_intp dn[1] = {(npy_intp)d->kept_spikes};
    *idx = new_array(1, dn, NPY_INT32);
    *cnt = new_array(1, dn, NPY_FLOAT32);
    if (!*idx || !*cnt)
        return -1;
    int64_t *pp = DATA(ptr);
    int32_t *ip = DATA(*idx);
    float *vp = DATA(*cnt);
    pp[0] = 0;
    elm_status st = ELM_OK;
    Py_BEGIN_ALLOW_THREADS for (int i = 0; i < n && !st; i++) st =
        elm_shd_fill_sparse(d, i, pp[(size_t)i * T], pp + (size_t)i * T + 1, ip, vp,
                            (size_t)d->kept_spikes);
    Py_END_ALLOW_THREADS if (st) {
        elm_py_raise(st);
        return -1;
    }
    npy_intp used = (npy_intp)pp[(size_t)n * T];
    PyArray_Dims nd = {&used, 1};
    PyObject *a = PyArray_Resize((PyArrayObject *)*idx, &nd, 0, NPY_CORDER);
    PyObject *b = a ? PyArray_Resize((PyArrayObject *)*cnt, &nd, 0, NPY_CORDER) : NULL;
    Py_XDECREF(a);
    Py_XDECREF(b);
    return a && b ? 0 : -1;
}

/* _elm.shd_read(path, dense, bin_ms, duration_ms) -> dict (binned as elm's SHD task bins). */
static PyObject *py_shd_read(PyObject *mod, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"path", "dense", "bin_ms", "duration_ms", NULL};
    PyObject *po;
    int dense = 0;
    elm_shd_opts o;
    elm_shd_opts_default(&o);
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|pdd", kwlist, &po, &dense, &o.bin_ms,
                                     &o.duration_ms))
        return NULL;
    PyObject *pb = fs_path(po);
    if (!pb)
        return NULL;
    const char *path = PyBytes_AS_STRING(pb);
    elm_shd *d = NULL;
    elm_status st;
    Py_BEGIN_ALLOW_THREADS st = elm_shd_load(&d, path, &o);
    Py_END_ALLOW_THREADS Py_DECREF(pb);
    if (st)
        return elm_py_raise(st);
    const int n = d->n, T = d->num_bins, C = d->num_channels;
    npy_intp dl[1] = {n}, d3[3] = {n, T, C}, dp[1] = {(npy_intp)n * T + 1};
    PyObject *labels = new_array(1, dl, NPY_INT64);
    PyObject *speakers = d->speakers ? new_array(1, dl, NPY_INT64) : (Py_INCREF(Py_None), Py_None);
    PyObject *names = PyList_New(d->num_keys);
    PyObject *x = NULL, *ptr = NULL, *idx = NULL, *cnt = NULL, *res = NULL;
    if (dense)
        x = new_array(3, d3, NPY_FLOAT32);
    else
        ptr = new_array(1, dp, NPY_INT64);
    if (!labels || !speakers || !names || (dense ? !x : !ptr))
        goto fail_py;
    for (int k = 0; k < d->num_keys; k++) {
        PyObject *s = PyUnicode_DecodeUTF8(d->keys[k], (Py_ssize_t)strlen(d->keys[k]), "replace");
        if (!s)
            goto fail_py;
        PyList_SET_ITEM(names, k, s);
    }
    for (int i = 0; i < n; i++) {
        ((int64_t *)DATA(labels))[i] = d->labels[i];
        if (d->speakers)
            ((int64_t *)DATA(speakers))[i] = d->speakers[i];
    }
    if (dense) {
        float *xd = DATA(x);
        Py_BEGIN_ALLOW_THREADS for (int i = 0; i < n; i++)
            elm_shd_fill(d, i, xd + (size_t)i * T * C);
        Py_END_ALLOW_THREADS
    } else if (shd_lists(d, ptr, &idx, &cnt)) {
        goto fail_py;
    }
    {
        static const char *const keys[] = {"labels", "speakers", "keys", "inputs", "spike_ptr",
                                           "spike_idx", "spike_count", "num_bins", "num_channels",
                                           "bin_ms", "duration_ms", "total_spikes",
                                           "kept_spikes"};
        PyObject *vals[] = {labels, speakers, names, x, ptr, idx, cnt, PyLong_FromLong(T),
                            PyLong_FromLong(C), PyFloat_FromDouble(d->bin_ms),
                            PyFloat_FromDouble(d->duration_ms),
                            PyLong_FromLongLong(d->total_spikes),
                            PyLong_FromLongLong(d->kept_spikes)};
        res = dict_of(keys, vals, 13);
    }
    elm_shd_free(d);
    return res;
fail_py:
    Py_XDECREF(labels);
    Py_XDECREF(speakers);
    Py_XDECREF(names);
    Py_XDECREF(x);
    Py_XDECREF(ptr);
    Py_XDECREF(idx);
    Py_XDECREF(cnt);
    Py_XDECREF(res);
    elm_shd_free(d);
    return NULL;
}

/* ---- Pathfinder ------------------------------------------------------------------------------- */

/* _elm.pathfinder_read(path, split, difficulty, size, split_seed, limit) -> dict. */
static PyObject *py_pathfinder_read(PyObject *mod, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"path", "split", "difficulty", "size", "split_seed", "limit", NULL};
    PyObject *po;
    const char *split = "all", *difficulty = NULL;
    int size = 0;
    unsigned long long seed = ELM_PF_SPLIT_SEED;
    Py_ssize_t limit = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|sziKn", kwlist, &po, &split, &difficulty,
                                     &size, &seed, &limit))
        return NULL;
    static const char *const splits[] = {"train", "valid", "test", "all"};
    int s = 0;
    while (s < 4 && strcmp(split, splits[s]))
        s++;
    if (s == 4)
        return PyErr_Format(PyExc_ValueError,
                            "split must be \"train\", \"valid\", \"test\" or \"all\", not \"%s\"",
                            split);
    PyObject *pb = fs_path(po);
    if (!pb)
        return NULL;
    elm_pf *p = NULL;
    elm_status st;
    const char *path = PyBytes_AS_STRING(pb);
    Py_BEGIN_ALLOW_THREADS st = elm_pf_open(&p, path, difficulty, size, (uint64_t)seed);
    Py_END_ALLOW_THREADS Py_DECREF(pb);
    if (st)
        return elm_py_raise(st);
    const elm_pf_info *in = elm_pf_get_info(p);
    long n = elm_pf_len(p, (elm_pf_split)s);
    if (limit >= 0 && limit < n)
        n = (long)limit;
    const int S = in->image_size;
    npy_intp di[3] = {n, S, S}, dl[1] = {n};
    PyObject *img = new_array(3, di, NPY_UINT8), *lab = new_array(1, dl, NPY_INT64), *res = NULL;
    if (!img || !lab)
        goto done;
    {
        uint8_t *ip = DATA(img);
        int64_t *lp = DATA(lab);
        Py_BEGIN_ALLOW_THREADS for (long k = 0; k < n && !st; k++) {
            int label = 0;
            st = elm_pf_load_u8(p, (elm_pf_split)s, k, ip + (size_t)k * S * S, &label);
            lp[k] = label;
        }
        Py_END_ALLOW_THREADS if (st) {
            elm_py_raise(st);
            goto done;
        }
    }
    {
        static const char *const keys[] = {"images", "labels", "folder", "difficulty",
                                           "image_size"};
        PyObject *vals[] = {img, lab, PyUnicode_DecodeFSDefault(in->dir),
                            PyUnicode_FromString(in->difficulty), PyLong_FromLong(S)};
        res = dict_of(keys, vals, 5);
        img = lab = NULL;
    }
done:
    Py_XDECREF(img);
    Py_XDECREF(lab);
    elm_pf_free(p);
    return res;
}

PyMethodDef elm_py_data_methods[] = {
    {"neuronio_read", (PyCFunction)(void (*)(void))py_neuronio_read, METH_VARARGS | METH_KEYWORDS,
     "neuronio_read(path, dense=False) -> dict (use elm.data.neuronio.read)."},
    {"shd_read", (PyCFunction)(void (*)(void))py_shd_read, METH_VARARGS | METH_KEYWORDS,
     "shd_read(path, dense=False, bin_ms=10.0, duration_ms=1000.0) -> dict (use "
     "elm.data.shd.read)."},
    {"pathfinder_read", (PyCFunction)(void (*)(void))py_pathfinder_read,
     METH_VARARGS | METH_KEYWORDS,
     "pathfinder_read(path, split=\"all\", difficulty=None, size=0, split_seed=20240101, "
     "limit=-1) -> dict (use elm.data.pathfinder.read)."},
    {NULL, NULL, 0, NULL}};
