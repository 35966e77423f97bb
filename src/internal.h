/*
 * internal.h - helpers shared by every area of the library; never installed.
 *
 * Error reporting: library code returns elm__fail(code, fmt, ...), which records a message for
 * elm_last_error() and returns the code. Nothing in the library prints or exits.
 */
#ifndef ELM_INTERNAL_H
#define ELM_INTERNAL_H

#include "elm.h"
#include "core/dtype.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__GNUC__)
#define ELM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define ELM_PRINTF(a, b)
#endif

/* Records the message (printf-style) for elm_last_error() and returns `code`. */
elm_status elm__fail(elm_status code, const char *fmt, ...) ELM_PRINTF(2, 3);
/* Prefixes the current error message with "<prefix>: " and returns `code`. */
elm_status elm__fail_prefix(elm_status code, const char *prefix);
/*
 * " (did you mean 'NAME'?)" for the one of names[0..n) nearest to `typed` (edit distance, with
 * a swap of two neighbours counting as one edit) when it is near enough to be a likely typo, else
 * "". The text is in thread-local storage, valid until the next call on the thread; callers
 * append it to their "unknown ..." message.
 */
const char *elm__suggest(const char *typed, const char *const *names, int n);
/* The configuration keys elm_config_set() accepts (for suggestions and checks); returns n. */
int elm__config_keys(const char *const **keys);

/* 64-byte aligned allocation (for SIMD); free with elm__free_aligned. NULL on failure. */
void *elm__alloc_aligned(size_t bytes);
void elm__free_aligned(void *p);
/* calloc that refuses sizes whose product overflows or exceeds ELM_MAX_ALLOC. */
void *elm__calloc(size_t n, size_t size);
/* The largest single allocation the library makes from sizes read out of files (8 GiB). */
#define ELM_MAX_ALLOC ((size_t)8 << 30)

/*
 * Opens `path` for reading only if it is a regular file: *fd is a blocking read-only descriptor.
 * The open itself is non-blocking, so a FIFO or a device is refused ("not a regular file")
 * instead of hanging the reader until someone writes to it. Every reader of user files uses this
 * (or elm__fopen_regular / elm__check_regular). *size (may be NULL) gets the file's size.
 */
elm_status elm__open_regular(const char *path, int *fd, size_t *size);
/* The same as a stdio stream ("rb"). */
elm_status elm__fopen_regular(const char *path, FILE **f);
/* For readers that open the file themselves (libhdf5): the same checks, the file closed again. */
elm_status elm__check_regular(const char *path);

/* Reads exactly n bytes at offset off of fd ("PATH: read error" otherwise). */
elm_status elm__pread_all(int fd, void *buf, size_t n, size_t off, const char *path);
/* Reads a whole file (at most max_bytes) into a malloc'd buffer with a terminating NUL. */
elm_status elm__read_file(const char *path, size_t max_bytes, char **data, size_t *len);

/*
 * Atomic file writes: elm__atomic_open() opens "<path>.tmp.<pid>"; elm__atomic_commit() flushes,
 * fsyncs and renames it onto `path` (then fsyncs the folder), so readers see the old file or the
 * new one, never a torn one. elm__atomic_abort() removes the temporary file.
 */
typedef struct elm__atomic_file {
    FILE *f;
    char *tmp_path;
    char *path;
} elm__atomic_file;
elm_status elm__atomic_open(elm__atomic_file *af, const char *path);
elm_status elm__atomic_commit(elm__atomic_file *af);
void elm__atomic_abort(elm__atomic_file *af);
/* Writes `len` bytes atomically to `path`. */
elm_status elm__write_file_atomic(const char *path, const void *data, size_t len);

/* Creates a folder and its parents (mkdir -p); fine if it exists. */
elm_status elm__mkdir_p(const char *path);
/* 1 if `path` is an existing folder. */
int elm__is_dir(const char *path);
/* malloc'd "a/b" (no doubled '/'). */
char *elm__path_join(const char *a, const char *b);
char *elm__strdup(const char *s);

/* ---- Small shared helpers (helpers.c) ---- */
struct cJSON;
/* Seconds on the monotonic clock. */
double elm__now_s(void);
/* CPU seconds used so far by this process (thread 0) or by the calling thread (thread 1). */
double elm__cpu_s(int thread);
/* 1 if s ends with suffix. */
int elm__ends_with(const char *s, const char *suffix);
/* 1 if path exists and is a regular file (stat; nothing is opened). */
int elm__is_file(const char *path);
/* 1 if both paths exist and are the same file or folder (device and inode, so links and
 * different spellings of one path match). */
int elm__same_file(const char *a, const char *b);
/* Reads and parses a JSON file (at most max_bytes); ELM_ERR_FORMAT names the byte it stops at. */
elm_status elm__json_read(const char *path, size_t max_bytes, struct cJSON **out);
/* Writes j as indented JSON and a newline, atomically. */
elm_status elm__json_write(const char *path, const struct cJSON *j);
/* Writes the JSON text js and a newline, atomically (js is borrowed for the write: its NUL
 * becomes the newline meanwhile). */
elm_status elm__json_write_text(const char *path, char *js);
/*
 * The first member of object a whose value differs from the member of the same name in b,
 * values compared as cJSON prints them; members b lacks, and those skip(name) accepts (skip may
 * be NULL), are passed over. *va and *vb get the two printed values (malloc'd; free them). NULL
 * when none differs.
 */
const struct cJSON *elm__json_first_difference(const struct cJSON *a, const struct cJSON *b,
                                               int (*skip)(const char *name), char **va,
                                               char **vb);

/* ---- Batches as spike lists (the rows of elm_sparse_input), grown as needed (sparse.c). ---- */
typedef struct {
    int64_t *ptr; /* (rows + 1) */
    int32_t *idx;
    float *val;
    size_t rows, cap; /* rows ptr can index, entries idx/val hold */
} elm__spike_lists;
void elm__spike_lists_free(elm__spike_lists *L);
/* Room for `rows` rows, and ptr[0] = 0. */
elm_status elm__spike_lists_rows(elm__spike_lists *L, size_t rows);
/* Room for `need` entries in idx and val (kept as they are). */
elm_status elm__spike_lists_reserve(elm__spike_lists *L, size_t need);
/* The lists as a float32 model's input. */
elm_sparse_input elm__spike_lists_input(const elm__spike_lists *L);

/* ---- Random numbers: xoshiro256** seeded by splitmix64; reproducible everywhere. ---- */
typedef struct elm__rng {
    uint64_t s[4];
} elm__rng;
void elm__rng_seed(elm__rng *r, uint64_t seed);
/* Inline: the input dropout of training draws once per input spike. */
static inline uint64_t elm__rng_next(elm__rng *r) {
    uint64_t *s = r->s;
    uint64_t x = s[1] * 5, result = ((x << 7) | (x >> 57)) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return result;
}
/* [0, 1) with 53 random bits */
static inline double elm__rng_uniform(elm__rng *r) {
    return (double)(elm__rng_next(r) >> 11) * 0x1.0p-53;
}
double elm__rng_normal(elm__rng *r); /* standard normal (Box-Muller, no cached value) */
uint64_t elm__rng_below(elm__rng *r, uint64_t n); /* uniform in [0, n), unbiased */

/* ---- .npy (numpy format 1.0/2.0/3.0, little-endian, C order) ---- */
typedef struct elm__array {
    elm__dtype dtype;
    int ndim;
    int64_t shape[8];
    size_t numel;
    void *data; /* malloc'd, numel * dtype size */
} elm__array;
void elm__array_free(elm__array *a);
/* Loads a .npy file; accepts f2/f4/f8/i1/u1/i2/i4/i8/b1, little-endian or not applicable. */
elm_status elm__npy_load(const char *path, elm__array *out);
/* Writes a .npy file (format 1.0), atomically. */
elm_status elm__npy_save(const char *path, elm__dtype dtype, int ndim, const int64_t *shape,
                        const void *data);
/* Converts element i of a numeric array to double (f16 included). */
double elm__array_get(const elm__array *a, size_t i);

#endif
