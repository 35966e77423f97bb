/*
 * _elm.h - what the C files of the Python extension elm._elm share: the Model object, the
 * mapping of elm's statuses to exceptions, and each file's entry into the module.
 *
 * Files: _elm.c (Model, State, load; the module), _data.c (elm.data's readers), _train.c
 * (tasks and the trainer of include/elm_train.h). The numpy C API is imported once, in _elm.c;
 * the other files reach it through the shared symbol below.
 */
#ifndef ELM_PY_ELM_H
#define ELM_PY_ELM_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL elm_py_ARRAY_API
#ifndef ELM_PY_MAIN
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include "elm.h"

typedef struct {
    PyObject_HEAD elm_model *m;
    int busy;
    /* Counts the calls that run the model (and may overwrite what a training forward keeps for
     * BPTT); train_token is its value after the last forward_train, 0 when none is pending. */
    unsigned long long runs, train_token;
    int train_B, train_T;
    int fma; /* elm_model_set_fma as last set through Model.fma */
} ModelObject;

extern PyTypeObject elm_py_ModelType;
extern int elm_py_threads; /* elm.set_num_threads(); 0 = OpenMP's default */

/* Sets the exception of an elm status (ELM_ERR_IO -> OSError, ELM_ERR_NOMEM -> MemoryError,
 * the rest -> ValueError) with elm_last_error() as its message; returns NULL. */
PyObject *elm_py_raise(elm_status st);
/* A new Model object owning m (freed if the object cannot be made). */
PyObject *elm_py_wrap_model(elm_model *m);
/* Puts v under key k and drops the reference to v; -1 (error set) when v is NULL or on failure. */
int elm_py_dict_put(PyObject *d, const char *k, PyObject *v);
/* ValueError "the WHAT is not initialised" (an object whose __init__ failed or never ran);
 * returns NULL. */
PyObject *elm_py_not_initialised(const char *what);
/*
 * Claims an object (a model, task or trainer: `handle` its C object, *busy its flag) for one
 * call: ValueError when handle is NULL, RuntimeError "the WHAT is in use BUSY_WHY" when *busy
 * (another thread, or a run in progress), else sets *busy; 0, or -1 with the error set. The
 * caller clears *busy when the call ends.
 */
int elm_py_claim(int *busy, const void *handle, const char *what, const char *busy_why);

/* The other files' functions and types, added to the module by PyInit__elm. */
extern PyMethodDef elm_py_data_methods[];
extern PyMethodDef elm_py_train_methods[];
int elm_py_train_add_types(PyObject *module);

#endif
