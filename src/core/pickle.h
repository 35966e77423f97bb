/*
 * pickle.h - a safe reader for the subsets of Python pickles that NeuronIO files and PyTorch state
 * dicts use.
 *
 * The reader never executes anything. It interprets the opcodes of protocols 0-2 (plus the
 * simple protocol 3/4 ones) into a tree of plain values: None, bool, int, float, str, bytes,
 * list, tuple, dict, and numpy ndarray / dtype objects. GLOBAL is only accepted for a short
 * whitelist (numpy's _reconstruct, ndarray, dtype and scalar; _codecs.encode; bytes), and REDUCE /
 * BUILD are interpreted structurally for those names only. Anything else is an error naming the
 * file, the opcode and its byte offset.
 *
 * With ELM_PK_TORCH (the data.pkl of a torch.save archive, read by pt.c) the whitelist is instead
 * what state dicts use: collections.OrderedDict, torch._utils._rebuild_tensor_v2 and
 * _rebuild_parameter, and the typed torch.*Storage classes named by BINPERSID persistent ids
 * ('storage', class, key, location, numel). Tensors become ELM_PK_TENSOR values describing a
 * strided view of a storage; the storage bytes live outside the pickle and are the caller's.
 *
 * Safety: every length is checked against the bytes left in the file before anything is read or
 * allocated; array sizes must match their data exactly; the value stack, the mark stack and the
 * memo are bounded. The parser is iterative (no recursion), so deep nesting cannot overflow the C
 * stack. Raw strings point into the mapped file (zero copy); the file stays mapped until
 * elm_pk_free().
 */
#ifndef ELM_CORE_PICKLE_H
#define ELM_CORE_PICKLE_H

#include "internal.h"

typedef enum {
    ELM_PK_NONE = 0,
    ELM_PK_BOOL,
    ELM_PK_INT,
    ELM_PK_FLOAT,
    ELM_PK_STR,   /* text (Python 3 str, UTF-8) or a Python 2 byte string */
    ELM_PK_BYTES, /* Python 3 bytes */
    ELM_PK_LIST,
    ELM_PK_TUPLE,
    ELM_PK_DICT,
    ELM_PK_ARRAY, /* numpy ndarray */
    ELM_PK_DTYPE, /* numpy dtype */
    ELM_PK_GLOBAL,
    ELM_PK_MARK,    /* internal: only ever on the parser's stack */
    ELM_PK_STORAGE, /* ELM_PK_TORCH: a persistent id naming a typed storage */
    ELM_PK_TENSOR   /* ELM_PK_TORCH: a strided view of a storage */
} elm_pk_type;

typedef struct elm_pk_obj elm_pk_obj;

typedef struct elm_pk_val {
    int type; /* elm_pk_type */
    union {
        int64_t i; /* BOOL, INT */
        double f;  /* FLOAT */
        elm_pk_obj *o;
    } u;
} elm_pk_val;

#define ELM_PK_MAXDIM 8

/* A numpy array (ELM_PK_ARRAY) or dtype (ELM_PK_DTYPE, which uses dtype and swap only). */
typedef struct elm_pk_array {
    int dtype; /* elm__dtype */
    int swap;  /* big-endian data: bytes must be swapped on this (little-endian) machine */
    int built; /* ARRAY: BUILD has given it shape, dtype and data */
    int ndim;
    int64_t shape[ELM_PK_MAXDIM];
    size_t numel;
    const uint8_t *data; /* numel * itemsize bytes */
} elm_pk_array;

/* A torch storage (ELM_PK_STORAGE: dtype, key, storage_numel) or tensor (ELM_PK_TENSOR: all). */
typedef struct elm_pk_tensor {
    int dtype;           /* elm__dtype of the storage's elements */
    const uint8_t *key;  /* the storage's record name: <archive>/data/<key> */
    size_t key_len;
    int64_t storage_numel; /* elements the persistent id says the storage holds */
    int64_t offset;        /* TENSOR: index of its first element in the storage */
    int ndim;
    int64_t shape[ELM_PK_MAXDIM], stride[ELM_PK_MAXDIM]; /* in elements */
} elm_pk_tensor;

/* One heap object; which fields are used depends on `type`. Kept small (48 bytes): a Python 2
 * file holds three objects per input spike (a numpy scalar's bytes, its argument tuple). */
struct elm_pk_obj {
    int type;
    union {
        int unicode; /* STR: 1 for Python 3 text, 0 for a Python 2 byte string */
        int global;  /* GLOBAL: which whitelisted callable */
    };
    /* STR, BYTES: the bytes (UTF-8 for Python 3 text). */
    const uint8_t *bytes;
    size_t len; /* STR/BYTES: bytes; LIST/TUPLE: items; DICT: pairs */
    /* LIST, TUPLE: items[len]; DICT: items[2*len] as key, value, key, value... */
    elm_pk_val *items;
    size_t cap;
    union {
        elm_pk_array *arr;      /* ARRAY, DTYPE */
        elm_pk_tensor *tensor;  /* STORAGE, TENSOR */
    };
};

typedef struct elm_pk elm_pk;

/* Maps `path` and parses the pickle in it. */
elm_status elm_pk_load_file(elm_pk **out, const char *path);
/* Parses `len` bytes at `data` (which must outlive the result); `name` is used in messages. */
elm_status elm_pk_parse(elm_pk **out, const uint8_t *data, size_t len, const char *name);
/* Which globals a pickle may use: NumPy data (NeuronIO files) or a PyTorch state dict. */
enum { ELM_PK_NUMPY = 0, ELM_PK_TORCH = 1 };
elm_status elm_pk_parse_ex(elm_pk **out, const uint8_t *data, size_t len, const char *name,
                           int dialect);
void elm_pk_free(elm_pk *pk);
/* The unpickled object. */
const elm_pk_val *elm_pk_root(const elm_pk *pk);
/* The size in bytes of the parsed pickle (what readers budget their expansion against). */
size_t elm_pk_size(const elm_pk *pk);

/* Helpers for reading the tree. */
const char *elm_pk_type_name(int type);
/* dict[key] where key is a str/bytes equal to the ASCII `key`; NULL if absent or not a dict. */
const elm_pk_val *elm_pk_dict_get(const elm_pk_val *dict, const char *key);
/* Items of a list or tuple (NULL and *n = 0 otherwise). */
const elm_pk_val *elm_pk_seq_items(const elm_pk_val *v, size_t *n);
/* Element i of a numeric array as double (converting f16/f32/i*, swapping bytes if needed). */
double elm_pk_array_get(const elm_pk_array *a, size_t i);

#endif
