/*
 * cache.c - elm's compact NeuronIO cache (.nioc): the writer declared in neuronio.h, the mmap
 * reader, and the folder index. The byte layout is documented in docs/DATA.md; the constants
 * below are that layout. Every offset and size read from a file is checked against the file size
 * before use, so a corrupt or truncated file gives an error naming it, never a crash.
 */
#include "neuronio.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define NIOC_MAGIC "ELMNIOC"  /* 8 bytes with its NUL */
#define NIOC_VERSION 1u
#define NIOC_HEADER 64u
#define NIOC_ENTRY 64u
#define NIOC_SOMA_F16 1u
#define NIOC_SOMA_F32 2u
/* Sanity bounds (a real simulation is 6000 steps, 1278 inputs). */
#define NIOC_MAX_T 10000000u
#define NIOC_MAX_SIMS 100000000u

/* ---- small helpers ------------------------------------------------------------------------- */

static int host_is_little(void) {
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
static uint64_t get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* FNV-1a, 64 bit: detects corruption of a block (not tampering). */
static uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}
#define FNV_SEED 0xcbf29ce484222325ull

static uint64_t pad8(uint64_t n) {
    return (n + 7) & ~(uint64_t)7;
}

/* Bytes of a simulation block; 0 on overflow. */
static uint64_t block_bytes(uint64_t T, uint64_t nnz, uint32_t soma_dtype, uint64_t n_out) {
    if (T > NIOC_MAX_T || nnz > (uint64_t)1 << 40 || n_out > T + 1)
        return 0;
    uint64_t soma_size = soma_dtype == NIOC_SOMA_F16 ? 2 : 4;
    return (T + 1) * 8 + pad8(nnz * 2) + pad8(T * soma_size) + pad8(n_out * 4);
}

void elm_nio_sim_clear(elm_nio_sim *s) {
    if (!s)
        return;
    free(s->spike_ptr);
    free(s->spike_idx);
    free(s->soma);
    free(s->out_spike_times);
    memset(s, 0, sizeof *s);
}

float elm_nio_view_soma(const elm_nio_view *v, int t) {
    if (v->soma_f16) {
        uint16_t h;
        memcpy(&h, (const uint8_t *)v->soma + 2 * (size_t)t, 2);
        return elm__half_to_float(h);
    }
    float f;
    memcpy(&f, (const uint8_t *)v->soma + 4 * (size_t)t, 4);
    return f;
}

int elm_nio_spike_bin(double t_ms) {
    double b = t_ms - 0.5;
    if (!(b > -2147483648.0 && b < 2147483647.0))
        return b > 0 ? INT32_MAX : INT32_MIN;
    return (int)b; /* C truncates toward zero, like numpy's astype(int) */
}

void elm_nio_sim_view(const elm_nio_sim *s, elm_nio_view *v) {
    v->T = s->T;
    v->n_in = s->n_in;
    v->spike_ptr = s->spike_ptr;
    v->spike_idx = s->spike_idx;
    v->soma = s->soma;
    v->soma_f16 = 0;
    v->n_out_spikes = s->n_out_spikes;
    v->out_spike_times = s->out_spike_times;
    v->src = NULL;
    v->sim = -1;
}

const char *elm_nio_view_name(const elm_nio_view *v, char *buf, size_t cap) {
    if (v->src)
        snprintf(buf, cap, "%s: simulation %d", v->src, v->sim);
    else
        snprintf(buf, cap, "NeuronIO simulation");
    return buf;
}

/* ---- writer -------------------------------------------------------------------------------- */

struct elm_nio_writer {
    elm__atomic_file af;
    char *dir;
    uint64_t pos; /* bytes written so far */
    uint8_t *table;
    size_t n_sims, cap;
    int n_in;
    int failed;
};

elm_status elm_nio_writer_open(elm_nio_writer **out, const char *dir, const char *name) {
    *out = NULL;
    if (!host_is_little())
        return elm__fail(ELM_ERR_UNSUPPORTED, "the NeuronIO cache needs a little-endian machine");
    if (!name || !*name || strchr(name, '/'))
        return elm__fail(ELM_ERR_ARG, "cache name '%s' must be a plain file name",
                         name ? name : "");
    elm_status st = elm__mkdir_p(dir);
    if (st != ELM_OK)
        return st;
    elm_nio_writer *w = calloc(1, sizeof *w);
    char *file = malloc(strlen(name) + 6);
    char *path = NULL;
    if (!w || !file) {
        free(w);
        free(file);
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    }
    sprintf(file, "%s.nioc", name);
    path = elm__path_join(dir, file);
    free(file);
    w->dir = elm__strdup(dir);
    if (!path || !w->dir) {
        free(path);
        free(w->dir);
        free(w);
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    }
    st = elm__atomic_open(&w->af, path);
    free(path);
    if (st != ELM_OK) {
        free(w->dir);
        free(w);
        return st;
    }
    uint8_t zero[NIOC_HEADER] = {0};
    if (fwrite(zero, 1, sizeof zero, w->af.f) != sizeof zero) {
        st = elm__fail(ELM_ERR_IO, "%s: write failed: %s", w->af.path, strerror(errno));
        elm_nio_writer_abort(w);
        return st;
    }
    w->pos = NIOC_HEADER;
    *out = w;
    return ELM_OK;
}

static elm_status wwrite(elm_nio_writer *w, const void *p, size_t n, uint64_t *h) {
    if (n && fwrite(p, 1, n, w->af.f) != n) {
        w->failed = 1;
        return elm__fail(ELM_ERR_IO, "%s: write failed: %s", w->af.path, strerror(errno));
    }
    *h = fnv1a(*h, p, n);
    w->pos += n;
    return ELM_OK;
}

static elm_status wpad(elm_nio_writer *w, uint64_t *h) {
    static const uint8_t zero[8] = {0};
    size_t n = (size_t)(pad8(w->pos) - w->pos);
    return wwrite(w, zero, n, h);
}

elm_status elm_nio_writer_add(elm_nio_writer *w, const elm_nio_sim *s) {
    if (w->failed)
        return elm__fail(ELM_ERR_IO, "%s: an earlier write failed", w->af.path);
    if (s->T <= 0 || (uint64_t)s->T > NIOC_MAX_T || s->n_in <= 0 || s->n_in > 65536 ||
        s->n_out_spikes < 0 || s->n_out_spikes > s->T + 1 || !s->spike_ptr || !s->soma)
        return elm__fail(ELM_ERR_ARG, "%s: simulation %zu has invalid sizes (T %d, inputs %d, "
                                      "%d output spikes)",
                         w->af.path, w->n_sims, s->T, s->n_in, s->n_out_spikes);
    if (w->n_sims && s->n_in != w->n_in)
        return elm__fail(ELM_ERR_SHAPE, "%s: simulation %zu has %d inputs, earlier ones %d",
                         w->af.path, w->n_sims, s->n_in, w->n_in);
    if (w->n_sims >= NIOC_MAX_SIMS)
        return elm__fail(ELM_ERR_ARG, "%s: too many simulations", w->af.path);
    /* The stored row pointers start at 0, whatever the in-memory ones start at. */
    int64_t base = s->spike_ptr[0];
    uint64_t nnz = (uint64_t)(s->spike_ptr[s->T] - base);
    for (int t = 0; t < s->T; t++) {
        if (s->spike_ptr[t + 1] < s->spike_ptr[t])
            return elm__fail(ELM_ERR_ARG, "%s: simulation %zu: row pointers decrease at step %d",
                             w->af.path, w->n_sims, t);
        for (int64_t j = s->spike_ptr[t]; j < s->spike_ptr[t + 1]; j++)
            if (s->spike_idx[j] >= s->n_in)
                return elm__fail(ELM_ERR_ARG, "%s: simulation %zu: input id %u >= %d at step %d",
                                 w->af.path, w->n_sims, s->spike_idx[j], s->n_in, t);
    }
    /* Half precision when it is lossless (the NeuronIO pickles store float16). */
    uint32_t sd = NIOC_SOMA_F16;
    for (int t = 0; t < s->T; t++) {
        if (!isfinite(s->soma[t]))
            return elm__fail(ELM_ERR_NUMERIC, "%s: simulation %zu: soma voltage at %d ms is %g",
                             w->af.path, w->n_sims, t, (double)s->soma[t]);
        if (elm__half_to_float(elm__float_to_half(s->soma[t])) != s->soma[t])
            sd = NIOC_SOMA_F32;
    }
    uint64_t start = w->pos, h = FNV_SEED;
    elm_status st = ELM_OK;
    for (int t = 0; t <= s->T && st == ELM_OK; t++) {
        uint8_t b[8];
        put64(b, (uint64_t)(s->spike_ptr[t] - base));
        st = wwrite(w, b, 8, &h);
    }
    if (st == ELM_OK && nnz)
        st = wwrite(w, s->spike_idx + base, (size_t)nnz * 2, &h);
    if (st == ELM_OK)
        st = wpad(w, &h);
    for (int t = 0; t < s->T && st == ELM_OK; t++) {
        if (sd == NIOC_SOMA_F16) {
            uint16_t v = elm__float_to_half(s->soma[t]);
            st = wwrite(w, &v, 2, &h);
        } else {
            st = wwrite(w, &s->soma[t], 4, &h);
        }
    }
    if (st == ELM_OK)
        st = wpad(w, &h);
    if (st == ELM_OK && s->n_out_spikes)
        st = wwrite(w, s->out_spike_times, (size_t)s->n_out_spikes * 4, &h);
    if (st == ELM_OK)
        st = wpad(w, &h);
    if (st != ELM_OK)
        return st;
    if (w->n_sims == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 64;
        uint8_t *nt = realloc(w->table, nc * NIOC_ENTRY);
        if (!nt) {
            w->failed = 1;
            return elm__fail(ELM_ERR_NOMEM, "out of memory");
        }
        w->table = nt;
        w->cap = nc;
    }
    uint8_t *e = w->table + w->n_sims * NIOC_ENTRY;
    memset(e, 0, NIOC_ENTRY);
    put32(e + 0, (uint32_t)s->T);
    put32(e + 4, (uint32_t)s->n_out_spikes);
    put32(e + 8, sd);
    put64(e + 16, nnz);
    put64(e + 24, start);
    put64(e + 32, w->pos - start);
    put64(e + 40, h);
    w->n_in = s->n_in;
    w->n_sims++;
    return ELM_OK;
}

void elm_nio_writer_abort(elm_nio_writer *w) {
    if (!w)
        return;
    elm__atomic_abort(&w->af);
    free(w->table);
    free(w->dir);
    free(w);
}

elm_status elm_nio_writer_close(elm_nio_writer *w) {
    if (!w)
        return ELM_OK;
    elm_status st = ELM_OK;
    if (w->failed)
        st = elm__fail(ELM_ERR_IO, "%s: an earlier write failed", w->af.path);
    else if (w->n_sims == 0)
        st = elm__fail(ELM_ERR_ARG, "%s: no simulations were added", w->af.path);
    uint64_t h = FNV_SEED, table_off = w->pos;
    if (st == ELM_OK)
        st = wwrite(w, w->table, w->n_sims * NIOC_ENTRY, &h);
    if (st == ELM_OK) {
        uint8_t hd[NIOC_HEADER] = {0};
        memcpy(hd, NIOC_MAGIC, 8);
        put32(hd + 8, NIOC_VERSION);
        put32(hd + 12, NIOC_HEADER);
        put32(hd + 16, (uint32_t)w->n_sims);
        put32(hd + 20, (uint32_t)w->n_in);
        put64(hd + 24, table_off);
        put64(hd + 32, w->pos);
        put64(hd + 40, fnv1a(FNV_SEED, w->table, w->n_sims * NIOC_ENTRY));
        if (fseek(w->af.f, 0, SEEK_SET) != 0 || fwrite(hd, 1, sizeof hd, w->af.f) != sizeof hd)
            st = elm__fail(ELM_ERR_IO, "%s: write failed: %s", w->af.path, strerror(errno));
    }
    if (st != ELM_OK) {
        elm_nio_writer_abort(w);
        return st;
    }
    char *dir = w->dir;
    w->dir = NULL;
    st = elm__atomic_commit(&w->af);
    free(w->table);
    free(w);
    if (st == ELM_OK)
        st = elm_nio_index_refresh(dir);
    free(dir);
    return st;
}

/* ---- reader -------------------------------------------------------------------------------- */

typedef struct sim_entry {
    uint32_t T, n_out, soma_dtype;
    uint64_t nnz, off, bytes, checksum;
    /* 1 once the block has passed check_block (its first use); threads may race to set it,
     * which only repeats the same check. */
    _Atomic int checked;
} sim_entry;

struct elm_nio_cache {
    char *path;
    const uint8_t *map;
    size_t len;
    int n_sims, n_in;
    sim_entry *sims;
};

elm_status elm_nio_cache_open(elm_nio_cache **out, const char *path) {
    *out = NULL;
    if (!host_is_little())
        return elm__fail(ELM_ERR_UNSUPPORTED, "the NeuronIO cache needs a little-endian machine");
    int fd;
    size_t len;
    elm_status ost = elm__open_regular(path, &fd, &len);
    if (ost != ELM_OK)
        return ost;
    if (len < NIOC_HEADER) {
        close(fd);
        return elm__fail(ELM_ERR_FORMAT, "%s: %zu bytes, too short for a NeuronIO cache", path,
                         len);
    }
    void *map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return elm__fail(ELM_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
    const uint8_t *m = map;
    elm_nio_cache *c = calloc(1, sizeof *c);
    elm_status st = ELM_OK;
    if (!c) {
        munmap(map, len);
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    }
    c->map = m;
    c->len = len;
    c->path = elm__strdup(path);
    uint32_t n = get32(m + 16);
    uint64_t table_off = get64(m + 24);
    if (memcmp(m, NIOC_MAGIC, 8) != 0) {
        st = elm__fail(ELM_ERR_FORMAT, "%s: not a NeuronIO cache (bad magic)", path);
    } else if (get32(m + 8) != NIOC_VERSION || get32(m + 12) != NIOC_HEADER) {
        st = elm__fail(ELM_ERR_UNSUPPORTED, "%s: cache version %u (header %u bytes); this elm "
                                            "reads version %u",
                       path, get32(m + 8), get32(m + 12), NIOC_VERSION);
    } else if (get64(m + 32) != len) {
        st = elm__fail(ELM_ERR_FORMAT,
                       "%s: header says %llu bytes but the file has %zu (truncated or appended)",
                       path, (unsigned long long)get64(m + 32), len);
    } else if (n == 0 || n > NIOC_MAX_SIMS || table_off < NIOC_HEADER || table_off > len ||
               (len - table_off) / NIOC_ENTRY != n || (len - table_off) % NIOC_ENTRY) {
        st = elm__fail(ELM_ERR_FORMAT, "%s: table of %u simulations at offset %llu does not fit "
                                       "the file",
                       path, n, (unsigned long long)table_off);
    } else if (get32(m + 20) == 0 || get32(m + 20) > 65536) {
        st = elm__fail(ELM_ERR_FORMAT, "%s: %u inputs (must be 1..65536)", path, get32(m + 20));
    } else if (fnv1a(FNV_SEED, m + table_off, (size_t)n * NIOC_ENTRY) != get64(m + 40)) {
        st = elm__fail(ELM_ERR_FORMAT, "%s: simulation table checksum mismatch (corrupt file)",
                       path);
    }
    if (st == ELM_OK) {
        c->n_sims = (int)n;
        c->n_in = (int)get32(m + 20);
        c->sims = calloc(n, sizeof *c->sims);
        if (!c->sims || !c->path)
            st = elm__fail(ELM_ERR_NOMEM, "out of memory");
    }
    for (uint32_t k = 0; st == ELM_OK && k < n; k++) {
        const uint8_t *e = m + table_off + (uint64_t)k * NIOC_ENTRY;
        sim_entry *s = &c->sims[k];
        s->T = get32(e);
        s->n_out = get32(e + 4);
        s->soma_dtype = get32(e + 8);
        s->nnz = get64(e + 16);
        s->off = get64(e + 24);
        s->bytes = get64(e + 32);
        s->checksum = get64(e + 40);
        uint64_t want = block_bytes(s->T, s->nnz, s->soma_dtype, s->n_out);
        if (s->T == 0 || s->T > NIOC_MAX_T ||
            (s->soma_dtype != NIOC_SOMA_F16 && s->soma_dtype != NIOC_SOMA_F32))
            st = elm__fail(ELM_ERR_FORMAT, "%s: simulation %u: %u steps, soma type %u", path, k,
                           s->T, s->soma_dtype);
        else if (s->nnz > (uint64_t)s->T * (uint64_t)c->n_in || want == 0 || want != s->bytes)
            st = elm__fail(ELM_ERR_FORMAT,
                           "%s: simulation %u: sizes (%llu spikes, %u output spikes) do not "
                           "match its block of %llu bytes",
                           path, k, (unsigned long long)s->nnz, s->n_out,
                           (unsigned long long)s->bytes);
        else if (s->off < NIOC_HEADER || s->off % 8 || s->off > table_off ||
                 s->bytes > table_off - s->off)
            st = elm__fail(ELM_ERR_FORMAT, "%s: simulation %u: block at offset %llu is outside "
                                           "the data area",
                           path, k, (unsigned long long)s->off);
    }
    if (st != ELM_OK) {
        elm_nio_cache_close(c);
        return st;
    }
    *out = c;
    return ELM_OK;
}

void elm_nio_cache_close(elm_nio_cache *c) {
    if (!c)
        return;
    if (c->map)
        munmap((void *)c->map, c->len);
    free(c->sims);
    free(c->path);
    free(c);
}

int elm_nio_cache_num_sims(const elm_nio_cache *c) {
    return c->n_sims;
}

int elm_nio_cache_n_in(const elm_nio_cache *c) {
    return c->n_in;
}

static elm_status check_block(const elm_nio_cache *c, int k, const elm_nio_view *v);

/* The view of simulation k with the cheap checks only. */
static elm_status cache_view(const elm_nio_cache *c, int k, elm_nio_view *v) {
    if (k < 0 || k >= c->n_sims)
        return elm__fail(ELM_ERR_ARG, "%s: simulation %d of %d", c->path, k, c->n_sims);
    const sim_entry *s = &c->sims[k];
    v->src = c->path;
    v->sim = k;
    const uint8_t *b = c->map + s->off;
    v->T = (int)s->T;
    v->n_in = c->n_in;
    v->spike_ptr = (const int64_t *)(const void *)b;
    b += ((uint64_t)s->T + 1) * 8;
    v->spike_idx = (const uint16_t *)(const void *)b;
    b += pad8(s->nnz * 2);
    v->soma = b;
    v->soma_f16 = s->soma_dtype == NIOC_SOMA_F16;
    b += pad8((uint64_t)s->T * (v->soma_f16 ? 2 : 4));
    v->out_spike_times = (const float *)(const void *)b;
    v->n_out_spikes = (int)s->n_out;
    if (v->spike_ptr[0] != 0 || (uint64_t)v->spike_ptr[s->T] != s->nnz)
        return elm__fail(ELM_ERR_FORMAT, "%s: simulation %d: row pointers do not span its %llu "
                                         "spikes (corrupt file)",
                         c->path, k, (unsigned long long)s->nnz);
    for (int i = 0; i < v->n_out_spikes; i++) {
        float t = v->out_spike_times[i];
        int bin = isfinite(t) ? elm_nio_spike_bin((double)t) : -1;
        if (bin < 0 || bin >= v->T)
            return elm__fail(ELM_ERR_FORMAT, "%s: simulation %d: output spike time %g ms is "
                                             "outside the %d ms simulation",
                             c->path, k, (double)t, v->T);
    }
    return ELM_OK;
}

elm_status elm_nio_cache_sim(const elm_nio_cache *c, int k, elm_nio_view *v) {
    elm_status st = cache_view(c, k, v);
    if (st != ELM_OK)
        return st;
    sim_entry *s = &c->sims[k];
    if (!atomic_load_explicit(&s->checked, memory_order_acquire)) {
        if ((st = check_block(c, k, v)) != ELM_OK)
            return st;
        atomic_store_explicit(&s->checked, 1, memory_order_release);
    }
    return ELM_OK;
}

/* Everything about simulation k's block: checksum, row pointers, ids, finite soma. */
static elm_status check_block(const elm_nio_cache *c, int k, const elm_nio_view *v) {
    const sim_entry *s = &c->sims[k];
    if (fnv1a(FNV_SEED, c->map + s->off, (size_t)s->bytes) != s->checksum)
        return elm__fail(ELM_ERR_FORMAT, "%s: simulation %d: checksum mismatch (corrupt file)",
                         c->path, k);
    for (int t = 0; t < v->T; t++) {
        if (v->spike_ptr[t + 1] < v->spike_ptr[t])
            return elm__fail(ELM_ERR_FORMAT, "%s: simulation %d: row pointers decrease at "
                                             "step %d",
                             c->path, k, t);
        /* Each step's ids ascend, without repeats, as the writer stores them. */
        for (int64_t j = v->spike_ptr[t] + 1; j < v->spike_ptr[t + 1]; j++)
            if (v->spike_idx[j] <= v->spike_idx[j - 1])
                return elm__fail(ELM_ERR_FORMAT,
                                 "%s: simulation %d: input ids not ascending at step %d",
                                 c->path, k, t);
        float x = elm_nio_view_soma(v, t);
        if (!isfinite(x))
            return elm__fail(ELM_ERR_NUMERIC, "%s: simulation %d: soma voltage at %d ms is %g",
                             c->path, k, t, (double)x);
    }
    for (uint64_t j = 0; j < s->nnz; j++)
        if (v->spike_idx[j] >= v->n_in)
            return elm__fail(ELM_ERR_FORMAT, "%s: simulation %d: input id %u >= %d", c->path, k,
                             v->spike_idx[j], v->n_in);
    return ELM_OK;
}

elm_status elm_nio_cache_verify(const elm_nio_cache *c) {
    for (int k = 0; k < c->n_sims; k++) {
        elm_nio_view v;
        elm_status st = cache_view(c, k, &v);
        if (st == ELM_OK)
            st = check_block(c, k, &v);
        if (st != ELM_OK)
            return st;
    }
    return ELM_OK;
}

/* ---- index --------------------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

elm_status elm_nio_index_refresh(const char *dir) {
    DIR *d = opendir(dir);
    if (!d)
        return elm__fail(ELM_ERR_IO, "%s: cannot list: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    elm_status st = ELM_OK;
    while ((e = readdir(d)) != NULL) {
        if (!elm__ends_with(e->d_name, ".nioc") || e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                st = elm__fail(ELM_ERR_NOMEM, "out of memory");
                break;
            }
            names = nn;
        }
        if (!(names[n] = elm__strdup(e->d_name))) {
            st = elm__fail(ELM_ERR_NOMEM, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_str);
    cJSON *root = cJSON_CreateObject(), *files = cJSON_CreateArray();
    long total = 0;
    int n_in = 0;
    for (size_t i = 0; st == ELM_OK && i < n; i++) {
        char *p = elm__path_join(dir, names[i]);
        elm_nio_cache *c = NULL;
        /* A file that does not open (another writer's, corrupt) is left out of the summary;
         * loaders scan the folder themselves and report it. */
        if (p && elm_nio_cache_open(&c, p) == ELM_OK) {
            cJSON *f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "file", names[i]);
            cJSON_AddNumberToObject(f, "num_simulations", c->n_sims);
            cJSON_AddNumberToObject(f, "steps", c->sims[0].T);
            cJSON_AddNumberToObject(f, "bytes", (double)c->len);
            cJSON_AddItemToArray(files, f);
            total += c->n_sims;
            n_in = c->n_in;
            elm_nio_cache_close(c);
        }
        free(p);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (st == ELM_OK) {
        cJSON_AddStringToObject(root, "format", "elm-neuronio-cache");
        cJSON_AddNumberToObject(root, "version", NIOC_VERSION);
        cJSON_AddNumberToObject(root, "num_inputs", n_in);
        cJSON_AddNumberToObject(root, "num_simulations", (double)total);
        cJSON_AddItemToObject(root, "files", files);
        files = NULL;
        char *p = elm__path_join(dir, "index.json");
        st = p ? elm__json_write(p, root) : elm__fail(ELM_ERR_NOMEM, "out of memory");
        free(p);
    }
    cJSON_Delete(files);
    cJSON_Delete(root);
    return st;
}
