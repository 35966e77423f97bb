/*
 * pt.c - PyTorch's torch.save format for state dicts (declared in pt.h).
 *
 * Since torch 1.6, torch.save writes a zip archive with one top folder ("archive" in older
 * versions, the file's name in newer ones) holding data.pkl, the pickled state dict, data/<key>
 * with the raw little-endian bytes of each storage that data.pkl names by a persistent id,
 * version, and perhaps byteorder and .data/... records. libzip reads the archive; data.pkl goes
 * through the project's safe pickle reader (pickle.c, ELM_PK_TORCH), which never executes
 * anything and accepts only what state dicts use.
 *
 * A hostile archive can lie in many places; each is checked before anything is allocated or
 * read: every entry lies inside the one top folder (no "..", no absolute names, no duplicates),
 * is stored or deflated and not encrypted; a storage's record has exactly the bytes its
 * persistent id claims; every tensor is a view inside its storage with no more elements than the
 * storage; and all that is read and copied stays within a budget tied to the archive's size (a
 * zip bomb's entries may claim gigabytes), after which libzip checks each entry's CRC.
 */
#include "pt.h"

#include "pickle.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#define PT_MAX_FILE ((size_t)16 << 30)
#define PT_MAX_ENTRIES 4096
#define PT_MAX_PICKLE ((size_t)64 << 20)
/* What reading may expand to: a torch.save archive stores its records uncompressed, so its
 * storages and their contiguous copies take about twice its size; a re-zipped one a little
 * more. Anything beyond is a zip bomb, not a model. */
#define PT_BUDGET(len) (((size_t)64 << 20) + 8 * (len))

int elm__pt_is_zip(const char *buf, size_t len) {
    return len >= 4 && !memcmp(buf, "PK\003\004", 4);
}

/* ---- reading ---------------------------------------------------------------------------------- */

typedef struct pt_reader {
    const char *path;
    zip_t *z;
    char prefix[256]; /* the top folder, with its '/' */
    size_t budget;    /* bytes still allowed to be read or copied */
    size_t budget0;   /* ... at the start */
    struct {
        const uint8_t *key;
        size_t key_len;
        uint8_t *data;
        size_t len;
    } *st;
    int n_st, cap_st;
} pt_reader;

/* A record name for messages: printable ASCII, cut at 100 characters. */
static void sanitize(char *s) {
    for (char *c = s; *c; c++)
        if ((unsigned char)*c < 32 || (unsigned char)*c > 126)
            *c = '?';
}

static void printable(char *dst, size_t n, const char *s) {
    snprintf(dst, n, "%.100s", s);
    sanitize(dst);
}

/* Index of record `name` (below the top folder), or -1. */
static zip_int64_t locate(pt_reader *R, const char *name) {
    char full[512];
    snprintf(full, sizeof full, "%s%s", R->prefix, name);
    return zip_name_locate(R->z, full, ZIP_FL_ENC_RAW);
}

/* Reads entry `idx` whole: exactly its declared size (after checking that against `expect`
 * when not SIZE_MAX, `cap` and the budget), then to its end so libzip checks the CRC. */
static elm_status read_entry(pt_reader *R, zip_int64_t idx, size_t expect, size_t cap,
                             uint8_t **out, size_t *len) {
    *out = NULL;
    *len = 0;
    zip_stat_t sb;
    zip_stat_init(&sb);
    if (zip_stat_index(R->z, (zip_uint64_t)idx, ZIP_FL_ENC_RAW, &sb) != 0 ||
        !(sb.valid & ZIP_STAT_SIZE) || !(sb.valid & ZIP_STAT_NAME))
        return elm__fail(ELM_ERR_FORMAT, "%s: cannot read entry %lld of the archive: %s",
                         R->path, (long long)idx, zip_strerror(R->z));
    char nm[128];
    printable(nm, sizeof nm, sb.name);
    if (expect != SIZE_MAX && sb.size != expect)
        return elm__fail(ELM_ERR_FORMAT,
                         "%s: record '%s' holds %llu bytes but the state dict says its storage "
                         "has %zu",
                         R->path, nm, (unsigned long long)sb.size, expect);
    if (sb.size > cap)
        return elm__fail(ELM_ERR_FORMAT, "%s: record '%s' claims %llu bytes (at most %zu)",
                         R->path, nm, (unsigned long long)sb.size, cap);
    if (sb.size > R->budget)
        return elm__fail(ELM_ERR_FORMAT,
                         "%s: record '%s' would expand the archive beyond %zu bytes, far more "
                         "than a model of its size holds (a zip bomb?)",
                         R->path, nm, R->budget0);
    R->budget -= (size_t)sb.size;
    uint8_t *buf = malloc(sb.size ? (size_t)sb.size : 1);
    if (!buf)
        return elm__fail(ELM_ERR_NOMEM, "%s: out of memory", R->path);
    zip_file_t *zf = zip_fopen_index(R->z, (zip_uint64_t)idx, 0);
    if (!zf) {
        free(buf);
        return elm__fail(ELM_ERR_FORMAT, "%s: cannot open record '%s': %s", R->path, nm,
                         zip_strerror(R->z));
    }
    size_t got = 0;
    while (got < sb.size) {
        zip_int64_t r = zip_fread(zf, buf + got, (zip_uint64_t)(sb.size - got));
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    uint8_t extra;
    zip_int64_t tail = got == sb.size ? zip_fread(zf, &extra, 1) : -1;
    char why[160];
    printable(why, sizeof why, zip_file_strerror(zf));
    int close_err = zip_fclose(zf);
    if (got != sb.size || tail != 0 || close_err != 0) {
        free(buf);
        return elm__fail(ELM_ERR_FORMAT,
                         "%s: record '%s' is damaged (%s; declared %llu bytes, read %zu%s)",
                         R->path, nm, tail < 0 || got != sb.size ? why : "CRC or size mismatch",
                         (unsigned long long)sb.size, got, tail > 0 ? " and more" : "");
    }
    *out = buf;
    *len = (size_t)sb.size;
    return ELM_OK;
}

/* Checks the archive's directory: one top folder, every name inside it, no duplicates, and
 * only methods that carry no surprises. */
static elm_status check_entries(pt_reader *R) {
    zip_int64_t n = zip_get_num_entries(R->z, 0);
    if (n <= 0)
        return elm__fail(ELM_ERR_FORMAT, "%s: an empty zip archive, not a torch.save file",
                         R->path);
    if (n > PT_MAX_ENTRIES)
        return elm__fail(ELM_ERR_FORMAT,
                         "%s: the archive has %lld entries (a state dict has far fewer than %d)",
                         R->path, (long long)n, PT_MAX_ENTRIES);
    const char *first = zip_get_name(R->z, 0, ZIP_FL_ENC_RAW);
    const char *slash = first ? strchr(first, '/') : NULL;
    if (!slash || slash == first || (size_t)(slash - first) + 2 > sizeof R->prefix) {
        char nm[128];
        printable(nm, sizeof nm, first ? first : "");
        return elm__fail(ELM_ERR_FORMAT,
                         "%s: the archive's first entry '%s' is not inside a top folder, as "
                         "torch.save writes (archive/data.pkl)",
                         R->path, nm);
    }
    memcpy(R->prefix, first, (size_t)(slash - first) + 1);
    R->prefix[slash - first + 1] = 0;
    size_t pl = strlen(R->prefix);
    if (!strcmp(R->prefix, "./") || !strcmp(R->prefix, "../"))
        return elm__fail(ELM_ERR_FORMAT, "%s: the archive's top folder is '%s'", R->path,
                         R->prefix);
    for (zip_int64_t i = 0; i < n; i++) {
        const char *name = zip_get_name(R->z, (zip_uint64_t)i, ZIP_FL_ENC_RAW);
        char nm[128];
        printable(nm, sizeof nm, name ? name : "");
        if (!name)
            return elm__fail(ELM_ERR_FORMAT, "%s: entry %lld has no readable name: %s", R->path,
                             (long long)i, zip_strerror(R->z));
        int bad = strncmp(name, R->prefix, pl) != 0 || strchr(name, '\\') != NULL;
        /* No "." or ".." component anywhere (a name must not climb out of the folder). */
        for (const char *c = name; !bad && *c;) {
            const char *e = strchr(c, '/');
            size_t cl = e ? (size_t)(e - c) : strlen(c);
            bad = (cl == 1 && c[0] == '.') || (cl == 2 && c[0] == '.' && c[1] == '.');
            c = e ? e + 1 : c + cl;
        }
        if (bad)
            return elm__fail(ELM_ERR_FORMAT,
                             "%s: entry '%s' lies outside the archive's folder '%s' (a "
                             "torch.save file keeps everything in one folder)",
                             R->path, nm, R->prefix);
        if (zip_name_locate(R->z, name, ZIP_FL_ENC_RAW) != i)
            return elm__fail(ELM_ERR_FORMAT, "%s: entry '%s' appears more than once", R->path,
                             nm);
        zip_stat_t sb;
        zip_stat_init(&sb);
        if (zip_stat_index(R->z, (zip_uint64_t)i, ZIP_FL_ENC_RAW, &sb) != 0)
            return elm__fail(ELM_ERR_FORMAT, "%s: entry '%s' cannot be read: %s", R->path, nm,
                             zip_strerror(R->z));
        if ((sb.valid & ZIP_STAT_ENCRYPTION_METHOD) && sb.encryption_method != ZIP_EM_NONE)
            return elm__fail(ELM_ERR_UNSUPPORTED, "%s: entry '%s' is encrypted", R->path, nm);
        if ((sb.valid & ZIP_STAT_COMP_METHOD) && sb.comp_method != ZIP_CM_STORE &&
            sb.comp_method != ZIP_CM_DEFLATE)
            return elm__fail(ELM_ERR_UNSUPPORTED,
                             "%s: entry '%s' uses compression method %d (torch.save stores "
                             "records; only stored and deflated ones are read)",
                             R->path, nm, (int)sb.comp_method);
    }
    return ELM_OK;
}

/* A small text record (version, byteorder) without its trailing newline, or NULL if absent. */
static elm_status small_record(pt_reader *R, const char *name, char *out, size_t n, int *found) {
    *found = 0;
    zip_int64_t idx = locate(R, name);
    if (idx < 0)
        return ELM_OK;
    uint8_t *data = NULL;
    size_t len = 0;
    elm_status st = read_entry(R, idx, SIZE_MAX, n - 1, &data, &len);
    if (st)
        return st;
    while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        len--;
    memcpy(out, data, len);
    out[len] = 0;
    free(data);
    *found = 1;
    return ELM_OK;
}

/* The bytes of the storage `key`, read once and kept for the other tensors that view it. */
static elm_status storage(pt_reader *R, const elm_pk_tensor *t, const uint8_t **data) {
    for (int i = 0; i < R->n_st; i++)
        if (R->st[i].key_len == t->key_len && !memcmp(R->st[i].key, t->key, t->key_len)) {
            size_t want = (size_t)t->storage_numel * elm__dtype_size((elm__dtype)t->dtype);
            if (R->st[i].len != want)
                return elm__fail(ELM_ERR_FORMAT,
                                 "%s: storage '%.*s' is named with two different sizes or types",
                                 R->path, (int)t->key_len, (const char *)t->key);
            *data = R->st[i].data;
            return ELM_OK;
        }
    if (R->n_st == R->cap_st) {
        int nc = R->cap_st ? 2 * R->cap_st : 16;
        void *ns = realloc(R->st, sizeof *R->st * (size_t)nc);
        if (!ns)
            return elm__fail(ELM_ERR_NOMEM, "%s: out of memory", R->path);
        R->st = ns;
        R->cap_st = nc;
    }
    char name[96];
    snprintf(name, sizeof name, "data/%.*s", (int)t->key_len, (const char *)t->key);
    zip_int64_t idx = locate(R, name);
    if (idx < 0)
        return elm__fail(ELM_ERR_FORMAT,
                         "%s: the state dict names storage '%s' but the archive has no record "
                         "%s%s",
                         R->path, name, R->prefix, name);
    size_t want = (size_t)t->storage_numel * elm__dtype_size((elm__dtype)t->dtype);
    uint8_t *buf = NULL;
    size_t len = 0;
    elm_status st = read_entry(R, idx, want, SIZE_MAX, &buf, &len);
    if (st)
        return st;
    R->st[R->n_st].key = t->key;
    R->st[R->n_st].key_len = t->key_len;
    R->st[R->n_st].data = buf;
    R->st[R->n_st].len = len;
    R->n_st++;
    *data = buf;
    return ELM_OK;
}

/* Copies a strided view into a contiguous block, element by element (row-major order). */
static void copy_view(uint8_t *dst, const uint8_t *src, const elm_pk_tensor *t, size_t numel,
                      size_t es) {
    int64_t idx[ELM_PK_MAXDIM] = {0};
    for (size_t k = 0; k < numel; k++) {
        int64_t off = t->offset;
        for (int d = 0; d < t->ndim; d++)
            off += idx[d] * t->stride[d];
        memcpy(dst + k * es, src + (size_t)off * es, es);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d])
                break;
            idx[d] = 0;
        }
    }
}

static size_t view_numel(const elm_pk_tensor *t) {
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= (size_t)t->shape[d]; /* bounded by the pickle reader: at most 2^40 */
    return n;
}

/* 1 when key i of dict d is set again later (Python keeps the last value). */
static int key_repeated(const elm_pk_obj *d, size_t i) {
    const elm_pk_obj *k = d->items[2 * i].u.o;
    for (size_t j = i + 1; j < d->len; j++) {
        const elm_pk_obj *k2 = d->items[2 * j].u.o;
        if (k2->len == k->len && !memcmp(k2->bytes, k->bytes, k->len))
            return 1;
    }
    return 0;
}

/* The state dict's entries into f: names, and each tensor's copy in one block. */
static elm_status fill(pt_reader *R, const elm_pk_val *root, elm__st_file *f) {
    if (root->type != ELM_PK_DICT)
        return elm__fail(ELM_ERR_FORMAT, "%s: data.pkl holds a %s, not a state dict", R->path,
                         elm_pk_type_name(root->type));
    const elm_pk_obj *d = root->u.o;
    if (d->len > PT_MAX_ENTRIES)
        return elm__fail(ELM_ERR_FORMAT, "%s: the state dict has %zu entries (at most %d)",
                         R->path, d->len, PT_MAX_ENTRIES);
    f->t = calloc(d->len + 1, sizeof *f->t);
    size_t *keep = malloc(sizeof *keep * (d->len + 1));
    if (!f->t || !keep) {
        free(keep);
        return elm__fail(ELM_ERR_NOMEM, "%s: out of memory", R->path);
    }
    elm_status st = ELM_OK;
    size_t total = 0, n_keep = 0;
    for (size_t i = 0; i < d->len && !st; i++) {
        const elm_pk_val *k = &d->items[2 * i], *v = &d->items[2 * i + 1];
        char nm[128];
        if (k->type == ELM_PK_STR) {
            snprintf(nm, sizeof nm, "%.*s", (int)(k->u.o->len < 100 ? k->u.o->len : 100),
                     (const char *)k->u.o->bytes);
            sanitize(nm);
        }
        if (k->type != ELM_PK_STR)
            st = elm__fail(ELM_ERR_FORMAT, "%s: state dict key %zu is a %s, not a str", R->path,
                           i, elm_pk_type_name(k->type));
        else if (memchr(k->u.o->bytes, 0, k->u.o->len))
            st = elm__fail(ELM_ERR_FORMAT, "%s: state dict key '%s' holds a NUL", R->path, nm);
        else if (v->type != ELM_PK_TENSOR)
            st = elm__fail(ELM_ERR_FORMAT,
                           "%s: state dict entry '%s' is a %s, not a tensor (save "
                           "model.state_dict() itself)",
                           R->path, nm, elm_pk_type_name(v->type));
    }
    for (size_t i = 0; i < d->len && !st; i++) {
        if (key_repeated(d, i))
            continue;
        const elm_pk_tensor *pt = d->items[2 * i + 1].u.o->tensor;
        size_t bytes = view_numel(pt) * elm__dtype_size((elm__dtype)pt->dtype);
        if (bytes > R->budget) {
            const elm_pk_obj *k = d->items[2 * i].u.o;
            st = elm__fail(ELM_ERR_FORMAT,
                           "%s: tensor '%.*s' would expand the archive beyond %zu bytes, far "
                           "more than a model of its size holds (a zip bomb?)",
                           R->path, (int)(k->len < 100 ? k->len : 100),
                           (const char *)k->bytes, R->budget0);
        }
        else {
            R->budget -= bytes;
            total += bytes;
            keep[n_keep++] = i;
        }
    }
    if (!st && !(f->buf = malloc(total ? total : 1)))
        st = elm__fail(ELM_ERR_NOMEM, "%s: out of memory", R->path);
    size_t off = 0;
    for (size_t q = 0; q < n_keep && !st; q++) {
        const elm_pk_obj *k = d->items[2 * keep[q]].u.o;
        const elm_pk_tensor *pt = d->items[2 * keep[q] + 1].u.o->tensor;
        const uint8_t *src = NULL;
        if ((st = storage(R, pt, &src)) != ELM_OK)
            break;
        elm__st_tensor *t = &f->t[f->n];
        if (!(t->name = malloc(k->len + 1))) {
            st = elm__fail(ELM_ERR_NOMEM, "%s: out of memory", R->path);
            break;
        }
        f->n++;
        memcpy(t->name, k->bytes, k->len);
        t->name[k->len] = 0;
        size_t es = elm__dtype_size((elm__dtype)pt->dtype);
        t->dtype = (elm__dtype)pt->dtype;
        t->ndim = pt->ndim;
        for (int dd = 0; dd < pt->ndim; dd++)
            t->shape[dd] = pt->shape[dd];
        t->numel = view_numel(pt);
        copy_view((uint8_t *)f->buf + off, src, pt, t->numel, es);
        t->data = f->buf + off;
        off += t->numel * es;
    }
    f->len = off;
    free(keep);
    return st;
}

elm_status elm__pt_parse(elm__st_file *f, char *buf, size_t len, const char *path) {
    memset(f, 0, sizeof *f);
    f->path = path;
    pt_reader R;
    memset(&R, 0, sizeof R);
    R.path = path;
    R.budget = R.budget0 = PT_BUDGET(len);
    elm_pk *pk = NULL;
    uint8_t *pkl = NULL;
    elm_status st = ELM_OK;
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(buf, len, 0, &ze);
    if (src) {
        R.z = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
        if (!R.z)
            zip_source_free(src);
    }
    if (!R.z) {
        st = elm__fail(ELM_ERR_FORMAT, "%s: not a readable zip archive (%s)", path,
                       zip_error_strerror(&ze));
        goto done;
    }
    if ((st = check_entries(&R)) != ELM_OK)
        goto done;
    char text[32];
    int found = 0, found2 = 0;
    if ((st = small_record(&R, "byteorder", text, sizeof text, &found)) != ELM_OK)
        goto done;
    if (found && strcmp(text, "little")) {
        st = elm__fail(ELM_ERR_UNSUPPORTED,
                       "%s: the archive's byteorder is '%.20s'; only little-endian files are "
                       "read",
                       path, text);
        goto done;
    }
    if ((st = small_record(&R, "version", text, sizeof text, &found)) != ELM_OK ||
        (st = small_record(&R, ".data/version", text, sizeof text, &found2)) != ELM_OK)
        goto done;
    if (!found && !found2) {
        st = elm__fail(ELM_ERR_FORMAT,
                       "%s: a zip archive without %sversion: not a torch.save file", path,
                       R.prefix);
        goto done;
    }
    zip_int64_t pi = locate(&R, "data.pkl");
    if (pi < 0) {
        st = elm__fail(ELM_ERR_FORMAT, "%s: the archive has no %sdata.pkl: not a torch.save file",
                       path, R.prefix);
        goto done;
    }
    size_t pkl_len = 0;
    if ((st = read_entry(&R, pi, SIZE_MAX, PT_MAX_PICKLE, &pkl, &pkl_len)) != ELM_OK)
        goto done;
    char pname[600];
    snprintf(pname, sizeof pname, "%s: %sdata.pkl", path, R.prefix);
    if ((st = elm_pk_parse_ex(&pk, pkl, pkl_len, pname, ELM_PK_TORCH)) != ELM_OK)
        goto done;
    st = fill(&R, elm_pk_root(pk), f);
done:
    elm_pk_free(pk);
    free(pkl);
    for (int i = 0; i < R.n_st; i++)
        free(R.st[i].data);
    free(R.st);
    if (R.z)
        zip_discard(R.z);
    zip_error_fini(&ze); /* frees the text zip_error_strerror made */
    free(buf);
    if (st) {
        elm__st_free(f);
        f->path = path;
    }
    return st;
}

elm_status elm__tensors_read(elm__st_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    f->path = path;
    char *buf;
    size_t len;
    elm_status st = elm__read_file(path, PT_MAX_FILE, &buf, &len);
    if (st)
        return st;
    if (elm__pt_is_zip(buf, len))
        return elm__pt_parse(f, buf, len, path);
    /* torch.save's format before torch 1.6: a bare pickle (protocol 2 and a magic number). */
    if (len >= 2 && (unsigned char)buf[0] == 0x80 && buf[1] == 2) {
        free(buf);
        return elm__fail(ELM_ERR_UNSUPPORTED,
                         "%s: a torch.save file in the format of torch < 1.6 (not a zip "
                         "archive); load and save it again with a newer torch",
                         path);
    }
    return elm__st_parse(f, buf, len, path);
}

/* ---- model folders ---------------------------------------------------------------------------- */

char *elm__model_file_in_dir(const char *dir) {
    char *p = elm__path_join(dir, "model.safetensors");
    if (!p || elm__is_file(p))
        return p;
    char *q = elm__path_join(dir, "neuronio_best_model_state.pt");
    if (!q || elm__is_file(q)) {
        free(p);
        return q;
    }
    free(q);
    /* Otherwise the folder's only .pt file, if it has exactly one. */
    DIR *d = opendir(dir);
    char *found = NULL;
    int n = 0;
    for (struct dirent *e = d ? readdir(d) : NULL; e; e = readdir(d)) {
        size_t l = strlen(e->d_name);
        if (l < 4 || strcmp(e->d_name + l - 3, ".pt"))
            continue;
        char *c = elm__path_join(dir, e->d_name);
        if (c && elm__is_file(c) && ++n == 1) {
            found = c;
            continue;
        }
        free(c);
    }
    if (d)
        closedir(d);
    if (n == 1) {
        free(p);
        return found;
    }
    free(found);
    return p; /* absent: loading names model.safetensors in its message */
}

/* ---- writing ---------------------------------------------------------------------------------- */

typedef struct pbuf {
    uint8_t *p;
    size_t n, cap;
    int oom;
} pbuf;

static void put(pbuf *b, const void *s, size_t n) {
    if (b->oom)
        return;
    if (b->n + n > b->cap) {
        size_t nc = b->cap ? b->cap : 1024;
        while (nc < b->n + n)
            nc *= 2;
        uint8_t *np = realloc(b->p, nc);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void put1(pbuf *b, int c) {
    uint8_t u = (uint8_t)c;
    put(b, &u, 1);
}

/* BINUNICODE: a str. */
static void put_str(pbuf *b, const char *s) {
    size_t n = strlen(s);
    uint8_t h[5] = {'X', (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    put(b, h, 5);
    put(b, s, n);
}

/* A non-negative int: BININT below 2^31, else LONG1 with 8 bytes. */
static void put_int(pbuf *b, uint64_t v) {
    if (v < ((uint64_t)1 << 31)) {
        uint8_t h[5] = {'J', (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
                        (uint8_t)(v >> 24)};
        put(b, h, 5);
        return;
    }
    uint8_t h[10] = {0x8a, 8};
    for (int i = 0; i < 8; i++)
        h[2 + i] = (uint8_t)(v >> (8 * i));
    put(b, h, 10);
}

static const char *storage_class(elm__dtype t) {
    switch (t) {
    case ELM_DT_F16: return "HalfStorage";
    case ELM_DT_F32: return "FloatStorage";
    case ELM_DT_F64: return "DoubleStorage";
    case ELM_DT_I8: return "CharStorage";
    case ELM_DT_U8: return "ByteStorage";
    case ELM_DT_I16: return "ShortStorage";
    case ELM_DT_I32: return "IntStorage";
    case ELM_DT_I64: return "LongStorage";
    case ELM_DT_BOOL: return "BoolStorage";
    }
    return NULL;
}

/* data.pkl as torch.save writes it (protocol 2): OrderedDict(); then per tensor
 * name -> _rebuild_tensor_v2(persistent storage i, 0, size, contiguous stride, False,
 * OrderedDict()), added by one SETITEMS. */
static void state_dict_pickle(pbuf *b, const elm__st_out *t, int n) {
    put(b, "\x80\x02", 2);
    put(b, "ccollections\nOrderedDict\nq\x00)R(", 30);
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++)
            numel *= (size_t)t[i].shape[d];
        char key[24], cls[64];
        snprintf(key, sizeof key, "%d", i);
        snprintf(cls, sizeof cls, "ctorch\n%s\n", storage_class(t[i].dtype));
        put_str(b, t[i].name);
        put(b, "ctorch._utils\n_rebuild_tensor_v2\n", 33);
        put(b, "((", 2);
        put_str(b, "storage");
        put(b, cls, strlen(cls));
        put_str(b, key);
        put_str(b, "cpu");
        put_int(b, numel);
        put(b, "tQ", 2);
        put_int(b, 0);
        put1(b, '(');
        for (int d = 0; d < t[i].ndim; d++)
            put_int(b, (uint64_t)t[i].shape[d]);
        put(b, "t(", 2);
        uint64_t stride[8];
        uint64_t s = 1;
        for (int d = t[i].ndim - 1; d >= 0; d--) {
            stride[d] = s;
            s *= (uint64_t)t[i].shape[d];
        }
        for (int d = 0; d < t[i].ndim; d++)
            put_int(b, stride[d]);
        put1(b, 't');
        put(b, "\x89h\x00)R", 5); /* False, OrderedDict (memo 0) () REDUCE */
        put(b, "tR", 2);
    }
    put(b, "u.", 2);
}

static elm_status add_record(zip_t *z, const char *name, const void *data, size_t len,
                             const char *path) {
    zip_source_t *s = zip_source_buffer(z, data, len, 0);
    zip_int64_t idx = s ? zip_file_add(z, name, s, ZIP_FL_ENC_UTF_8 | ZIP_FL_OVERWRITE) : -1;
    if (idx < 0) {
        if (s)
            zip_source_free(s);
        return elm__fail(ELM_ERR_IO, "%s: cannot add %s: %s", path, name, zip_strerror(z));
    }
    /* Stored, as torch.save does; a fixed time (1980-01-02) so the same model gives the same
     * bytes. */
    if (zip_set_file_compression(z, (zip_uint64_t)idx, ZIP_CM_STORE, 0) != 0 ||
        zip_file_set_mtime(z, (zip_uint64_t)idx, (time_t)315619200, 0) != 0)
        return elm__fail(ELM_ERR_IO, "%s: cannot set up %s: %s", path, name, zip_strerror(z));
    return ELM_OK;
}

elm_status elm__pt_write(const char *path, const elm__st_out *t, int n) {
    for (int i = 0; i < n; i++)
        if (!storage_class(t[i].dtype) || t[i].ndim < 0 || t[i].ndim > 8)
            return elm__fail(ELM_ERR_ARG, "%s: tensor '%s' cannot be written to a .pt file",
                             path, t[i].name);
    pbuf b = {0};
    state_dict_pickle(&b, t, n);
    if (b.oom) {
        free(b.p);
        return elm__fail(ELM_ERR_NOMEM, "%s: out of memory", path);
    }
    int err = 0;
    /* libzip writes a temporary file beside `path` and renames it over `path` in zip_close: a
     * reader sees the old file or the new one, never a torn one. */
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
    if (!z) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, err);
        elm_status st = elm__fail(ELM_ERR_IO, "%s: cannot create: %s", path,
                                  zip_error_strerror(&ze));
        zip_error_fini(&ze);
        free(b.p);
        return st;
    }
    elm_status st = add_record(z, "archive/data.pkl", b.p, b.n, path);
    for (int i = 0; i < n && !st; i++) {
        size_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++)
            numel *= (size_t)t[i].shape[d];
        char name[48];
        snprintf(name, sizeof name, "archive/data/%d", i);
        st = add_record(z, name, t[i].data, numel * elm__dtype_size(t[i].dtype), path);
    }
    if (!st)
        st = add_record(z, "archive/version", "3\n", 2, path);
    if (!st)
        st = add_record(z, "archive/byteorder", "little", 6, path);
    if (!st && zip_close(z) != 0)
        st = elm__fail(ELM_ERR_IO, "%s: write failed: %s", path, zip_strerror(z));
    else if (!st)
        z = NULL;
    if (z)
        zip_discard(z);
    free(b.p);
    return st;
}

elm_status elm__pt_write_config(const elm_model *m, const char *pt_path) {
    char *dir = elm__strdup(pt_path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    char *q = !dir ? NULL : slash ? (*slash = 0, elm__path_join(dir, "model_config.json"))
                                  : elm__strdup("model_config.json");
    char *js = elm_config_to_json(elm_model_config(m));
    elm_status st = ELM_OK;
    if (!q || !js) {
        st = elm__fail(ELM_ERR_NOMEM, "out of memory");
    } else {
        st = elm__json_write_text(q, js);
    }
    free(js);
    free(q);
    free(dir);
    return st;
}

elm_status elm__tensors_write(const char *path, const elm__st_out *t, int n,
                              const char *const *meta_kv, int n_meta) {
    if (elm__ends_with(path, ".pt"))
        return elm__pt_write(path, t, n);
    return elm__st_write(path, t, n, meta_kv, n_meta);
}
