/*
 * util.c - errors, allocation, files written atomically, folders, and the random generator.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static _Thread_local char last_error[1024];

const char *elm_status_str(elm_status s) {
    switch (s) {
#define ELM_X_CASE(name, code, text)                                                               \
    case name:                                                                                     \
        return text;
        ELM_STATUS_LIST(ELM_X_CASE)
#undef ELM_X_CASE
    }
    return "unknown status";
}

const char *elm_last_error(void) {
    return last_error[0] ? last_error : "no error";
}

/* The macros of the header this library was built with, so a program can tell which libelm it
 * loaded. */
_Static_assert(ELM_VERSION_NUMBER == ELM_VERSION_MAJOR * 10000 + ELM_VERSION_MINOR * 100 +
                                         ELM_VERSION_PATCH,
               "ELM_VERSION_NUMBER");
const char *elm_version(void) {
    return ELM_VERSION_STRING;
}

/* Optimal string alignment distance (Levenshtein plus adjacent transpositions), capped: any
 * distance above `cap` is reported as cap + 1, so long strings cost little. */
static int edit_distance(const char *a, const char *b, int cap) {
    const int n = (int)strlen(a), m = (int)strlen(b);
    if (n - m > cap || m - n > cap || n > 127 || m > 127)
        return cap + 1;
    int d[128][128];
    for (int i = 0; i <= n; i++)
        d[i][0] = i;
    for (int j = 0; j <= m; j++)
        d[0][j] = j;
    for (int i = 1; i <= n; i++)
        for (int j = 1; j <= m; j++) {
            int c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < c)
                c = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < c)
                c = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < c)
                c = d[i - 2][j - 2] + 1;
            d[i][j] = c;
        }
    return d[n][m] > cap ? cap + 1 : d[n][m];
}

const char *elm__suggest(const char *typed, const char *const *names, int n) {
    static _Thread_local char out[160];
    out[0] = 0;
    if (!typed || !*typed)
        return out;
    /* Allowed edits grow with the length: one for short names, up to three for long ones, so
     * "--lr" never suggests "--out" while "batch_szie" finds "batch_size". */
    const size_t len = strlen(typed);
    const int cap = len <= 4 ? 1 : len <= 9 ? 2 : 3;
    int best = cap + 1, which = -1, ties = 0;
    for (int k = 0; k < n; k++) {
        int d = edit_distance(typed, names[k], cap);
        if (d < best) {
            best = d;
            which = k;
            ties = 0;
        } else if (d == best && which >= 0 && d <= cap) {
            ties++;
        }
    }
    /* A unique name that starts with what was typed (an abbreviation) also counts. */
    if (which < 0 && len >= 3) {
        for (int k = 0; k < n; k++)
            if (!strncmp(names[k], typed, len)) {
                ties += which >= 0;
                which = k;
            }
    }
    if (which >= 0 && !ties)
        snprintf(out, sizeof out, " (did you mean '%s'?)", names[which]);
    return out;
}

elm_status elm__fail(elm_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

elm_status elm__fail_prefix(elm_status code, const char *prefix) {
    char tmp[sizeof last_error];
    size_t n = strlen(prefix);
    if (n > sizeof tmp - 3)
        n = sizeof tmp - 3;
    memcpy(tmp, prefix, n);
    tmp[n] = ':';
    tmp[n + 1] = ' ';
    size_t rest = sizeof tmp - n - 3;
    size_t m = strnlen(last_error, rest);
    memcpy(tmp + n + 2, last_error, m);
    tmp[n + 2 + m] = 0;
    memcpy(last_error, tmp, sizeof tmp);
    return code;
}

void *elm__alloc_aligned(size_t bytes) {
    void *p = NULL;
    if (bytes == 0)
        bytes = 64;
    bytes = (bytes + 63) & ~(size_t)63;
    if (bytes > ELM_MAX_ALLOC * 2 || posix_memalign(&p, 64, bytes) != 0)
        return NULL;
    return p;
}

void elm__free_aligned(void *p) {
    free(p);
}

void *elm__calloc(size_t n, size_t size) {
    if (size != 0 && n > ELM_MAX_ALLOC / size)
        return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

char *elm__strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

elm_status elm__open_regular(const char *path, int *fd_out, size_t *size) {
    *fd_out = -1;
    if (size)
        *size = 0;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return elm__fail(ELM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return elm__fail(ELM_ERR_IO, "%s: not a regular file", path);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        close(fd);
        return elm__fail(ELM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    *fd_out = fd;
    if (size)
        *size = (size_t)st.st_size;
    return ELM_OK;
}

elm_status elm__fopen_regular(const char *path, FILE **f_out) {
    *f_out = NULL;
    int fd;
    elm_status st = elm__open_regular(path, &fd, NULL);
    if (st != ELM_OK)
        return st;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return elm__fail(ELM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    *f_out = f;
    return ELM_OK;
}

elm_status elm__check_regular(const char *path) {
    int fd;
    elm_status st = elm__open_regular(path, &fd, NULL);
    if (st == ELM_OK)
        close(fd);
    return st;
}

elm_status elm__pread_all(int fd, void *buf, size_t n, size_t off, const char *path) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return elm__fail(ELM_ERR_IO, "%s: read error%s%s", path, r ? ": " : " (file shrank)",
                             r ? strerror(errno) : "");
        got += (size_t)r;
    }
    return ELM_OK;
}

elm_status elm__read_file(const char *path, size_t max_bytes, char **data, size_t *len) {
    *data = NULL;
    *len = 0;
    int fd;
    size_t n;
    elm_status rs = elm__open_regular(path, &fd, &n);
    if (rs != ELM_OK)
        return rs;
    if (n > max_bytes) {
        close(fd);
        return elm__fail(ELM_ERR_FORMAT, "%s: file is %zu bytes, more than the %zu allowed", path,
                         n, max_bytes);
    }
    char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return elm__fail(ELM_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    rs = elm__pread_all(fd, buf, n, 0, path);
    close(fd);
    if (rs) {
        free(buf);
        return rs;
    }
    buf[n] = 0;
    *data = buf;
    *len = n;
    return ELM_OK;
}

char *elm__path_join(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    while (la > 1 && a[la - 1] == '/')
        la--;
    char *p = malloc(la + lb + 2);
    if (!p)
        return NULL;
    memcpy(p, a, la);
    p[la] = '/';
    memcpy(p + la + 1, b, lb + 1);
    return p;
}

int elm__is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

elm_status elm__mkdir_p(const char *path) {
    char *p = elm__strdup(path);
    if (!p)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    for (char *q = p + 1; *q; q++) {
        if (*q != '/')
            continue;
        *q = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            elm_status st = elm__fail(ELM_ERR_IO, "%s: cannot create folder: %s", p, strerror(errno));
            free(p);
            return st;
        }
        *q = '/';
    }
    if (mkdir(p, 0777) != 0 && errno != EEXIST) {
        elm_status st = elm__fail(ELM_ERR_IO, "%s: cannot create folder: %s", p, strerror(errno));
        free(p);
        return st;
    }
    free(p);
    if (!elm__is_dir(path))
        return elm__fail(ELM_ERR_IO, "%s: exists and is not a folder", path);
    return ELM_OK;
}

elm_status elm__atomic_open(elm__atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    size_t n = strlen(path) + 32;
    af->tmp_path = malloc(n);
    af->path = elm__strdup(path);
    if (!af->tmp_path || !af->path) {
        free(af->tmp_path);
        free(af->path);
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    }
    snprintf(af->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    af->f = fopen(af->tmp_path, "wb");
    if (!af->f) {
        elm_status st = elm__fail(ELM_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        free(af->tmp_path);
        free(af->path);
        af->tmp_path = af->path = NULL;
        return st;
    }
    return ELM_OK;
}

void elm__atomic_abort(elm__atomic_file *af) {
    if (af->f)
        fclose(af->f);
    if (af->tmp_path)
        unlink(af->tmp_path);
    free(af->tmp_path);
    free(af->path);
    memset(af, 0, sizeof *af);
}

elm_status elm__atomic_commit(elm__atomic_file *af) {
    elm_status st = ELM_OK;
    if (fflush(af->f) != 0 || ferror(af->f) || fsync(fileno(af->f)) != 0) {
        st = elm__fail(ELM_ERR_IO, "%s: write failed: %s", af->path, strerror(errno));
        elm__atomic_abort(af);
        return st;
    }
    if (fclose(af->f) != 0) {
        af->f = NULL;
        st = elm__fail(ELM_ERR_IO, "%s: write failed: %s", af->path, strerror(errno));
        elm__atomic_abort(af);
        return st;
    }
    af->f = NULL;
    if (rename(af->tmp_path, af->path) != 0) {
        st = elm__fail(ELM_ERR_IO, "%s: cannot rename into place: %s", af->path, strerror(errno));
        elm__atomic_abort(af);
        return st;
    }
    /* Sync the folder so the rename itself survives a power cut. */
    char *dir = elm__strdup(af->path);
    if (dir) {
        int fd = open(dirname(dir), O_RDONLY);
        if (fd >= 0) {
            fsync(fd);
            close(fd);
        }
        free(dir);
    }
    free(af->tmp_path);
    free(af->path);
    memset(af, 0, sizeof *af);
    return ELM_OK;
}

elm_status elm__write_file_atomic(const char *path, const void *data, size_t len) {
    elm__atomic_file af;
    elm_status st = elm__atomic_open(&af, path);
    if (st)
        return st;
    if (len && fwrite(data, 1, len, af.f) != len) {
        st = elm__fail(ELM_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        elm__atomic_abort(&af);
        return st;
    }
    return elm__atomic_commit(&af);
}

/* ---- Random numbers ---- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void elm__rng_seed(elm__rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

double elm__rng_normal(elm__rng *r) {
    double u1 = elm__rng_uniform(r), u2 = elm__rng_uniform(r);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

uint64_t elm__rng_below(elm__rng *r, uint64_t n) {
    if (n <= 1)
        return 0;
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = elm__rng_next(r);
    while (x >= limit);
    return x % n;
}
