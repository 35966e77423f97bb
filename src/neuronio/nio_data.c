/*
 * nio_data.c - NeuronIO pickles -> elm_nio_sim, data sets over caches and pickles, windows.
 *
 * The pickle layout read here is described in docs/DATA.md ("The pickles"):
 * root['Params']['allSegmentsType'] gives the number of segments (n_in = 2 * segments),
 * root['Params']['totalSimDurationInSec'] the duration, and each dict of
 * root['Results']['listOfSingleSimulationDicts'] one simulation.
 */
#include "nio_data.h"

#include "core/pickle.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void elm_nio_sims_free(elm_nio_sim *sims, int n) {
    if (!sims)
        return;
    for (int i = 0; i < n; i++)
        elm_nio_sim_clear(&sims[i]);
    free(sims);
}

/* ---- pickle -> simulations ----------------------------------------------------------------- */

typedef struct spike {
    int32_t t;
    uint16_t id;
} spike;

/*
 * A pickle can reference one object from many places (BINGET from the memo): one spike-time
 * list from every segment, one simulation dict from every row of the list. Python shares such an
 * object; expanding it naively lets a few kilobytes stand for gigabytes of spikes. So the
 * expansion is bounded three ways:
 *  - each segment's list is de-duplicated while it is read (a per-step stamp), so a simulation
 *    holds at most T x n_in (step, input) pairs and buf never holds a repeated pair;
 *  - a repeated segment key counts once, with its last value, as Python's dict keeps it;
 *  - the spike times read plus the steps of every simulation may not exceed a budget
 *    proportional to the file size (READ_BUDGET_PER_BYTE per byte plus READ_BUDGET_FLOOR). An
 *    unshared pickle spends at most one unit per byte (every spike time and every soma sample
 *    takes at least one byte of the file), so only memo sharing far beyond anything Python writes
 *    for these files reaches it. It keeps a 64 KB file below ~20 MB of memory and well below a
 *    second of work.
 */
#define READ_BUDGET_PER_BYTE 16
#define READ_BUDGET_FLOOR ((uint64_t)1 << 20)

typedef struct collect {
    spike *buf; /* the simulation's (step, id) pairs, ids ascending in insertion order */
    size_t n, cap;
    uint32_t *stamp; /* (T) stamp[t] == serial: step t already taken from the current list */
    uint32_t serial;
    int64_t *last; /* (n_seg) index of each segment's last pair in the dict being read, or -1 */
    uint64_t budget; /* spike times + steps still allowed */
    size_t file_len;
} collect;

static elm_status over_budget(const char *path, int k, const collect *c) {
    return elm__fail(ELM_ERR_FORMAT,
                     "%s: simulation %d: the pickle's shared (memo-referenced) objects expand to "
                     "more than %llu spike times and steps, %d per byte of this %zu-byte file "
                     "plus %llu; a NeuronIO recording is not written that way",
                     path, k,
                     (unsigned long long)((uint64_t)READ_BUDGET_PER_BYTE * c->file_len +
                                          READ_BUDGET_FLOOR),
                     READ_BUDGET_PER_BYTE, c->file_len, (unsigned long long)READ_BUDGET_FLOOR);
}

/* Appends the spikes of one spike-time map (segment -> times) with input id offset `row0`,
 * segments in ascending order, so ids ascend through buf. */
static elm_status collect_spikes(const char *path, int k, const char *key, const elm_pk_val *map,
                                 int n_seg, int row0, int T, collect *c) {
    if (!map)
        return elm__fail(ELM_ERR_FORMAT, "%s: simulation %d: missing key '%s'", path, k, key);
    if (map->type != ELM_PK_DICT)
        return elm__fail(ELM_ERR_FORMAT, "%s: simulation %d: '%s' is a %s, not a dict", path, k,
                         key, elm_pk_type_name(map->type));
    const elm_pk_obj *d = map->u.o;
    for (int s = 0; s < n_seg; s++)
        c->last[s] = -1;
    /* Keys first, in the file's order; the last value of a repeated key wins, as in Python. */
    for (size_t p = 0; p < d->len; p++) {
        const elm_pk_val *kv = &d->items[2 * p];
        if (kv->type != ELM_PK_INT || kv->u.i < 0 || kv->u.i >= n_seg)
            return elm__fail(ELM_ERR_FORMAT,
                             "%s: simulation %d: '%s' has key %s%lld, not a segment index "
                             "0..%d",
                             path, k, key, kv->type == ELM_PK_INT ? "" : "of type ",
                             kv->type == ELM_PK_INT ? (long long)kv->u.i : 0LL, n_seg - 1);
        c->last[kv->u.i] = (int64_t)p;
    }
    for (int s = 0; s < n_seg; s++) {
        if (c->last[s] < 0)
            continue;
        const elm_pk_val *vv = &d->items[2 * (size_t)c->last[s] + 1];
        size_t m = 0;
        const elm_pk_val *times = elm_pk_seq_items(vv, &m);
        const elm_pk_array *arr = vv->type == ELM_PK_ARRAY ? vv->u.o->arr : NULL;
        if (arr) {
            if (!arr->built || arr->ndim != 1 || arr->dtype == ELM_DT_F16 ||
                arr->dtype == ELM_DT_F32 || arr->dtype == ELM_DT_F64)
                return elm__fail(ELM_ERR_FORMAT, "%s: simulation %d: '%s'[%d] is not a 1-D "
                                                 "integer array",
                                 path, k, key, s);
            m = arr->numel;
        } else if (!times && m == 0 && vv->type != ELM_PK_LIST && vv->type != ELM_PK_TUPLE) {
            return elm__fail(ELM_ERR_FORMAT, "%s: simulation %d: '%s'[%d] is a %s, not a list "
                                             "of spike times",
                             path, k, key, s, elm_pk_type_name(vv->type));
        }
        if (m > c->budget)
            return over_budget(path, k, c);
        c->budget -= m;
        /* At most min(m, T) new pairs: grow buf for that many before reading. */
        size_t add = m < (size_t)T ? m : (size_t)T;
        if (c->n + add > c->cap) {
            size_t nc = c->cap ? c->cap : 65536;
            while (nc < c->n + add)
                nc *= 2;
            spike *nb = realloc(c->buf, nc * sizeof *nb);
            if (!nb)
                return elm__fail(ELM_ERR_NOMEM, "%s: out of memory", path);
            c->buf = nb;
            c->cap = nc;
        }
        /* A new stamp for this list; on wrap-around (after 2^32 - 1 lists) clear the stamps. */
        if (++c->serial == 0) {
            memset(c->stamp, 0, (size_t)T * sizeof *c->stamp);
            c->serial = 1;
        }
        for (size_t j = 0; j < m; j++) {
            int64_t t;
            if (arr) {
                t = (int64_t)elm_pk_array_get(arr, j);
            } else if (times[j].type == ELM_PK_INT) {
                t = times[j].u.i;
            } else {
                return elm__fail(ELM_ERR_FORMAT, "%s: simulation %d: '%s'[%d] holds a %s, not "
                                                 "an integer spike time",
                                 path, k, key, s, elm_pk_type_name(times[j].type));
            }
            if (t < 0 || t >= T)
                return elm__fail(ELM_ERR_FORMAT, "%s: simulation %d: '%s'[%d] has spike time "
                                                 "%lld ms, outside 0..%d",
                                 path, k, key, s, (long long)t, T - 1);
            /* The reference's dense boolean matrix holds a repeated spike once. */
            if (c->stamp[t] == c->serial)
                continue;
            c->stamp[t] = c->serial;
            c->buf[c->n++] = (spike){(int32_t)t, (uint16_t)(row0 + s)};
        }
    }
    return ELM_OK;
}

static const elm_pk_array *get_array(const char *path, int k, const elm_pk_val *sd, const char *key,
                                   elm_status *st) {
    const elm_pk_val *v = elm_pk_dict_get(sd, key);
    *st = ELM_OK;
    if (!v) {
        *st = elm__fail(ELM_ERR_FORMAT, "%s: simulation %d: missing key '%s'", path, k, key);
        return NULL;
    }
    if (v->type != ELM_PK_ARRAY || !v->u.o->arr->built || v->u.o->arr->ndim > 1) {
        *st = elm__fail(ELM_ERR_FORMAT, "%s: simulation %d: '%s' is a %s, not a 1-D numpy array",
                        path, k, key, elm_pk_type_name(v->type));
        return NULL;
    }
    return v->u.o->arr;
}

static elm_status sim_from_dict(const char *path, int k, const elm_pk_val *sd, int n_seg, int T,
                                elm_nio_sim *s, collect *c) {
    memset(s, 0, sizeof *s);
    if (sd->type != ELM_PK_DICT)
        return elm__fail(ELM_ERR_FORMAT, "%s: simulation %d is a %s, not a dict", path, k,
                         elm_pk_type_name(sd->type));
    elm_status st;
    const elm_pk_array *soma = get_array(path, k, sd, "somaVoltageLowRes", &st);
    if (!soma)
        return st;
    const elm_pk_array *outs = get_array(path, k, sd, "outputSpikeTimes", &st);
    if (!outs)
        return st;
    if (soma->numel != (size_t)T)
        return elm__fail(ELM_ERR_SHAPE, "%s: simulation %d: somaVoltageLowRes has %zu samples, "
                                        "expected %d (totalSimDurationInSec * 1000)",
                         path, k, soma->numel, T);
    if (outs->numel > (size_t)T)
        return elm__fail(ELM_ERR_SHAPE, "%s: simulation %d: %zu output spikes in %d ms", path, k,
                         outs->numel, T);
    /* The simulation's steps count against the budget too: one dict referenced from every row
     * of the list would otherwise make many full-size simulations. */
    if ((uint64_t)T > c->budget)
        return over_budget(path, k, c);
    c->budget -= (uint64_t)T;
    if (!c->stamp) {
        c->stamp = calloc((size_t)T, sizeof *c->stamp);
        c->last = malloc((size_t)n_seg * sizeof *c->last);
        if (!c->stamp || !c->last)
            return elm__fail(ELM_ERR_NOMEM, "%s: out of memory", path);
    }
    c->n = 0;
    if ((st = collect_spikes(path, k, "exInputSpikeTimes",
                             elm_pk_dict_get(sd, "exInputSpikeTimes"), n_seg, 0, T, c)) !=
            ELM_OK ||
        (st = collect_spikes(path, k, "inhInputSpikeTimes",
                             elm_pk_dict_get(sd, "inhInputSpikeTimes"), n_seg, n_seg, T, c)) !=
            ELM_OK)
        return st;
    size_t n = c->n;

    s->T = T;
    s->n_in = 2 * n_seg;
    s->spike_ptr = calloc((size_t)T + 1, sizeof *s->spike_ptr);
    s->spike_idx = malloc((n ? n : 1) * sizeof *s->spike_idx);
    s->soma = malloc((size_t)T * sizeof *s->soma);
    s->n_out_spikes = (int)outs->numel;
    s->out_spike_times = malloc((outs->numel ? outs->numel : 1) * sizeof(float));
    if (!s->spike_ptr || !s->spike_idx || !s->soma || !s->out_spike_times) {
        elm_nio_sim_clear(s);
        return elm__fail(ELM_ERR_NOMEM, "%s: out of memory", path);
    }
    /* A stable counting sort by step: buf holds no repeated pair and its ids ascend, so each
     * step's ids come out ascending and distinct, in linear time. */
    for (size_t j = 0; j < n; j++)
        s->spike_ptr[c->buf[j].t + 1]++;
    for (int t = 0; t < T; t++)
        s->spike_ptr[t + 1] += s->spike_ptr[t];
    int64_t *fill = malloc((size_t)T * sizeof *fill);
    if (!fill) {
        elm_nio_sim_clear(s);
        return elm__fail(ELM_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(fill, s->spike_ptr, (size_t)T * sizeof *fill);
    for (size_t j = 0; j < n; j++)
        s->spike_idx[fill[c->buf[j].t]++] = c->buf[j].id;
    free(fill);

    for (int t = 0; t < T; t++) {
        double v = elm_pk_array_get(soma, (size_t)t);
        if (!isfinite(v)) {
            elm_nio_sim_clear(s);
            return elm__fail(ELM_ERR_NUMERIC, "%s: simulation %d: somaVoltageLowRes at %d ms is %g",
                             path, k, t, v);
        }
        s->soma[t] = (float)v;
    }
    for (size_t j = 0; j < outs->numel; j++) {
        double t = elm_pk_array_get(outs, j);
        int bin = isfinite(t) ? elm_nio_spike_bin(t) : -1;
        if (bin < 0 || bin >= T) {
            elm_nio_sim_clear(s);
            return elm__fail(ELM_ERR_FORMAT, "%s: simulation %d: output spike time %g ms is "
                                             "outside the %d ms simulation",
                             path, k, t, T);
        }
        s->out_spike_times[j] = (float)t;
    }
    return ELM_OK;
}

elm_status elm_nio_pickle_read(const char *path, elm_nio_sim **sims_out, int *n_out) {
    *sims_out = NULL;
    *n_out = 0;
    elm_pk *pk = NULL;
    elm_status st = elm_pk_load_file(&pk, path);
    if (st != ELM_OK)
        return st;
    const elm_pk_val *root = elm_pk_root(pk);
    const elm_pk_val *params = elm_pk_dict_get(root, "Params");
    const elm_pk_val *results = elm_pk_dict_get(root, "Results");
    const elm_pk_val *segs = elm_pk_dict_get(params, "allSegmentsType");
    const elm_pk_val *dur = elm_pk_dict_get(params, "totalSimDurationInSec");
    const elm_pk_val *list = elm_pk_dict_get(results, "listOfSingleSimulationDicts");
    size_t n_seg = 0, n_sims = 0;
    const elm_pk_val *items = NULL;
    elm_nio_sim *sims = NULL;
    collect c = {.file_len = elm_pk_size(pk)};
    c.budget = (uint64_t)READ_BUDGET_PER_BYTE * c.file_len + READ_BUDGET_FLOOR;
    int T = 0;
    if (root->type != ELM_PK_DICT) {
        st = elm__fail(ELM_ERR_FORMAT, "%s: the pickle holds a %s, not a NeuronIO dict", path,
                       elm_pk_type_name(root->type));
        goto done;
    }
    if (!params || !results || !segs || !dur || !list) {
        st = elm__fail(ELM_ERR_FORMAT, "%s: missing %s", path,
                       !params    ? "key 'Params'"
                       : !results ? "key 'Results'"
                       : !segs    ? "Params['allSegmentsType']"
                       : !dur     ? "Params['totalSimDurationInSec']"
                                  : "Results['listOfSingleSimulationDicts']");
        goto done;
    }
    elm_pk_seq_items(segs, &n_seg);
    if ((segs->type != ELM_PK_LIST && segs->type != ELM_PK_TUPLE) || n_seg == 0 ||
        n_seg > 32768) {
        st = elm__fail(ELM_ERR_FORMAT, "%s: Params['allSegmentsType'] must be a list of 1..32768 "
                                       "segments (it gives the number of inputs)",
                       path);
        goto done;
    }
    double sec = dur->type == ELM_PK_INT ? (double)dur->u.i
                 : dur->type == ELM_PK_FLOAT ? dur->u.f
                                             : (double)NAN;
    if (!(sec > 0 && sec <= 10000) || sec * 1000 != floor(sec * 1000)) {
        st = elm__fail(ELM_ERR_FORMAT, "%s: Params['totalSimDurationInSec'] must be a positive "
                                       "whole number of ms (got %g s)",
                       path, sec);
        goto done;
    }
    T = (int)(sec * 1000);
    items = elm_pk_seq_items(list, &n_sims);
    if (list->type != ELM_PK_LIST && list->type != ELM_PK_TUPLE) {
        st = elm__fail(ELM_ERR_FORMAT, "%s: listOfSingleSimulationDicts is a %s, not a list", path,
                       elm_pk_type_name(list->type));
        goto done;
    }
    if (n_sims == 0 || n_sims > INT32_MAX) {
        st = elm__fail(ELM_ERR_FORMAT, "%s: no simulations in listOfSingleSimulationDicts", path);
        goto done;
    }
    sims = calloc(n_sims, sizeof *sims);
    if (!sims) {
        st = elm__fail(ELM_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (size_t k = 0; k < n_sims; k++) {
        st = sim_from_dict(path, (int)k, &items[k], (int)n_seg, T, &sims[k], &c);
        if (st != ELM_OK)
            goto done;
    }
done:
    free(c.buf);
    free(c.stamp);
    free(c.last);
    elm_pk_free(pk);
    if (st != ELM_OK) {
        elm_nio_sims_free(sims, (int)n_sims);
        return st;
    }
    *sims_out = sims;
    *n_out = (int)n_sims;
    return ELM_OK;
}

/* ---- finding files ------------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void elm_nio_free_paths(char **paths, int n) {
    if (!paths)
        return;
    for (int i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}

/* Files of `dir` whose names match `pattern` (and are not excluded), sorted. */
static elm_status list_dir(const char *dir, const char *pattern, int pickles, char ***out,
                           int *n_out) {
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d)
        return elm__fail(ELM_ERR_IO, "%s: cannot list: %s", dir, strerror(errno));
    char **v = NULL;
    int n = 0, cap = 0;
    elm_status st = ELM_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || fnmatch(pattern, e->d_name, 0) != 0)
            continue;
        if (pickles && (elm__ends_with(e->d_name, ".nioc") || elm__ends_with(e->d_name, ".json") ||
                        strstr(e->d_name, ".tmp.")))
            continue;
        char *p = elm__path_join(dir, e->d_name);
        if (p && !elm__is_file(p)) {
            free(p);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **nv = realloc(v, (size_t)cap * sizeof *nv);
            if (!nv) {
                free(p);
                st = elm__fail(ELM_ERR_NOMEM, "out of memory");
                break;
            }
            v = nv;
        }
        if (!p) {
            st = elm__fail(ELM_ERR_NOMEM, "out of memory");
            break;
        }
        v[n++] = p;
    }
    closedir(d);
    if (st != ELM_OK) {
        elm_nio_free_paths(v, n);
        return st;
    }
    if (n)
        qsort(v, (size_t)n, sizeof *v, cmp_str);
    *out = v;
    *n_out = n;
    return ELM_OK;
}

elm_status elm_nio_find_pickles(const char *path, char ***files, int *n_files) {
    *files = NULL;
    *n_files = 0;
    if (!elm__is_dir(path)) {
        char **v = malloc(sizeof *v);
        if (!v || !(v[0] = elm__strdup(path))) {
            free(v);
            return elm__fail(ELM_ERR_NOMEM, "out of memory");
        }
        *files = v;
        *n_files = 1;
        return ELM_OK;
    }
    elm_status st = list_dir(path, "*sim__*", 1, files, n_files);
    if (st == ELM_OK && *n_files == 0)
        return elm__fail(ELM_ERR_ARG, "%s: no NeuronIO pickles (files matching *sim__*) here",
                         path);
    return st;
}

/* ---- data sets ----------------------------------------------------------------------------- */

typedef struct nio_file {
    char *path;
    elm_nio_cache *cache; /* either a mapped cache */
    elm_nio_sim *sims;    /* or simulations read from a pickle */
    int n_sims;
    int first;
} nio_file;

struct elm_nio_data {
    nio_file *files;
    int n_files, cap;
    int n_sims;
    int n_in;
};

static elm_status add_file(elm_nio_data *d, const char *path) {
    if (d->n_files == d->cap) {
        int nc = d->cap ? d->cap * 2 : 16;
        nio_file *nf = realloc(d->files, (size_t)nc * sizeof *nf);
        if (!nf)
            return elm__fail(ELM_ERR_NOMEM, "out of memory");
        d->files = nf;
        d->cap = nc;
    }
    nio_file *f = &d->files[d->n_files];
    memset(f, 0, sizeof *f);
    f->path = elm__strdup(path);
    if (!f->path)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    elm_status st;
    int n_in;
    if (elm__ends_with(path, ".nioc")) {
        st = elm_nio_cache_open(&f->cache, path);
        if (st == ELM_OK) {
            f->n_sims = elm_nio_cache_num_sims(f->cache);
            n_in = elm_nio_cache_n_in(f->cache);
        }
    } else {
        st = elm_nio_pickle_read(path, &f->sims, &f->n_sims);
        if (st == ELM_OK)
            n_in = f->sims[0].n_in;
    }
    if (st == ELM_OK && d->n_in && n_in != d->n_in)
        st = elm__fail(ELM_ERR_SHAPE, "%s: %d inputs, but earlier files of the data set have %d",
                       path, n_in, d->n_in);
    if (st == ELM_OK && d->n_sims > INT32_MAX - f->n_sims)
        st = elm__fail(ELM_ERR_ARG, "%s: too many simulations", path);
    if (st != ELM_OK) {
        elm_nio_cache_close(f->cache);
        elm_nio_sims_free(f->sims, f->n_sims);
        free(f->path);
        return st;
    }
    d->n_in = n_in;
    f->first = d->n_sims;
    d->n_sims += f->n_sims;
    d->n_files++;
    return ELM_OK;
}

static elm_status add_path(elm_nio_data *d, const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0)
        return elm__fail(ELM_ERR_IO, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return add_file(d, path);
    char **files = NULL;
    int n = 0;
    /* A folder with caches is a cache folder (its pickles, if any, are the sources). */
    elm_status st = list_dir(path, "*.nioc", 0, &files, &n);
    if (st == ELM_OK && n == 0) {
        elm_nio_free_paths(files, n);
        files = NULL;
        st = elm_nio_find_pickles(path, &files, &n);
        if (st != ELM_OK)
            return elm__fail(ELM_ERR_ARG, "%s: no NeuronIO data here (neither .nioc caches nor "
                                          "pickles matching *sim__*)",
                             path);
    }
    for (int i = 0; st == ELM_OK && i < n; i++)
        st = add_file(d, files[i]);
    elm_nio_free_paths(files, n);
    return st;
}

elm_status elm_nio_data_open(elm_nio_data **out, const char *const *paths, int n_paths) {
    *out = NULL;
    if (n_paths <= 0)
        return elm__fail(ELM_ERR_ARG, "no NeuronIO data path given");
    elm_nio_data *d = calloc(1, sizeof *d);
    if (!d)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    elm_status st = ELM_OK;
    for (int i = 0; st == ELM_OK && i < n_paths; i++)
        st = add_path(d, paths[i]);
    if (st != ELM_OK) {
        elm_nio_data_free(d);
        return st;
    }
    *out = d;
    return ELM_OK;
}

elm_status elm_nio_data_open_list(elm_nio_data **out, const char *list) {
    *out = NULL;
    if (!list || !*list)
        return elm__fail(ELM_ERR_ARG, "no NeuronIO data path given");
    char *copy = elm__strdup(list);
    const char **paths = calloc(strlen(list) / 2 + 2, sizeof *paths);
    if (!copy || !paths) {
        free(copy);
        free(paths);
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    }
    int n = 0;
    for (char *tok = copy; tok;) {
        char *colon = strchr(tok, ':');
        if (colon)
            *colon = 0;
        if (*tok)
            paths[n++] = tok;
        tok = colon ? colon + 1 : NULL;
    }
    elm_status st = elm_nio_data_open(out, paths, n);
    free(paths);
    free(copy);
    return st;
}

void elm_nio_data_free(elm_nio_data *d) {
    if (!d)
        return;
    for (int i = 0; i < d->n_files; i++) {
        elm_nio_cache_close(d->files[i].cache);
        elm_nio_sims_free(d->files[i].sims, d->files[i].n_sims);
        free(d->files[i].path);
    }
    free(d->files);
    free(d);
}

int elm_nio_data_num_sims(const elm_nio_data *d) {
    return d->n_sims;
}
int elm_nio_data_n_in(const elm_nio_data *d) {
    return d->n_in;
}
int elm_nio_data_num_files(const elm_nio_data *d) {
    return d->n_files;
}
const char *elm_nio_data_file_path(const elm_nio_data *d, int f) {
    return d->files[f].path;
}
int elm_nio_data_file_first(const elm_nio_data *d, int f) {
    return d->files[f].first;
}
int elm_nio_data_file_count(const elm_nio_data *d, int f) {
    return d->files[f].n_sims;
}

elm_status elm_nio_data_sim(const elm_nio_data *d, int k, elm_nio_view *v) {
    if (k < 0 || k >= d->n_sims)
        return elm__fail(ELM_ERR_ARG, "simulation %d of a data set of %d", k, d->n_sims);
    /* Binary search for the file holding global index k. */
    int lo = 0, hi = d->n_files - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (d->files[mid].first <= k)
            lo = mid;
        else
            hi = mid - 1;
    }
    const nio_file *f = &d->files[lo];
    int j = k - f->first;
    if (f->cache)
        return elm_nio_cache_sim(f->cache, j, v);
    elm_nio_sim_view(&f->sims[j], v);
    v->src = f->path;
    v->sim = j;
    return ELM_OK;
}

/* ---- windows ------------------------------------------------------------------------------- */

/* target (T_win, 2): spike bins and scaled soma, zero past the end. */
static void fill_target(const elm_nio_view *v, int t0, int T_win, float *target) {
    memset(target, 0, (size_t)T_win * 2 * sizeof *target);
    for (int t = 0; t < T_win && t0 + t < v->T; t++) {
        double s = (double)elm_nio_view_soma(v, t0 + t);
        if (s > ELM_NIO_SOMA_THRESHOLD)
            s = ELM_NIO_SOMA_THRESHOLD;
        target[2 * t + 1] = (float)((s - ELM_NIO_SOMA_BIAS) * ELM_NIO_SOMA_SCALE);
    }
    for (int i = 0; i < v->n_out_spikes; i++) {
        int bin = elm_nio_spike_bin((double)v->out_spike_times[i]) - t0;
        if (bin >= 0 && bin < T_win && bin + t0 < v->T)
            target[2 * bin] = 1.0f;
    }
}

/*
 * The spikes of `step`, idx[*a .. *b), checked as they are used (they come from a file): row
 * pointers in range, ids below n_in and ascending without repeats (as pickles are read and caches
 * written; the model's spike-list input would refuse anything else, so both window cutters
 * refuse it, naming the step).
 */
static elm_status step_spikes(const elm_nio_view *v, int step, int64_t *a, int64_t *b) {
    *a = v->spike_ptr[step];
    *b = v->spike_ptr[step + 1];
    char name[600];
    if (*a < 0 || *b < *a || *b > v->spike_ptr[v->T])
        return elm__fail(ELM_ERR_FORMAT, "%s: corrupt row pointers at step %d",
                         elm_nio_view_name(v, name, sizeof name), step);
    for (int64_t i = *a; i < *b; i++) {
        int id = v->spike_idx[i];
        if (id >= v->n_in)
            return elm__fail(ELM_ERR_FORMAT, "%s: input id %d >= %d at step %d",
                             elm_nio_view_name(v, name, sizeof name), id, v->n_in, step);
        if (i > *a && id <= v->spike_idx[i - 1])
            return elm__fail(ELM_ERR_FORMAT, "%s: input ids not ascending at step %d",
                             elm_nio_view_name(v, name, sizeof name), step);
    }
    return ELM_OK;
}

elm_status elm_nio_fill_window(const elm_nio_view *v, int t0, int T_win, float *x, float *target,
                               int apply_sign) {
    if (t0 < 0 || T_win <= 0)
        return elm__fail(ELM_ERR_ARG, "window [%d, %d + %d) is invalid", t0, t0, T_win);
    const int n_in = v->n_in, half = n_in / 2;
    memset(x, 0, (size_t)T_win * (size_t)n_in * sizeof *x);
    for (int t = 0; t < T_win && t0 + t < v->T; t++) {
        int64_t a, b;
        elm_status st = step_spikes(v, t0 + t, &a, &b);
        if (st != ELM_OK)
            return st;
        float *row = x + (size_t)t * (size_t)n_in;
        for (int64_t i = a; i < b; i++) {
            int id = v->spike_idx[i];
            row[id] = (apply_sign && id >= half) ? -1.0f : 1.0f;
        }
    }
    if (target)
        fill_target(v, t0, T_win, target);
    return ELM_OK;
}

int64_t elm_nio_window_nnz(const elm_nio_view *v, int t0, int T_win) {
    if (t0 < 0 || T_win <= 0)
        return -1;
    const int t1 = t0 + T_win < v->T ? t0 + T_win : v->T;
    if (t0 >= t1)
        return 0;
    const int64_t a = v->spike_ptr[t0], b = v->spike_ptr[t1];
    return a < 0 || b < a || b > v->spike_ptr[v->T] ? -1 : b - a;
}

elm_status elm_nio_fill_window_sparse(const elm_nio_view *v, int t0, int T_win, int64_t start,
                                      int64_t *ends, int32_t *idx, float *val, size_t cap,
                                      float *target, int apply_sign) {
    if (t0 < 0 || T_win <= 0 || start < 0)
        return elm__fail(ELM_ERR_ARG, "window [%d, %d + %d) is invalid", t0, t0, T_win);
    const int half = v->n_in / 2;
    int64_t n = start;
    for (int t = 0; t < T_win; t++) {
        if (t0 + t < v->T) {
            int64_t a, b;
            elm_status st = step_spikes(v, t0 + t, &a, &b);
            if (st != ELM_OK)
                return st;
            if ((size_t)(n + (b - a)) > cap)
                return elm__fail(ELM_ERR_ARG, "sparse window: room for %zu spikes is too small",
                                 cap);
            for (int64_t i = a; i < b; i++) {
                int id = v->spike_idx[i];
                idx[n] = id;
                val[n++] = (apply_sign && id >= half) ? -1.0f : 1.0f;
            }
        }
        ends[t] = n;
    }
    if (target)
        fill_target(v, t0, T_win, target);
    return ELM_OK;
}
