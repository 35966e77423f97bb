/*
 * sweep.c - `elm sweep`: train one model per point of a grid (ablation studies) and tabulate them.
 *
 * A grid file is a JSON object:
 *   {"base": {KEY: VALUE, ...},               options every point shares (optional)
 *    "vary": {KEY: [V1, V2, ...], ...}}       the cartesian product of the lists, or
 *    "factors": {KEY: [V1, V2, ...], ...}}    one factor at a time around the base (a "base"
 *                                             point plus one point per value that differs from
 *                                             the base), or
 *    "points": [{KEY: VALUE, ["name": N]}, ...]} an explicit list,
 * plus optional "metric" (the main metric of the plot) and "description". KEYs are `elm train`'s
 * training knobs and model options (see `elm train --help`); the trainer checks them.
 *
 * Layout of the sweep folder OUT:
 *   OUT/sweep.json             the grid and the command line of the last invocation
 *   OUT/runs/<point>/point.json  the point's options, passed to `elm train --config`
 *   OUT/runs/<point>/...       the run folder (config.json, metrics, model, test_metrics.json)
 *   OUT/runs/<point>/train.log the trainer's output
 *   OUT/results.csv, .json     one row per point: varied values, parameters, test metrics, time
 *   OUT/<metric>.png           the main metric against the parameter count (scripts/plot_sweep.py)
 *
 * Invariants: a point is finished exactly when its test_metrics.json exists, and is never
 * trained again; a point with a checkpoint is continued with --resume, so rerunning the same
 * command finishes a half-done sweep. A point whose point.json differs from the grid is refused
 * rather than mixed with the old run. Each point runs as a child process of this executable
 * (/proc/self/exe, argv array, no shell) with OMP_NUM_THREADS set to its thread budget.
 */
#include "cli.h"
#include "internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_POINTS 4096
#define MAX_KEYS   32

extern char **environ;

static const char sweep_usage[] =
    "usage: elm sweep --task TASK --data DIR [--valid DIR] --grid GRID.json --out DIR\n"
    "                 [--jobs N] [--threads-per-job N] [--metric NAME] [--dry-run] [--no-plot]\n"
    "                 [elm train options passed to every point, e.g. --epochs 3 --set lr=1e-3]\n\n"
    "Trains one model per point of GRID.json with `elm train TASK` into DIR/runs/<point>/, up to\n"
    "N at a time, then writes DIR/results.csv, DIR/results.json and DIR/<metric>.png (the main\n"
    "metric against the parameter count). Rerunning the same command skips finished points and\n"
    "resumes interrupted ones; a failed point is reported and the others go on.\n\n"
    "GRID.json: {\"base\": {...}, \"vary\": {\"num_memory\": [1, 5, 15]}} (cartesian product),\n"
    "  {\"base\": {...}, \"factors\": {\"KEY\": [...], ...}} (one factor at a time around base),\n"
    "  or {\"base\": {...}, \"points\": [{...}, ...]}; optional \"metric\": main metric name.\n"
    "Keys are elm train's knobs and model options (elm train --help).\n\n"
    "TASK: neuronio | shd | shd-adding | pathfinder. Main metric: AUC (neuronio), accuracy.\n"
    "Plots need Python 3 with numpy and matplotlib ($ELM_PYTHON, else python3 on PATH or\n"
    "/usr/bin/python3) and plot_sweep.py (installed in share/elm; $ELM_SCRIPTS overrides).\n";

/* ---- Small helpers ---- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static cJSON *read_json(const char *path, char *err, size_t nerr) {
    char *js;
    size_t len;
    if (elm__read_file(path, 64 << 20, &js, &len)) {
        snprintf(err, nerr, "%s", elm_last_error());
        return NULL;
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(js, &end, 1);
    if (!j) {
        size_t at = end ? (size_t)(end - js) : 0;
        snprintf(err, nerr, "%s: invalid JSON near byte %zu", path, at);
    }
    free(js);
    return j;
}

static elm_status write_json(const char *path, const cJSON *j) {
    char *s = cJSON_Print(j);
    if (!s)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) {
        free(s);
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    }
    t[n] = '\n';
    t[n + 1] = 0;
    elm_status st = elm__write_file_atomic(path, t, n + 1);
    free(t);
    return st;
}

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

typedef struct {
    char name[200];
    cJSON *cfg;         /* flat object: base merged with the point's values */
    const char *factor; /* factors mode: the key this point varies ("" for the base point) */
    /* Run state. */
    char *dir;
    int state; /* P_* below */
    pid_t pid;
    double t0;
    int exit_code;
} point;

enum { P_TODO, P_RESUME, P_RUNNING, P_DONE, P_FAILED, P_SKIPPED, P_STOPPED };
static const char *const state_names[] = {"pending", "pending", "running", "done",
                                          "failed",  "refused", "stopped"};

typedef struct {
    const char *mode; /* "vary", "factors" or "points" */
    char keys[MAX_KEYS][64];
    int nkeys;
    point *p;
    int np;
    const char *metric;
} grid;

static int add_key(grid *g, const char *k) {
    for (int i = 0; i < g->nkeys; i++)
        if (!strcmp(g->keys[i], k))
            return 1;
    if (g->nkeys == MAX_KEYS || strlen(k) >= sizeof g->keys[0])
        return 0;
    snprintf(g->keys[g->nkeys++], sizeof g->keys[0], "%s", k);
    return 1;
}

/* A new point: base merged with `set` (pairs of key, value; values borrowed and copied). */
static point *new_point(grid *g, const cJSON *base, const char *name) {
    if (g->np == MAX_POINTS)
        return NULL;
    point *p = &g->p[g->np++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    sanitize(p->name);
    p->cfg = base ? cJSON_Duplicate(base, 1) : cJSON_CreateObject();
    return p;
}

static void point_set(point *p, const char *key, const cJSON *v) {
    cJSON *d = cJSON_Duplicate(v, 1);
    if (cJSON_GetObjectItemCaseSensitive(p->cfg, key))
        cJSON_ReplaceItemInObjectCaseSensitive(p->cfg, key, d);
    else
        cJSON_AddItemToObject(p->cfg, key, d);
}

/* Makes names unique (two values can print alike) by appending -2, -3, ... */
static void unique_names(grid *g) {
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

static int grid_fail(const char *path, const char *fmt, const char *a) {
    fprintf(stderr, "elm: error: %s: ", path);
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\n");
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

/* Parses the grid into points; prints the problem and returns 0 on a bad file. */
static int grid_load(grid *g, const cJSON *root, const char *path) {
    memset(g, 0, sizeof *g);
    g->p = calloc(MAX_POINTS, sizeof *g->p);
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
    char name[256], vs[96];
    if (vary) {
        /* Cartesian product, the first key varying slowest. */
        int n = g->nkeys, idx[MAX_KEYS] = {0};
        const cJSON *ls[MAX_KEYS];
        long total = 1;
        for (int k = 0; k < n; k++) {
            ls[k] = cJSON_GetObjectItemCaseSensitive(vary, g->keys[k]);
            total *= cJSON_GetArraySize(ls[k]);
            if (total > MAX_POINTS)
                return grid_fail(path, "%s", "more than 4096 points");
        }
        for (long c = 0; c < total; c++) {
            name[0] = 0;
            for (int k = 0; k < n; k++) {
                value_str(cJSON_GetArrayItem(ls[k], idx[k]), vs, sizeof vs);
                size_t l = strlen(name);
                snprintf(name + l, sizeof name - l, "%s%s=%s", k ? "__" : "", g->keys[k], vs);
            }
            point *p = new_point(g, base, name);
            for (int k = 0; k < n; k++)
                point_set(p, g->keys[k], cJSON_GetArrayItem(ls[k], idx[k]));
            for (int k = n - 1; k >= 0; k--) {
                if (++idx[k] < cJSON_GetArraySize(ls[k]))
                    break;
                idx[k] = 0;
            }
        }
    } else if (factors) {
        point *b = new_point(g, base, "base");
        b->factor = "";
        for (const cJSON *it = factors->child; it; it = it->next)
            for (const cJSON *v = it->child; v; v = v->next) {
                const cJSON *bv = base ? cJSON_GetObjectItemCaseSensitive(base, it->string) : NULL;
                if (bv && cJSON_Compare(bv, v, 1))
                    continue; /* that is the base point */
                value_str(v, vs, sizeof vs);
                snprintf(name, sizeof name, "%s=%s", it->string, vs);
                point *p = new_point(g, base, name);
                if (!p)
                    return grid_fail(path, "%s", "more than 4096 points");
                p->factor = it->string;
                point_set(p, it->string, v);
            }
    } else {
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
            point *p = new_point(g, base, name);
            if (!p)
                return grid_fail(path, "%s", "more than 4096 points");
            for (const cJSON *kv = it->child; kv; kv = kv->next)
                if (strcmp(kv->string, "name"))
                    point_set(p, kv->string, kv);
        }
    }
    for (int i = 0; i < g->np; i++)
        if (!g->p[i].name[0] || g->p[i].name[0] == '.')
            snprintf(g->p[i].name, sizeof g->p[i].name, "point%d", i);
    unique_names(g);
    return 1;
}

static void grid_free(grid *g) {
    for (int i = 0; g->p && i < g->np; i++) {
        cJSON_Delete(g->p[i].cfg);
        free(g->p[i].dir);
    }
    free(g->p);
}

/* ---- Children ---- */

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

/* environ with OMP_NUM_THREADS replaced (malloc'd array; strings borrowed but the one set). */
static char **child_env(char *omp) {
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **e = calloc(n + 2, sizeof *e);
    if (!e)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "OMP_NUM_THREADS=", 16))
            e[k++] = environ[i];
    e[k++] = omp;
    e[k] = NULL;
    return e;
}

/* Runs argv with stdout and stderr appended to `log` (or inherited when NULL); returns the pid
 * or -1 with errno set. */
static pid_t spawn(const char *exe, char *const *argv, char *const *envp, const char *log) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (log) {
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
    }
    pid_t pid;
    int rc = posix_spawn(&pid, exe, &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) {
        errno = rc;
        return -1;
    }
    return pid;
}

/* The last line of a log that names an error, or its last line (for failure reports). */
static void log_tail(const char *log, char *out, size_t n) {
    out[0] = 0;
    char *s;
    size_t len;
    if (elm__read_file(log, 64 << 20, &s, &len))
        return;
    char *last = NULL, *err = NULL;
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        /* Progress bars redraw with '\r': keep what follows the last one. */
        char *cr = strrchr(line, '\r');
        if (cr)
            line = cr + 1;
        if (!*line)
            continue;
        last = line;
        if (strstr(line, "error"))
            err = line;
    }
    snprintf(out, n, "%s", err ? err : last ? last : "(empty log)");
    free(s);
}

/* Wall time a point's training processes took, summed over every sweep invocation, in
 * RUN/sweep_wall.json: the trainer's own train_seconds restarts when a run is resumed. */
static double wall_read(const char *dir) {
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/sweep_wall.json", dir);
    if (!file_exists(path))
        return 0;
    cJSON *j = read_json(path, err, sizeof err);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "seconds");
    double s = cJSON_IsNumber(v) ? v->valuedouble : 0;
    cJSON_Delete(j);
    return s;
}

static void wall_add(const char *dir, double secs) {
    char path[4096];
    snprintf(path, sizeof path, "%s/sweep_wall.json", dir);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "seconds", wall_read(dir) + secs);
    if (write_json(path, j))
        fprintf(stderr, "elm: warning: %s\n", elm_last_error());
    cJSON_Delete(j);
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
 * Adds "valid_<name>" for every number of the validation row of the best epoch (metrics.json),
 * so a table shows the score the model was selected on beside its test metrics (for SHD-Adding
 * they differ in kind: the validation pool shares the training speakers, the test pool not).
 */
static void add_valid_metrics(cJSON *tm, const char *dir) {
    char path[4096], err[512];
    const cJSON *be = cJSON_GetObjectItemCaseSensitive(tm, "best_epoch");
    snprintf(path, sizeof path, "%s/metrics.json", dir);
    if (!cJSON_IsNumber(be) || !file_exists(path))
        return;
    cJSON *hist = read_json(path, err, sizeof err);
    const cJSON *row;
    cJSON_ArrayForEach(row, hist) {
        const cJSON *ep = cJSON_GetObjectItemCaseSensitive(row, "epoch");
        if (!cJSON_IsNumber(ep) || ep->valuedouble != be->valuedouble)
            continue;
        for (const cJSON *it = row->child; it; it = it->next) {
            static const char *skip[] = {"epoch", "lr", "eval_seconds", "elapsed_seconds"};
            int s = !cJSON_IsNumber(it);
            for (size_t k = 0; k < sizeof skip / sizeof skip[0]; k++)
                s |= !strcmp(it->string, skip[k]);
            if (s)
                continue;
            char name[96];
            snprintf(name, sizeof name, "%s%s", strcmp(it->string, "train_loss") ? "valid_" : "",
                     it->string);
            cJSON_AddNumberToObject(tm, name, it->valuedouble);
        }
        break;
    }
    cJSON_Delete(hist);
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

/* Writes OUT/results.json and OUT/results.csv from the run folders; returns rows written. */
static int write_results(const grid *g, const char *out, const char *task, const char *metric) {
    cJSON *rows = cJSON_CreateArray();
    char mnames[64][64];
    int nm = 0;
    /* Columns always first among the metrics, then every metric in order of appearance. */
    const char *lead[] = {"num_params", "train_seconds", "wall_seconds", "best_epoch"};
    for (int i = 0; i < 4; i++)
        snprintf(mnames[nm++], sizeof mnames[0], "%s", lead[i]);
    char err[512], path[4096];
    for (int i = 0; i < g->np; i++) {
        const point *p = &g->p[i];
        cJSON *row = cJSON_CreateObject();
        cJSON_AddStringToObject(row, "point", p->name);
        cJSON_AddStringToObject(row, "status", state_names[p->state]);
        if (p->factor)
            cJSON_AddStringToObject(row, "factor", p->factor);
        snprintf(path, sizeof path, "%s/config.json", p->dir);
        cJSON *cfg = file_exists(path) ? read_json(path, err, sizeof err) : NULL;
        cJSON *vals = cJSON_AddObjectToObject(row, "values");
        for (int k = 0; k < g->nkeys; k++) {
            const cJSON *v = resolved(cfg, g->keys[k]);
            if (!v)
                v = cJSON_GetObjectItemCaseSensitive(p->cfg, g->keys[k]);
            cJSON_AddItemToObject(vals, g->keys[k], v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
        }
        cJSON_Delete(cfg);
        snprintf(path, sizeof path, "%s/test_metrics.json", p->dir);
        cJSON *tm = p->state == P_DONE ? read_json(path, err, sizeof err) : NULL;
        if (tm) {
            /* Numbers and notes only: arrays such as a confusion matrix stay in the run. */
            for (cJSON *it = tm->child, *nx; it; it = nx) {
                nx = it->next;
                if (!cJSON_IsNumber(it) && !cJSON_IsString(it))
                    cJSON_Delete(cJSON_DetachItemViaPointer(tm, it));
            }
            add_valid_metrics(tm, p->dir);
            for (const cJSON *it = tm->child; it; it = it->next) {
                if (!cJSON_IsNumber(it))
                    continue;
                int found = 0;
                for (int k = 0; k < nm; k++)
                    found |= !strcmp(mnames[k], it->string);
                if (!found && nm < 64)
                    snprintf(mnames[nm++], sizeof mnames[0], "%s", it->string);
            }
            cJSON_AddItemToObject(row, "metrics", tm);
        } else {
            tm = cJSON_CreateObject();
            cJSON_AddItemToObject(row, "metrics", tm);
        }
        snprintf(path, sizeof path, "%s/sweep_wall.json", p->dir);
        if (file_exists(path))
            cJSON_AddNumberToObject(tm, "wall_seconds", wall_read(p->dir));
        cJSON_AddItemToArray(rows, row);
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "task", task);
    cJSON_AddStringToObject(doc, "mode", g->mode);
    cJSON_AddStringToObject(doc, "metric", metric);
    cJSON *keys = cJSON_AddArrayToObject(doc, "keys");
    for (int k = 0; k < g->nkeys; k++)
        cJSON_AddItemToArray(keys, cJSON_CreateString(g->keys[k]));
    cJSON_AddItemToObject(doc, "rows", rows);
    snprintf(path, sizeof path, "%s/results.json", out);
    elm_status st = write_json(path, doc);
    if (st)
        fprintf(stderr, "elm: error: %s\n", elm_last_error());

    /* CSV: point, status, [factor], varied keys, metrics. */
    char *tmp = NULL;
    size_t tlen = 0;
    FILE *f = open_memstream(&tmp, &tlen);
    if (f) {
        int first = 1;
        csv_field(f, "point", first);
        csv_field(f, "status", 0);
        if (!strcmp(g->mode, "factors"))
            csv_field(f, "factor", 0);
        for (int k = 0; k < g->nkeys; k++)
            csv_field(f, g->keys[k], 0);
        for (int k = 0; k < nm; k++)
            csv_field(f, mnames[k], 0);
        fputc('\n', f);
        char buf[128];
        for (const cJSON *row = rows->child; row; row = row->next) {
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
            for (int k = 0; k < nm; k++) {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(ms, mnames[k]);
                if (cJSON_IsNumber(v))
                    snprintf(buf, sizeof buf, "%.10g", v->valuedouble);
                else
                    buf[0] = 0;
                csv_field(f, buf, 0);
            }
            fputc('\n', f);
        }
        fclose(f);
        snprintf(path, sizeof path, "%s/results.csv", out);
        if (!tmp || elm__write_file_atomic(path, tmp, tlen))
            fprintf(stderr, "elm: error: %s\n", tmp ? elm_last_error() : "out of memory");
        free(tmp);
    }
    int n = cJSON_GetArraySize(rows);
    cJSON_Delete(doc);
    return st ? -1 : n;
}

/* Draws OUT/<metric>.png with plot_sweep.py (interpreter and script found by pyplot.c); a
 * missing Python, matplotlib or script is only a note, since the tables are the sweep's result. */
static void plot(const char *out, const char *metric) {
    char res[4096];
    snprintf(res, sizeof res, "%s/results.json", out);
    const char *python = cli_python(1);
    char *script = python ? cli_script("plot_sweep.py", 1) : NULL;
    if (!script)
        return;
    char *argv[] = {(char *)python, script, res, "--out", (char *)out, "--metric", (char *)metric,
                    NULL};
    pid_t pid = spawn(python, argv, environ, NULL);
    int status = 0;
    while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
        fprintf(stderr, "elm: note: plotting failed (%s); the tables are complete\n", script);
    free(script);
}

/* ---- Command ---- */

static int is_own_flag(const char *a) {
    static const char *own[] = {"--task", "--data", "--valid",  "--grid",
                                "--out",  "--jobs", "--metric", "--threads-per-job"};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
        size_t n = strlen(own[i]);
        if (!strncmp(a, own[i], n) && (a[n] == 0 || a[n] == '='))
            return 1;
    }
    return 0;
}

/* The option a passed-through train flag sets ("--batch-size" -> batch_size), or NULL. */
static void flag_key(const char *a, char *key, size_t n) {
    key[0] = 0;
    if (!strncmp(a, "--set", 5) && (a[5] == 0 || a[5] == '='))
        return;
    if (strncmp(a, "--", 2))
        return;
    snprintf(key, n, "%s", a + 2);
    for (char *c = key; *c; c++) {
        if (*c == '=') {
            *c = 0;
            break;
        }
        if (*c == '-')
            *c = '_';
    }
}

int cmd_sweep(int argc, char **argv) {
    const char *task = NULL, *data = NULL, *valid = NULL, *gridf = NULL, *out = NULL;
    const char *metric = NULL, *v;
    long jobs = 1, tpj = 0;
    int dry = 0, noplot = 0, lock_fd = -1;
    char **pass = calloc((size_t)argc + 1, sizeof *pass);
    int npass = 0;
    if (!pass)
        return cli_error("out of memory");
    int rc = 2;
    for (int i = 1; i < argc; i++) {
        v = NULL;
        if (cli_is_help(argv[i])) {
            fputs(sweep_usage, stdout);
            free(pass);
            return 0;
        }
        if (!strcmp(argv[i], "--dry-run")) {
            dry = 1;
            continue;
        }
        if (!strcmp(argv[i], "--no-plot")) {
            noplot = 1;
            continue;
        }
        if (!is_own_flag(argv[i])) {
            /* Everything else goes to `elm train` as it is (with its value, if any). */
            static const char *refused[] = {"--config", "--resume", "--threads"};
            for (size_t k = 0; k < sizeof refused / sizeof refused[0]; k++) {
                size_t n = strlen(refused[k]);
                if (!strncmp(argv[i], refused[k], n) && (!argv[i][n] || argv[i][n] == '=')) {
                    free(pass);
                    return cli_usage_error(sweep_usage,
                                           "sweep: %s is set by the sweep itself (use "
                                           "--threads-per-job for threads)",
                                           refused[k]);
                }
            }
            pass[npass++] = argv[i];
            continue;
        }
        if (cli_flag_value(argc, argv, &i, "--task", &v))
            task = v;
        else if (cli_flag_value(argc, argv, &i, "--data", &v))
            data = v;
        else if (cli_flag_value(argc, argv, &i, "--valid", &v))
            valid = v;
        else if (cli_flag_value(argc, argv, &i, "--grid", &v))
            gridf = v;
        else if (cli_flag_value(argc, argv, &i, "--out", &v))
            out = v;
        else if (cli_flag_value(argc, argv, &i, "--metric", &v))
            metric = v;
        else if (cli_flag_value(argc, argv, &i, "--jobs", &v)) {
            if (v && (!cli_parse_int("--jobs", v, &jobs) || jobs < 1 || jobs > 256)) {
                free(pass);
                return cli_usage_error(NULL, "--jobs must be 1..256");
            }
        } else if (cli_flag_value(argc, argv, &i, "--threads-per-job", &v)) {
            if (v && (!cli_parse_int("--threads-per-job", v, &tpj) || tpj < 1 || tpj > 1024)) {
                free(pass);
                return cli_usage_error(NULL, "--threads-per-job must be 1..1024");
            }
        }
        if (!v) {
            free(pass);
            return cli_usage_error(sweep_usage, "%s needs a value", argv[i]);
        }
    }
    if (!task || !data || !gridf || !out) {
        free(pass);
        return cli_usage_error(sweep_usage, "sweep: --task, --data, --grid and --out are "
                                            "required");
    }
    if (strcmp(task, "neuronio") && strcmp(task, "shd") && strcmp(task, "shd-adding") &&
        strcmp(task, "pathfinder")) {
        free(pass);
        static const char *const tasks[] = {"neuronio", "shd", "shd-adding", "pathfinder"};
        return cli_usage_error(sweep_usage, "sweep: unknown task '%s'%s", task,
                               elm__suggest(task, tasks, 4));
    }
    if (tpj == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        tpj = cores > jobs ? cores / jobs : 1;
    }

    char err[512];
    cJSON *root = read_json(gridf, err, sizeof err);
    if (!root) {
        free(pass);
        return cli_error("%s", err);
    }
    grid g;
    if (!grid_load(&g, root, gridf)) {
        grid_free(&g);
        cJSON_Delete(root);
        free(pass);
        return 1;
    }
    if (!metric)
        metric = g.metric ? g.metric : !strcmp(task, "neuronio") ? "AUC" : "accuracy";
    /* A flag passed to every point must not silently override a varied key. */
    for (int i = 0; i < npass; i++) {
        char key[64];
        flag_key(pass[i], key, sizeof key);
        const char *sv = NULL;
        if (!strncmp(pass[i], "--set", 5)) {
            sv = pass[i][5] == '=' ? pass[i] + 6 : i + 1 < npass ? pass[i + 1] : "";
            const char *eq = strchr(sv, '=');
            snprintf(key, sizeof key, "%.*s", eq ? (int)(eq - sv) : 0, sv);
        }
        for (int k = 0; key[0] && k < g.nkeys; k++)
            if (!strcmp(key, g.keys[k])) {
                rc = cli_usage_error(NULL, "sweep: %s sets '%s', which the grid varies", pass[i],
                                     key);
                goto done;
            }
    }

    /* The run folders and their state. */
    char path[4096];
    elm_status st = ELM_OK;
    snprintf(path, sizeof path, "%s/runs", out);
    if (!dry)
        st = elm__mkdir_p(path);
    if (st) {
        rc = cli_fail(st, "choose an --out folder you can write to");
        goto done;
    }
    /* One sweep per folder at a time: two would train the same points into the same runs. The
     * lock is a POSIX record lock, released by the kernel however this process ends. */
    if (!dry) {
        snprintf(path, sizeof path, "%s/sweep.lock", out);
        lock_fd = open(path, O_RDWR | O_CREAT, 0644);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (lock_fd < 0 || fcntl(lock_fd, F_SETLK, &fl) < 0) {
            rc = cli_error("%s: %s", path,
                           lock_fd < 0 ? strerror(errno)
                                       : "another elm sweep is running in this folder");
            if (lock_fd >= 0)
                close(lock_fd);
            goto done;
        }
    }
    int todo = 0, finished = 0, refused = 0;
    for (int i = 0; i < g.np; i++) {
        point *p = &g.p[i];
        snprintf(path, sizeof path, "%s/runs/%s", out, p->name);
        p->dir = elm__strdup(path);
        snprintf(path, sizeof path, "%s/point.json", p->dir);
        cJSON *old = file_exists(path) ? read_json(path, err, sizeof err) : NULL;
        if (old && !cJSON_Compare(old, p->cfg, 1)) {
            fprintf(stderr,
                    "elm: error: %s differs from the grid's point '%s'; remove %s or choose "
                    "another --out\n",
                    path, p->name, p->dir);
            p->state = P_SKIPPED;
            refused++;
        } else {
            snprintf(path, sizeof path, "%s/test_metrics.json", p->dir);
            if (file_exists(path)) {
                p->state = P_DONE;
                finished++;
            } else {
                snprintf(path, sizeof path, "%s/checkpoint/state.json", p->dir);
                p->state = file_exists(path) ? P_RESUME : P_TODO;
                todo++;
            }
        }
        cJSON_Delete(old);
    }
    fprintf(stderr, "elm: sweep %s: %d point%s (%s over", gridf, g.np, CLI_S(g.np), g.mode);
    for (int k = 0; k < g.nkeys; k++)
        fprintf(stderr, "%s %s", k ? "," : "", g.keys[k]);
    fprintf(stderr, "); %d finished, %d to run, %d job%s x %ld thread%s\n", finished, todo,
            (int)jobs, CLI_S(jobs), tpj, CLI_S(tpj));

    char exe[4096];
    ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (el <= 0) {
        rc = cli_error("cannot find this executable (/proc/self/exe): %s", strerror(errno));
        goto done;
    }
    exe[el] = 0;
    char threads[24], omp[48];
    snprintf(threads, sizeof threads, "%ld", tpj);
    snprintf(omp, sizeof omp, "OMP_NUM_THREADS=%ld", tpj);
    char **envp = child_env(omp);
    if (!envp) {
        rc = cli_error("out of memory");
        goto done;
    }
    /* argv of a point: elm train TASK --data D [--valid V] --out RUN --config P --threads N
     * [--resume] PASS... */
    char **cargv = calloc((size_t)npass + 16, sizeof *cargv);
    if (!cargv) {
        free(envp);
        rc = cli_error("out of memory");
        goto done;
    }
    if (!dry) {
        cJSON *sj = cJSON_CreateObject();
        cJSON_AddItemToObject(sj, "grid", cJSON_Duplicate(root, 1));
        cJSON_AddStringToObject(sj, "grid_file", gridf);
        cJSON_AddStringToObject(sj, "task", task);
        cJSON_AddStringToObject(sj, "data", data);
        if (valid)
            cJSON_AddStringToObject(sj, "valid", valid);
        cJSON *pa = cJSON_AddArrayToObject(sj, "train_args");
        for (int i = 0; i < npass; i++)
            cJSON_AddItemToArray(pa, cJSON_CreateString(pass[i]));
        cJSON_AddNumberToObject(sj, "jobs", (double)jobs);
        cJSON_AddNumberToObject(sj, "threads_per_job", (double)tpj);
        snprintf(path, sizeof path, "%s/sweep.json", out);
        write_json(path, sj);
        cJSON_Delete(sj);
    }
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: waitpid returns EINTR and we look at g_stop */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    g_stop = 0;
    int running = 0, failed = 0, started = 0, next = 0, signalled = 0;
    double t_start = now_s();
    for (;;) {
        /* Start points while there are free slots. */
        while (!g_stop && running < jobs && next < g.np) {
            point *p = &g.p[next++];
            if (p->state != P_TODO && p->state != P_RESUME)
                continue;
            int resume = p->state == P_RESUME;
            char cfgpath[4096], logpath[4096];
            snprintf(cfgpath, sizeof cfgpath, "%s/point.json", p->dir);
            snprintf(logpath, sizeof logpath, "%s/train.log", p->dir);
            int n = 0;
            cargv[n++] = "elm";
            cargv[n++] = "train";
            cargv[n++] = (char *)task;
            cargv[n++] = "--data";
            cargv[n++] = (char *)data;
            if (valid) {
                cargv[n++] = "--valid";
                cargv[n++] = (char *)valid;
            }
            cargv[n++] = "--out";
            cargv[n++] = p->dir;
            cargv[n++] = "--config";
            cargv[n++] = cfgpath;
            cargv[n++] = "--threads";
            cargv[n++] = threads;
            if (resume)
                cargv[n++] = "--resume";
            for (int i = 0; i < npass; i++)
                cargv[n++] = pass[i];
            cargv[n] = NULL;
            started++;
            if (dry) {
                printf("%s:", p->name);
                for (int i = 0; i < n; i++)
                    printf(" %s", cargv[i]);
                char *cj = cJSON_PrintUnformatted(p->cfg);
                printf("\n  config %s\n", cj ? cj : "?");
                free(cj);
                continue;
            }
            st = elm__mkdir_p(p->dir);
            if (!st)
                st = write_json(cfgpath, p->cfg);
            if (st) {
                fprintf(stderr, "elm: error: %s: %s\n", p->name, elm_last_error());
                p->state = P_FAILED;
                failed++;
                continue;
            }
            p->pid = spawn(exe, cargv, envp, logpath);
            if (p->pid < 0) {
                fprintf(stderr, "elm: error: %s: cannot start %s: %s\n", p->name, exe,
                        strerror(errno));
                p->state = P_FAILED;
                failed++;
                continue;
            }
            p->state = P_RUNNING;
            p->t0 = now_s();
            running++;
            fprintf(stderr, "elm: [%d/%d] %s: %s (log: %s)\n", started, todo, p->name,
                    resume ? "resuming" : "started", logpath);
        }
        if (dry || running == 0)
            break;
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR) {
                if (g_stop && !signalled) {
                    /* The trainer checkpoints on SIGTERM; a rerun resumes from there. */
                    fprintf(stderr,
                            "\nelm: sweep interrupted: stopping %d running point%s "
                            "(they checkpoint; rerun the same command to resume)\n",
                            running, running == 1 ? "" : "s");
                    for (int i = 0; i < g.np; i++)
                        if (g.p[i].state == P_RUNNING)
                            kill(g.p[i].pid, SIGTERM);
                    signalled = 1;
                }
                continue;
            }
            break; /* ECHILD: nothing left */
        }
        point *p = NULL;
        for (int i = 0; i < g.np && !p; i++)
            if (g.p[i].state == P_RUNNING && g.p[i].pid == pid)
                p = &g.p[i];
        if (!p)
            continue;
        running--;
        double secs = now_s() - p->t0;
        wall_add(p->dir, secs);
        snprintf(path, sizeof path, "%s/test_metrics.json", p->dir);
        int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        p->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        char logpath[4096], tail[512];
        snprintf(logpath, sizeof logpath, "%s/train.log", p->dir);
        if (ok && file_exists(path)) {
            p->state = P_DONE;
            cJSON *tm = read_json(path, err, sizeof err);
            const cJSON *mv = cJSON_GetObjectItemCaseSensitive(tm, metric);
            const cJSON *np = cJSON_GetObjectItemCaseSensitive(tm, "num_params");
            fprintf(stderr, "elm: %s: done in %.1f s: %s %.6g, %.0f parameters\n", p->name, secs,
                    metric, cJSON_IsNumber(mv) ? mv->valuedouble : (double)NAN,
                    cJSON_IsNumber(np) ? np->valuedouble : (double)NAN);
            cJSON_Delete(tm);
        } else if (ok || (g_stop && p->exit_code == 130)) {
            /* Stopped by --time-limit or by our signal, with a checkpoint. */
            p->state = P_STOPPED;
            log_tail(logpath, tail, sizeof tail);
            fprintf(stderr, "elm: %s: stopped after %.0f s (%s); rerun to resume\n", p->name, secs,
                    tail);
        } else {
            p->state = P_FAILED;
            failed++;
            log_tail(logpath, tail, sizeof tail);
            fprintf(stderr, "elm: %s: FAILED (exit %d) after %.0f s: %s\n", p->name, p->exit_code,
                    secs, tail);
        }
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    free(cargv);
    free(envp);
    if (dry) {
        rc = 0;
        goto done;
    }
    int ndone = 0, nstopped = 0;
    for (int i = 0; i < g.np; i++) {
        ndone += g.p[i].state == P_DONE;
        nstopped += g.p[i].state == P_STOPPED || g.p[i].state == P_TODO || g.p[i].state == P_RESUME;
    }
    if (write_results(&g, out, task, metric) < 0) {
        rc = 1;
        goto done;
    }
    if (!noplot && ndone > 0)
        plot(out, metric);
    fprintf(stderr,
            "elm: sweep %s: %d of %d point%s finished, %d failed, %d unfinished, %d refused "
            "(%.0f s); results in %s/results.csv\n",
            gridf, ndone, g.np, CLI_S(g.np), failed, nstopped, refused, now_s() - t_start, out);
    rc = g_stop ? 130 : (failed || nstopped || refused) ? 1 : 0;
done:
    if (lock_fd >= 0)
        close(lock_fd);
    grid_free(&g);
    cJSON_Delete(root);
    free(pass);
    return rc;
}
