/*
 * trainer.c - `elm train TASK` and `elm eval TASK`: the generic training loop every task shares.
 *
 * A run folder RUN holds:
 *   config.json          the resolved run: task, data, training knobs, model configuration
 *   metrics.csv/.json    one row / object per epoch (loss, learning rate, validation metrics, time)
 *   model.safetensors    the best model on validation so far (+ model_config.json)
 *   checkpoint/          step-<N>.model.safetensors, step-<N>.optim.safetensors and state.json;
 *                        state.json is written last and atomically, and names the files of the
 *                        newest complete checkpoint, so a run killed at any moment resumes from it
 *   test_metrics.json    the best model evaluated on the task's test split at the end
 *
 * Reproducibility: the random generator of batch k is seeded from (seed, k) alone, so a resumed
 * run draws exactly the batches the uninterrupted run would have, and with the same thread count
 * ends with a bitwise identical model.
 */
#include "cli.h"
#include "model_internal.h"
#include "train/task.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- Training knobs ---- */

typedef struct train_opts {
    long epochs;
    long batches_per_epoch; /* 0 = the task's default */
    long batch_size;
    double lr, lr_min;
    char optimizer[16];
    double weight_decay;
    double grad_clip;
    long seed;
    long threads;
    double input_dropout;
    long seq_len;
    long eval_samples;
    long eval_batch;
    long checkpoint_every; /* batches */
    double time_limit;     /* seconds; 0 = none */
    long ckpt_stride;      /* BPTT checkpointing; 0 = auto */
} train_opts;

typedef enum { K_INT, K_DBL, K_STR } knob_kind;
static const struct {
    const char *key;
    knob_kind k;
    size_t off;
    const char *help;
} knobs[] = {
#define KNOB(name, k, help) {#name, k, offsetof(train_opts, name), help}
    KNOB(epochs, K_INT, "passes over batches_per_epoch batches"),
    KNOB(batches_per_epoch, K_INT, "training batches per epoch (task default)"),
    KNOB(batch_size, K_INT, "samples per batch"),
    KNOB(lr, K_DBL, "initial learning rate"),
    KNOB(lr_min, K_DBL, "learning rate at the end of the cosine schedule"),
    KNOB(optimizer, K_STR, "adam, adamw or adamax"),
    KNOB(weight_decay, K_DBL, "L2 (adam, adamax) or decoupled (adamw) weight decay"),
    KNOB(grad_clip, K_DBL, "clip the gradient norm to this (0 = off)"),
    KNOB(seed, K_INT, "seed of initialisation, batches and dropout"),
    KNOB(threads, K_INT, "OpenMP threads (0 = all cores)"),
    KNOB(input_dropout, K_DBL, "dropout on inputs during training (SHD)"),
    KNOB(seq_len, K_INT, "training window length in steps (task default)"),
    KNOB(eval_samples, K_INT, "evaluation set size where the task draws it (task default)"),
    KNOB(eval_batch, K_INT, "batch size of evaluation"),
    KNOB(checkpoint_every, K_INT, "write a checkpoint every this many batches"),
    KNOB(time_limit, K_DBL, "stop (with a checkpoint) after this many seconds"),
    KNOB(ckpt_stride, K_INT, "BPTT memory checkpointing stride in steps (0 = auto)"),
#undef KNOB
};

/* Defaults of each task: the reference's protocols (docs/TASKS.md). */
static void task_defaults(const char *task, train_opts *o, elm_config *c) {
    memset(o, 0, sizeof *o);
    o->epochs = 35;
    o->batch_size = 8;
    o->lr = 5e-4;
    snprintf(o->optimizer, sizeof o->optimizer, "adam");
    o->seed = 1;
    o->eval_batch = 32;
    o->checkpoint_every = 500;
    elm_config_default(c, 1, 1, 15);
    if (!strcmp(task, "neuronio")) {
        /* The authors' NeuronIO Branch-ELM: 45 branches x 100 synapses, tau_m up to 150 ms. */
        c->num_branch = 45;
        c->num_synapse_per_branch = 100;
        c->input_to_synapse_routing = ELM_ROUTE_NEURONIO;
        c->memory_tau_max = 150;
    } else if (!strcmp(task, "shd") || !strcmp(task, "shd-adding")) {
        o->epochs = 10;
        o->lr = 5e-3;
        snprintf(o->optimizer, sizeof o->optimizer, "adamax");
        o->input_dropout = 0.5;
        c->num_memory = 100;
        c->memory_tau_max = 500;
        c->delta_t = 10; /* 10 ms bins (docs/TASKS.md section 2) */
    } else if (!strcmp(task, "pathfinder")) {
        o->epochs = 20;
        o->lr = 1e-3;
        o->batch_size = 16;
        c->num_memory = 100;
        c->memory_tau_max = 1000;
    }
}

static elm_status knob_set(train_opts *o, const char *key, const char *v, const char *origin) {
    for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++) {
        if (strcmp(knobs[i].key, key))
            continue;
        char *end;
        errno = 0;
        if (knobs[i].k == K_INT) {
            double d = strtod(v, &end);
            if (!*v || *end || errno || d != floor(d) || fabs(d) > 9e15)
                return elm__fail(ELM_ERR_CONFIG, "%s: '%s' expects an integer, got '%s'", origin,
                                 key, v);
            *(long *)((char *)o + knobs[i].off) = (long)d;
        } else if (knobs[i].k == K_DBL) {
            double d = strtod(v, &end);
            if (!*v || *end || errno || !isfinite(d))
                return elm__fail(ELM_ERR_CONFIG, "%s: '%s' expects a number, got '%s'", origin,
                                 key, v);
            *(double *)((char *)o + knobs[i].off) = d;
        } else {
            snprintf((char *)o + knobs[i].off, 16, "%s", v);
        }
        return ELM_OK;
    }
    const char *names[sizeof knobs / sizeof knobs[0]];
    for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++)
        names[i] = knobs[i].key;
    return elm__fail(ELM_ERR_CONFIG, "%s: unknown option '%s'%s", origin, key,
                     elm__suggest(key, names, (int)(sizeof knobs / sizeof knobs[0])));
}

/* key=value for a training knob or a model option; unknown keys are errors. */
static elm_status set_any(train_opts *o, elm_config *c, const char *key, const char *v,
                          const char *origin) {
    elm_status st = knob_set(o, key, v, origin);
    if (st != ELM_ERR_CONFIG || !strstr(elm_last_error(), "unknown option"))
        return st;
    st = elm_config_set(c, key, v, origin);
    if (st == ELM_ERR_CONFIG && strstr(elm_last_error(), "unknown option")) {
        /* The suggestion looks at knobs and model options together. */
        const char *const *mk;
        const int nm = elm__config_keys(&mk);
        const int nk = (int)(sizeof knobs / sizeof knobs[0]);
        const char *names[sizeof knobs / sizeof knobs[0] + 64];
        int n = 0;
        for (int i = 0; i < nk; i++)
            names[n++] = knobs[i].key;
        for (int i = 0; i < nm && i < 64; i++)
            names[n++] = mk[i];
        return elm__fail(ELM_ERR_CONFIG,
                         "%s: unknown option '%s'%s (neither a training knob nor a model "
                         "option; see `elm train --help`)",
                         origin, key, elm__suggest(key, names, n));
    }
    return st;
}

/* A run config file: one flat JSON object of training knobs and model options. Sections
 * "model" and "train" holding such objects are accepted too. */
static elm_status load_config_file(train_opts *o, elm_config *c, const char *path) {
    char *js;
    size_t len;
    elm_status st = elm__read_file(path, 1 << 20, &js, &len);
    if (st)
        return st;
    cJSON *root = cJSON_Parse(js);
    free(js);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return elm__fail(ELM_ERR_CONFIG, "%s: not a JSON object", path);
    }
    cJSON *stack[3] = {root, NULL, NULL};
    int ns = 1;
    for (int s = 0; s < ns && !st; s++)
        for (cJSON *it = stack[s]->child; it && !st; it = it->next) {
            if (s == 0 && cJSON_IsObject(it) &&
                (!strcmp(it->string, "model") || !strcmp(it->string, "train"))) {
                stack[ns++] = it;
                continue;
            }
            /* Keys the run folder's config.json records but that are not knobs. */
            if (s == 0 && (!strcmp(it->string, "task") || !strcmp(it->string, "data") ||
                           !strcmp(it->string, "valid") || !strcmp(it->string, "elm")))
                continue;
            char buf[64];
            const char *v = buf;
            if (cJSON_IsString(it))
                v = it->valuestring;
            else if (cJSON_IsNumber(it))
                snprintf(buf, sizeof buf, "%.17g", it->valuedouble);
            else if (cJSON_IsBool(it))
                v = cJSON_IsTrue(it) ? "true" : "false";
            else if (cJSON_IsNull(it))
                v = "null";
            else {
                st = elm__fail(ELM_ERR_CONFIG, "%s: option '%s' has an unsupported value", path,
                               it->string);
                break;
            }
            st = set_any(o, c, it->string, v, path);
        }
    cJSON_Delete(root);
    return st;
}

static cJSON *opts_json(const train_opts *o) {
    cJSON *j = cJSON_CreateObject();
    for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++) {
        const char *p = (const char *)o + knobs[i].off;
        if (knobs[i].k == K_INT)
            cJSON_AddNumberToObject(j, knobs[i].key, (double)*(const long *)p);
        else if (knobs[i].k == K_DBL)
            cJSON_AddNumberToObject(j, knobs[i].key, *(const double *)p);
        else
            cJSON_AddStringToObject(j, knobs[i].key, p);
    }
    return j;
}

/* ---- Small helpers ---- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static elm_status write_json(const char *path, cJSON *j) {
    char *s = cJSON_Print(j);
    if (!s)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    size_t n = strlen(s);
    s[n] = '\n';
    elm_status st = elm__write_file_atomic(path, s, n + 1);
    free(s);
    return st;
}

static cJSON *read_json(const char *path) {
    char *js;
    size_t len;
    if (elm__read_file(path, 64 << 20, &js, &len))
        return NULL;
    cJSON *j = cJSON_Parse(js);
    free(js);
    return j;
}

/* metrics.csv: one row per epoch, the numeric columns of the first epoch's object. */
static elm_status write_metrics_csv(const char *path, const cJSON *history) {
    const cJSON *first = cJSON_GetArrayItem(history, 0);
    if (!first)
        return ELM_OK;
    elm__atomic_file af;
    elm_status st = elm__atomic_open(&af, path);
    if (st)
        return st;
    const char *sep = "";
    for (const cJSON *k = first->child; k; k = k->next)
        if (cJSON_IsNumber(k)) {
            fprintf(af.f, "%s%s", sep, k->string);
            sep = ",";
        }
    fputc('\n', af.f);
    for (const cJSON *row = history->child; row; row = row->next) {
        sep = "";
        for (const cJSON *k = first->child; k; k = k->next) {
            if (!cJSON_IsNumber(k))
                continue;
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, k->string);
            fprintf(af.f, "%s%.9g", sep, cJSON_IsNumber(v) ? v->valuedouble : (double)NAN);
            sep = ",";
        }
        fputc('\n', af.f);
    }
    return elm__atomic_commit(&af);
}

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

static void fmt_time(char *buf, size_t n, double s) {
    if (!isfinite(s) || s < 0)
        s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

/* Progress on stderr: a bar redrawn in place on a terminal, a line every 10 s otherwise. */
typedef struct {
    int tty;
    double last;
} progress;

static void progress_show(progress *p, long epoch, long epochs, long b, long nb, double loss,
                          double steps_per_s, double eta, int final) {
    double t = now_s();
    if (!final && t - p->last < (p->tty ? 0.2 : 10.0))
        return;
    p->last = t;
    char eta_s[32];
    fmt_time(eta_s, sizeof eta_s, eta);
    int width = 24, fill = nb > 0 ? (int)((double)width * (double)b / (double)nb) : 0;
    char bar[32];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    const int mega = steps_per_s >= 1e6;
    fprintf(stderr, "%sepoch %ld/%ld [%s] %ld/%ld loss %.5f %.3g%s sample-steps/s ETA %s%s",
            p->tty ? "\r" : "", epoch, epochs, bar, b, nb, loss,
            steps_per_s / (mega ? 1e6 : 1e3), mega ? "M" : "k", eta_s,
            p->tty ? (final ? "\n" : "") : "\n");
    fflush(stderr);
}

/* ---- The run ---- */

typedef struct {
    const char *task_name;
    elm_task_opts topts;
    train_opts o;
    elm_config mc;
    const char *out;
    const char *init; /* start from this model */
    int resume;
} run_spec;

static const char *const task_names[] = {"neuronio", "shd", "shd-adding", "pathfinder"};

/* 0 if `name` is a task; else a usage error (exit 2, as every command gives) with a suggestion. */
static int check_task(const char *cmd, const char *name, const char *usage) {
    for (int k = 0; k < 4; k++)
        if (!strcmp(name, task_names[k]))
            return 0;
    return cli_usage_error(usage, "%s: unknown task '%s'%s (neuronio, shd, shd-adding, "
                                  "pathfinder)",
                           cmd, name, elm__suggest(name, task_names, 4));
}

static elm_status make_task(elm_task **t, const char *name, const elm_task_opts *o) {
    return elm_task_create(t, name, o);
}

/* Checks before a long run that RUN is a folder we can write into. */
static elm_status check_writable(const char *dir) {
    elm_status st = elm__mkdir_p(dir);
    if (st)
        return st;
    char *probe = elm__path_join(dir, ".write-test");
    st = elm__write_file_atomic(probe, "ok\n", 3);
    if (!st)
        unlink(probe);
    free(probe);
    return st;
}

static int is_better(double a, double b, int larger) {
    return larger ? a > b : a < b;
}

static int run_train(run_spec *r) {
    const train_opts *o = &r->o;
    int rc = 1;
    elm_task *task = NULL;
    elm_model *m = NULL;
    elm_optim *opt = NULL;
    float *x = NULL, *tg = NULL, *y = NULL, *dy = NULL;
    cJSON *history = NULL;
    char *ckdir = elm__path_join(r->out, "checkpoint");
    char *state_path = elm__path_join(ckdir, "state.json");
    char path[4096];
    elm_status st = check_writable(r->out);
    if (!st)
        st = elm__mkdir_p(ckdir);
    if (st) {
        rc = cli_fail(st, "choose an --out folder you can write to");
        goto done;
    }
    r->topts.seed = (uint64_t)o->seed;
    r->topts.threads = (int)o->threads;
    r->topts.input_dropout = o->input_dropout;
    r->topts.seq_len = (int)o->seq_len;
    r->topts.batches_per_epoch = o->batches_per_epoch;
    r->topts.batch_size = (int)o->batch_size;
    r->topts.eval_samples = o->eval_samples;
    r->topts.eval_batch = (int)o->eval_batch;
    r->topts.for_training = 1;
    st = make_task(&task, r->task_name, &r->topts);
    if (st) {
        rc = cli_fail(st, NULL);
        goto done;
    }
    const int B = (int)o->batch_size, T = task->seq_len, I = task->num_input;
    const int O = task->num_output;
    r->mc.num_input = I;
    r->mc.num_output = O;
    long nb = task->batches_per_epoch;
    if (B < 1 || nb < 1 || o->epochs < 1) {
        rc = cli_error("batch_size, batches_per_epoch and epochs must be >= 1");
        goto done;
    }
    /* The model: fresh, from --init, or from the checkpoint. */
    cJSON *state = r->resume ? read_json(state_path) : NULL;
    if (r->resume && !state)
        fprintf(stderr, "elm: note: no checkpoint in %s; starting from scratch\n", ckdir);
    long step0 = 0;
    /* The checkpoint files the next checkpoint replaces (and removes). */
    char last_files[2][128] = {"", ""};
    double best = (double)NAN;
    long best_epoch = -1;
    if (state) {
        const char *mf = cJSON_GetStringValue(cJSON_GetObjectItem(state, "model"));
        const char *of = cJSON_GetStringValue(cJSON_GetObjectItem(state, "optim"));
        cJSON *sj = cJSON_GetObjectItem(state, "step");
        if (!mf || !of || !cJSON_IsNumber(sj)) {
            rc = cli_error("%s: malformed checkpoint state", state_path);
            cJSON_Delete(state);
            goto done;
        }
        snprintf(path, sizeof path, "%s/%s", ckdir, mf);
        st = elm_model_load(&m, path, ELM_F32);
        if (!st && (elm_model_config(m)->num_input != I || elm_model_config(m)->num_output != O))
            st = elm__fail(ELM_ERR_SHAPE, "%s: checkpoint model does not fit the task", path);
        if (!st) {
            step0 = (long)sj->valuedouble;
            cJSON *bj = cJSON_GetObjectItem(state, "best");
            best = cJSON_IsNumber(bj) ? bj->valuedouble : (double)NAN;
            cJSON *be = cJSON_GetObjectItem(state, "best_epoch");
            best_epoch = cJSON_IsNumber(be) ? (long)be->valuedouble : -1;
            history = cJSON_DetachItemFromObject(state, "history");
            snprintf(path, sizeof path, "%s/%s", ckdir, of);
        }
        if (st) {
            cJSON_Delete(state);
            rc = cli_fail(st, NULL);
            goto done;
        }
        /* Files of checkpoints a killed run had begun or not yet removed. */
        DIR *dh = opendir(ckdir);
        for (struct dirent *e = dh ? readdir(dh) : NULL; e; e = readdir(dh)) {
            int ours = !strncmp(e->d_name, "step-", 5) || strstr(e->d_name, ".tmp.");
            if (!ours || !strcmp(e->d_name, mf) || !strcmp(e->d_name, of))
                continue;
            char stale[4096];
            snprintf(stale, sizeof stale, "%s/%s", ckdir, e->d_name);
            unlink(stale);
        }
        if (dh)
            closedir(dh);
        snprintf(last_files[0], sizeof last_files[0], "%s", mf);
        snprintf(last_files[1], sizeof last_files[1], "%s", of);
        cJSON_Delete(state);
        fprintf(stderr, "elm: resuming %s at batch %ld\n", r->out, step0);
    } else if (r->init) {
        st = elm_model_load(&m, r->init, ELM_F32);
        if (!st && (elm_model_config(m)->num_input != I || elm_model_config(m)->num_output != O))
            st = elm__fail(ELM_ERR_SHAPE, "%s: model has %d inputs / %d outputs, the task %d / %d",
                           r->init, elm_model_config(m)->num_input,
                           elm_model_config(m)->num_output, I, O);
    } else {
        st = elm_model_create(&m, &r->mc, ELM_F32, (uint64_t)o->seed);
    }
    if (st) {
        rc = cli_fail(st, NULL);
        goto done;
    }
    if (!history)
        history = cJSON_CreateArray();
    elm_model_set_threads(m, (int)o->threads);
    elm_model_set_checkpoint_stride(m, (int)o->ckpt_stride);
    elm_optim_config oc;
    elm_optim_kind kind = !strcmp(o->optimizer, "adamw")    ? ELM_OPT_ADAMW
                          : !strcmp(o->optimizer, "adamax") ? ELM_OPT_ADAMAX
                                                            : ELM_OPT_ADAM;
    if (strcmp(o->optimizer, "adam") && strcmp(o->optimizer, "adamw") &&
        strcmp(o->optimizer, "adamax")) {
        rc = cli_error("optimizer must be adam, adamw or adamax (got '%s')", o->optimizer);
        goto done;
    }
    elm_optim_config_default(&oc, kind, o->lr);
    if (o->weight_decay > 0 || kind != ELM_OPT_ADAMW)
        oc.weight_decay = o->weight_decay;
    st = elm_optim_create(&opt, m, &oc);
    if (!st && step0 > 0)
        st = elm_optim_load(opt, m, path);
    if (st) {
        rc = cli_fail(st, NULL);
        goto done;
    }
    /* The resolved run description. */
    {
        cJSON *cfg = cJSON_CreateObject();
        cJSON_AddStringToObject(cfg, "elm", ELM_VERSION_STRING);
        cJSON_AddStringToObject(cfg, "task", r->task_name);
        cJSON_AddStringToObject(cfg, "data", r->topts.data);
        if (r->topts.valid)
            cJSON_AddStringToObject(cfg, "valid", r->topts.valid);
        cJSON_AddItemToObject(cfg, "train", opts_json(o));
        char *mj = elm_config_to_json(elm_model_config(m));
        cJSON_AddItemToObject(cfg, "model", cJSON_Parse(mj));
        free(mj);
        snprintf(path, sizeof path, "%s/config.json", r->out);
        st = write_json(path, cfg);
        cJSON_Delete(cfg);
        if (st) {
            rc = cli_fail(st, NULL);
            goto done;
        }
    }
    /* Spiking tasks hand over spike lists: no dense (B, T, I) batch to fill, then scan. */
    const int sparse = task->train_batch_sparse != NULL;
    size_t nx = (size_t)B * (size_t)T * (size_t)I, ny = (size_t)B * (size_t)T * (size_t)O;
    x = sparse ? NULL : malloc(sizeof(float) * nx);
    tg = malloc(sizeof(float) * (size_t)B * task->target_len);
    y = malloc(sizeof(float) * ny);
    dy = malloc(sizeof(float) * ny);
    if ((!sparse && !x) || !tg || !y || !dy) {
        rc = cli_error("out of memory for a batch of %d x %d x %d", B, T, I);
        goto done;
    }
    const elm_config *mcfg = elm_model_config(m);
    char what[64];
    if (mcfg->model_type == ELM_MODEL_LSTM)
        snprintf(what, sizeof what, "LSTM (hidden size %d)", mcfg->lstm_hidden_size);
    else
        snprintf(what, sizeof what, "ELM %s", mcfg->version == ELM_V2 ? "v2" : "v1");
    fprintf(stderr,
            "elm: training %s: %s, %zu parameters, %ld epoch%s x %ld batch%s of %d x %d steps, "
            "%s lr %g\n",
            r->task_name, what, elm_model_num_params(m), o->epochs, o->epochs == 1 ? "" : "s",
            nb, nb == 1 ? "" : "es", B, T, o->optimizer, o->lr);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    progress pg = {.tty = isatty(2), .last = 0};
    const long total = o->epochs * nb;
    double t_start = now_s(), epoch_loss = 0;
    long epoch_n = 0, last_ckpt = step0;
    rc = 0;
    for (long step = step0; step < total; step++) {
        long epoch = step / nb, b = step % nb;
        if (b == 0) {
            epoch_loss = 0;
            epoch_n = 0;
        }
        elm_rng rng;
        elm__task_position(task, (uint64_t)o->seed, step, nb, &rng);
        elm_sparse_input xs;
        st = sparse ? task->train_batch_sparse(task, &rng, B, &xs, tg)
                    : task->train_batch(task, &rng, B, x, tg);
        if (st) {
            rc = cli_fail(st, NULL);
            break;
        }
        double lr = elm_lr_cosine(o->lr, o->lr_min, step, total);
        elm_model_zero_grad(m);
        st = sparse ? elm_model_forward_train_sparse(m, &xs, y, B, T)
                    : elm_model_forward_train(m, x, y, B, T);
        double loss = st ? (double)NAN : task->loss(task, y, tg, dy, B);
        if (!st)
            st = elm_model_backward(m, dy);
        if (st) {
            rc = cli_fail(st, NULL);
            break;
        }
        double gnorm = elm_model_clip_grad_norm(m, o->grad_clip);
        if (!isfinite(loss) || !isfinite(gnorm)) {
            rc = cli_error("non-finite %s at epoch %ld, batch %ld (global batch %ld); the last "
                           "good checkpoint is kept in %s",
                           isfinite(loss) ? "gradient" : "loss", epoch + 1, b + 1, step + 1,
                           ckdir);
            fprintf(stderr, "hint: lower the learning rate (--lr) or clip gradients "
                            "(--set grad_clip=1)\n");
            break;
        }
        st = elm_optim_step(opt, m, lr);
        if (st) {
            rc = cli_fail(st, NULL);
            break;
        }
        epoch_loss += loss;
        epoch_n++;
        double el = now_s() - t_start;
        double done_steps = (double)(step + 1 - step0);
        double sps = done_steps * B * T / (el > 0 ? el : 1e-9);
        progress_show(&pg, epoch + 1, o->epochs, b + 1, nb, epoch_loss / (double)epoch_n, sps,
                      el / done_steps * (double)(total - step - 1), 0);
        int epoch_end = b == nb - 1;
        int stop = g_stop || (o->time_limit > 0 && el >= o->time_limit);
        if (epoch_end) {
            progress_show(&pg, epoch + 1, o->epochs, b + 1, nb, epoch_loss / (double)epoch_n, sps,
                          0, 1);
            double te = now_s();
            cJSON *row = cJSON_CreateObject();
            cJSON_AddNumberToObject(row, "epoch", (double)(epoch + 1));
            cJSON_AddNumberToObject(row, "train_loss", epoch_loss / (double)epoch_n);
            cJSON_AddNumberToObject(row, "lr", lr);
            st = task->evaluate(task, m, "valid", row);
            if (st) {
                cJSON_Delete(row);
                rc = cli_fail(st, NULL);
                break;
            }
            cJSON_AddNumberToObject(row, "eval_seconds", now_s() - te);
            cJSON_AddNumberToObject(row, "elapsed_seconds", now_s() - t_start);
            cJSON *sel = cJSON_GetObjectItem(row, task->select_metric);
            double score = cJSON_IsNumber(sel) ? sel->valuedouble : (double)NAN;
            fprintf(stderr, "elm: epoch %ld: train loss %.5f, valid %s %.6g", epoch + 1,
                    epoch_loss / (double)epoch_n, task->select_metric, score);
            if (isfinite(score) && (!isfinite(best) ||
                                    is_better(score, best, task->select_larger_is_better))) {
                best = score;
                best_epoch = epoch + 1;
                /* A path ending in '/' makes elm_model_save write model.safetensors and
                 * model_config.json into the folder. */
                char *dir = elm__path_join(r->out, "");
                st = elm_model_save(m, dir);
                free(dir);
                if (st) {
                    cJSON_Delete(row);
                    rc = cli_fail(st, NULL);
                    break;
                }
                fprintf(stderr, " (best so far: saved)");
            }
            fprintf(stderr, "\n");
            cJSON_AddItemToArray(history, row);
            /* metrics.json and metrics.csv from the history. */
            snprintf(path, sizeof path, "%s/metrics.json", r->out);
            write_json(path, history);
            snprintf(path, sizeof path, "%s/metrics.csv", r->out);
            write_metrics_csv(path, history);
        }
        if (epoch_end || stop || step + 1 - last_ckpt >= o->checkpoint_every ||
            step + 1 == total) {
            /* Files first, then state.json naming them (the commit point), then old files go. */
            char mf[128], of[128];
            snprintf(mf, sizeof mf, "step-%ld.model.safetensors", step + 1);
            snprintf(of, sizeof of, "step-%ld.optim.safetensors", step + 1);
            snprintf(path, sizeof path, "%s/%s", ckdir, mf);
            st = elm_model_save(m, path);
            snprintf(path, sizeof path, "%s/%s", ckdir, of);
            if (!st)
                st = elm_optim_save(opt, m, path);
            if (!st) {
                cJSON *sj = cJSON_CreateObject();
                cJSON_AddStringToObject(sj, "model", mf);
                cJSON_AddStringToObject(sj, "optim", of);
                cJSON_AddNumberToObject(sj, "step", (double)(step + 1));
                cJSON_AddNumberToObject(sj, "threads", (double)o->threads);
                if (isfinite(best))
                    cJSON_AddNumberToObject(sj, "best", best);
                cJSON_AddNumberToObject(sj, "best_epoch", (double)best_epoch);
                cJSON_AddItemToObject(sj, "history", cJSON_Duplicate(history, 1));
                st = write_json(state_path, sj);
                cJSON_Delete(sj);
            }
            if (st) {
                rc = cli_fail(st, "the previous checkpoint is intact; free disk space and "
                                  "--resume");
                break;
            }
            /* Remove the checkpoint this one replaces, and leftovers of a killed run. */
            for (int k = 0; k < 2; k++)
                if (last_files[k][0]) {
                    snprintf(path, sizeof path, "%s/%s", ckdir, last_files[k]);
                    unlink(path);
                }
            snprintf(last_files[0], sizeof last_files[0], "%s", mf);
            snprintf(last_files[1], sizeof last_files[1], "%s", of);
            last_ckpt = step + 1;
        }
        if (stop && step + 1 < total) {
            fprintf(stderr, "\nelm: stopped at batch %ld of %ld (%s); resume with --resume\n",
                    step + 1, total, g_stop ? "signal" : "time limit");
            rc = g_stop ? 130 : 0;
            goto done;
        }
    }
    if (rc == 0) {
        /* The best model on the test split. */
        elm_model *bm = NULL;
        char *dir = elm__path_join(r->out, "");
        if (isfinite(best) && elm_model_load(&bm, dir, ELM_F32) == ELM_OK) {
            elm_model_set_threads(bm, (int)o->threads);
            cJSON *tm = cJSON_CreateObject();
            st = task->evaluate(task, bm, "test", tm);
            if (!st) {
                cJSON_AddNumberToObject(tm, "best_epoch", (double)best_epoch);
                cJSON_AddNumberToObject(tm, "train_seconds", now_s() - t_start);
                cJSON_AddNumberToObject(tm, "num_params", (double)elm_model_num_params(bm));
                snprintf(path, sizeof path, "%s/test_metrics.json", r->out);
                write_json(path, tm);
                char *s = cJSON_PrintUnformatted(tm);
                fprintf(stderr, "elm: test metrics of the best model (epoch %ld): %s\n",
                        best_epoch, s);
                free(s);
            } else {
                rc = cli_fail(st, NULL);
            }
            cJSON_Delete(tm);
        }
        elm_model_free(bm);
        free(dir);
        fprintf(stderr, "elm: done in %.1f s; best model in %s/model.safetensors\n",
                now_s() - t_start, r->out);
    }
done:
    if (task && task->free)
        task->free(task);
    elm_model_free(m);
    elm_optim_free(opt);
    cJSON_Delete(history);
    free(x);
    free(tg);
    free(y);
    free(dy);
    free(ckdir);
    free(state_path);
    return rc;
}

/* ---- Command line ---- */

static const char train_usage[] =
    "usage: elm train TASK --data DIR [--valid DIR] --out RUN [options]\n\n"
    "TASK: neuronio | shd | shd-adding | pathfinder\n\n"
    "options:\n"
    "  --config FILE        JSON object of training knobs and model options\n"
    "  --set KEY=VALUE      one knob or model option (repeatable), e.g. --set num_memory=5\n"
    "  --epochs N  --batches-per-epoch N  --batch-size N  --lr X  --seed N  --threads N\n"
    "  --time-limit SEC     stop with a checkpoint after SEC seconds (resume later)\n"
    "  --init MODEL         start from this model instead of a fresh one\n"
    "  --resume             continue RUN from its last checkpoint\n\n"
    "Precedence: task defaults < --config < flags. Model options are the reference's\n"
    "constructor arguments (num_memory, num_branch, num_synapse_per_branch,\n"
    "input_to_synapse_routing, memory_tau_min, memory_tau_max, learn_memory_tau, lambda_value,\n"
    "mlp_num_layers, mlp_hidden_size, mlp_activation, tau_s_value, w_s_value, elm_version, ...).\n"
    "Training knobs:\n";

static void print_train_usage(FILE *f) {
    fputs(train_usage, f);
    for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++)
        fprintf(f, "  %-18s %s\n", knobs[i].key, knobs[i].help);
    fprintf(f, "\nRUN receives config.json, metrics.csv/.json, model.safetensors (best on "
               "validation),\nmodel_config.json, checkpoint/ and test_metrics.json.\n");
}

static const struct {
    const char *flag, *key;
} flag_map[] = {{"--epochs", "epochs"},
                {"--batches-per-epoch", "batches_per_epoch"},
                {"--batch-size", "batch_size"},
                {"--lr", "lr"},
                {"--seed", "seed"},
                {"--threads", "threads"},
                {"--time-limit", "time_limit"},
                {"--optimizer", "optimizer"},
                {"--num-memory", "num_memory"}};

int cmd_train(int argc, char **argv) {
    if (argc < 2 || cli_is_help(argv[1])) {
        print_train_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    run_spec r;
    memset(&r, 0, sizeof r);
    r.task_name = argv[1];
    if (check_task("train", r.task_name, NULL))
        return 2;
    task_defaults(r.task_name, &r.o, &r.mc);
    /* Two passes: --config first, then flags on top of it. */
    const char *cfgfile = NULL, *v;
    for (int i = 2; i < argc; i++)
        if (cli_flag_value(argc, argv, &i, "--config", &v)) {
            if (!v)
                return cli_usage_error(NULL, "--config needs a file");
            cfgfile = v;
        }
    if (cfgfile) {
        elm_status st = load_config_file(&r.o, &r.mc, cfgfile);
        if (st)
            return cli_fail(st, NULL);
    }
    for (int i = 2; i < argc; i++) {
        v = NULL;
        if (cli_is_help(argv[i])) {
            print_train_usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--resume")) {
            r.resume = 1;
            continue;
        }
        if (cli_flag_value(argc, argv, &i, "--config", &v))
            continue;
        if (cli_flag_value(argc, argv, &i, "--data", &v)) {
            r.topts.data = v;
        } else if (cli_flag_value(argc, argv, &i, "--valid", &v)) {
            r.topts.valid = v;
        } else if (cli_flag_value(argc, argv, &i, "--out", &v)) {
            r.out = v;
        } else if (cli_flag_value(argc, argv, &i, "--init", &v)) {
            r.init = v;
        } else if (cli_flag_value(argc, argv, &i, "--set", &v)) {
            const char *eq = v ? strchr(v, '=') : NULL;
            if (!eq)
                return cli_usage_error(NULL, "--set expects KEY=VALUE, got '%s'", v ? v : "");
            char key[64];
            snprintf(key, sizeof key, "%.*s", (int)(eq - v), v);
            elm_status st = set_any(&r.o, &r.mc, key, eq + 1, "--set");
            if (st)
                return cli_fail(st, NULL);
        } else {
            size_t k;
            for (k = 0; k < sizeof flag_map / sizeof flag_map[0]; k++)
                if (cli_flag_value(argc, argv, &i, flag_map[k].flag, &v))
                    break;
            if (k == sizeof flag_map / sizeof flag_map[0]) {
                const char *names[sizeof flag_map / sizeof flag_map[0] + 8] = {
                    "--config", "--data", "--valid", "--out", "--init", "--set", "--resume"};
                int nn = 7;
                for (k = 0; k < sizeof flag_map / sizeof flag_map[0]; k++)
                    names[nn++] = flag_map[k].flag;
                char typed[64];
                snprintf(typed, sizeof typed, "%.*s", (int)strcspn(argv[i], "="), argv[i]);
                return cli_usage_error(NULL,
                                       "train: unknown argument '%s'%s (see elm train --help)",
                                       argv[i], elm__suggest(typed, names, nn));
            }
            if (v) {
                elm_status st = set_any(&r.o, &r.mc, flag_map[k].key, v, flag_map[k].flag);
                if (st)
                    return cli_fail(st, NULL);
            }
        }
        if (!v)
            return cli_usage_error(NULL, "%s needs a value", argv[i]);
    }
    if (!r.topts.data || !r.out)
        return cli_usage_error(NULL, "train: --data and --out are required (see elm train "
                                     "--help)");
    return run_train(&r);
}

static const char eval_usage[] =
    "usage: elm eval TASK --model MODEL --data DIR [--json] [--threads N] [--set KEY=VALUE]\n\n"
    "Evaluates MODEL on the task's test data in DIR and prints the task's metrics:\n"
    "  neuronio: AUC, AUC @ 0.0025 FP, AUC @ 0.0100 FP, TP @ 0.0025 FP, TP @ 0.0100 FP,\n"
    "            soma_RMSE, soma_MAE, soma_explained_variance_percent (the reference's names)\n"
    "  shd, shd-adding, pathfinder: accuracy, loss, num_samples\n";

int cmd_eval(int argc, char **argv) {
    if (argc < 2 || cli_is_help(argv[1])) {
        fputs(eval_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    run_spec r;
    memset(&r, 0, sizeof r);
    r.task_name = argv[1];
    if (check_task("eval", r.task_name, eval_usage))
        return 2;
    task_defaults(r.task_name, &r.o, &r.mc);
    r.o.input_dropout = 0;
    const char *model = NULL, *v;
    int json = 0;
    for (int i = 2; i < argc; i++) {
        v = NULL;
        if (cli_is_help(argv[i])) {
            fputs(eval_usage, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--json")) {
            json = 1;
            continue;
        }
        if (cli_flag_value(argc, argv, &i, "--model", &v))
            model = v;
        else if (cli_flag_value(argc, argv, &i, "--data", &v))
            r.topts.data = v;
        else if (cli_flag_value(argc, argv, &i, "--threads", &v)) {
            if (v && knob_set(&r.o, "threads", v, "--threads"))
                return cli_fail(ELM_ERR_ARG, NULL);
        } else if (cli_flag_value(argc, argv, &i, "--set", &v)) {
            const char *eq = v ? strchr(v, '=') : NULL;
            if (!eq)
                return cli_usage_error(eval_usage, "--set expects KEY=VALUE");
            char key[64];
            snprintf(key, sizeof key, "%.*s", (int)(eq - v), v);
            if (knob_set(&r.o, key, eq + 1, "--set"))
                return cli_fail(ELM_ERR_CONFIG, NULL);
        } else {
            static const char *const names[] = {"--model", "--data", "--threads", "--set",
                                                "--json"};
            char typed[64];
            snprintf(typed, sizeof typed, "%.*s", (int)strcspn(argv[i], "="), argv[i]);
            return cli_usage_error(eval_usage, "eval: unknown argument '%s'%s", argv[i],
                                   elm__suggest(typed, names, 5));
        }
        if (!v)
            return cli_usage_error(eval_usage, "%s needs a value", argv[i]);
    }
    if (!model || !r.topts.data)
        return cli_usage_error(eval_usage, "eval: --model and --data are required");
    elm_model *m = NULL;
    elm_status st = elm_model_load(&m, model, ELM_F32);
    if (st)
        return cli_fail(st, NULL);
    elm_model_set_threads(m, (int)r.o.threads);
    r.topts.seed = (uint64_t)r.o.seed;
    r.topts.threads = (int)r.o.threads;
    r.topts.eval_samples = r.o.eval_samples;
    r.topts.eval_batch = (int)r.o.eval_batch;
    r.topts.seq_len = (int)r.o.seq_len;
    r.topts.for_training = 0;
    elm_task *task = NULL;
    st = make_task(&task, r.task_name, &r.topts);
    if (st) {
        elm_model_free(m);
        return cli_fail(st, NULL);
    }
    int rc = 0;
    const elm_config *c = elm_model_config(m);
    if (c->num_input != task->num_input || c->num_output != task->num_output) {
        rc = cli_error("%s: the model has %d inputs and %d outputs; %s data needs %d and %d",
                       model, c->num_input, c->num_output, r.task_name, task->num_input,
                       task->num_output);
    } else {
        cJSON *mt = cJSON_CreateObject();
        double t0 = now_s();
        st = task->evaluate(task, m, "test", mt);
        if (st) {
            rc = cli_fail(st, NULL);
        } else if (json) {
            char *s = cJSON_Print(mt);
            printf("%s\n", s);
            free(s);
        } else {
            /* Counts (num_samples, num_simulations, ...) as integers, scores with 6 decimals. */
            for (cJSON *k = mt->child; k; k = k->next)
                if (cJSON_IsNumber(k) && k->valuedouble == floor(k->valuedouble) &&
                    fabs(k->valuedouble) < 1e15 && !strncmp(k->string, "num_", 4))
                    printf("%-34s %.0f\n", k->string, k->valuedouble);
                else if (cJSON_IsNumber(k))
                    printf("%-34s %.6f\n", k->string, k->valuedouble);
            fprintf(stderr, "elm: evaluated in %.2f s\n", now_s() - t0);
        }
        cJSON_Delete(mt);
    }
    task->free(task);
    elm_model_free(m);
    return rc;
}
