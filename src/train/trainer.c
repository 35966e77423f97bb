/*
 * trainer.c - the training loop every task and every front end shares (elm_trainer_* in
 * elm_train.h), and the run folder it writes.
 *
 * A run folder RUN holds config.json, metrics.csv/.json, model.safetensors (+ model_config.json,
 * the best model on validation), checkpoint/ and test_metrics.json (elm_train.h describes each).
 * checkpoint/state.json is written last and atomically and names the files of the newest complete
 * checkpoint (step-<N>.model.safetensors, step-<N>.optim.safetensors), so a run killed at any
 * moment resumes from it; it also carries the step, the best score and the metrics history.
 *
 * Reproducibility: batch k is drawn from an rng seeded by (seed, k) alone (elm_task_batch), so a
 * resumed run draws exactly the batches of an uninterrupted one and, with the same thread count,
 * ends with a bitwise identical model.
 *
 * Precision: the tasks work in float32 (batches, targets, losses). A float64 model gets its
 * inputs and dL/dy converted to double and its outputs to float for the loss.
 */
#include "train/train_internal.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Divergence. The loss of the run's first batch (the model as created or loaded, before any
 * update; kept in checkpoint/state.json as "scale", so that a resumed run, whose epoch means
 * count batches from before the resume, judges as the uninterrupted run) sets the scale, with a
 * floor for losses that start near 0: a batch loss above DIVERGE_STOP times it stops the run,
 * and an epoch whose mean training loss is above DIVERGE_EPOCH times it is never selected as the
 * best, whatever its validation score. A healthy run's losses stay within a small factor of where they started;
 * these factors are far outside that, while a run that diverges passes them within a few
 * batches.
 */
#define DIVERGE_STOP  100.0
#define DIVERGE_EPOCH 10.0
#define DIVERGE_FLOOR 0.01

struct elm_trainer {
    elm_train_spec spec; /* strings owned (copies) */
    elm_task_opts topts;
    elm_task *task;
    elm_model *m;
    elm_optim *opt;
    elm_train_hooks hooks;
    int B, T, I, O, sparse;
    long nb, total, step, step0, last_ckpt;
    /* Batch buffers: float32 as the tasks give them, double copies for a float64 model. */
    float *x, *tg, *y, *dy;
    double *x64, *y64, *dy64, *val64;
    size_t val64_cap;
    /* The epoch in progress, and the run's best. */
    double epoch_loss, lr, last_elapsed;
    long epoch_n;
    double best;
    long best_epoch;
    double scale; /* divergence scale: the run's first batch loss (floored); NAN before */
    cJSON *history;
    char *ckdir, *state_path;
    char last_files[2][128]; /* the checkpoint the next one replaces (and removes) */
    double t_start;
    double elapsed0; /* the run's wall seconds before this process (a resume's checkpoint) */
    int resumed, stopped;
    volatile sig_atomic_t stop_requested;
    char *test_json;
    /* Data-parallel training (spec.dist): this process runs samples [lb0, lb1) of each batch
     * (whole gradient groups); counts[r] samples are process r's. writer: this process writes
     * the run folder (process 0, or the only one). sloss: per-sample losses of the batch. */
    int writer;
    int lb0, lb1;
    int *counts;
    double *sloss;
    int64_t *sptr; /* row pointers of this process's share of a spike-list batch */
    elm_grad_reducer red;
    elm_batch_split split;
};

static int distributed(const elm_trainer *tr) {
    return tr->spec.dist && tr->spec.dist->size > 1;
}

/* Waits for every process (a one-integer allreduce): files process 0 wrote are complete. */
static elm_status dist_barrier(elm_trainer *tr) {
    int32_t z = 0;
    return distributed(tr) ? tr->spec.dist->max_i32(tr->spec.dist->user, &z, 1) : ELM_OK;
}

/* ---- Run folder files ---- */

/* Wall seconds of the run so far, across resumes. */
static double run_seconds(const elm_trainer *tr) {
    return tr->elapsed0 + (elm__now_s() - tr->t_start);
}

/*
 * metrics.csv: one row per epoch. The columns are every key that is a number (or null) in some
 * epoch, in order of first appearance, so the header and the column count do not depend on
 * which epoch's metric was NaN or missing, nor on whether the history came back from
 * state.json (a resume), where NaN is stored as null. A NaN, null or missing value is written
 * `nan`, which numpy (loadtxt, genfromtxt) and pandas (read_csv) read back as NaN.
 */
static elm_status write_metrics_csv(const char *path, const cJSON *history) {
    int cap = 0, nc = 0;
    for (const cJSON *row = history->child; row; row = row->next)
        cap += cJSON_GetArraySize(row);
    if (!cap)
        return ELM_OK;
    const char **cols = malloc(sizeof(char *) * (size_t)cap);
    if (!cols)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    for (const cJSON *row = history->child; row; row = row->next)
        for (const cJSON *k = row->child; k; k = k->next) {
            int seen = !elm__json_is_score(k);
            for (int c = 0; c < nc && !seen; c++)
                seen = !strcmp(cols[c], k->string);
            if (!seen)
                cols[nc++] = k->string;
        }
    elm__atomic_file af;
    elm_status st = elm__atomic_open(&af, path);
    if (st) {
        free(cols);
        return st;
    }
    for (int c = 0; c < nc; c++)
        fprintf(af.f, "%s%s", c ? "," : "", cols[c]);
    fputc('\n', af.f);
    for (const cJSON *row = history->child; row; row = row->next) {
        for (int c = 0; c < nc; c++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, cols[c]);
            if (cJSON_IsNumber(v) && !isnan(v->valuedouble))
                fprintf(af.f, "%s%.9g", c ? "," : "", v->valuedouble);
            else
                fprintf(af.f, "%snan", c ? "," : ""); /* printf may write "-nan" */
        }
        fputc('\n', af.f);
    }
    free(cols);
    return elm__atomic_commit(&af);
}

/* RUN/name, into buf. */
static const char *run_path(const elm_trainer *tr, const char *name, char *buf, size_t n) {
    snprintf(buf, n, "%s/%s", tr->spec.out, name);
    return buf;
}

/* The files a run writes into RUN (checkpoint/ aside). */
static const char *const run_files[] = {"config.json",       "metrics.csv",
                                        "metrics.json",      "model.safetensors",
                                        "model_config.json", "test_metrics.json"};
#define N_RUN_FILES ((int)(sizeof run_files / sizeof run_files[0]))

/* What RUN holds: 0 no run, 1 an unfinished run (its files or a checkpoint, no test metrics
 * yet), 2 a finished run. */
static int held_run(const char *out) {
    char path[4096];
    snprintf(path, sizeof path, "%s/test_metrics.json", out);
    if (elm__is_file(path))
        return 2;
    for (int k = 0; k < N_RUN_FILES; k++) {
        snprintf(path, sizeof path, "%s/%s", out, run_files[k]);
        if (elm__is_file(path))
            return 1;
    }
    snprintf(path, sizeof path, "%s/checkpoint/state.json", out);
    return elm__is_file(path);
}

/* Starting over (force): removes the files an earlier run wrote, and only those, since RUN may
 * hold other things. */
static elm_status clear_run(const char *out) {
    char path[4096];
    snprintf(path, sizeof path, "%s/checkpoint", out);
    DIR *dh = opendir(path);
    if (dh) {
        struct dirent *e;
        while ((e = readdir(dh))) {
            const char *n = e->d_name;
            if (strcmp(n, "state.json") &&
                !(!strncmp(n, "step-", 5) && elm__ends_with(n, ".safetensors")))
                continue;
            snprintf(path, sizeof path, "%s/checkpoint/%s", out, n);
            if (unlink(path) != 0 && errno != ENOENT) {
                closedir(dh);
                return elm__fail(ELM_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
            }
        }
        closedir(dh);
    }
    for (int k = 0; k < N_RUN_FILES; k++) {
        snprintf(path, sizeof path, "%s/%s", out, run_files[k]);
        if (unlink(path) != 0 && errno != ENOENT)
            return elm__fail(ELM_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
    }
    return ELM_OK;
}

/* Checks before a long run that RUN is a folder we can write into. */
static elm_status check_writable(const char *dir) {
    elm_status st = elm__mkdir_p(dir);
    if (st)
        return st;
    char *probe = elm__path_join(dir, ".write-test");
    if (!probe)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    st = elm__write_file_atomic(probe, "ok\n", 3);
    if (!st)
        unlink(probe);
    free(probe);
    return st;
}

/* A model configuration as a cJSON object (NULL when out of memory). */
static cJSON *config_json(const elm_config *c) {
    char *js = elm_config_to_json(c);
    cJSON *o = js ? cJSON_Parse(js) : NULL;
    free(js);
    return o;
}

/* The resolved run description, config.json. */
static elm_status write_run_config(const elm_trainer *tr) {
    cJSON *cfg = cJSON_CreateObject();
    cJSON_AddStringToObject(cfg, "elm", ELM_VERSION_STRING);
    cJSON_AddStringToObject(cfg, "task", tr->spec.task);
    cJSON_AddStringToObject(cfg, "data", tr->spec.data);
    if (tr->spec.valid)
        cJSON_AddStringToObject(cfg, "valid", tr->spec.valid);
    if (tr->spec.test)
        cJSON_AddStringToObject(cfg, "test", tr->spec.test);
    cJSON_AddItemToObject(cfg, "train", elm__train_config_json(&tr->spec.train));
    cJSON_AddItemToObject(cfg, "model", config_json(elm_model_config(tr->m)));
    char path[4096];
    elm_status st = elm__json_write(run_path(tr, "config.json", path, sizeof path), cfg);
    cJSON_Delete(cfg);
    return st;
}

/* ---- Opening a run ---- */

static elm_status copy_spec(elm_trainer *tr, const elm_train_spec *s) {
    tr->spec = *s;
    const char **fields[] = {&tr->spec.task, &tr->spec.data, &tr->spec.valid, &tr->spec.test,
                             &tr->spec.out,  &tr->spec.init};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (*fields[i] && !(*fields[i] = elm__strdup(*fields[i])))
            return elm__fail(ELM_ERR_NOMEM, "out of memory");
    return ELM_OK;
}

static elm_status open_task(elm_trainer *tr) {
    const elm_train_config *o = &tr->spec.train;
    elm_task_opts *t = &tr->topts;
    t->data = tr->spec.data;
    t->valid = tr->spec.valid;
    t->test = tr->spec.test;
    t->seed = (uint64_t)o->seed;
    t->threads = (int)o->threads;
    t->input_dropout = o->input_dropout;
    t->bin_ms = o->bin_ms;
    t->pixel_levels = (int)o->pixel_levels;
    t->seq_len = (int)o->seq_len;
    t->batches_per_epoch = o->batches_per_epoch;
    t->batch_size = (int)o->batch_size;
    t->eval_samples = o->eval_samples;
    t->eval_batch = (int)o->eval_batch;
    t->for_training = 1;
    elm_status st = elm_task_create(&tr->task, tr->spec.task, t);
    if (st)
        return st;
    tr->B = (int)o->batch_size;
    tr->T = tr->task->seq_len;
    tr->I = tr->task->num_input;
    tr->O = tr->task->num_output;
    tr->spec.model.num_input = tr->I;
    tr->spec.model.num_output = tr->O;
    tr->nb = tr->task->batches_per_epoch;
    tr->sparse = tr->task->train_batch_sparse != NULL;
    if (tr->B < 1 || tr->nb < 1 || o->epochs < 1)
        return elm__fail(ELM_ERR_CONFIG,
                         "batch_size, batches_per_epoch and epochs must be >= 1");
    /* Each is at most 9e15 (config.c); their product must not overflow (undefined behaviour). */
    if ((double)o->epochs * (double)tr->nb > 9e15)
        return elm__fail(ELM_ERR_CONFIG, "epochs x batches_per_epoch = %ld x %ld is more batches "
                                         "than a run can count",
                         (long)o->epochs, (long)tr->nb);
    tr->total = o->epochs * tr->nb;
    return ELM_OK;
}

/* Knobs a resumed run may change: they alter speed, memory or when it stops, not the model. */
static int may_change_on_resume(const char *knob) {
    static const char *const free_knobs[] = {"threads", "time_limit", "checkpoint_every",
                                             "ckpt_stride", "eval_batch"};
    for (size_t k = 0; k < sizeof free_knobs / sizeof free_knobs[0]; k++)
        if (!strcmp(knob, free_knobs[k]))
            return 1;
    return 0;
}

/*
 * --resume continues the run in RUN with the settings RUN/config.json records (D7 of issue 15: a
 * resume without the original flags went on with the default batch size, lr and seed, and
 * rewrote config.json). A spec that disagrees with the file on the task, a training knob (but
 * threads, time_limit, checkpoint_every, ckpt_stride and eval_batch) or, for a run not started
 * from an --init model, a model option, is refused naming the setting. No config.json: nothing
 * to compare (a run killed before it wrote one).
 */
static elm_status check_resume_config(elm_trainer *tr) {
    char path[4096];
    run_path(tr, "config.json", path, sizeof path);
    if (!elm__is_file(path))
        return ELM_OK;
    cJSON *have = NULL;
    elm_status st = elm__json_read(path, 1 << 20, &have);
    if (st)
        return st;
    const char *task = cJSON_GetStringValue(cJSON_GetObjectItem(have, "task"));
    if (!cJSON_IsObject(have) || (task && strcmp(task, tr->spec.task))) {
        st = elm__fail(ELM_ERR_CONFIG, "%s: the run is %s%s%s, not %s", path,
                       task ? "a " : "not a JSON object", task ? task : "",
                       task ? " run" : "", tr->spec.task);
        cJSON_Delete(have);
        return st;
    }
    cJSON *want_train = elm__train_config_json(&tr->spec.train), *want_model = NULL;
    if (!tr->spec.init) {
        elm_config c = tr->spec.model;
        want_model = elm_config_resolve(&c) == ELM_OK ? config_json(&c) : NULL;
    }
    char *now = NULL, *was = NULL;
    const char *section = "train";
    const cJSON *d = elm__json_first_difference(want_train, cJSON_GetObjectItem(have, "train"),
                                                may_change_on_resume, &now, &was);
    if (!d && want_model) {
        section = "model";
        d = elm__json_first_difference(want_model, cJSON_GetObjectItem(have, "model"), NULL,
                                       &now, &was);
    }
    if (d)
        st = elm__fail(ELM_ERR_CONFIG,
                       "%s: the run was trained with %s %s = %.40s; resuming it with %.40s "
                       "would change the run (resume with the run's own settings, or start over "
                       "with --force)",
                       path, section, d->string, was, now);
    free(was);
    free(now);
    cJSON_Delete(want_train);
    cJSON_Delete(want_model);
    cJSON_Delete(have);
    return st;
}

/* Removes files of checkpoints a killed run had begun or not yet removed. */
static void remove_stale(const char *ckdir, const char *keep_model, const char *keep_optim) {
    DIR *dh = opendir(ckdir);
    for (struct dirent *e = dh ? readdir(dh) : NULL; e; e = readdir(dh)) {
        int ours = !strncmp(e->d_name, "step-", 5) || strstr(e->d_name, ".tmp.");
        if (!ours || !strcmp(e->d_name, keep_model) || !strcmp(e->d_name, keep_optim))
            continue;
        char stale[4096];
        snprintf(stale, sizeof stale, "%s/%s", ckdir, e->d_name);
        unlink(stale);
    }
    if (dh)
        closedir(dh);
}

/* A JSON number that is an integer in [lo, hi], into *v. */
static int json_long(const cJSON *j, double lo, double hi, long *v) {
    if (!cJSON_IsNumber(j) || j->valuedouble != floor(j->valuedouble) || j->valuedouble < lo ||
        j->valuedouble > hi)
        return 0;
    *v = (long)j->valuedouble;
    return 1;
}

/*
 * The model and the run's progress from checkpoint/state.json; *optim_path gets the optimiser's
 * file. Only an absent state.json means "no checkpoint" (tr->resumed stays 0): a run killed
 * before its first checkpoint. Anything else that is not what write_state writes is an error
 * naming the file (D5, D6 of issue 15: garbage once restarted the run, and "step": 1e300 made a
 * run that never ends): every field is type- and range-checked, unknown fields are refused,
 * and the files it names must be this step's, in the checkpoint folder.
 */
static elm_status load_state(elm_trainer *tr, char *optim_path, size_t n) {
    struct stat sb;
    if (stat(tr->state_path, &sb) != 0 && errno == ENOENT)
        return ELM_OK;
    cJSON *state = NULL;
    elm_status st = elm__json_read(tr->state_path, 64 << 20, &state);
    if (st) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", elm_last_error());
        return elm__fail(st, "%s (the run's checkpoint state; --force starts the run over)", msg);
    }
    static const char *const fields[] = {"model",   "optim",      "step",       "threads",
                                         "best",    "best_epoch", "history",    "epoch_loss",
                                         "epoch_batches", "scale", "elapsed"};
    const int nf = (int)(sizeof fields / sizeof fields[0]);
    char why[512] = "";
    for (const cJSON *it = cJSON_IsObject(state) ? state->child : NULL; it && !why[0];
         it = it->next) {
        int known = 0;
        for (int k = 0; k < nf; k++)
            known |= !strcmp(it->string, fields[k]);
        if (!known)
            snprintf(why, sizeof why, "unknown field '%.64s'", it->string);
    }
    const char *mf = cJSON_GetStringValue(cJSON_GetObjectItem(state, "model"));
    const char *of = cJSON_GetStringValue(cJSON_GetObjectItem(state, "optim"));
    cJSON *hist = cJSON_GetObjectItem(state, "history");
    cJSON *bj = cJSON_GetObjectItem(state, "best"), *el = cJSON_GetObjectItem(state, "epoch_loss");
    cJSON *eb = cJSON_GetObjectItem(state, "epoch_batches");
    cJSON *sc = cJSON_GetObjectItem(state, "scale");
    cJSON *ej = cJSON_GetObjectItem(state, "elapsed");
    long step = 0, best_epoch = -1, threads = 0, ebn = 0, in_epoch = 0;
    char want[2][128];
    if (why[0]) {
    } else if (!cJSON_IsObject(state)) {
        snprintf(why, sizeof why, "not a JSON object");
    } else if (!json_long(cJSON_GetObjectItem(state, "step"), 1, (double)tr->total, &step)) {
        snprintf(why, sizeof why, "'step' must be an integer in [1, %ld] (the run's batches)",
                 tr->total);
    } else if (snprintf(want[0], sizeof want[0], "step-%ld.model.safetensors", step),
               snprintf(want[1], sizeof want[1], "step-%ld.optim.safetensors", step),
               !mf || !of || strcmp(mf, want[0]) || strcmp(of, want[1])) {
        snprintf(why, sizeof why, "'model' and 'optim' must be \"%s\" and \"%s\"", want[0],
                 want[1]);
    } else if (cJSON_GetObjectItem(state, "threads") &&
               !json_long(cJSON_GetObjectItem(state, "threads"), 0, 1 << 16, &threads)) {
        snprintf(why, sizeof why, "'threads' must be an integer in [0, 65536]");
    } else if (!json_long(cJSON_GetObjectItem(state, "best_epoch"), -1,
                          (double)(step / tr->nb), &best_epoch)) {
        snprintf(why, sizeof why, "'best_epoch' must be an integer in [-1, %ld]",
                 step / tr->nb);
    } else if (bj ? !cJSON_IsNumber(bj) || !isfinite(bj->valuedouble) || best_epoch < 1
                  : best_epoch != -1) {
        snprintf(why, sizeof why, "'best' must be a finite number exactly when 'best_epoch' is "
                                  "at least 1");
    } else if (in_epoch = step % tr->nb ? step % tr->nb : tr->nb,
               !cJSON_IsArray(hist) || cJSON_GetArraySize(hist) > step / tr->nb) {
        snprintf(why, sizeof why, "'history' must be an array of at most %ld epochs",
                 step / tr->nb);
    } else if (!el != !eb || (el && (!cJSON_IsNumber(el) || !isfinite(el->valuedouble) ||
                                     !json_long(eb, 0, (double)in_epoch, &ebn)))) {
        snprintf(why, sizeof why, "'epoch_loss' must be finite and 'epoch_batches' an integer "
                                  "in [0, %ld], both or neither",
                 in_epoch);
    } else if (sc && (!cJSON_IsNumber(sc) || !(sc->valuedouble >= DIVERGE_FLOOR) ||
                      !isfinite(sc->valuedouble))) {
        snprintf(why, sizeof why, "'scale' must be a finite number of at least %g",
                 DIVERGE_FLOOR);
    } else if (ej && (!cJSON_IsNumber(ej) || !(ej->valuedouble >= 0) ||
                      !isfinite(ej->valuedouble))) {
        snprintf(why, sizeof why, "'elapsed' must be a finite number of seconds, at least 0");
    }
    for (const cJSON *r = cJSON_IsArray(hist) ? hist->child : NULL; r && !why[0]; r = r->next)
        if (!cJSON_IsObject(r))
            snprintf(why, sizeof why, "'history' must hold one object per epoch");
    char path[4096];
    if (why[0]) {
        st = elm__fail(ELM_ERR_FORMAT, "%s: malformed checkpoint state: %s (--force starts the "
                                       "run over)",
                       tr->state_path, why);
        goto done;
    }
    snprintf(path, sizeof path, "%s/%s", tr->ckdir, mf);
    st = elm_model_load(&tr->m, path, tr->spec.train.dtype);
    if (!st && (elm_model_config(tr->m)->num_input != tr->I ||
                elm_model_config(tr->m)->num_output != tr->O))
        st = elm__fail(ELM_ERR_SHAPE, "%s: checkpoint model does not fit the task", path);
    if (st)
        goto done;
    tr->step0 = step;
    tr->best = bj ? bj->valuedouble : (double)NAN;
    tr->best_epoch = best_epoch;
    /* The running sums of the epoch the checkpoint fell in (D8): its train_loss then averages
     * every batch of the epoch, as an uninterrupted run's does. Checkpoints written before
     * these fields existed resume with the batches after the resume only. */
    if (el && step % tr->nb) {
        tr->epoch_loss = el->valuedouble;
        tr->epoch_n = ebn;
    }
    /* Checkpoints written before "scale" existed: the first batch after the resume sets it. */
    if (sc)
        tr->scale = sc->valuedouble;
    /* metrics' elapsed_seconds and train_seconds count the run, not this process (checkpoints
     * written before "elapsed" existed restart the clock); --time-limit stays per process. */
    if (ej)
        tr->elapsed0 = ej->valuedouble;
    tr->history = cJSON_DetachItemFromObject(state, "history");
    snprintf(optim_path, n, "%s/%s", tr->ckdir, of);
    if (tr->writer)
        remove_stale(tr->ckdir, mf, of);
    snprintf(tr->last_files[0], sizeof tr->last_files[0], "%s", mf);
    snprintf(tr->last_files[1], sizeof tr->last_files[1], "%s", of);
    tr->resumed = 1;
done:
    cJSON_Delete(state);
    return st;
}

/*
 * A model from --init keeps its own configuration, so a model option the run sets (one that
 * differs from the task's default) must agree with it: `--init M --set num_memory=150` would
 * otherwise train M's 100 memory units without a word.
 */
static elm_status check_init_config(const elm_trainer *tr) {
    elm_train_spec d;
    elm_status st = elm_train_spec_default(&d, tr->spec.task);
    if (st)
        return st;
    elm_config resolved = tr->spec.model;
    if ((st = elm_config_resolve(&resolved)))
        return st;
    /* Set: the run's options against the defaults, both as given; agree: resolved, as the
     * model's are. */
    cJSON *set = config_json(&tr->spec.model), *dflt = config_json(&d.model),
          *want = config_json(&resolved), *have = config_json(elm_model_config(tr->m));
    if (!set || !dflt || !want || !have)
        st = elm__fail(ELM_ERR_NOMEM, "out of memory");
    for (const cJSON *k = set ? set->child : NULL; k && !st; k = k->next) {
        const cJSON *w = cJSON_GetObjectItem(want, k->string),
                    *h = cJSON_GetObjectItem(have, k->string);
        /* The task decides these two; new_model checks them against the data. */
        if (!strcmp(k->string, "num_input") || !strcmp(k->string, "num_output") ||
            cJSON_Compare(k, cJSON_GetObjectItem(dflt, k->string), 1) ||
            cJSON_Compare(w, h, 1))
            continue;
        char *wv = cJSON_PrintUnformatted(w), *hv = cJSON_PrintUnformatted(h);
        st = elm__fail(ELM_ERR_CONFIG,
                       "%s: the model has %s = %s, the run sets %s: a model from --init keeps "
                       "its own configuration (drop the setting, or train a fresh model)",
                       tr->spec.init, k->string, hv ? hv : "?", wv ? wv : "?");
        free(wv);
        free(hv);
    }
    cJSON_Delete(set);
    cJSON_Delete(dflt);
    cJSON_Delete(want);
    cJSON_Delete(have);
    return st;
}

/* A model from spec.init, or a fresh one. */
static elm_status new_model(elm_trainer *tr) {
    const elm_train_spec *s = &tr->spec;
    if (!s->init)
        return elm_model_create(&tr->m, &s->model, s->train.dtype, (uint64_t)s->train.seed);
    elm_status st = elm_model_load(&tr->m, s->init, s->train.dtype);
    if (!st && (elm_model_config(tr->m)->num_input != tr->I ||
                elm_model_config(tr->m)->num_output != tr->O))
        st = elm__fail(ELM_ERR_SHAPE, "%s: model has %d inputs / %d outputs, the task %d / %d",
                       s->init, elm_model_config(tr->m)->num_input,
                       elm_model_config(tr->m)->num_output, tr->I, tr->O);
    if (!st)
        st = check_init_config(tr);
    return st;
}

static elm_status make_optim(elm_trainer *tr, const char *optim_path) {
    const elm_train_config *o = &tr->spec.train;
    elm_optim_config oc;
    elm_optim_config_default(&oc, o->optimizer, o->lr);
    /* AdamW keeps torch's default decay (1e-2) unless one is given. */
    if (o->weight_decay > 0 || o->optimizer != ELM_OPT_ADAMW)
        oc.weight_decay = o->weight_decay;
    elm_status st = elm_optim_create(&tr->opt, tr->m, &oc);
    if (!st && tr->step0 > 0)
        st = elm_optim_load(tr->opt, tr->m, optim_path);
    return st;
}

/*
 * Gradient groups (grad_group): the model sums the batch's gradient exactly over groups of
 * samples fixed by index, so that threads and processes do not change it. With several
 * processes, each takes a contiguous run of whole groups (uneven when they do not divide), and
 * the model reduces over them through spec.dist; evaluation is split too.
 */
static elm_status setup_groups(elm_trainer *tr) {
    const elm_train_dist *d = tr->spec.dist;
    const int np = distributed(tr) ? d->size : 1, rank = distributed(tr) ? d->rank : 0;
    int g = (int)tr->spec.train.grad_group;
    if (g <= 0)
        g = tr->B >= 16 ? 8 : (tr->B + 1) / 2;
    tr->lb0 = 0;
    tr->lb1 = tr->B;
    if (!(tr->counts = calloc((size_t)np, sizeof(int))) ||
        !(tr->sloss = calloc((size_t)tr->B, sizeof(double))))
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    tr->counts[0] = tr->B;
    if (elm_model_config(tr->m)->model_type != ELM_MODEL_ELM) {
        if (np > 1)
            return elm__fail(ELM_ERR_CONFIG, "data-parallel training needs an ELM model: an "
                                             "LSTM's gradient is not summed in fixed groups");
        return ELM_OK; /* the LSTM keeps its per-thread sums */
    }
    const int ng = (tr->B + g - 1) / g;
    if (np == 1)
        return elm_model_set_grad_groups(tr->m, g, NULL);
    if (ng < np)
        return elm__fail(ELM_ERR_CONFIG,
                         "batch_size %d in gradient groups of %d (grad_group) is %d group%s for "
                         "%d ranks: every rank needs one; lower grad_group, raise batch_size or "
                         "start fewer ranks",
                         tr->B, g, ng, ng == 1 ? "" : "s", np);
    for (int r = 0; r < np; r++) {
        long q0 = (long)ng * r / np, q1 = (long)ng * (r + 1) / np;
        long b0 = q0 * g, b1 = q1 * g < tr->B ? q1 * g : tr->B;
        tr->counts[r] = (int)(b1 - b0);
        if (r == rank) {
            tr->lb0 = (int)b0;
            tr->lb1 = (int)b1;
        }
    }
    tr->red = (elm_grad_reducer){
        .user = d->user, .total_groups = ng, .max_i32 = d->max_i32, .sum_i64 = d->sum_i64};
    tr->split = (elm_batch_split){
        .rank = d->rank, .size = d->size, .user = d->user, .allgather = d->allgather};
    elm_model_set_batch_split(tr->m, &tr->split);
    if (tr->sparse &&
        !(tr->sptr = malloc(sizeof(int64_t) * ((size_t)(tr->lb1 - tr->lb0) * (size_t)tr->T + 1))))
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    return elm_model_set_grad_groups(tr->m, g, &tr->red);
}

static elm_status alloc_buffers(elm_trainer *tr) {
    size_t nx = (size_t)tr->B * (size_t)tr->T * (size_t)tr->I;
    size_t ny = (size_t)tr->B * (size_t)tr->T * (size_t)tr->O;
    const int f64 = elm_model_dtype(tr->m) == ELM_F64;
    int bad = 0;
    if (!tr->sparse)
        bad |= !(tr->x = malloc(sizeof(float) * nx)) ||
               (f64 && !(tr->x64 = malloc(sizeof(double) * nx)));
    bad |= !(tr->tg = malloc(sizeof(float) * (size_t)tr->B * tr->task->target_len));
    bad |= !(tr->y = malloc(sizeof(float) * ny)) || !(tr->dy = malloc(sizeof(float) * ny));
    if (f64)
        bad |= !(tr->y64 = malloc(sizeof(double) * ny)) ||
               !(tr->dy64 = malloc(sizeof(double) * ny));
    if (bad)
        return elm__fail(ELM_ERR_NOMEM, "out of memory for a batch of %d x %d x %d", tr->B,
                         tr->T, tr->I);
    return ELM_OK;
}

static elm_status trainer_open(elm_trainer **out, const elm_train_spec *s, int resume) {
    *out = NULL;
    if (!s || !s->task || !s->data || !s->out)
        return elm__fail(ELM_ERR_ARG, "a training run needs a task, data and a run folder");
    elm_trainer *tr = calloc(1, sizeof *tr);
    if (!tr)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    tr->best = (double)NAN;
    tr->best_epoch = -1;
    tr->scale = (double)NAN;
    char optim_path[4096] = "";
    elm_status st = ELM_OK;
    /* Process 0 alone looks at and writes the run folder; the others only read a checkpoint. */
    const int writer = !s->dist || s->dist->rank == 0;
    tr->writer = writer;
    if (s->dist && (s->dist->size < 1 || s->dist->rank < 0 || s->dist->rank >= s->dist->size ||
                    (s->dist->size > 1 && (!s->dist->max_i32 || !s->dist->sum_i64 ||
                                           !s->dist->allgather)))) {
        free(tr);
        return elm__fail(ELM_ERR_ARG, "data-parallel training: rank %d of %d, or a missing call",
                         s->dist->rank, s->dist->size);
    }
    /* Never overwrite a run unasked: a fresh run in a folder that holds one needs s->force. */
    const int held = resume || !writer ? 0 : held_run(s->out);
    if (held && !s->force)
        st = elm__fail(ELM_ERR_ARG,
                       "%s holds %s run; training into it would overwrite its model, config and "
                       "metrics",
                       s->out, held == 2 ? "a finished" : "an unfinished");
    else if (held)
        st = clear_run(s->out);
    if (!st && s->train.lr_min > s->train.lr)
        st = elm__fail(ELM_ERR_CONFIG,
                       "lr_min (%g) is above lr (%g): the cosine schedule decays from lr to "
                       "lr_min",
                       s->train.lr_min, s->train.lr);
    if (!st)
        st = copy_spec(tr, s);
    if (!st && (!(tr->ckdir = elm__path_join(s->out, "checkpoint")) ||
                !(tr->state_path = elm__path_join(tr->ckdir, "state.json"))))
        st = elm__fail(ELM_ERR_NOMEM, "out of memory");
    /* Folders this call creates, removed again if it fails: a refused run leaves nothing. */
    const int made_out = writer && !st && access(s->out, F_OK) != 0;
    const int made_ck = writer && !st && access(tr->ckdir, F_OK) != 0;
    if (!st && writer)
        st = check_writable(s->out);
    if (!st && writer)
        st = elm__mkdir_p(tr->ckdir);
    if (!st)
        st = open_task(tr);
    if (!st && resume)
        st = check_resume_config(tr);
    if (!st && resume)
        st = load_state(tr, optim_path, sizeof optim_path);
    if (!st && !tr->m)
        st = new_model(tr);
    if (!st && !tr->history && !(tr->history = cJSON_CreateArray()))
        st = elm__fail(ELM_ERR_NOMEM, "out of memory");
    if (!st) {
        elm_model_set_threads(tr->m, (int)s->train.threads);
        elm_model_set_checkpoint_stride(tr->m, (int)s->train.ckpt_stride);
        st = s->train.fma ? elm_model_set_fma(tr->m, 1) : ELM_OK;
        if (st)
            st = elm__fail_prefix(ELM_ERR_CONFIG, "fma=1");
        else
            st = make_optim(tr, optim_path);
    }
    if (!st && writer)
        st = write_run_config(tr);
    if (!st)
        st = setup_groups(tr);
    if (!st)
        st = alloc_buffers(tr);
    if (st) {
        /* rmdir removes only empty folders: nothing the user or a run put there is lost. */
        if (made_ck)
            rmdir(tr->ckdir);
        if (made_out)
            rmdir(s->out);
        elm_trainer_free(tr);
        return st;
    }
    tr->step = tr->last_ckpt = tr->step0;
    tr->t_start = elm__now_s();
    *out = tr;
    return ELM_OK;
}

elm_status elm_trainer_create(elm_trainer **out, const elm_train_spec *s) {
    return trainer_open(out, s, 0);
}

elm_status elm_trainer_resume(elm_trainer **out, const elm_train_spec *s) {
    return trainer_open(out, s, 1);
}

void elm_trainer_free(elm_trainer *tr) {
    if (!tr)
        return;
    elm_task_free(tr->task);
    elm_model_free(tr->m);
    elm_optim_free(tr->opt);
    cJSON_Delete(tr->history);
    free(tr->x);
    free(tr->tg);
    free(tr->y);
    free(tr->dy);
    free(tr->x64);
    free(tr->y64);
    free(tr->dy64);
    free(tr->val64);
    free(tr->ckdir);
    free(tr->state_path);
    free(tr->test_json);
    free(tr->counts);
    free(tr->sloss);
    free(tr->sptr);
    free((char *)tr->spec.task);
    free((char *)tr->spec.data);
    free((char *)tr->spec.valid);
    free((char *)tr->spec.test);
    free((char *)tr->spec.out);
    free((char *)tr->spec.init);
    free(tr);
}

/* ---- Accessors ---- */

elm_status elm_trainer_set_hooks(elm_trainer *tr, const elm_train_hooks *h) {
    if (!tr)
        return elm__fail(ELM_ERR_ARG, "elm_trainer_set_hooks: no trainer");
    if (h)
        tr->hooks = *h;
    else
        memset(&tr->hooks, 0, sizeof tr->hooks);
    return ELM_OK;
}

void elm_trainer_get_info(const elm_trainer *tr, elm_train_info *out) {
    memset(out, 0, sizeof *out);
    out->task = tr->spec.task;
    out->epochs = tr->spec.train.epochs;
    out->batches_per_epoch = tr->nb;
    out->total_steps = tr->total;
    out->batch_size = tr->B;
    out->seq_len = tr->T;
    out->step = tr->step;
    out->resumed_from = tr->step0;
    out->resumed = tr->resumed;
    out->best = tr->best;
    out->best_epoch = tr->best_epoch;
    out->stopped = tr->stopped;
    out->elapsed_s = elm__now_s() - tr->t_start;
}

elm_model *elm_trainer_model(elm_trainer *tr) {
    return tr->m;
}

elm_task *elm_trainer_task(elm_trainer *tr) {
    return tr->task;
}

void elm_trainer_request_stop(elm_trainer *tr) {
    if (tr)
        tr->stop_requested = 1;
}

const char *elm_trainer_test_metrics(const elm_trainer *tr) {
    return tr->test_json;
}

/* ---- One batch ---- */

/* The spike lists with values in double, for a float64 model. */
static elm_status sparse_f64(elm_trainer *tr, elm_sparse_input *xs) {
    if (!xs->val)
        return ELM_OK;
    size_t nnz = (size_t)xs->ptr[(size_t)tr->B * (size_t)tr->T];
    if (nnz > tr->val64_cap) {
        double *v = realloc(tr->val64, sizeof(double) * nnz);
        if (!v)
            return elm__fail(ELM_ERR_NOMEM, "out of memory for a batch's spike lists");
        tr->val64 = v;
        tr->val64_cap = nnz;
    }
    const float *val = xs->val;
    for (size_t i = 0; i < nnz; i++)
        tr->val64[i] = (double)val[i];
    xs->val = tr->val64;
    return ELM_OK;
}

/* This process's share of a spike-list batch (samples lb0 .. lb1 - 1), rows rebased to 0. */
static elm_sparse_input sparse_share(elm_trainer *tr, const elm_sparse_input *xs) {
    if (tr->lb0 == 0 && tr->lb1 == tr->B)
        return *xs;
    const size_t r0 = (size_t)tr->lb0 * (size_t)tr->T, nr = (size_t)(tr->lb1 - tr->lb0) * tr->T;
    const int64_t base = xs->ptr[r0];
    for (size_t i = 0; i <= nr; i++)
        tr->sptr[i] = xs->ptr[r0 + i] - base;
    const size_t es = elm_model_dtype(tr->m) == ELM_F64 ? sizeof(double) : sizeof(float);
    return (elm_sparse_input){.ptr = tr->sptr,
                              .idx = xs->idx ? xs->idx + base : NULL,
                              .val = xs->val ? (const char *)xs->val + (size_t)base * es : NULL};
}

/* Forward of this process's share of the batch (all of it with one process): tr->y gets its
 * outputs in float32 (at their place in the batch) whatever the model's dtype. */
static elm_status forward(elm_trainer *tr, elm_sparse_input *xs) {
    const int nb = tr->lb1 - tr->lb0;
    const size_t oy = (size_t)tr->lb0 * (size_t)tr->T * (size_t)tr->O;
    const size_t ox = (size_t)tr->lb0 * (size_t)tr->T * (size_t)tr->I;
    const size_t ny = (size_t)nb * (size_t)tr->T * (size_t)tr->O;
    elm_sparse_input part;
    if (elm_model_dtype(tr->m) != ELM_F64) {
        if (tr->sparse)
            part = sparse_share(tr, xs);
        return tr->sparse ? elm_model_forward_train_sparse(tr->m, &part, tr->y + oy, nb, tr->T)
                          : elm_model_forward_train(tr->m, tr->x + ox, tr->y + oy, nb, tr->T);
    }
    elm_status st;
    if (tr->sparse) {
        st = sparse_f64(tr, xs);
        part = sparse_share(tr, xs);
        if (!st)
            st = elm_model_forward_train_sparse(tr->m, &part, tr->y64, nb, tr->T);
    } else {
        const size_t nx = (size_t)nb * (size_t)tr->T * (size_t)tr->I;
        for (size_t i = 0; i < nx; i++)
            tr->x64[i] = (double)tr->x[ox + i];
        st = elm_model_forward_train(tr->m, tr->x64, tr->y64, nb, tr->T);
    }
    for (size_t i = 0; !st && i < ny; i++)
        tr->y[oy + i] = (float)tr->y64[i];
    return st;
}

/*
 * The loss of this process's samples, one sample at a time, and dL/dy of the batch's mean loss
 * (each sample's gradient divided by the global batch size): the same per-sample arithmetic
 * whichever process holds a sample. The per-sample losses are gathered and added in sample
 * order, so every process gets the one loss a single process computes.
 */
static elm_status batch_loss(elm_trainer *tr, double *loss, int gather) {
    const size_t ys = (size_t)tr->T * (size_t)tr->O, ts = tr->task->target_len;
    for (int b = tr->lb0; b < tr->lb1; b++) {
        float *dy = tr->dy + (size_t)b * ys;
        tr->sloss[b] = tr->task->loss(tr->task, tr->y + (size_t)b * ys, tr->tg + (size_t)b * ts,
                                      dy, 1);
        for (size_t i = 0; i < ys; i++)
            dy[i] = (float)((double)dy[i] / (double)tr->B);
    }
    if (gather && distributed(tr)) {
        elm_status st = tr->spec.dist->allgather(tr->spec.dist->user, tr->sloss, tr->counts,
                                                 sizeof(double));
        if (st)
            return st;
    }
    double s = 0;
    for (int b = 0; b < tr->B; b++)
        s += tr->sloss[b];
    *loss = s / (double)tr->B;
    return ELM_OK;
}

static elm_status backward(elm_trainer *tr) {
    const size_t oy = (size_t)tr->lb0 * (size_t)tr->T * (size_t)tr->O;
    if (elm_model_dtype(tr->m) != ELM_F64)
        return elm_model_backward(tr->m, tr->dy + oy);
    const size_t ny = (size_t)(tr->lb1 - tr->lb0) * (size_t)tr->T * (size_t)tr->O;
    for (size_t i = 0; i < ny; i++)
        tr->dy64[i] = (double)tr->dy[oy + i];
    return elm_model_backward(tr->m, tr->dy64);
}

static void report_progress(elm_trainer *tr) {
    if (!tr->hooks.progress)
        return;
    const long step = tr->step - 1;
    const double el = tr->last_elapsed, done = (double)(tr->step - tr->step0);
    elm_train_progress p = {
        .epoch = step / tr->nb + 1,
        .batch = step % tr->nb + 1,
        .step = tr->step,
        .loss = tr->epoch_loss / (double)tr->epoch_n,
        .lr = tr->lr,
        .sample_steps_per_s = done * tr->B * tr->T / (el > 0 ? el : 1e-9),
        .eta_s = el / done * (double)(tr->total - step - 1),
        .elapsed_s = el,
        .epoch_end = step % tr->nb == tr->nb - 1,
    };
    tr->hooks.progress(tr->hooks.user, &p);
}

elm_status elm_trainer_step(elm_trainer *tr, double *loss_out) {
    if (tr->step >= tr->total)
        return elm__fail(ELM_ERR_ARG, "the run is complete (%ld batches)", tr->total);
    const long step = tr->step, epoch = step / tr->nb, b = step % tr->nb;
    if (b == 0) {
        tr->epoch_loss = 0;
        tr->epoch_n = 0;
    }
    elm__rng rng;
    elm__task_position(tr->task, (uint64_t)tr->spec.train.seed, step, tr->nb, &rng);
    elm_sparse_input xs;
    elm_status st = tr->sparse ? tr->task->train_batch_sparse(tr->task, &rng, tr->B, &xs, tr->tg)
                               : tr->task->train_batch(tr->task, &rng, tr->B, tr->x, tr->tg);
    if (st)
        return st;
    const elm_train_config *o = &tr->spec.train;
    double lr = elm_lr_cosine(o->lr, o->lr_min, step, tr->total);
    elm_model_zero_grad(tr->m);
    st = forward(tr, &xs);
    double loss = (double)NAN;
    if (!st)
        st = batch_loss(tr, &loss, 1);
    if (!st)
        st = backward(tr);
    if (!st && tr->hooks.grads_ready)
        st = tr->hooks.grads_ready(tr->hooks.user, tr->m);
    if (st)
        return st;
    double gnorm = elm_model_clip_grad_norm(tr->m, o->grad_clip);
    if (!isfinite(loss) || !isfinite(gnorm))
        return elm__fail(ELM_ERR_NUMERIC, "non-finite %s at epoch %ld, batch %ld (global batch "
                                          "%ld); %s%s",
                         isfinite(loss) ? "gradient" : "loss", epoch + 1, b + 1, step + 1,
                         tr->last_files[0][0] ? "the last good checkpoint is kept in "
                                              : "no checkpoint had been written",
                         tr->last_files[0][0] ? tr->ckdir : "");
    if (isnan(tr->scale))
        tr->scale = fmax(loss, DIVERGE_FLOOR);
    if (loss > DIVERGE_STOP * tr->scale)
        return elm__fail(ELM_ERR_NUMERIC,
                         "training diverged at epoch %ld, batch %ld (global batch %ld): loss "
                         "%.4g is over %.0f times the first batch's %.4g; %s",
                         epoch + 1, b + 1, step + 1, loss, DIVERGE_STOP, tr->scale,
                         isfinite(tr->best) ? "the best model of the epochs before is kept"
                                            : "no model was saved");
    st = elm_optim_step(tr->opt, tr->m, lr);
    if (st)
        return st;
    tr->epoch_loss += loss;
    tr->epoch_n++;
    tr->lr = lr;
    tr->step++;
    tr->last_elapsed = elm__now_s() - tr->t_start;
    if (loss_out)
        *loss_out = loss;
    report_progress(tr);
    return ELM_OK;
}

elm_status elm_trainer_time_batch(elm_trainer *tr, double *seconds) {
    *seconds = 0;
    if (tr->step >= tr->total)
        return elm__fail(ELM_ERR_ARG, "the run is complete (%ld batches)", tr->total);
    const double t0 = elm__now_s();
    elm__rng rng;
    elm__task_position(tr->task, (uint64_t)tr->spec.train.seed, tr->step, tr->nb, &rng);
    elm_sparse_input xs;
    elm_status st = tr->sparse ? tr->task->train_batch_sparse(tr->task, &rng, tr->B, &xs, tr->tg)
                               : tr->task->train_batch(tr->task, &rng, tr->B, tr->x, tr->tg);
    elm_model_zero_grad(tr->m);
    if (!st)
        st = forward(tr, &xs);
    double loss;
    if (!st)
        st = batch_loss(tr, &loss, 0);
    if (!st)
        st = backward(tr);
    /* Every step zeroes the gradients first; zeroing them here too leaves nothing behind. */
    elm_model_zero_grad(tr->m);
    *seconds = elm__now_s() - t0;
    return st;
}

/* ---- Epochs, checkpoints, the run ---- */

static int is_better(double a, double b, int larger) {
    return larger ? a > b : a < b;
}

/* Saves the model as RUN/model.safetensors (+ model_config.json) when `score` is the best and
 * the epoch's training did not run away. */
static elm_status keep_if_best(elm_trainer *tr, long epoch, double score, int diverged,
                               int *saved) {
    *saved = 0;
    if (diverged || !isfinite(score) ||
        (isfinite(tr->best) && !is_better(score, tr->best, tr->task->select_larger_is_better)))
        return ELM_OK;
    tr->best = score;
    tr->best_epoch = epoch;
    if (!tr->writer) {
        *saved = 1;
        return ELM_OK;
    }
    /* A path ending in '/' makes elm_model_save write both files into the folder. */
    char *dir = elm__path_join(tr->spec.out, "");
    if (!dir)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    elm_status st = elm_model_save(tr->m, dir);
    free(dir);
    *saved = !st;
    return st;
}

elm_status elm_trainer_end_epoch(elm_trainer *tr) {
    if (tr->epoch_n < 1)
        return elm__fail(ELM_ERR_ARG, "elm_trainer_end_epoch: no batch trained in this epoch");
    const long epoch = (tr->step - 1) / tr->nb + 1;
    const double train_loss = tr->epoch_loss / (double)tr->epoch_n, te = elm__now_s();
    cJSON *row = cJSON_CreateObject();
    cJSON_AddNumberToObject(row, "epoch", (double)epoch);
    cJSON_AddNumberToObject(row, "train_loss", train_loss);
    cJSON_AddNumberToObject(row, "lr", tr->lr);
    /* Scores come from the exact path even when training fuses multiply-adds (fma=1), so that
     * `elm eval` reproduces them on any CPU; evaluation is a few percent of an epoch. */
    elm_model_set_fma(tr->m, 0);
    elm_status st = elm__task_evaluate_json(tr->task, tr->m, "valid", row);
    elm_model_set_fma(tr->m, (int)tr->spec.train.fma);
    if (st) {
        cJSON_Delete(row);
        return st;
    }
    cJSON_AddNumberToObject(row, "eval_seconds", elm__now_s() - te);
    cJSON_AddNumberToObject(row, "elapsed_seconds", run_seconds(tr));
    cJSON *sel = cJSON_GetObjectItem(row, tr->task->select_metric);
    elm_train_epoch e = {.epoch = epoch,
                         .train_loss = train_loss,
                         .select_metric = tr->task->select_metric,
                         .score = cJSON_IsNumber(sel) ? sel->valuedouble : (double)NAN,
                         .diverged = !(train_loss <= DIVERGE_EPOCH * tr->scale)};
    st = keep_if_best(tr, epoch, e.score, e.diverged, &e.saved);
    if (st) {
        cJSON_Delete(row);
        return st;
    }
    char *text = tr->hooks.epoch_end ? cJSON_PrintUnformatted(row) : NULL;
    cJSON_AddItemToArray(tr->history, row);
    char path[4096];
    if (tr->writer)
        st = elm__json_write(run_path(tr, "metrics.json", path, sizeof path), tr->history);
    if (!st && tr->writer)
        st = write_metrics_csv(run_path(tr, "metrics.csv", path, sizeof path), tr->history);
    if (!st && tr->hooks.epoch_end) {
        e.metrics = text ? text : "{}";
        tr->hooks.epoch_end(tr->hooks.user, &e);
    }
    free(text);
    return st;
}

/* state.json: the commit point of a checkpoint. */
static elm_status write_state(elm_trainer *tr, const char *mf, const char *of) {
    cJSON *sj = cJSON_CreateObject();
    cJSON_AddStringToObject(sj, "model", mf);
    cJSON_AddStringToObject(sj, "optim", of);
    cJSON_AddNumberToObject(sj, "step", (double)tr->step);
    cJSON_AddNumberToObject(sj, "threads", (double)tr->spec.train.threads);
    /* Reals with 17 significant digits: cJSON's printer may drop the last bit, and a resumed
     * run must compare scores and sum losses exactly as an uninterrupted one. */
    char num[40];
    if (isfinite(tr->best)) {
        snprintf(num, sizeof num, "%.17g", tr->best);
        cJSON_AddRawToObject(sj, "best", num);
    }
    cJSON_AddNumberToObject(sj, "best_epoch", (double)tr->best_epoch);
    snprintf(num, sizeof num, "%.17g", tr->epoch_loss);
    cJSON_AddRawToObject(sj, "epoch_loss", num);
    cJSON_AddNumberToObject(sj, "epoch_batches", (double)tr->epoch_n);
    /* The divergence scale is the run's, not this process's: a resumed run compares its losses
     * (and the resumed epoch's mean, which counts the batches before the resume) with the
     * first batch's loss of the run, as the uninterrupted run does. */
    if (isfinite(tr->scale)) {
        snprintf(num, sizeof num, "%.17g", tr->scale);
        cJSON_AddRawToObject(sj, "scale", num);
    }
    cJSON_AddNumberToObject(sj, "elapsed", run_seconds(tr));
    cJSON_AddItemToObject(sj, "history", cJSON_Duplicate(tr->history, 1));
    elm_status st = elm__json_write(tr->state_path, sj);
    cJSON_Delete(sj);
    return st;
}

elm_status elm_trainer_checkpoint(elm_trainer *tr) {
    if (!tr->writer) { /* process 0 writes the checkpoint of all: their models are the same */
        tr->last_ckpt = tr->step;
        return ELM_OK;
    }
    /* Files first, then state.json naming them (the commit point), then old files go. */
    char mf[128], of[128], path[4096];
    snprintf(mf, sizeof mf, "step-%ld.model.safetensors", tr->step);
    snprintf(of, sizeof of, "step-%ld.optim.safetensors", tr->step);
    snprintf(path, sizeof path, "%s/%s", tr->ckdir, mf);
    elm_status st = elm_model_save(tr->m, path);
    snprintf(path, sizeof path, "%s/%s", tr->ckdir, of);
    if (!st)
        st = elm_optim_save(tr->opt, tr->m, path);
    if (!st)
        st = write_state(tr, mf, of);
    if (st) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", elm_last_error());
        return elm__fail(st, "%s (the previous checkpoint is intact)", msg);
    }
    /* Remove the checkpoint this one replaces, and leftovers of a killed run. */
    for (int k = 0; k < 2; k++)
        if (tr->last_files[k][0] && strcmp(tr->last_files[k], k ? of : mf)) {
            snprintf(path, sizeof path, "%s/%s", tr->ckdir, tr->last_files[k]);
            unlink(path);
        }
    snprintf(tr->last_files[0], sizeof tr->last_files[0], "%s", mf);
    snprintf(tr->last_files[1], sizeof tr->last_files[1], "%s", of);
    tr->last_ckpt = tr->step;
    return ELM_OK;
}

/*
 * Adds the best epoch's validation metrics (its metrics.json row, the scores the model was
 * selected on) to tm as valid_<name>; training-side columns (epoch, lr, times, train_loss) are
 * left out.
 */
static void add_best_valid(const elm_trainer *tr, cJSON *tm) {
    const cJSON *row;
    cJSON_ArrayForEach(row, tr->history) {
        const cJSON *ep = cJSON_GetObjectItemCaseSensitive(row, "epoch");
        if (!cJSON_IsNumber(ep) || ep->valuedouble != (double)tr->best_epoch)
            continue;
        for (const cJSON *it = row->child; it; it = it->next) {
            static const char *const skip[] = {"epoch", "train_loss", "lr", "eval_seconds",
                                               "elapsed_seconds"};
            /* null: a NaN score, as state.json gives back a resumed run's history */
            int s = !(cJSON_IsNumber(it) || cJSON_IsString(it) || cJSON_IsNull(it));
            for (size_t k = 0; k < sizeof skip / sizeof skip[0]; k++)
                s |= !strcmp(it->string, skip[k]);
            if (s)
                continue;
            char name[96];
            snprintf(name, sizeof name, "valid_%s", it->string);
            cJSON_AddItemToObject(tm, name, cJSON_Duplicate(it, 1));
        }
    }
}

/*
 * The end of a run: test_metrics.json (and tr->test_json) with the best model's validation
 * scores as valid_<name> and, where the task has test data, its scores there as test_<name>
 * (arrays such as a confusion matrix included). Without test data the file says so in "note":
 * a validation score is never written under a test name.
 */
static elm_status test_best(elm_trainer *tr) {
    if (!isfinite(tr->best))
        return elm__fail(ELM_ERR_NUMERIC,
                         "no epoch gave a usable model (every validation %s was non-finite or "
                         "its training had diverged); nothing was saved",
                         tr->task->select_metric);
    elm_model *bm = NULL;
    /* Process 0 wrote the best model: the others wait until it is complete. */
    elm_status st = dist_barrier(tr);
    if (st)
        return st;
    char *dir = elm__path_join(tr->spec.out, "");
    if (!dir)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    /* A best model that cannot be read back is an error, not a run that ends without test
     * metrics (under MPI, a rank that skipped the evaluation would leave the others waiting). */
    if ((st = elm_model_load(&bm, dir, tr->spec.train.dtype))) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", elm_last_error());
        free(dir);
        return elm__fail(st, "%s (the best model, read back to score it at the end of the run)",
                         msg);
    }
    elm_model_set_threads(bm, (int)tr->spec.train.threads); /* bm: the exact path, as valid */
    if (distributed(tr))
        elm_model_set_batch_split(bm, &tr->split);
    cJSON *tm = cJSON_CreateObject(), *te = cJSON_CreateObject();
    if (tr->task->has_test)
        st = elm__task_evaluate_json(tr->task, bm, "test", te);
    else
        cJSON_AddStringToObject(tm, "note", "no test data: only the validation scores that "
                                        "selected the model (valid_*)");
    for (cJSON *it = te->child; !st && it; it = it->next) {
        char name[96];
        snprintf(name, sizeof name, "test_%s", it->string);
        cJSON_AddItemToObject(tm, name, cJSON_Duplicate(it, 1));
    }
    cJSON_Delete(te);
    add_best_valid(tr, tm);
    if (!st) {
        char path[4096];
        cJSON_AddNumberToObject(tm, "best_epoch", (double)tr->best_epoch);
        cJSON_AddNumberToObject(tm, "train_seconds", run_seconds(tr));
        cJSON_AddNumberToObject(tm, "num_params", (double)elm_model_num_params(bm));
        if (tr->writer)
            st = elm__json_write(run_path(tr, "test_metrics.json", path, sizeof path), tm);
        free(tr->test_json);
        tr->test_json = cJSON_PrintUnformatted(tm);
    }
    cJSON_Delete(tm);
    elm_model_free(bm);
    free(dir);
    return st;
}

elm_status elm_trainer_run(elm_trainer *tr) {
    const elm_train_config *o = &tr->spec.train;
    tr->stopped = 0;
    while (tr->step < tr->total) {
        elm_status st = elm_trainer_step(tr, NULL);
        if (st)
            return st;
        const int epoch_end = tr->step % tr->nb == 0;
        int stop = tr->stop_requested ? 1
                   : (o->time_limit > 0 && tr->last_elapsed >= o->time_limit) ? 2
                                                                              : 0;
        /* Processes stop together: on a request or time limit seen by any of them. */
        if (distributed(tr)) {
            int32_t f = stop;
            if ((st = tr->spec.dist->max_i32(tr->spec.dist->user, &f, 1)))
                return st;
            stop = f;
        }
        if (epoch_end && (st = elm_trainer_end_epoch(tr)))
            return st;
        if ((epoch_end || stop || tr->step - tr->last_ckpt >= o->checkpoint_every ||
             tr->step == tr->total) &&
            (st = elm_trainer_checkpoint(tr)))
            return st;
        if (stop && tr->step < tr->total) {
            tr->stopped = stop;
            /* The request is answered: a later elm_trainer_run continues the run. */
            tr->stop_requested = 0;
            return ELM_OK;
        }
    }
    return test_best(tr);
}
