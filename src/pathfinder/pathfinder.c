/*
 * pathfinder.c - reader for Pathfinder / Path-X folders in the LRA release layout (libpng).
 *
 * Invariant: after elm_pf_open succeeds, every metadata line has been parsed (11 fields, label
 * 0 or 1), every image it names exists, and the split permutation is fixed. Decoding errors
 * (wrong size, wrong colour type, corrupt PNG) can still surface at load time, naming the file.
 */
#include "pathfinder.h"

#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* A metadata file larger than this is certainly not LRA metadata (200k lines are ~10 MB). */
#define PF_MAX_METADATA_BYTES ((size_t)1 << 30)
#define PF_NUM_FIELDS         11

struct elm_pf {
    char *dir;
    char *difficulty;
    elm_pf_info info;
    long n;
    char *pool;       /* NUL-separated image paths (full paths) */
    size_t *path_off; /* (n) offsets into pool */
    int8_t *labels;   /* (n) */
    long *perm;       /* (n) split permutation: train, then valid, then test */
    uint8_t *cache;   /* (n, size * size) or NULL */
};

/* ---- PNG ------------------------------------------------------------------------------------ */

/* libpng reports errors through this callback; we keep the text and unwind with longjmp. */
typedef struct png_job {
    const char *path;
    FILE *f;
    uint8_t *dst;   /* caller buffer (want > 0) or NULL */
    uint8_t *owned; /* malloc'd here when dst is NULL */
    int want;       /* required width = height, or 0 for any */
    int width, height;
    elm_status st;
    char msg[256];
} png_job;

static void pf_png_error(png_structp png, png_const_charp msg) {
    png_job *job = png_get_error_ptr(png);
    snprintf(job->msg, sizeof job->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void pf_png_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg; /* warnings (e.g. a benign iCCP chunk) do not make a Pathfinder image unusable */
}

static const char *color_type_name(int ct) {
    switch (ct) {
    case PNG_COLOR_TYPE_GRAY:
        return "grayscale";
    case PNG_COLOR_TYPE_GRAY_ALPHA:
        return "grayscale+alpha";
    case PNG_COLOR_TYPE_RGB:
        return "RGB";
    case PNG_COLOR_TYPE_RGB_ALPHA:
        return "RGBA";
    case PNG_COLOR_TYPE_PALETTE:
        return "palette";
    default:
        return "unknown colour type";
    }
}

/*
 * Walks the chunk list after the signature and checks that every chunk's declared length fits in
 * the bytes left in the file, so that libpng is never asked to allocate for data that is not
 * there (a 100-byte file can declare a 2 GB text chunk). Leaves the file where it was.
 */
static int png_chunks_fit(FILE *f, const char **why) {
    long start = ftell(f);
    if (start < 0 || fseek(f, 0, SEEK_END) != 0)
        return 1; /* not seekable: let libpng judge */
    long size = ftell(f);
    long pos = start;
    int ok = 1;
    *why = NULL;
    while (ok && pos + 8 <= size) {
        unsigned char h[8];
        if (fseek(f, pos, SEEK_SET) != 0 || fread(h, 1, 8, f) != 8)
            break;
        unsigned long len = ((unsigned long)h[0] << 24) | ((unsigned long)h[1] << 16) |
                            ((unsigned long)h[2] << 8) | h[3];
        if (len > 0x7fffffffUL || (long)len > size - pos - 12) {
            ok = 0;
            *why = "a chunk is longer than the rest of the file (truncated or corrupt)";
        }
        pos += 12 + (long)len;
        if (!memcmp(h + 4, "IEND", 4))
            break;
    }
    fseek(f, start, SEEK_SET);
    return ok;
}

/*
 * The part of the decoder that runs under setjmp. Everything it changes after setjmp lives in
 * *job (not in locals), so nothing is clobbered by the longjmp.
 */
static void png_decode_stream(png_job *job) {
    png_structp png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, job, pf_png_error, pf_png_warning);
    if (!png) {
        job->st = elm__fail(ELM_ERR_NOMEM, "%s: out of memory starting libpng", job->path);
        return;
    }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        job->st = elm__fail(ELM_ERR_NOMEM, "%s: out of memory starting libpng", job->path);
        return;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        if (job->st == ELM_OK)
            job->st = elm__fail(ELM_ERR_FORMAT, "%s: corrupt PNG: %s", job->path, job->msg);
        return;
    }
    const char *why;
    if (!png_chunks_fit(job->f, &why)) {
        job->st = elm__fail(ELM_ERR_FORMAT, "%s: corrupt PNG: %s", job->path, why);
        png_destroy_read_struct(&png, &info, NULL);
        return;
    }
    png_init_io(png, job->f);
    png_set_sig_bytes(png, 8);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info), ct = png_get_color_type(png, info);
    /*
     * Only 8-bit grayscale is accepted: every LRA image is, and silently converting a colour or
     * 16-bit image would hide a folder of something else pointed at by mistake.
     */
    if (ct != PNG_COLOR_TYPE_GRAY || depth != 8) {
        job->st =
            elm__fail(ELM_ERR_FORMAT, "%s: PNG is %d-bit %s; Pathfinder images are 8-bit grayscale",
                      job->path, depth, color_type_name(ct));
        png_destroy_read_struct(&png, &info, NULL);
        return;
    }
    if (job->want > 0 && (w != (png_uint_32)job->want || h != (png_uint_32)job->want)) {
        job->st = elm__fail(ELM_ERR_SHAPE, "%s: image is %ux%u, expected %dx%d", job->path,
                            (unsigned)w, (unsigned)h, job->want, job->want);
        png_destroy_read_struct(&png, &info, NULL);
        return;
    }
    /* LRA images are at most 256 px; 4096 leaves room and bounds the allocation to 16 MiB. */
    if (w == 0 || h == 0 || w > 4096 || h > 4096) {
        job->st = elm__fail(ELM_ERR_FORMAT, "%s: implausible image size %ux%u", job->path,
                            (unsigned)w, (unsigned)h);
        png_destroy_read_struct(&png, &info, NULL);
        return;
    }
    job->width = (int)w;
    job->height = (int)h;
    if (!job->dst) {
        job->owned = malloc((size_t)w * h);
        if (!job->owned) {
            job->st = elm__fail(ELM_ERR_NOMEM, "%s: out of memory for %ux%u pixels", job->path,
                                (unsigned)w, (unsigned)h);
            png_destroy_read_struct(&png, &info, NULL);
            return;
        }
        job->dst = job->owned;
    }
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    for (int pass = 0; pass < passes; pass++)
        for (png_uint_32 y = 0; y < h; y++)
            png_read_row(png, job->dst + (size_t)y * w, NULL);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
}

/* Decodes `path` into dst (want x want) or, when dst is NULL, into a malloc'd *owned buffer. */
static elm_status png_decode(const char *path, int want, uint8_t *dst, uint8_t **owned, int *w,
                             int *h) {
    png_job job;
    memset(&job, 0, sizeof job);
    job.path = path;
    job.dst = dst;
    job.want = want;
    elm_status ost = elm__fopen_regular(path, &job.f);
    if (ost != ELM_OK)
        return ost;
    unsigned char sig[8];
    if (fread(sig, 1, 8, job.f) != 8 || png_sig_cmp(sig, 0, 8)) {
        fclose(job.f);
        return elm__fail(ELM_ERR_FORMAT, "%s: not a PNG file", path);
    }
    png_decode_stream(&job);
    fclose(job.f);
    if (job.st != ELM_OK) {
        free(job.owned);
        return job.st;
    }
    if (owned)
        *owned = job.owned;
    if (w)
        *w = job.width;
    if (h)
        *h = job.height;
    return ELM_OK;
}

elm_status elm_pf_png_read(const char *path, uint8_t **pixels, int *width, int *height) {
    *pixels = NULL;
    return png_decode(path, 0, NULL, pixels, width, height);
}

typedef struct png_wjob {
    const char *path;
    FILE *f;
    const uint8_t *pixels;
    int width, height;
    elm_status st;
    char msg[256];
} png_wjob;

static void pf_png_werror(png_structp png, png_const_charp msg) {
    png_wjob *job = png_get_error_ptr(png);
    snprintf(job->msg, sizeof job->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_encode_stream(png_wjob *job) {
    png_structp png =
        png_create_write_struct(PNG_LIBPNG_VER_STRING, job, pf_png_werror, pf_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, NULL);
        job->st = elm__fail(ELM_ERR_NOMEM, "%s: out of memory starting libpng", job->path);
        return;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        job->st = elm__fail(ELM_ERR_IO, "%s: cannot write PNG: %s", job->path, job->msg);
        return;
    }
    png_init_io(png, job->f);
    /*
     * Small images compress about as well at level 6 as at 9, and the default filter search
     * costs more time than it saves bytes on 32 px images: zlib's default level, no filtering
     * heuristics beyond "sub"/"none".
     */
    png_set_compression_level(png, 6);
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_NONE | PNG_FILTER_SUB | PNG_FILTER_UP);
    png_set_IHDR(png, info, (png_uint_32)job->width, (png_uint_32)job->height, 8,
                 PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < job->height; y++)
        png_write_row(png, job->pixels + (size_t)y * job->width);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
}

elm_status elm_pf_png_write(const char *path, const uint8_t *pixels, int width, int height) {
    if (!path || !pixels || width <= 0 || height <= 0)
        return elm__fail(ELM_ERR_ARG, "elm_pf_png_write: bad arguments");
    png_wjob job;
    memset(&job, 0, sizeof job);
    job.path = path;
    job.pixels = pixels;
    job.width = width;
    job.height = height;
    job.f = fopen(path, "wb");
    if (!job.f)
        return elm__fail(ELM_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    png_encode_stream(&job);
    if (fclose(job.f) != 0 && job.st == ELM_OK)
        job.st = elm__fail(ELM_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    if (job.st != ELM_OK)
        remove(path);
    return job.st;
}

/* ---- Folder resolution ---------------------------------------------------------------------- */

typedef struct strlist {
    char **v;
    int n, cap;
} strlist;

static int strlist_push(strlist *l, char *s) {
    if (!s)
        return 0;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 8;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) {
            free(s);
            return 0;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = s;
    return 1;
}

static void strlist_free(strlist *l) {
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names of the subfolders of `dir` (sorted); hidden ones skipped. */
static int list_subdirs(const char *dir, strlist *out) {
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *p = elm__path_join(dir, e->d_name);
        int isdir = p && elm__is_dir(p);
        free(p);
        if (isdir && !strlist_push(out, elm__strdup(e->d_name))) {
            closedir(d);
            return 0;
        }
    }
    closedir(d);
    if (out->n > 1)
        qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_str);
    return 1;
}

static int is_difficulty_dir(const char *dir) {
    char *m = elm__path_join(dir, "metadata");
    int r = m && elm__is_dir(m);
    free(m);
    return r;
}

static const char *base_name(const char *path) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    const char *s = path + n;
    while (s > path && s[-1] != '/')
        s--;
    return s;
}

/* NN of a folder named "pathfinderNN" (trailing '/' allowed), or 0. */
static int size_from_name(const char *name) {
    int nn = 0;
    char tail[4] = {0};
    if (sscanf(name, "pathfinder%d%3s", &nn, tail) >= 1 && (tail[0] == 0 || tail[0] == '/') &&
        nn > 0 && nn <= 65536)
        return nn;
    return 0;
}

/* The parent folder's NN when the difficulty folder lives in "pathfinderNN", else 0. */
static int size_from_parent(const char *diff_dir) {
    char *copy = elm__strdup(diff_dir);
    if (!copy)
        return 0;
    size_t n = strlen(copy);
    while (n > 1 && copy[n - 1] == '/')
        copy[--n] = 0;
    char *slash = strrchr(copy, '/');
    int nn = 0;
    if (slash) {
        *slash = 0;
        nn = size_from_name(base_name(copy));
    }
    free(copy);
    return nn;
}

/* Collects candidate difficulty folders under `dir` (see elm_pf_open). */
static void find_candidates(const char *dir, const char *difficulty, int size, strlist *out) {
    if (is_difficulty_dir(dir)) {
        strlist_push(out, elm__strdup(dir));
        return;
    }
    strlist subs = {0};
    list_subdirs(dir, &subs);
    int any_direct = 0;
    for (int i = 0; i < subs.n; i++) {
        char *p = elm__path_join(dir, subs.v[i]);
        if (p && is_difficulty_dir(p)) {
            any_direct = 1;
            int nn = size_from_name(base_name(dir));
            if ((!difficulty || !strcmp(difficulty, subs.v[i])) && (!size || !nn || nn == size)) {
                strlist_push(out, p);
                p = NULL;
            }
        }
        free(p);
    }
    if (!any_direct) {
        /* A root holding pathfinderNN folders (or any folders holding difficulty folders). */
        for (int i = 0; i < subs.n; i++) {
            int nn = size_from_name(subs.v[i]);
            if (size && nn && nn != size)
                continue;
            char *p = elm__path_join(dir, subs.v[i]);
            strlist diffs = {0};
            if (p)
                list_subdirs(p, &diffs);
            for (int j = 0; j < diffs.n; j++) {
                char *q = elm__path_join(p, diffs.v[j]);
                if (q && is_difficulty_dir(q) && (!difficulty || !strcmp(difficulty, diffs.v[j])))
                    strlist_push(out, q);
                else
                    free(q);
            }
            strlist_free(&diffs);
            free(p);
        }
    }
    strlist_free(&subs);
}

int elm_pf_probe(const char *dir) {
    if (!dir || !elm__is_dir(dir))
        return 0;
    strlist c = {0};
    find_candidates(dir, NULL, 0, &c);
    int r = c.n > 0;
    strlist_free(&c);
    return r;
}

/* ---- Metadata ---------------------------------------------------------------------------------
 */

typedef struct meta_file {
    char *name;
    long num; /* numeric batch id, or LONG_MAX when the stem is not a number */
} meta_file;

static int cmp_meta(const void *a, const void *b) {
    const meta_file *x = a, *y = b;
    if (x->num != y->num)
        return x->num < y->num ? -1 : 1;
    return strcmp(x->name, y->name);
}

typedef struct builder {
    char *pool;
    size_t pool_len, pool_cap;
    size_t *off;
    int8_t *labels;
    long n, cap;
    int contour_length; /* -2: not seen yet, -1: disagree */
} builder;

static elm_status builder_add(builder *b, const char *dir, const char *f0, size_t l0,
                              const char *f1, size_t l1, int label) {
    size_t need = strlen(dir) + 1 + l0 + 1 + l1 + 1;
    if (b->pool_len + need > b->pool_cap) {
        size_t cap = b->pool_cap ? b->pool_cap : 4096;
        while (cap < b->pool_len + need)
            cap *= 2;
        char *p = realloc(b->pool, cap);
        if (!p)
            return elm__fail(ELM_ERR_NOMEM, "out of memory reading Pathfinder metadata");
        b->pool = p;
        b->pool_cap = cap;
    }
    if (b->n == b->cap) {
        long cap = b->cap ? 2 * b->cap : 1024;
        size_t *o = realloc(b->off, (size_t)cap * sizeof *o);
        if (!o)
            return elm__fail(ELM_ERR_NOMEM, "out of memory reading Pathfinder metadata");
        b->off = o;
        int8_t *l = realloc(b->labels, (size_t)cap);
        if (!l)
            return elm__fail(ELM_ERR_NOMEM, "out of memory reading Pathfinder metadata");
        b->labels = l;
        b->cap = cap;
    }
    char *dst = b->pool + b->pool_len;
    size_t dl = strlen(dir);
    memcpy(dst, dir, dl);
    dst[dl] = '/';
    memcpy(dst + dl + 1, f0, l0);
    dst[dl + 1 + l0] = '/';
    memcpy(dst + dl + 2 + l0, f1, l1);
    dst[dl + 2 + l0 + l1] = 0;
    b->off[b->n] = b->pool_len;
    b->labels[b->n] = (int8_t)label;
    b->pool_len += need;
    b->n++;
    return ELM_OK;
}

/* 1 if a relative path stays inside its folder (no absolute path, no ".." component). */
static int path_is_safe(const char *s, size_t n) {
    if (n == 0 || s[0] == '/')
        return 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && s[j] != '/')
            j++;
        if (j - i == 2 && s[i] == '.' && s[i + 1] == '.')
            return 0;
        i = j + 1;
    }
    return 1;
}

static elm_status parse_metadata(builder *b, const char *dir, const char *path) {
    char *text = NULL;
    size_t len = 0;
    elm_status st = elm__read_file(path, PF_MAX_METADATA_BYTES, &text, &len);
    if (st != ELM_OK)
        return st;
    if (len >= 6 && !memcmp(text, "\x93NUMPY", 6)) {
        free(text);
        return elm__fail(ELM_ERR_FORMAT,
                         "%s: a binary .npy array; LRA Pathfinder metadata files are text "
                         "(one line of 11 space-separated fields per image)",
                         path);
    }
    long lineno = 0;
    char *line = text;
    while (line < text + len) {
        char *end = memchr(line, '\n', (size_t)(text + len - line));
        if (!end)
            end = text + len;
        lineno++;
        /* Split the line into fields on runs of spaces/tabs ('\r' of CRLF files included). */
        const char *fs[PF_NUM_FIELDS + 1];
        size_t fl[PF_NUM_FIELDS + 1];
        int nf = 0;
        for (char *c = line; c < end;) {
            while (c < end && (*c == ' ' || *c == '\t' || *c == '\r'))
                c++;
            if (c >= end)
                break;
            char *s = c;
            while (c < end && *c != ' ' && *c != '\t' && *c != '\r')
                c++;
            if (nf <= PF_NUM_FIELDS) {
                fs[nf] = s;
                fl[nf] = (size_t)(c - s);
            }
            nf++;
        }
        if (nf == 0) { /* blank line (e.g. the final newline) */
            line = end + 1;
            continue;
        }
        if (nf != PF_NUM_FIELDS) {
            free(text);
            return elm__fail(ELM_ERR_FORMAT,
                             "%s:%ld: %d fields, expected %d (imgs/<batch> "
                             "sample_<i>.png <i> <label> ...)",
                             path, lineno, nf, PF_NUM_FIELDS);
        }
        char tok[32];
        if (fl[3] >= sizeof tok) {
            free(text);
            return elm__fail(ELM_ERR_FORMAT, "%s:%ld: label (field 3) is not an integer", path,
                             lineno);
        }
        memcpy(tok, fs[3], fl[3]);
        tok[fl[3]] = 0;
        char *e;
        errno = 0;
        long label = strtol(tok, &e, 10);
        if (*e || errno) {
            free(text);
            return elm__fail(ELM_ERR_FORMAT, "%s:%ld: label (field 3) '%s' is not an integer", path,
                             lineno, tok);
        }
        if (label != 0 && label != 1) {
            free(text);
            return elm__fail(ELM_ERR_FORMAT, "%s:%ld: label (field 3) is %ld, expected 0 or 1",
                             path, lineno, label);
        }
        if (!path_is_safe(fs[0], fl[0]) || !path_is_safe(fs[1], fl[1])) {
            /* The message quotes the line, so it is formatted before the text is freed. */
            st = elm__fail(ELM_ERR_FORMAT, "%s:%ld: image path '%.*s/%.*s' leaves the data folder",
                           path, lineno, (int)fl[0], fs[0], (int)fl[1], fs[1]);
            free(text);
            return st;
        }
        /* Field 5 is the contour length; informational only. */
        int cl = -1;
        if (fl[5] < sizeof tok) {
            memcpy(tok, fs[5], fl[5]);
            tok[fl[5]] = 0;
            long v = strtol(tok, &e, 10);
            if (!*e && v > 0 && v < 1000)
                cl = (int)v;
        }
        if (b->contour_length == -2)
            b->contour_length = cl;
        else if (b->contour_length != cl)
            b->contour_length = -1;
        st = builder_add(b, dir, fs[0], fl[0], fs[1], fl[1], (int)label);
        if (st != ELM_OK) {
            free(text);
            return st;
        }
        line = end + 1;
    }
    free(text);
    return ELM_OK;
}

/* Reads every metadata/<batch>.npy of the difficulty folder, in batch order. */
static elm_status read_all_metadata(builder *b, const char *dir, int *batches) {
    char *mdir = elm__path_join(dir, "metadata");
    if (!mdir)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    DIR *d = opendir(mdir);
    if (!d) {
        elm_status st = elm__fail(ELM_ERR_IO, "%s: cannot list: %s", mdir, strerror(errno));
        free(mdir);
        return st;
    }
    meta_file *files = NULL;
    int n = 0, cap = 0;
    elm_status st = ELM_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l < 5 || strcmp(e->d_name + l - 4, ".npy"))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            meta_file *f = realloc(files, (size_t)cap * sizeof *f);
            if (!f) {
                st = elm__fail(ELM_ERR_NOMEM, "out of memory");
                break;
            }
            files = f;
        }
        files[n].name = elm__strdup(e->d_name);
        if (!files[n].name) {
            st = elm__fail(ELM_ERR_NOMEM, "out of memory");
            break;
        }
        char *end;
        long num = strtol(e->d_name, &end, 10);
        files[n].num = (end != e->d_name && !strcmp(end, ".npy") && num >= 0) ? num : LONG_MAX;
        n++;
    }
    closedir(d);
    if (st == ELM_OK && n == 0)
        st = elm__fail(ELM_ERR_FORMAT, "%s: no <batch>.npy metadata files", mdir);
    if (st == ELM_OK) {
        qsort(files, (size_t)n, sizeof *files, cmp_meta);
        for (int i = 0; i < n && st == ELM_OK; i++) {
            char *p = elm__path_join(mdir, files[i].name);
            st = p ? parse_metadata(b, dir, p) : elm__fail(ELM_ERR_NOMEM, "out of memory");
            free(p);
        }
    }
    for (int i = 0; i < n; i++)
        free(files[i].name);
    free(files);
    free(mdir);
    *batches = n;
    if (st == ELM_OK && b->n == 0)
        st = elm__fail(ELM_ERR_FORMAT, "%s/metadata: the metadata files list no images", dir);
    return st;
}

/* ---- Open -------------------------------------------------------------------------------------
 */

static elm_status resolve(const char *dir, const char *difficulty, int size, char **chosen) {
    *chosen = NULL;
    if (!elm__is_dir(dir))
        return elm__fail(ELM_ERR_IO, "%s: not a folder", dir);
    strlist c = {0};
    find_candidates(dir, difficulty, size, &c);
    if (c.n == 1) {
        *chosen = c.v[0];
        c.v[0] = NULL;
        strlist_free(&c);
        return ELM_OK;
    }
    if (c.n == 0) {
        strlist_free(&c);
        if (difficulty || size)
            return elm__fail(ELM_ERR_FORMAT,
                             "%s: no Pathfinder folder%s%s%s%.0d (LRA layout "
                             "pathfinderNN/<difficulty>/metadata/)",
                             dir, difficulty ? " named " : "", difficulty ? difficulty : "",
                             size ? " of size " : "", size);
        return elm__fail(ELM_ERR_FORMAT,
                         "%s: not a Pathfinder folder (no metadata/ folder in it, in its "
                         "subfolders or theirs; LRA layout pathfinderNN/<difficulty>/metadata/)",
                         dir);
    }
    char list[1024];
    size_t used = 0;
    list[0] = 0;
    for (int i = 0; i < c.n && used + 8 < sizeof list; i++) {
        int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", c.v[i]);
        if (w < 0)
            break;
        used += (size_t)w < sizeof list - used ? (size_t)w : sizeof list - used - 1;
    }
    strlist_free(&c);
    return elm__fail(ELM_ERR_ARG,
                     "%s holds several Pathfinder sets (%s); name one folder (or choose a size "
                     "and difficulty)",
                     dir, list);
}

const elm_pf_info *elm_pf_get_info(const elm_pf *p) {
    return &p->info;
}

void elm_pf_free(elm_pf *p) {
    if (!p)
        return;
    free(p->dir);
    free(p->difficulty);
    free(p->pool);
    free(p->path_off);
    free(p->labels);
    free(p->perm);
    free(p->cache);
    free(p);
}

/* Every image p's metadata names exists (a missing file is reported now, not mid-training),
 * and all are *nn x *nn: the size of the pathfinderNN folder above, or else of the first
 * image; and `size` if that is not 0. */
static elm_status check_images(const elm_pf *p, int size, int *nn) {
    const char *chosen = p->dir;
    for (long i = 0; i < p->n; i++) {
        struct stat sb;
        const char *ip = p->pool + p->path_off[i];
        int bad = stat(ip, &sb) != 0 ? errno : (!S_ISREG(sb.st_mode) ? EISDIR : 0);
        if (bad)
            return elm__fail(ELM_ERR_IO, "%s: image listed in %s/metadata is missing: %s", ip,
                             chosen, strerror(bad));
    }
    *nn = size_from_parent(chosen);
    if (!*nn) {
        /* No pathfinderNN name to go by: the first image sets the size for all. */
        uint8_t *px = NULL;
        int w = 0, h = 0;
        elm_status st = png_decode(p->pool + p->path_off[0], 0, NULL, &px, &w, &h);
        free(px);
        if (st != ELM_OK)
            return st;
        if (w != h)
            return elm__fail(ELM_ERR_SHAPE, "%s: image is %dx%d; Pathfinder images are square",
                             p->pool + p->path_off[0], w, h);
        *nn = w;
    }
    if (size && *nn != size)
        return elm__fail(ELM_ERR_SHAPE, "%s: images are %dx%d, expected %dx%d", chosen, *nn, *nn,
                         size, size);
    return ELM_OK;
}

/* The split's order p->perm: Fisher-Yates over metadata order with a fixed seed (80/10/10). */
static elm_status shuffle(elm_pf *p, uint64_t split_seed) {
    p->perm = malloc((size_t)p->n * sizeof *p->perm);
    if (!p->perm)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    for (long i = 0; i < p->n; i++)
        p->perm[i] = i;
    elm__rng rng;
    elm__rng_seed(&rng, split_seed);
    for (long i = p->n - 1; i > 0; i--) {
        long j = (long)elm__rng_below(&rng, (uint64_t)i + 1);
        long t = p->perm[i];
        p->perm[i] = p->perm[j];
        p->perm[j] = t;
    }
    return ELM_OK;
}

elm_status elm_pf_open(elm_pf **out, const char *dir, const char *difficulty, int size,
                       uint64_t split_seed) {
    *out = NULL;
    if (!dir || size < 0)
        return elm__fail(ELM_ERR_ARG, "elm_pf_open: bad arguments");
    char *chosen = NULL;
    elm_status st = resolve(dir, difficulty, size, &chosen);
    if (st != ELM_OK)
        return st;
    size_t cl = strlen(chosen);
    while (cl > 1 && chosen[cl - 1] == '/')
        chosen[--cl] = 0;
    elm_pf *p = calloc(1, sizeof *p);
    builder b = {0};
    b.contour_length = -2;
    if (!p) {
        free(chosen);
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    }
    p->dir = chosen;
    p->difficulty = elm__strdup(base_name(chosen));
    if (!p->difficulty) {
        st = elm__fail(ELM_ERR_NOMEM, "out of memory");
        goto fail;
    }
    int batches = 0;
    st = read_all_metadata(&b, chosen, &batches);
    if (st != ELM_OK)
        goto fail;
    p->pool = b.pool;
    p->path_off = b.off;
    p->labels = b.labels;
    p->n = b.n;
    b.pool = NULL;
    b.off = NULL;
    b.labels = NULL;

    int nn = 0;
    if ((st = check_images(p, size, &nn)) != ELM_OK || (st = shuffle(p, split_seed)) != ELM_OK)
        goto fail;

    elm_pf_info *in = &p->info;
    in->dir = p->dir;
    in->difficulty = p->difficulty;
    in->image_size = nn;
    in->samples = p->n;
    for (long i = 0; i < p->n; i++)
        in->labels[p->labels[i]]++;
    in->split_len[0] = (long)(p->n * 8 / 10);
    in->split_len[1] = (long)(p->n / 10);
    in->split_len[2] = p->n - in->split_len[0] - in->split_len[1];
    in->batches = batches;
    in->contour_length = b.contour_length < 0 ? -1 : b.contour_length;
    *out = p;
    return ELM_OK;
fail:
    free(b.pool);
    free(b.off);
    free(b.labels);
    elm_pf_free(p);
    return st;
}

/* ---- Access -----------------------------------------------------------------------------------
 */

long elm_pf_len(const elm_pf *p, elm_pf_split s) {
    if (s == ELM_PF_ALL)
        return p->n;
    if (s < ELM_PF_TRAIN || s > ELM_PF_TEST)
        return 0;
    return p->info.split_len[s];
}

long elm_pf_index(const elm_pf *p, elm_pf_split s, long k) {
    if (k < 0 || k >= elm_pf_len(p, s))
        return -1;
    if (s == ELM_PF_ALL)
        return k;
    long off = 0;
    for (int i = 0; i < (int)s; i++)
        off += p->info.split_len[i];
    return p->perm[off + k];
}

int elm_pf_label(const elm_pf *p, elm_pf_split s, long k) {
    long i = elm_pf_index(p, s, k);
    return i < 0 ? -1 : p->labels[i];
}

const char *elm_pf_image_path(const elm_pf *p, elm_pf_split s, long k) {
    long i = elm_pf_index(p, s, k);
    return i < 0 ? NULL : p->pool + p->path_off[i];
}

static elm_status load_index_u8(const elm_pf *p, long i, uint8_t *pixels) {
    int T = p->info.image_size * p->info.image_size;
    if (p->cache) {
        memcpy(pixels, p->cache + (size_t)i * T, (size_t)T);
        return ELM_OK;
    }
    return png_decode(p->pool + p->path_off[i], p->info.image_size, pixels, NULL, NULL, NULL);
}

elm_status elm_pf_load_u8(const elm_pf *p, elm_pf_split s, long k, uint8_t *pixels, int *label) {
    long i = elm_pf_index(p, s, k);
    if (i < 0)
        return elm__fail(ELM_ERR_ARG, "%s: sample %ld out of range (split has %ld)", p->dir, k,
                         elm_pf_len(p, s));
    elm_status st = load_index_u8(p, i, pixels);
    if (st == ELM_OK && label)
        *label = p->labels[i];
    return st;
}

void elm_pf_normalise(float *x, const uint8_t *pixels, size_t n) {
    /* The same float32 arithmetic as torchvision's ToTensor() then Normalize(0.5, 0.5). */
    for (size_t i = 0; i < n; i++)
        x[i] = ((float)pixels[i] / 255.0f - 0.5f) / 0.5f;
}

int elm_pf_num_input(int levels) {
    return levels > 0 ? levels : 1;
}

int elm_pf_levels_valid(int levels) {
    return levels == 0 || (levels >= 2 && levels <= ELM_PF_MAX_LEVELS);
}

void elm_pf_encode(float *x, const uint8_t *pixels, size_t n, int levels) {
    if (levels <= 0) {
        elm_pf_normalise(x, pixels, n);
        return;
    }
    memset(x, 0, n * (size_t)levels * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i * (size_t)levels + (size_t)(pixels[i] * levels / 256)] = 1.0f;
}

elm_status elm_pf_load(const elm_pf *p, elm_pf_split s, long k, float *x, int *label) {
    size_t T = (size_t)p->info.image_size * p->info.image_size;
    uint8_t *px = malloc(T);
    if (!px)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    elm_status st = elm_pf_load_u8(p, s, k, px, label);
    if (st == ELM_OK)
        elm_pf_normalise(x, px, T);
    free(px);
    return st;
}

/*
 * Runs load_index_u8 over many samples in parallel. elm_last_error() is per thread, so the
 * message of the first failing sample (lowest position) is copied out and re-raised here.
 */
typedef struct par_err {
    long first;
    elm_status st;
    char msg[512];
} par_err;

static void par_err_note(par_err *e, long pos, elm_status st) {
    /* Unnamed: a named critical is a global symbol that libelm.so would export. */
#pragma omp critical
    {
        if (e->first < 0 || pos < e->first) {
            e->first = pos;
            e->st = st;
            snprintf(e->msg, sizeof e->msg, "%s", elm_last_error());
        }
    }
}

elm_status elm_pf_fill(const elm_pf *p, elm_pf_split s, const long *idx, int B, float *x,
                       float *target, int threads, int levels) {
    if (!elm_pf_levels_valid(levels))
        return elm__fail(ELM_ERR_ARG, "%s: %d grey levels (0 for the plain pixel, or 2 to %d)",
                         p->dir, levels, ELM_PF_MAX_LEVELS);
    long n = elm_pf_len(p, s);
    for (int b = 0; b < B; b++)
        if (idx[b] < 0 || idx[b] >= n)
            return elm__fail(ELM_ERR_ARG, "%s: sample %ld out of range (split has %ld)", p->dir,
                             idx[b], n);
    size_t T = (size_t)p->info.image_size * p->info.image_size;
    par_err err = {.first = -1, .st = ELM_OK};
    int nt = threads > 0 ? threads : 0;
#ifndef _OPENMP
    (void)nt;
#endif
#pragma omp parallel num_threads(nt > 0 ? nt : omp_get_max_threads()) if (B > 1)
    {
        uint8_t *px = malloc(T);
#pragma omp for schedule(dynamic, 1)
        for (int b = 0; b < B; b++) {
            if (!px) {
                par_err_note(&err, b, elm__fail(ELM_ERR_NOMEM, "out of memory"));
                continue;
            }
            long i = elm_pf_index(p, s, idx[b]);
            elm_status st = load_index_u8(p, i, px);
            if (st != ELM_OK) {
                par_err_note(&err, b, st);
                continue;
            }
            elm_pf_encode(x + (size_t)b * T * (size_t)elm_pf_num_input(levels), px, T, levels);
            if (target)
                target[b] = (float)p->labels[i];
        }
        free(px);
    }
    if (err.first >= 0)
        return elm__fail(err.st, "%s", err.msg);
    return ELM_OK;
}

elm_status elm_pf_cache(elm_pf *p, size_t max_bytes, int threads, int *cached) {
    if (cached)
        *cached = 0;
    if (p->cache) {
        if (cached)
            *cached = 1;
        return ELM_OK;
    }
    size_t T = (size_t)p->info.image_size * p->info.image_size;
    if (T > 0 && (size_t)p->n > max_bytes / T)
        return ELM_OK;
    uint8_t *c = malloc((size_t)p->n * T);
    if (!c)
        return ELM_OK; /* not enough memory to cache: decode on the fly instead */
    par_err err = {.first = -1, .st = ELM_OK};
    int nt = threads > 0 ? threads : 0;
#pragma omp parallel for schedule(dynamic, 64) num_threads(nt > 0 ? nt : omp_get_max_threads())
    for (long i = 0; i < p->n; i++) {
        elm_status st = load_index_u8(p, i, c + (size_t)i * T);
        if (st != ELM_OK)
            par_err_note(&err, i, st);
    }
    if (err.first >= 0) {
        free(c);
        return elm__fail(err.st, "%s", err.msg);
    }
    p->cache = c;
    if (cached)
        *cached = 1;
    return ELM_OK;
}
