/*
 * st.h - the safetensors format (st.c), shared by model files, optimiser checkpoints, the CLI's
 * gradient files and the tests. Never installed.
 */
#ifndef ELM_ST_H
#define ELM_ST_H

#include "internal.h"

typedef struct elm__st_tensor {
    char *name;
    elm__dtype dtype;
    int ndim;
    int64_t shape[8];
    size_t numel;
    const void *data; /* points into the file buffer */
    size_t offset;    /* of the data, from the start of the data section (safetensors files) */
} elm__st_tensor;

typedef struct elm__st_file {
    char *buf; /* whole file */
    size_t len;
    int n;
    elm__st_tensor *t;
    void *meta; /* cJSON object of __metadata__ or NULL */
    const char *path;
} elm__st_file;

/*
 * Reads a safetensors file: the 8-byte header length and the header first, checked, and then
 * only the data bytes the header's tensors span (D18 of issue 15: a file was once read whole, up
 * to 16 GiB, before its header length was looked at).
 */
elm_status elm__st_read(elm__st_file *f, const char *path);
/*
 * Parses a safetensors image of `len` bytes: the same checks as elm__st_read, which is read-file
 * plus this. `buf` must come from malloc and is owned by f from the call on (freed by
 * elm__st_free, or here on failure); `path` names the source in messages and must outlive f.
 */
elm_status elm__st_parse(elm__st_file *f, char *buf, size_t len, const char *path);
void elm__st_free(elm__st_file *f);
const elm__st_tensor *elm__st_find(const elm__st_file *f, const char *name);
/* Copies a float tensor's elements into dst of `dtype` (F16/F32/F64 sources). */
elm_status elm__st_copy_real(const elm__st_file *f, const elm__st_tensor *t, void *dst,
                             elm_dtype dtype);

typedef struct elm__st_out {
    const char *name;
    elm__dtype dtype;
    int ndim;
    int64_t shape[8];
    const void *data;
} elm__st_out;
/* Writes tensors (and string metadata pairs, may be NULL) atomically. */
elm_status elm__st_write(const char *path, const elm__st_out *t, int n, const char *const *meta_kv,
                         int n_meta);

#endif
