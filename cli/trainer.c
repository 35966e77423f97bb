/*
 * trainer.c - `elm train TASK` and `elm eval TASK` over the training library (elm_train.h).
 *
 * The loop, the run folder and its checkpoints belong to the library (src/train/trainer.c), so
 * a run any front end writes is continued by `elm train --resume`. What stays here is what only
 * a terminal has: the command line, the progress bar and the epoch lines on stderr, and SIGINT /
 * SIGTERM, which ask the trainer to stop after the current batch (with a checkpoint; exit 130).
 */
#include "cli.h"
#include "elm_train.h"
#include "internal.h"
#include "pathfinder/pathfinder.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- Progress on stderr: a bar redrawn in place on a terminal, a line every 10 s otherwise ---- */

static void fmt_time(char *buf, size_t n, double s) {
    if (!isfinite(s) || s < 0)
        s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

typedef struct {
    int tty;
    double last;
    long epochs, nb;
} progress;

static void progress_show(progress *p, const elm_train_progress *g, double eta, int final) {
    double t = elm__now_s();
    if (!final && t - p->last < (p->tty ? 0.2 : 10.0))
        return;
    p->last = t;
    char eta_s[32];
    fmt_time(eta_s, sizeof eta_s, eta);
    int width = 24, fill = p->nb > 0 ? (int)((double)width * (double)g->batch / (double)p->nb) : 0;
    char bar[32];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    const double sps = g->sample_steps_per_s;
    const int mega = sps >= 1e6;
    fprintf(stderr, "%sepoch %ld/%ld [%s] %ld/%ld loss %.5f %.3g%s sample-steps/s ETA %s%s",
            p->tty ? "\r" : "", g->epoch, p->epochs, bar, g->batch, p->nb, g->loss,
            sps / (mega ? 1e6 : 1e3), mega ? "M" : "k", eta_s,
            p->tty ? (final ? "\n" : "") : "\n");
    fflush(stderr);
}

/*
 * Fault injection for the tests (tests/mpi): ELM_TEST_KILL_AT=R:S makes rank R (0 without MPI)
 * kill itself with SIGKILL after batch S, as a crashed node would.
 */
static void test_kill(long step) {
    const char *k = getenv("ELM_TEST_KILL_AT");
    int r;
    long s;
    if (k && sscanf(k, "%d:%ld", &r, &s) == 2 && r == cli_mpi_rank && step == s)
        raise(SIGKILL);
}

static void on_quiet_progress(void *user, const elm_train_progress *g) {
    (void)user;
    test_kill(g->step);
}

static void on_progress(void *user, const elm_train_progress *g) {
    test_kill(g->step);
    progress_show(user, g, g->eta_s, 0);
    if (g->epoch_end)
        progress_show(user, g, 0, 1);
}

static void on_epoch(void *user, const elm_train_epoch *e) {
    (void)user;
    fprintf(stderr, "elm: epoch %ld: train loss %.5f, valid %s %.6g%s\n", e->epoch, e->train_loss,
            e->select_metric, e->score,
            e->saved      ? " (best so far: saved)"
            : e->diverged ? " (training loss over 10 times the first batch's: not eligible as "
                            "the best model)"
                          : "");
}

/* SIGINT / SIGTERM: the trainer stops after the current batch, with a checkpoint. */
static elm_trainer *volatile g_trainer;
static volatile sig_atomic_t g_signalled;
static void on_signal(int sig) {
    (void)sig;
    g_signalled = 1;
    elm_trainer_request_stop(g_trainer);
}

/* 0 if `name` is a task; else a usage error (exit 2, as every command gives) with a suggestion. */
static int check_task(const char *cmd, const char *name, const char *usage) {
    const char *const *names;
    const int n = elm_task_names(&names);
    for (int k = 0; k < n; k++)
        if (!strcmp(name, names[k]))
            return 0;
    return cli_usage_error(usage, "%s: unknown task '%s'%s (neuronio, shd, shd-adding, "
                                  "pathfinder)",
                           cmd, name, elm__suggest(name, names, n));
}

/* The inputs and outputs of each task's data, for checking a model configuration early. */
static const struct {
    const char *task;
    int I, O;
} task_io[] = {{"neuronio", 1278, 2}, {"shd", 700, 20}, {"shd-adding", 700, 19}, {"pathfinder", 1, 2}};

elm_status train_check_settings(const char *task, const cJSON *obj, const char *origin) {
    int t = 0;
    while (t < 4 && strcmp(task, task_io[t].task))
        t++;
    if (t == 4)
        return elm__fail(ELM_ERR_ARG, "unknown task '%s'", task);
    elm_train_config tc;
    elm_config c;
    elm_train_config_default(&tc, &c, task);
    for (const cJSON *it = obj ? obj->child : NULL; it; it = it->next) {
        if (!strcmp(it->string, "name"))
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
        else
            return elm__fail(ELM_ERR_CONFIG, "%s: option '%s' has an unsupported value", origin,
                             it->string);
        elm_status st = elm_train_config_set(&tc, &c, it->string, v, origin);
        if (st)
            return st;
    }
    if (tc.lr_min > tc.lr)
        return elm__fail(ELM_ERR_CONFIG, "%s: lr_min (%g) is above lr (%g)", origin, tc.lr_min,
                         tc.lr);
    /* The model configuration as the run would build it (LSTMs resolve too). */
    c.num_input = task_io[t].I;
    c.num_output = task_io[t].O;
    elm_status st = elm_config_resolve(&c);
    return st ? elm__fail_prefix(st, origin) : ELM_OK;
}

/* ---- elm train ---- */

static const char train_usage_head[] =
    "usage: elm train TASK --data DIR [--valid DIR] [--test DIR] --out RUN [options]\n\n"
    "TASK: neuronio | shd | shd-adding | pathfinder\n\n"
    "Data: --data trains (and, without --valid, gives the validation data: neuronio holds out\n"
    "its last file, shd 10 % of shd_train.h5, pathfinder 10 % of the images); --valid selects\n"
    "the best epoch; --test is scored once, by the best model, at the end. Without --test:\n"
    "shd tests on DIR/shd_test.h5, pathfinder on 10 % of the images held out from training and\n"
    "validation, and neuronio has no test data (no test metrics; the validation score is never\n"
    "reported as a test score). Test data that is training or validation data is refused.\n\n"
    "options:\n"
    "  --config FILE        JSON object of training knobs and model options\n"
    "  --set KEY=VALUE      one knob or model option (repeatable), e.g. --set num_memory=5\n"
    "  --epochs N  --batches-per-epoch N  --batch-size N  --lr X  --seed N  --threads N\n"
    "  --time-limit SEC     stop with a checkpoint after SEC seconds (resume later)\n"
    "  --init MODEL         start from this model instead of a fresh one (it keeps its\n"
    "                       configuration: a model option that contradicts it is refused)\n"
    "  --resume             continue RUN from its last checkpoint, with the settings in\n"
    "                       RUN/config.json (a flag that would change the run is refused;\n"
    "                       --threads, --time-limit and the like may differ)\n"
    "  --force              start over in a RUN that holds a run (its files are removed);\n"
    "                       without --resume or --force such a RUN is refused\n\n"
    "Precedence: task defaults < RUN/config.json (--resume) < --config < flags. Model\n"
    "options are the reference's constructor arguments (num_memory, num_branch,\n"
    "num_synapse_per_branch,\n"
    "input_to_synapse_routing, memory_tau_min, memory_tau_max, learn_memory_tau, lambda_value,\n"
    "mlp_num_layers, mlp_hidden_size, mlp_activation, tau_s_value, w_s_value, elm_version, ...).\n"
    "Training knobs:\n";

/* The usage text: the head, one line per knob, and what RUN receives. */
static const char *train_usage(void) {
    static char buf[8192];
    if (buf[0])
        return buf;
    const char *const *names, *const *help;
    const int n = elm_train_knobs(&names, &help);
    size_t len = (size_t)snprintf(buf, sizeof buf, "%s", train_usage_head);
    for (int i = 0; i < n && len < sizeof buf; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "  %-18s %s\n", names[i], help[i]);
    /* Each task's defaults, from elm_train_config_default() itself so the text cannot drift. */
    static const char *const task_batches[] = {"10000", "ceil(N/8) (N training samples)", "2000",
                                               "ceil(N/16) (N training images)"};
    const char *const optims[] = {"adam", "adamw", "adamax"};
    if (len < sizeof buf)
        len += (size_t)snprintf(buf + len, sizeof buf - len,
                                "\nTask defaults (the reference's protocols, docs/TASKS.md):\n");
    for (int k = 0; k < 4 && len < sizeof buf; k++) {
        elm_train_config o;
        elm_config c;
        elm_train_config_default(&o, &c, task_io[k].task);
        char drop[48] = "";
        if (o.input_dropout > 0)
            snprintf(drop, sizeof drop, ", input dropout %g", o.input_dropout);
        len += (size_t)snprintf(buf + len, sizeof buf - len,
                                "  %-11s %ld epochs x %s batches of %ld, %s lr %g%s;\n"
                                "              model: d_m %d, tau_m %g..%g ms",
                                task_io[k].task, o.epochs, task_batches[k], o.batch_size,
                                optims[o.optimizer], o.lr, drop, c.num_memory, c.memory_tau_min,
                                c.memory_tau_max);
        if (len < sizeof buf && c.input_to_synapse_routing == ELM_ROUTE_NEURONIO)
            len += (size_t)snprintf(buf + len, sizeof buf - len,
                                    ", %d branches x %d synapses (neuronio_routing)",
                                    c.num_branch, c.num_synapse_per_branch);
        if (len < sizeof buf && c.delta_t != 1)
            len += (size_t)snprintf(buf + len, sizeof buf - len, ", delta_t %g ms", c.delta_t);
        if (len < sizeof buf)
            len += (size_t)snprintf(buf + len, sizeof buf - len, "\n");
    }
    if (len < sizeof buf)
        snprintf(buf + len, sizeof buf - len,
                 "Plain `elm train neuronio` is the full protocol: 350,000 batches, hours of CPU.\n"
                 "A first try: --epochs 2 --batches-per-epoch 200. Every run prints its budget and\n"
                 "a time estimate before it starts.\n"
                 "\nRUN receives config.json, metrics.csv/.json (per epoch: training loss and "
                 "validation\nmetrics), model.safetensors (best on validation), model_config.json,"
                 " checkpoint/ and,\nat the end, test_metrics.json: the best model's validation "
                 "scores (valid_*) and its\ntest scores (test_*), or a note that there was no "
                 "test data.\n"
                 "\nClusters: `mpirun -np N elm train ...` trains data-parallel over N ranks "
                 "(batch_size is\nthe global batch; the model is bitwise that of one process; "
                 "rank 0 writes RUN).\nThis elm %s.\n",
                 cli_mpi_built() ? "is an MPI build"
                                 : "is not an MPI build (Open MPI was not found when it was built)");
    return buf;
}

/* Flags that are a training knob or a model option under another name. */
static const struct {
    const char *flag, *key;
} flag_keys[] = {{"--epochs", "epochs"},       {"--batches-per-epoch", "batches_per_epoch"},
                 {"--batch-size", "batch_size"}, {"--lr", "lr"},
                 {"--seed", "seed"},           {"--threads", "threads"},
                 {"--time-limit", "time_limit"}, {"--optimizer", "optimizer"},
                 {"--num-memory", "num_memory"}};
#define NFLAG_KEYS ((int)(sizeof flag_keys / sizeof flag_keys[0]))

/* --epochs 3 and friends: the knob of the flag. */
static int set_flag_knob(void *ctx, const char *flag, const char *v) {
    elm_train_spec *s = ctx;
    for (int k = 0; k < NFLAG_KEYS; k++)
        if (!strcmp(flag, flag_keys[k].flag))
            return elm_train_config_set(&s->train, &s->model, flag_keys[k].key, v, flag)
                       ? cli_fail(ELM_ERR_CONFIG, NULL)
                       : 0;
    return cli_error("%s: not a knob flag", flag);
}

/* --set KEY=VALUE: a knob or a model option (train); a knob only (eval). */
static int set_key_value(elm_train_config *tc, elm_config *mc, const char *v) {
    const char *eq = strchr(v, '=');
    if (!eq)
        return cli_usage_error(NULL, "--set expects KEY=VALUE, got '%s'", v);
    char key[64];
    snprintf(key, sizeof key, "%.*s", (int)(eq - v), v);
    return elm_train_config_set(tc, mc, key, eq + 1, "--set") ? cli_fail(ELM_ERR_CONFIG, NULL)
                                                               : 0;
}

static int set_train(void *ctx, const char *flag, const char *v) {
    (void)flag;
    elm_train_spec *s = ctx;
    return set_key_value(&s->train, &s->model, v);
}

/* The run's opening line: the task, the model, the schedule. */
static void print_banner(elm_trainer *tr, const elm_train_spec *s) {
    elm_train_info in;
    elm_trainer_get_info(tr, &in);
    const elm_model *m = elm_trainer_model(tr);
    const elm_config *c = elm_model_config(m);
    char what[64];
    if (c->model_type == ELM_MODEL_LSTM)
        snprintf(what, sizeof what, "LSTM (hidden size %d)", c->lstm_hidden_size);
    else
        snprintf(what, sizeof what, "ELM %s", c->version == ELM_V2 ? "v2" : "v1");
    const char *const optims[] = {"adam", "adamw", "adamax"};
    fprintf(stderr,
            "elm: training %s: %s, %zu parameters, %ld epoch%s x %ld batch%s of %d x %d steps, "
            "%s lr %g\n",
            s->task, what, elm_model_num_params(m), in.epochs, CLI_S(in.epochs),
            in.batches_per_epoch, in.batches_per_epoch == 1 ? "" : "es", in.batch_size,
            in.seq_len, optims[s->train.optimizer], s->train.lr);
}

/* The budget, and a time estimate from one batch timed before training starts (it changes
 * nothing: elm_trainer_time_batch). */
static void print_budget(elm_trainer *tr, int quiet) {
    elm_train_info in;
    elm_trainer_get_info(tr, &in);
    const long left = in.total_steps - in.step;
    if (left <= 0)
        return;
    double secs = 0;
    elm_status st = elm_trainer_time_batch(tr, &secs);
    if (quiet)
        return;
    char eta[32];
    fmt_time(eta, sizeof eta, secs * (double)left);
    const double ss = (double)left * in.batch_size * in.seq_len;
    char ss_s[32];
    snprintf(ss_s, sizeof ss_s, ss < 1e7 ? "%.0f" : "%.3g", ss);
    fprintf(stderr,
            "elm: budget: %ld batch%s (%s sample-steps)%s; about %s of training at the first "
            "batch's speed, plus an evaluation after each epoch\n",
            left, left == 1 ? "" : "es", ss_s, in.step ? " left" : "", st ? "?" : eta);
}

/* The best model's validation score (what selected it) and its test scores, apart: a
 * validation score is never printed as a test score. */
static void report_best(elm_trainer *tr, long best_epoch) {
    cJSON *tm = cJSON_Parse(elm_trainer_test_metrics(tr) ? elm_trainer_test_metrics(tr) : "");
    elm_task_info ti;
    elm_task_get_info(elm_trainer_task(tr), &ti);
    char name[96];
    snprintf(name, sizeof name, "valid_%s", ti.select_metric);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(tm, name);
    if (cJSON_IsNumber(v))
        fprintf(stderr, "elm: best model: epoch %ld, validation %s %.6g\n", best_epoch,
                ti.select_metric, v->valuedouble);
    int ntest = 0;
    for (const cJSON *it = tm ? tm->child : NULL; it; it = it->next)
        if (cJSON_IsNumber(it) && !strncmp(it->string, "test_", 5))
            fprintf(stderr, "%s %s %.6g", ntest++ ? "," : "elm: test metrics of the best model:",
                    it->string + 5, it->valuedouble);
    if (ntest)
        fputc('\n', stderr);
    else if (tm)
        fprintf(stderr, "elm: no test data (give --test DIR): no test metrics\n");
    cJSON_Delete(tm);
}

/* After elm_trainer_run: the outcome on stderr, and the exit status. */
static int report_run(elm_trainer *tr, elm_status st, const elm_train_spec *s) {
    elm_train_info in;
    elm_trainer_get_info(tr, &in);
    if (st == ELM_ERR_NUMERIC && in.best_epoch < 0 && strstr(elm_last_error(), "no epoch"))
        return cli_fail(st, NULL);
    if (st == ELM_ERR_NUMERIC)
        return cli_fail(st, "lower the learning rate (--lr) or clip gradients "
                            "(--set grad_clip=1)");
    if (st)
        return cli_fail(st, NULL);
    if (cli_mpi_rank != 0) /* rank 0 reports for the job */
        return in.stopped == 1 ? 130 : 0;
    if (cli_mpi_size > 1) {
        double secs, bytes;
        long calls;
        cli_mpi_stats(&secs, &bytes, &calls);
        const double steps = (double)(in.step - in.resumed_from);
        if (steps > 0)
            fprintf(stderr,
                    "elm: MPI: %d ranks; gradient allreduce %.3f ms and %.0f bytes per batch "
                    "(%.1f calls, rank 0)\n",
                    cli_mpi_size, 1e3 * secs / steps, bytes / steps, (double)calls / steps);
    }
    if (in.stopped) {
        fprintf(stderr, "\nelm: stopped at batch %ld of %ld (%s); resume with --resume\n",
                in.step, in.total_steps, in.stopped == 1 ? "signal" : "time limit");
        return in.stopped == 1 ? 130 : 0;
    }
    report_best(tr, in.best_epoch);
    fprintf(stderr, "elm: done in %.1f s; best model in %s/model.safetensors\n", in.elapsed_s,
            s->out);
    return 0;
}

static int run_train(const elm_train_spec *s, int resume) {
    elm_trainer *tr = NULL;
    if (s->force && cli_mpi_rank == 0) {
        static const char *const marks[] = {"config.json", "test_metrics.json",
                                            "model.safetensors", "checkpoint/state.json"};
        for (int k = 0; k < 4; k++) {
            char *p = elm__path_join(s->out, marks[k]);
            const int there = p && elm__is_file(p);
            free(p);
            if (there) {
                fprintf(stderr, "elm: --force: the earlier run's files in %s removed; starting "
                                "over\n",
                        s->out);
                break;
            }
        }
    }
    elm_status st = resume ? elm_trainer_resume(&tr, s) : elm_trainer_create(&tr, s);
    if (st && strstr(elm_last_error(), " run; training into it would overwrite"))
        return cli_fail(st, "--resume continues it (a finished run is only evaluated again), "
                            "--force starts over (removing its files), or choose another --out");
    if (st)
        return cli_fail(st, NULL);
    elm_train_info in;
    elm_trainer_get_info(tr, &in);
    const int quiet = cli_mpi_rank != 0; /* under MPI, rank 0 speaks for the job */
    if (quiet)
        ;
    else if (resume && !in.resumed)
        fprintf(stderr, "elm: note: no checkpoint in %s/checkpoint; starting from scratch\n",
                s->out);
    else if (in.resumed)
        fprintf(stderr, "elm: resuming %s at batch %ld\n", s->out, in.resumed_from);
    if (!quiet)
        print_banner(tr, s);
    if (!quiet && cli_mpi_size > 1)
        fprintf(stderr, "elm: data-parallel over %d MPI ranks (the batch of %d is split between "
                        "them)\n",
                cli_mpi_size, in.batch_size);
    print_budget(tr, quiet); /* a collective under MPI: every rank times the batch */
    cli_mpi_stats_reset();   /* the allreduce statistics count training batches only */
    progress pg = {.tty = isatty(2), .epochs = in.epochs, .nb = in.batches_per_epoch};
    elm_train_hooks h = {.user = &pg, .progress = on_progress, .epoch_end = on_epoch};
    if (quiet)
        h = (elm_train_hooks){.progress = on_quiet_progress};
    elm_trainer_set_hooks(tr, &h);
    g_trainer = tr;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    st = elm_trainer_run(tr);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    g_trainer = NULL;
    int rc = report_run(tr, st, s);
    elm_trainer_free(tr);
    return rc;
}

/* A flag of the first pass, which only takes --config, --out and --resume. */
static int skip_flag(void *ctx, const char *flag, const char *value) {
    (void)ctx;
    (void)flag;
    (void)value;
    return 0;
}

/*
 * The settings files, applied before the flags. Precedence: defaults < RUN/config.json (with
 * --resume: the run continues with its own settings, D7 of issue 15) < --config FILE < flags;
 * the trainer refuses a resume whose settings then differ from the run's. A first pass over
 * argv with train's table (flags) takes --config, --out and --resume and only checks the rest.
 * Returns -1 to go on, else the exit status.
 */
static int apply_config_flag(int argc, char **argv, const cli_flag *flags, int nflags,
                             elm_train_spec *s, const char *usage) {
    const char *cfgfile = NULL, *out = NULL;
    int resume = 0;
    union {
        const char *s;
        long l;
        double d;
        unsigned long long u;
        int i;
    } scratch;
    const cli_call skip = {skip_flag, NULL};
    cli_flag pre[9 + NFLAG_KEYS];
    for (int k = 0; k < nflags; k++) {
        pre[k] = flags[k];
        pre[k].dst = !strcmp(flags[k].name, "--config") ? (void *)&cfgfile
                     : !strcmp(flags[k].name, "--out")  ? (void *)&out
                     : !strcmp(flags[k].name, "--resume") ? (void *)&resume
                     : flags[k].kind == CLI_CALL          ? (void *)&skip
                                                          : (void *)&scratch;
    }
    int rc = cli_parse_flags(argc, argv, 2, pre, nflags, usage, "train");
    if (rc >= 0)
        return rc;
    char *run_cfg = resume && out ? elm__path_join(out, "config.json") : NULL;
    /* --time-limit bounds one invocation, not the run: a stop by it is not inherited. */
    const double time_limit = s->train.time_limit;
    int bad = run_cfg && elm__is_file(run_cfg) &&
              elm_train_config_load(&s->train, &s->model, run_cfg);
    s->train.time_limit = time_limit;
    free(run_cfg);
    if (bad || (cfgfile && elm_train_config_load(&s->train, &s->model, cfgfile)))
        return cli_fail(ELM_ERR_CONFIG, NULL);
    return -1;
}

/*
 * Parses `elm train` arguments (argv[0] "train", argv[1] TASK, then flags) into *s as the run
 * takes them: task defaults < --config < flags. Strings in *s are borrowed from argv. Returns -1
 * to go on, else the exit status (the error printed; usage: the text a usage error prints, or
 * NULL for none, as `elm sweep` resolving a point's arguments wants).
 */
int train_parse(int argc, char **argv, elm_train_spec *s, int *resume, const char *usage) {
    if (check_task("train", argv[1], NULL))
        return 2;
    elm_train_spec_default(s, argv[1]);
    const char *config = NULL;
    *resume = 0;
    cli_call knob = {set_flag_knob, s}, set = {set_train, s};
    cli_flag flags[9 + NFLAG_KEYS] = {
        {"--config", CLI_STR, &config, 0, 0, 0}, {"--data", CLI_STR, &s->data, 0, 0, 0},
        {"--valid", CLI_STR, &s->valid, 0, 0, 0}, {"--test", CLI_STR, &s->test, 0, 0, 0},
        {"--out", CLI_STR, &s->out, 0, 0, 0},     {"--init", CLI_STR, &s->init, 0, 0, 0},
        {"--set", CLI_CALL, &set, 0, 0, 0},       {"--resume", CLI_SWITCH, resume, 0, 0, 0},
        {"--force", CLI_SWITCH, &s->force, 0, 0, 0},
    };
    int nflags = 9;
    for (int k = 0; k < NFLAG_KEYS; k++)
        flags[nflags++] = (cli_flag){flag_keys[k].flag, CLI_CALL, &knob, 0, 0, 0};
    int rc = apply_config_flag(argc, argv, flags, nflags, s, usage);
    if (rc >= 0)
        return rc;
    rc = cli_parse_flags(argc, argv, 2, flags, nflags, usage, "train");
    if (rc >= 0)
        return rc;
    if (!s->data || !s->out)
        return cli_usage_error(NULL, "train: --data and --out are required (see elm train "
                                     "--help)");
    if (*resume && s->force)
        return cli_usage_error(NULL, "train: --resume continues RUN and --force starts it over; "
                                     "give one");
    return -1;
}

int cmd_train(int argc, char **argv) {
    if (argc < 2 || cli_is_help(argv[1])) {
        fputs(train_usage(), argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    elm_train_spec s;
    int resume;
    int rc = train_parse(argc, argv, &s, &resume, train_usage());
    if (rc >= 0)
        return rc;
    /* Under mpirun: data-parallel over the job's ranks (cli/mpi.c). */
    if ((rc = cli_mpi_start("train", &argc, &argv)))
        return rc;
    elm_train_dist dist;
    if (cli_mpi_size > 1) {
        cli_mpi_train_dist(&dist);
        s.dist = &dist;
    }
    return cli_mpi_end(run_train(&s, resume));
}

/* ---- elm eval ---- */

static const char eval_usage[] =
    "usage: elm eval TASK --model MODEL --data DIR [--split SPLIT] [--json] [--threads N]\n"
    "                [--set KEY=VALUE]\n\n"
    "Evaluates MODEL on the task's test data in DIR and prints the task's metrics:\n"
    "  neuronio: AUC, AUC @ 0.0025 FP, AUC @ 0.0100 FP, TP @ 0.0025 FP, TP @ 0.0100 FP,\n"
    "            soma_RMSE, soma_MAE, soma_explained_variance_percent (the reference's names)\n"
    "  shd, shd-adding, pathfinder: accuracy, loss, num_samples\n\n"
    "  --split SPLIT  the part of DIR to score (default test):\n"
    "                 pathfinder: all (every image of the folder, for sets kept whole for\n"
    "                 testing), or train, valid, test (its fixed, seeded 80/10/10 split);\n"
    "                 shd, shd-adding: valid or test; neuronio: test\n\n"
    "The data are prepared as the model was trained. shd, shd-adding: spikes binned by bin_ms\n"
    "of the run's config.json in MODEL's folder, else 10 ms (--set bin_ms=MS overrides).\n"
    "pathfinder: pixels encoded as the model takes them: a model of L inputs was trained with\n"
    "pixel_levels L, one-hot over L grey levels; a model of 1 input with the plain pixel\n"
    "(--set pixel_levels=L overrides).\n";

static int set_eval(void *ctx, const char *flag, const char *v) {
    elm_train_config *tc = ctx;
    if (!strcmp(flag, "--threads"))
        return elm_train_config_set(tc, NULL, "threads", v, flag) ? cli_fail(ELM_ERR_ARG, NULL)
                                                                   : 0;
    return set_key_value(tc, NULL, v);
}

/* The metrics: counts (num_samples, num_simulations, ...) as integers, scores with 6 decimals. */
static void print_metrics(const char *json) {
    cJSON *mt = cJSON_Parse(json);
    for (cJSON *k = mt ? mt->child : NULL; k; k = k->next)
        if (cJSON_IsNumber(k) && k->valuedouble == floor(k->valuedouble) &&
            fabs(k->valuedouble) < 1e15 && !strncmp(k->string, "num_", 4))
            printf("%-34s %.0f\n", k->string, k->valuedouble);
        else if (cJSON_IsNumber(k))
            printf("%-34s %.6f\n", k->string, k->valuedouble);
    cJSON_Delete(mt);
}

/*
 * The bin width the run of `model` trained with: train.bin_ms of config.json in MODEL (a run
 * folder) or in the folder of MODEL (a model file). Returns 1 and sets *bin_ms when the file
 * says, 0 when there is no config.json (or it predates the knob: 10 ms then), -1 on a broken
 * one (message printed).
 */
static int run_bin_ms(const char *model, double *bin_ms, char *path, size_t n) {
    const char *slash = strrchr(model, '/');
    if (elm__is_dir(model))
        snprintf(path, n, "%s/config.json", model);
    else if (slash)
        snprintf(path, n, "%.*s/config.json", (int)(slash - model), model);
    else
        snprintf(path, n, "config.json");
    if (!elm__is_file(path))
        return 0;
    cJSON *root = NULL;
    if (elm__json_read(path, 1 << 20, &root)) {
        cli_fail(ELM_ERR_FORMAT, "give --set bin_ms=MS to evaluate without it");
        return -1;
    }
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root,
                                                                                       "train"),
                                                      "bin_ms");
    int rc = 0;
    if (b) {
        char v[64];
        elm_train_config tc;
        elm_config mc;
        elm_train_config_default(&tc, &mc, "shd");
        snprintf(v, sizeof v, "%.17g", cJSON_IsNumber(b) ? b->valuedouble : (double)NAN);
        if (elm_train_config_set(&tc, NULL, "bin_ms", v, path)) {
            rc = -1;
            cli_fail(ELM_ERR_CONFIG, NULL);
        } else if (tc.bin_ms > 0) {
            *bin_ms = tc.bin_ms;
            rc = 1;
        }
    }
    cJSON_Delete(root);
    return rc;
}

/*
 * Evaluates the model at `path` with task `name` over o->data. levels_from_model: Pathfinder's
 * pixel encoding follows the model, whose number of inputs fixes it (1: the plain pixel, L:
 * one-hot over L levels; a model with L inputs was trained with pixel_levels L).
 */
static int run_eval(const char *name, const char *path, elm_task_opts *o, const char *split,
                    int json, int levels_from_model) {
    elm_model *m = NULL;
    elm_status st = elm_model_load(&m, path, ELM_F32);
    if (st)
        return cli_fail(st, NULL);
    elm_model_set_threads(m, o->threads);
    if (levels_from_model) {
        int in = elm_model_config(m)->num_input;
        /* Any other count: the plain pixel, and the task's shape check names the inputs. */
        o->pixel_levels = in > 1 && elm_pf_levels_valid(in) ? in : 0;
        if (o->pixel_levels)
            fprintf(stderr, "elm: pixels one-hot over %d grey levels (the model's %d inputs)\n",
                    in, in);
    }
    elm_task *task = NULL;
    st = elm_task_create(&task, name, o);
    if (st) {
        elm_model_free(m);
        return cli_fail(st, NULL);
    }
    int rc = 0;
    elm_task_info ti;
    elm_task_get_info(task, &ti);
    const elm_config *c = elm_model_config(m);
    char *mt = NULL;
    /* An ELM's decay per step is exp(-delta_t / tau): evaluated on bins of another width, its
     * memory spans another time than it was trained for. */
    if (!strncmp(name, "shd", 3) && c->model_type != ELM_MODEL_LSTM &&
        fabs(c->delta_t - ti.delta_t) > 1e-9)
        fprintf(stderr,
                "elm: warning: %s steps delta_t %g ms but the data are binned at %g ms (bin_ms; "
                "see elm eval --help)\n",
                path, c->delta_t, ti.delta_t);
    double t0 = elm__now_s();
    if (c->num_input != ti.num_input || c->num_output != ti.num_output) {
        rc = cli_error("%s: the model has %d inputs and %d outputs; %s data needs %d and %d", path,
                       c->num_input, c->num_output, name, ti.num_input, ti.num_output);
    } else if ((st = elm_task_evaluate(task, m, split, &mt))) {
        rc = cli_fail(st, NULL);
    } else if (json) {
        printf("%s\n", mt);
    } else {
        print_metrics(mt);
        fprintf(stderr, "elm: evaluated in %.2f s\n", elm__now_s() - t0);
    }
    free(mt);
    elm_task_free(task);
    elm_model_free(m);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    if (argc < 2 || cli_is_help(argv[1])) {
        fputs(eval_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *name = argv[1];
    if (check_task("eval", name, eval_usage))
        return 2;
    elm_train_config tc;
    elm_config mc;
    elm_train_config_default(&tc, &mc, name);
    tc.bin_ms = 0;        /* unset: the run's, else the task's (below) */
    tc.pixel_levels = -1; /* unset: the model's number of inputs says (run_eval) */
    const char *model = NULL, *data = NULL, *split = "test";
    int json = 0;
    cli_call set = {set_eval, &tc};
    const cli_flag flags[] = {
        {"--model", CLI_STR, &model, 0, 0, 0},  {"--data", CLI_STR, &data, 0, 0, 0},
        {"--threads", CLI_CALL, &set, 0, 0, 0}, {"--set", CLI_CALL, &set, 0, 0, 0},
        {"--json", CLI_SWITCH, &json, 0, 0, 0}, {"--split", CLI_STR, &split, 0, 0, 0},
    };
    int rc = cli_parse_flags(argc, argv, 2, flags, 6, eval_usage, "eval");
    if (rc >= 0)
        return rc;
    if (!model || !data)
        return cli_usage_error(eval_usage, "eval: --model and --data are required");
    /* Which splits a task's data has: pathfinder's folder is split 80/10/10 (or scored whole);
     * SHD's test file is its own, its training file split into train and valid; NeuronIO's
     * held-out folder is the test data. */
    int pf = !strcmp(name, "pathfinder"), shd = !strncmp(name, "shd", 3);
    if (strcmp(split, "test") &&
        !(pf && (!strcmp(split, "all") || !strcmp(split, "train") || !strcmp(split, "valid"))) &&
        !(shd && !strcmp(split, "valid")))
        return cli_usage_error(eval_usage, "eval: --split '%s' is not a split of %s data (%s)",
                               split, name,
                               pf ? "all, train, valid or test" : shd ? "valid or test" : "test");
    char cfgpath[4096];
    if (shd && tc.bin_ms == 0) {
        int found = run_bin_ms(model, &tc.bin_ms, cfgpath, sizeof cfgpath);
        if (found < 0)
            return 1;
        if (found)
            fprintf(stderr, "elm: bins of %g ms, as in %s\n", tc.bin_ms, cfgpath);
    }
    elm_task_opts o = {.data = data,
                       .bin_ms = tc.bin_ms,
                       .pixel_levels = tc.pixel_levels > 0 ? (int)tc.pixel_levels : 0,
                       .seed = (uint64_t)tc.seed,
                       .threads = (int)tc.threads,
                       .seq_len = (int)tc.seq_len,
                       .eval_samples = tc.eval_samples,
                       .eval_batch = (int)tc.eval_batch};
    return run_eval(name, model, &o, split, json, pf && tc.pixel_levels < 0);
}
