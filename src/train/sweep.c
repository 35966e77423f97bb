/*
 * sweep.c - the grids and result tables of `elm sweep` (ablation studies), as library code any
 * front end can drive; the CLI keeps only its process pool (cli/sweep.c).
 *
 * A grid file is a JSON object:
 *   {"base": {KEY: VALUE, ...},               options every point shares (optional)
 *    "vary": {KEY: [V1, V2, ...], ...}}       the cartesian product of the lists, or
 *    "factors": {KEY: [V1, V2, ...], ...}}    one factor at a time around the base (a "base"
 *                                             point plus one point per value that differs from
 *                                             the base), or
 *    "points": [{KEY: VALUE, ["name": N]}, ...]} an explicit list,
 * plus optional "metric" (the main metric of the plot) and "description". KEYs are the training
 * knobs and model options (elm_train_config_set); the trainer checks them.
 *
 * Layout of a sweep folder OUT:
 *   OUT/runs/<point>/point.json     the point's options (a config file for the trainer)
 *   OUT/runs/<point>/...            the run folder (config.json, metrics, model, test_metrics.json)
 *   OUT/runs/<point>/sweep_wall.json  wall time of the point's training, over every invocation
 *   OUT/results.csv, .json          one row per point: varied values, parameters, the best
 *                                   model's test (test_*) and validation (valid_*) metrics
 *
 * Invariants: a point is finished exactly when its test_metrics.json exists; a point with a
 * checkpoint is to be resumed; a point whose point.json differs from the grid is refused rather
 * than mixed with the old run (elm__sweep_scan).
 */
#include "train/sweep.h"
#include "train/train_internal.h"

#include <stdlib.h>
#include <string.h>

const char *const elm__sweep_state_names[] = {"pending", "pending", "running", "done",
                                              "failed",  "refused", "stopped"};

static int is_scalar(const cJSON *v) {
    return cJSON_IsNumber(v) || cJSON_IsString(v) || cJSON_IsBool(v) || cJSON_IsNull(v);
}

/* A value as it appears in a point name and in the CSV: 5, 0.001, true, null, silu. */
static void value_str(const cJSON *v, char *buf, size_t n) {
    if (cJSON_IsNumber(v))
        snprintf(buf, n, "%.15g", v->valuedouble);
    else if (cJSON_IsString(v))
        snprintf(buf, n, "%s", v->valuestring);
    else if (cJSON_IsBool(v))
        snprintf(buf, n, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else
        snprintf(buf, n, "null");
}

/* Keeps point names safe as folder names: letters, digits and . _ = + - only. */
static void sanitize(char *s) {
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == '=' || *s == '+' || *s == '-'))
            *s = '_';
}

/* ---- The grid ---- */

static int add_key(elm__sweep_grid *g, const char *k) {
    for (int i = 0; i < g->nkeys; i++)
        if (!strcmp(g->keys[i], k))
            return 1;
    if (g->nkeys == ELM__SWEEP_MAX_KEYS || strlen(k) >= sizeof g->keys[0])
        return 0;
    snprintf(g->keys[g->nkeys++], sizeof g->keys[0], "%s", k);
    return 1;
}

/* A new point: base merged with `set` (pairs of key, value; values borrowed and copied). */
static elm__sweep_point *new_point(elm__sweep_grid *g, const cJSON *base, const char *name) {
    if (g->np == ELM__SWEEP_MAX_POINTS)
        return NULL;
    elm__sweep_point *p = &g->p[g->np++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    sanitize(p->name);
    p->cfg = base ? cJSON_Duplicate(base, 1) : cJSON_CreateObject();
    return p;
}

static void point_set(elm__sweep_point *p, const char *key, const cJSON *v) {
    cJSON *d = cJSON_Duplicate(v, 1);
    if (cJSON_GetObjectItemCaseSensitive(p->cfg, key))
        cJSON_ReplaceItemInObjectCaseSensitive(p->cfg, key, d);
    else
        cJSON_AddItemToObject(p->cfg, key, d);
}

/* Makes names unique (two values can print alike) by appending -2, -3, ... */
static void unique_names(elm__sweep_grid *g) {
    for (int i = 1; i < g->np; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(g->p[i].name, g->p[j].name)) {
                char base[200];
                snprintf(base, sizeof base, "%s", g->p[i].name);
                for (int k = 2;; k++) {
                    snprintf(g->p[i].name, sizeof g->p[i].name, "%.180s-%d", base, k);
                    int clash = 0;
                    for (int q = 0; q < g->np; q++)
                        clash |= q != i && !strcmp(g->p[q].name, g->p[i].name);
                    if (!clash)
                        break;
                }
                j = -1; /* check again from the start */
            }
}

/* Records "PATH: <fmt with a>" for elm_last_error() and returns 0 (a failed grid check). */
static int grid_fail(const char *path, const char *fmt, const char *a) {
    char msg[512];
    snprintf(msg, sizeof msg, fmt, a);
    elm__fail(ELM_ERR_CONFIG, "%s: %s", path, msg);
    return 0;
}

/* Checks that every member of `o` is a scalar (options are flat). */
static int check_flat(const char *path, const char *what, const cJSON *o) {
    if (!cJSON_IsObject(o))
        return grid_fail(path, "\"%s\" must be an object of options", what);
    for (const cJSON *it = o->child; it; it = it->next)
        if (!is_scalar(it))
            return grid_fail(path, "option '%s' must be a number, string, boolean or null",
                             it->string);
    return 1;
}

/* "vary": the cartesian product of the lists, the first key varying slowest. */
static int vary_points(elm__sweep_grid *g, const cJSON *base, const cJSON *vary,
                       const char *path) {
    char name[256], vs[96];
    int n = g->nkeys, idx[ELM__SWEEP_MAX_KEYS] = {0};
    const cJSON *ls[ELM__SWEEP_MAX_KEYS];
    long total = 1;
    for (int k = 0; k < n; k++) {
        ls[k] = cJSON_GetObjectItemCaseSensitive(vary, g->keys[k]);
        total *= cJSON_GetArraySize(ls[k]);
        if (total > ELM__SWEEP_MAX_POINTS)
            return grid_fail(path, "%s", "more than 4096 points");
    }
    for (long c = 0; c < total; c++) {
        name[0] = 0;
        for (int k = 0; k < n; k++) {
            value_str(cJSON_GetArrayItem(ls[k], idx[k]), vs, sizeof vs);
            size_t l = strlen(name);
            snprintf(name + l, sizeof name - l, "%s%s=%s", k ? "__" : "", g->keys[k], vs);
        }
        elm__sweep_point *p = new_point(g, base, name);
        for (int k = 0; k < n; k++)
            point_set(p, g->keys[k], cJSON_GetArrayItem(ls[k], idx[k]));
        for (int k = n - 1; k >= 0; k--) {
            if (++idx[k] < cJSON_GetArraySize(ls[k]))
                break;
            idx[k] = 0;
        }
    }
    return 1;
}

/* "factors": the base point, then one point per value that differs from the base. */
static int factor_points(elm__sweep_grid *g, const cJSON *base, const cJSON *factors,
                         const char *path) {
    char name[256], vs[96];
    elm__sweep_point *b = new_point(g, base, "base");
    b->factor = "";
    for (const cJSON *it = factors->child; it; it = it->next)
        for (const cJSON *v = it->child; v; v = v->next) {
            const cJSON *bv = base ? cJSON_GetObjectItemCaseSensitive(base, it->string) : NULL;
            if (bv && cJSON_Compare(bv, v, 1))
                continue; /* that is the base point */
            value_str(v, vs, sizeof vs);
            snprintf(name, sizeof name, "%s=%s", it->string, vs);
            elm__sweep_point *p = new_point(g, base, name);
            if (!p)
                return grid_fail(path, "%s", "more than 4096 points");
            p->factor = it->string;
            point_set(p, it->string, v);
        }
    return 1;
}

/* "points": an explicit list, each named by "name" or by its values. */
static int list_points(elm__sweep_grid *g, const cJSON *base, const cJSON *points,
                       const char *path) {
    char name[256], vs[96];
    g->mode = "points";
    if (!cJSON_IsArray(points) || !cJSON_GetArraySize(points))
        return grid_fail(path, "%s", "\"points\" must be a non-empty list of objects");
    int i = 0;
    for (const cJSON *it = points->child; it; it = it->next, i++) {
        if (!check_flat(path, "points[]", it))
            return 0;
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
        if (nm && !cJSON_IsString(nm))
            return grid_fail(path, "%s", "a point's \"name\" must be a string");
        name[0] = 0;
        for (const cJSON *kv = it->child; kv; kv = kv->next) {
            if (!strcmp(kv->string, "name"))
                continue;
            if (!add_key(g, kv->string))
                return grid_fail(path, "%s", "too many varied keys");
            value_str(kv, vs, sizeof vs);
            size_t l = strlen(name);
            snprintf(name + l, sizeof name - l, "%s%s=%s", l ? "__" : "", kv->string, vs);
        }
        if (nm)
            snprintf(name, sizeof name, "%s", nm->valuestring);
        else if (!name[0])
            snprintf(name, sizeof name, "point%d", i);
        elm__sweep_point *p = new_point(g, base, name);
        if (!p)
            return grid_fail(path, "%s", "more than 4096 points");
        for (const cJSON *kv = it->child; kv; kv = kv->next)
            if (strcmp(kv->string, "name"))
                point_set(p, kv->string, kv);
    }
    return 1;
}

/* Names that could not be folder names become point<i>; then all are made unique. */
static int finish_names(elm__sweep_grid *g) {
    for (int i = 0; i < g->np; i++)
        if (!g->p[i].name[0] || g->p[i].name[0] == '.')
            snprintf(g->p[i].name, sizeof g->p[i].name, "point%d", i);
    unique_names(g);
    return 1;
}

/* Parses the grid into points; records the problem and returns 0 on a bad file. */
static int grid_load(elm__sweep_grid *g, const cJSON *root, const char *path) {
    memset(g, 0, sizeof *g);
    g->p = calloc(ELM__SWEEP_MAX_POINTS, sizeof *g->p);
    if (!g->p)
        return grid_fail(path, "%s", "out of memory");
    if (!cJSON_IsObject(root))
        return grid_fail(path, "%s", "the grid must be a JSON object");
    const cJSON *base = NULL, *vary = NULL, *factors = NULL, *points = NULL;
    for (const cJSON *it = root->child; it; it = it->next) {
        if (!strcmp(it->string, "base"))
            base = it;
        else if (!strcmp(it->string, "vary"))
            vary = it;
        else if (!strcmp(it->string, "factors"))
            factors = it;
        else if (!strcmp(it->string, "points"))
            points = it;
        else if (!strcmp(it->string, "metric")) {
            if (!cJSON_IsString(it))
                return grid_fail(path, "%s", "\"metric\" must be a string");
            g->metric = it->valuestring;
        } else if (strcmp(it->string, "description") && strcmp(it->string, "full_size"))
            return grid_fail(path,
                             "unknown member '%s' (base, vary, factors, points, metric, "
                             "description, full_size)",
                             it->string);
    }
    if (base && !check_flat(path, "base", base))
        return 0;
    if (!!vary + !!factors + !!points != 1)
        return grid_fail(path, "%s", "give exactly one of \"vary\", \"factors\" and \"points\"");
    const cJSON *lists = vary ? vary : factors;
    if (lists) {
        g->mode = vary ? "vary" : "factors";
        if (!cJSON_IsObject(lists) || !lists->child)
            return grid_fail(path, "\"%s\" must be an object of non-empty lists", g->mode);
        for (const cJSON *it = lists->child; it; it = it->next) {
            if (!cJSON_IsArray(it) || !cJSON_GetArraySize(it))
                return grid_fail(path, "'%s' must be a non-empty list of values", it->string);
            for (const cJSON *v = it->child; v; v = v->next)
                if (!is_scalar(v))
                    return grid_fail(path,
                                     "values of '%s' must be numbers, strings, booleans "
                                     "or null",
                                     it->string);
            if (!strcmp(it->string, "name"))
                return grid_fail(path, "%s", "'name' cannot be varied");
            if (!add_key(g, it->string))
                return grid_fail(path, "%s", "too many varied keys");
        }
    }
    if (vary)
        return vary_points(g, base, vary, path) && finish_names(g);
    if (factors)
        return factor_points(g, base, factors, path) && finish_names(g);
    return list_points(g, base, points, path) && finish_names(g);
}

elm_status elm__sweep_grid_load(elm__sweep_grid *g, const cJSON *root, const char *path) {
    return grid_load(g, root, path) ? ELM_OK : ELM_ERR_CONFIG;
}

void elm__sweep_grid_free(elm__sweep_grid *g) {
    for (int i = 0; g->p && i < g->np; i++) {
        cJSON_Delete(g->p[i].cfg);
        free(g->p[i].dir);
    }
    free(g->p);
    g->p = NULL;
    g->np = 0;
}

/* A JSON file of a run folder, or NULL when it is absent or unreadable. */
static cJSON *read_json(const char *path) {
    cJSON *j = NULL;
    if (!elm__is_file(path) || elm__json_read(path, 64 << 20, &j))
        return NULL;
    return j;
}

elm_status elm__sweep_scan(elm__sweep_grid *g, const char *out, int *finished, int *todo,
                           int *refused) {
    *finished = *todo = *refused = 0;
    char path[4096];
    for (int i = 0; i < g->np; i++) {
        elm__sweep_point *p = &g->p[i];
        snprintf(path, sizeof path, "%s/runs/%s", out, p->name);
        free(p->dir);
        if (!(p->dir = elm__strdup(path)))
            return elm__fail(ELM_ERR_NOMEM, "out of memory");
        snprintf(path, sizeof path, "%s/point.json", p->dir);
        cJSON *old = read_json(path);
        if (old && !cJSON_Compare(old, p->cfg, 1)) {
            p->state = ELM__PT_SKIPPED;
            (*refused)++;
        } else {
            snprintf(path, sizeof path, "%s/test_metrics.json", p->dir);
            if (elm__is_file(path)) {
                p->state = ELM__PT_DONE;
                (*finished)++;
            } else {
                snprintf(path, sizeof path, "%s/checkpoint/state.json", p->dir);
                p->state = elm__is_file(path) ? ELM__PT_RESUME : ELM__PT_TODO;
                (*todo)++;
            }
        }
        cJSON_Delete(old);
    }
    return ELM_OK;
}

/* ---- A point's effective arguments (sweep_args.json) ---- */

/* Knobs that change how a run is carried out, never the model it trains. */
static const char *const result_neutral[] = {"threads", "time_limit", "checkpoint_every",
                                             "ckpt_stride"};

cJSON *elm__sweep_args_json(const elm_train_spec *s, char *const *args, int nargs) {
    cJSON *j = cJSON_CreateObject();
    const char *const names[] = {"task", "data", "valid", "test", "init"};
    const char *const vals[] = {s->task, s->data, s->valid, s->test, s->init};
    for (int k = 0; k < 5; k++)
        if (vals[k])
            cJSON_AddStringToObject(j, names[k], vals[k]);
    cJSON *tr = elm__train_config_json(&s->train);
    for (size_t k = 0; k < sizeof result_neutral / sizeof result_neutral[0]; k++)
        cJSON_DeleteItemFromObjectCaseSensitive(tr, result_neutral[k]);
    cJSON_AddItemToObject(j, "train", tr);
    char *mj = elm_config_to_json(&s->model);
    cJSON_AddItemToObject(j, "model", mj ? cJSON_Parse(mj) : cJSON_CreateNull());
    free(mj);
    cJSON *a = cJSON_AddArrayToObject(j, "args");
    for (int i = 0; i < nargs; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(args[i]));
    return j;
}

/* Appends "; NAME OLD (now NEW)" for one differing entry (absent: "none"). */
static void diff_add(char *buf, size_t n, int count, const char *name, const cJSON *o,
                     const cJSON *w) {
    char ov[96] = "none", wv[96] = "none";
    if (o)
        value_str(o, ov, sizeof ov);
    if (w)
        value_str(w, wv, sizeof wv);
    size_t len = strlen(buf);
    if (len < n)
        snprintf(buf + len, n - len, "%s%s %s (now %s)", count ? "; " : "", name, ov, wv);
}

/* Compares the entries of two objects (keys of both, in order of a then those only in b). */
static int diff_objects(const cJSON *a, const cJSON *b, int nested, char *buf, size_t n,
                        int count) {
    for (int pass = 0; pass < 2; pass++) {
        const cJSON *x = pass ? b : a, *y = pass ? a : b;
        for (const cJSON *it = x ? x->child : NULL; it; it = it->next) {
            const cJSON *other = cJSON_GetObjectItemCaseSensitive(y, it->string);
            if ((pass && other) || !strcmp(it->string, "args"))
                continue; /* the second pass only adds keys the first lacks */
            int skip = 0;
            for (size_t k = 0; nested && k < sizeof result_neutral / sizeof result_neutral[0];
                 k++)
                skip |= !strcmp(it->string, result_neutral[k]);
            if (skip)
                continue;
            const cJSON *o = pass ? other : it, *w = pass ? it : other;
            if (!nested && cJSON_IsObject(o) && cJSON_IsObject(w))
                count = diff_objects(o, w, 1, buf, n, count);
            else if (!o || !w || !cJSON_Compare(o, w, 1))
                diff_add(buf, n, count++, it->string, o, w);
        }
    }
    return count;
}

int elm__sweep_args_diff(const cJSON *old, const cJSON *now, char *buf, size_t n) {
    if (n)
        buf[0] = 0;
    return diff_objects(old, now, 0, buf, n, 0);
}

/* ---- Wall time of all of a point's processes: the trainer's train_seconds continues from its
 * last checkpoint, so it leaves out work that a stop or a kill threw away ---- */

static double wall_read(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/sweep_wall.json", dir);
    cJSON *j = read_json(path);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "seconds");
    double s = cJSON_IsNumber(v) ? v->valuedouble : 0;
    cJSON_Delete(j);
    return s;
}

elm_status elm__sweep_wall_add(const char *dir, double secs) {
    char path[4096];
    snprintf(path, sizeof path, "%s/sweep_wall.json", dir);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "seconds", wall_read(dir) + secs);
    elm_status st = elm__json_write(path, j);
    cJSON_Delete(j);
    return st;
}

/* ---- Results ---- */

/* The resolved value of `key` in a run's config.json ("model" or "train" section). */
static const cJSON *resolved(const cJSON *cfg, const char *key) {
    const char *sec[] = {"model", "train"};
    for (int i = 0; cfg && i < 2; i++) {
        const cJSON *v =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cfg, sec[i]), key);
        if (v)
            return v;
    }
    return NULL;
}

/*
 * Adds "valid_<name>" for every number of the validation row of the best epoch (metrics.json)
 * that tm lacks, and its train_loss, so a table shows the score the model was selected on beside
 * its test metrics (for SHD-Adding they differ in kind: the validation pool shares the training
 * speakers, the test pool not). A run's own test_metrics.json carries the valid_* already.
 */
static void add_valid_metrics(cJSON *tm, const char *dir) {
    char path[4096];
    const cJSON *be = cJSON_GetObjectItemCaseSensitive(tm, "best_epoch");
    snprintf(path, sizeof path, "%s/metrics.json", dir);
    if (!cJSON_IsNumber(be))
        return;
    cJSON *hist = read_json(path);
    const cJSON *row;
    cJSON_ArrayForEach(row, hist) {
        const cJSON *ep = cJSON_GetObjectItemCaseSensitive(row, "epoch");
        if (!cJSON_IsNumber(ep) || ep->valuedouble != be->valuedouble)
            continue;
        for (const cJSON *it = row->child; it; it = it->next) {
            static const char *skip[] = {"epoch", "lr", "eval_seconds", "elapsed_seconds"};
            int s = !elm__json_is_score(it);
            for (size_t k = 0; k < sizeof skip / sizeof skip[0]; k++)
                s |= !strcmp(it->string, skip[k]);
            if (s)
                continue;
            char name[96];
            snprintf(name, sizeof name, "%s%s", strcmp(it->string, "train_loss") ? "valid_" : "",
                     it->string);
            if (!cJSON_GetObjectItemCaseSensitive(tm, name))
                cJSON_AddItemToObject(tm, name, cJSON_IsNull(it)
                                                    ? cJSON_CreateNull()
                                                    : cJSON_CreateNumber(it->valuedouble));
        }
        break;
    }
    cJSON_Delete(hist);
}

/* The metric columns: a few always first, then every metric in order of appearance. */
typedef struct {
    char names[64][64];
    int n;
} metric_cols;

static void cols_add(metric_cols *c, const char *name) {
    for (int k = 0; k < c->n; k++)
        if (!strcmp(c->names[k], name))
            return;
    if (c->n < 64)
        snprintf(c->names[c->n++], sizeof c->names[0], "%s", name);
}

/*
 * test_metrics.json as written before test and validation scores were told apart (no valid_*
 * key): its scores become test_<name>, except NeuronIO's, which were the validation data's and
 * are dropped (add_valid_metrics lists them as valid_*).
 */
static cJSON *from_legacy(cJSON *tm, const char *task) {
    cJSON *it;
    for (it = tm->child; it; it = it->next)
        if (!strncmp(it->string, "valid_", 6))
            return tm;
    cJSON *out = cJSON_CreateObject();
    for (it = tm->child; it; it = it->next) {
        const int run_key = !strcmp(it->string, "best_epoch") ||
                            !strcmp(it->string, "train_seconds") ||
                            !strcmp(it->string, "num_params");
        char name[96];
        snprintf(name, sizeof name, "%s%s", run_key ? "" : "test_", it->string);
        if (run_key || strcmp(task, "neuronio"))
            cJSON_AddItemToObject(out, name, cJSON_Duplicate(it, 1));
    }
    if (!strcmp(task, "neuronio"))
        cJSON_AddStringToObject(out, "note", "an older run: its test_metrics.json held the "
                                             "validation data's scores (listed as valid_*); no "
                                             "test scores");
    cJSON_Delete(tm);
    return out;
}

/* A point's metrics: the best model's test (test_*) and validation (valid_*) scores, numbers
 * and notes (arrays such as a confusion matrix stay in the run), and its wall time. */
static cJSON *point_metrics(const elm__sweep_point *p, const char *task, metric_cols *cols) {
    char path[4096];
    snprintf(path, sizeof path, "%s/test_metrics.json", p->dir);
    cJSON *tm = p->state == ELM__PT_DONE ? read_json(path) : NULL;
    if (tm) {
        for (cJSON *it = tm->child, *nx; it; it = nx) {
            nx = it->next;
            if (!elm__json_is_score(it) && !cJSON_IsString(it))
                cJSON_Delete(cJSON_DetachItemViaPointer(tm, it));
        }
        tm = from_legacy(tm, task);
        add_valid_metrics(tm, p->dir);
        /* a NaN score (an AUC without a spike) keeps its column, even when it is NaN in every
         * point */
        for (const cJSON *it = tm->child; it; it = it->next)
            if (elm__json_is_score(it))
                cols_add(cols, it->string);
    } else {
        tm = cJSON_CreateObject();
    }
    snprintf(path, sizeof path, "%s/sweep_wall.json", p->dir);
    if (elm__is_file(path))
        cJSON_AddNumberToObject(tm, "wall_seconds", wall_read(p->dir));
    return tm;
}

/* One row of results.json: the point, its status, the values of the varied keys as the run
 * resolved them, and its metrics. */
static cJSON *result_row(const elm__sweep_grid *g, const elm__sweep_point *p, const char *task,
                         metric_cols *cols) {
    cJSON *row = cJSON_CreateObject();
    cJSON_AddStringToObject(row, "point", p->name);
    cJSON_AddStringToObject(row, "status", elm__sweep_state_names[p->state]);
    if (p->factor)
        cJSON_AddStringToObject(row, "factor", p->factor);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", p->dir);
    cJSON *cfg = read_json(path);
    cJSON *vals = cJSON_AddObjectToObject(row, "values");
    for (int k = 0; k < g->nkeys; k++) {
        const cJSON *v = resolved(cfg, g->keys[k]);
        if (!v)
            v = cJSON_GetObjectItemCaseSensitive(p->cfg, g->keys[k]);
        cJSON_AddItemToObject(vals, g->keys[k], v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
    }
    cJSON_Delete(cfg);
    cJSON_AddItemToObject(row, "metrics", point_metrics(p, task, cols));
    return row;
}

static void csv_field(FILE *f, const char *s, int first) {
    if (!first)
        fputc(',', f);
    if (strpbrk(s, ",\"\n")) {
        fputc('"', f);
        for (; *s; s++) {
            if (*s == '"')
                fputc('"', f);
            fputc(*s, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
}

/* One CSV line of a row of results.json. */
static void csv_row(FILE *f, const elm__sweep_grid *g, const cJSON *row, const metric_cols *c) {
    char buf[128];
    csv_field(f, cJSON_GetObjectItem(row, "point")->valuestring, 1);
    csv_field(f, cJSON_GetObjectItem(row, "status")->valuestring, 0);
    if (!strcmp(g->mode, "factors")) {
        const cJSON *fa = cJSON_GetObjectItem(row, "factor");
        csv_field(f, fa && fa->valuestring[0] ? fa->valuestring : "base", 0);
    }
    const cJSON *vals = cJSON_GetObjectItem(row, "values");
    for (int k = 0; k < g->nkeys; k++) {
        value_str(cJSON_GetObjectItem(vals, g->keys[k]), buf, sizeof buf);
        csv_field(f, buf, 0);
    }
    const cJSON *ms = cJSON_GetObjectItem(row, "metrics");
    for (int k = 0; k < c->n; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(ms, c->names[k]);
        if (cJSON_IsNumber(v))
            snprintf(buf, sizeof buf, "%.10g", v->valuedouble);
        else if (cJSON_IsNull(v))
            snprintf(buf, sizeof buf, "nan");
        else
            buf[0] = 0; /* no such score: a point that did not finish */
        csv_field(f, buf, 0);
    }
    fputc('\n', f);
}

/* results.csv: point, status, [factor], varied keys, metrics. */
static elm_status write_csv(const char *path, const elm__sweep_grid *g, const cJSON *rows,
                            const metric_cols *c) {
    char *tmp = NULL;
    size_t tlen = 0;
    FILE *f = open_memstream(&tmp, &tlen);
    if (!f)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    csv_field(f, "point", 1);
    csv_field(f, "status", 0);
    if (!strcmp(g->mode, "factors"))
        csv_field(f, "factor", 0);
    for (int k = 0; k < g->nkeys; k++)
        csv_field(f, g->keys[k], 0);
    for (int k = 0; k < c->n; k++)
        csv_field(f, c->names[k], 0);
    fputc('\n', f);
    for (const cJSON *row = rows->child; row; row = row->next)
        csv_row(f, g, row, c);
    fclose(f);
    elm_status st = tmp ? elm__write_file_atomic(path, tmp, tlen)
                        : elm__fail(ELM_ERR_NOMEM, "out of memory");
    free(tmp);
    return st;
}

elm_status elm__sweep_write_results(const elm__sweep_grid *g, const char *out, const char *task,
                                    const char *metric, int *nrows) {
    metric_cols cols = {.n = 0};
    const char *lead[] = {"num_params", "train_seconds", "wall_seconds", "best_epoch"};
    for (int i = 0; i < 4; i++)
        cols_add(&cols, lead[i]);
    cJSON *rows = cJSON_CreateArray();
    for (int i = 0; i < g->np; i++)
        cJSON_AddItemToArray(rows, result_row(g, &g->p[i], task, &cols));
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "task", task);
    cJSON_AddStringToObject(doc, "mode", g->mode);
    cJSON_AddStringToObject(doc, "metric", metric);
    cJSON *keys = cJSON_AddArrayToObject(doc, "keys");
    for (int k = 0; k < g->nkeys; k++)
        cJSON_AddItemToArray(keys, cJSON_CreateString(g->keys[k]));
    cJSON_AddItemToObject(doc, "rows", rows);
    char path[4096];
    snprintf(path, sizeof path, "%s/results.json", out);
    elm_status st = elm__json_write(path, doc);
    snprintf(path, sizeof path, "%s/results.csv", out);
    if (!st)
        st = write_csv(path, g, rows, &cols);
    *nrows = cJSON_GetArraySize(rows);
    cJSON_Delete(doc);
    return st;
}
