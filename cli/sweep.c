/*
 * sweep.c - `elm sweep`: train one model per point of a grid (ablation studies) and tabulate them.
 *
 * The grid, the sweep folder's layout and the result tables are library code (src/train/sweep.c
 * describes them); what stays here is the process pool. Each point runs as a child process of
 * this executable (/proc/self/exe, argv array, no shell) with OMP_NUM_THREADS set to its thread
 * budget, its output in OUT/runs/<point>/train.log:
 *   elm train TASK --data D [--valid V] [--test T] --out OUT/runs/<point>
 *       --config OUT/runs/<point>/point.json
 *       --threads N [--resume] [the train options given to the sweep]
 * OUT/sweep.json records the grid and the command line of the last invocation that ran, and
 * OUT/runs/<point>/sweep_args.json the effective arguments each point was trained with (as
 * `elm train` resolves them). A point with a checkpoint is continued with --resume, so rerunning
 * the same command finishes a half-done sweep; a rerun whose arguments differ from those a
 * finished or checkpointed point was trained with is refused before anything starts, naming the
 * differences, unless --force (those points are trained again from scratch). SIGINT / SIGTERM
 * stop the running points (they checkpoint) and exit 130.
 */
#include "cli.h"
#include "elm_train.h"
#include "internal.h"
#include "train/sweep.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

typedef elm__sweep_point point;

static const char sweep_usage[] =
    "usage: elm sweep --task TASK --data DIR [--valid DIR] [--test DIR] --grid GRID.json --out DIR\n"
    "                 [--jobs N] [--threads-per-job N] [--metric NAME] [--dry-run] [--no-plot]\n"
    "                 [--force]\n"
    "                 [elm train options passed to every point, e.g. --epochs 3 --set lr=1e-3]\n\n"
    "Trains one model per point of GRID.json with `elm train TASK` into DIR/runs/<point>/, up to\n"
    "N at a time, then writes DIR/results.csv, DIR/results.json and DIR/<metric>.png (the main\n"
    "metric against the varied factor; repeated seeds as mean +- std). Rerunning the same\n"
    "command skips finished points and resumes interrupted ones; a failed point is reported and\n"
    "the others go on. Every point's keys and values are checked before anything starts.\n"
    "Each point records the arguments it was trained with (runs/<point>/sweep_args.json); a\n"
    "rerun whose arguments would change a finished or checkpointed point (other data, epochs,\n"
    "lr, ...; not --time-limit, threads, checkpoint_every or ckpt_stride) is refused, naming\n"
    "the differences; --force trains those points again from scratch, and also points whose\n"
    "point.json differs from the grid.\n\n"
    "GRID.json: {\"base\": {...}, \"vary\": {\"num_memory\": [1, 5, 15]}} (cartesian product),\n"
    "  {\"base\": {...}, \"factors\": {\"KEY\": [...], ...}} (one factor at a time around base),\n"
    "  or {\"base\": {...}, \"points\": [{...}, ...]}; optional \"metric\": main metric name.\n"
    "Keys are elm train's knobs and model options (elm train --help).\n\n"
    "TASK: neuronio | shd | shd-adding | pathfinder. Main metric: AUC (neuronio), accuracy;\n"
    "the tables hold each point's test scores (test_AUC, ...) and the validation scores that\n"
    "selected its model (valid_AUC, ...), apart. A bare --metric NAME means test_NAME where\n"
    "there is test data (shd, shd-adding, pathfinder; neuronio with --test), else valid_NAME.\n"
    "Plots need Python 3 with numpy and matplotlib ($ELM_PYTHON, else python3 on PATH or\n"
    "/usr/bin/python3) and plot_sweep.py (installed in share/elm; $ELM_SCRIPTS overrides).\n";

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
    /* Under mpirun the points are plain single-process runs: the launcher's variables stay out
     * of their environment, or each would take itself for a rank of an MPI job. */
    static const char *const drop[] = {"OMP_NUM_THREADS=", "OMPI_", "PMIX_", "PMI_"};
    for (size_t i = 0; i < n; i++) {
        int keep = 1;
        for (size_t d = 0; d < sizeof drop / sizeof drop[0]; d++)
            keep &= strncmp(environ[i], drop[d], strlen(drop[d])) != 0;
        if (keep)
            e[k++] = environ[i];
    }
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

/* ---- The command line ---- */

typedef struct {
    const char *task, *data, *valid, *test, *grid, *out, *metric;
    long jobs, tpj;
    int dry, noplot, force;
    char **pass; /* train options passed to every point, as given */
    int npass;
} sweep_args;

/*
 * Splits argv into the sweep's own flags (parsed by cli_parse_flags) and the train options
 * passed through as they are (with their values). Returns -1 to go on, else the exit status.
 */
static int parse_args(int argc, char **argv, sweep_args *a, char **own) {
    const cli_flag flags[] = {
        {"--task", CLI_STR, &a->task, 0, 0, 0},
        {"--data", CLI_STR, &a->data, 0, 0, 0},
        {"--valid", CLI_STR, &a->valid, 0, 0, 0},
        {"--test", CLI_STR, &a->test, 0, 0, 0},
        {"--grid", CLI_STR, &a->grid, 0, 0, 0},
        {"--out", CLI_STR, &a->out, 0, 0, 0},
        {"--metric", CLI_STR, &a->metric, 0, 0, 0},
        {"--jobs", CLI_INT, &a->jobs, 1, 256, 0},
        {"--threads-per-job", CLI_INT, &a->tpj, 1, 1024, 0},
        {"--dry-run", CLI_SWITCH, &a->dry, 0, 0, 0},
        {"--no-plot", CLI_SWITCH, &a->noplot, 0, 0, 0},
        {"--force", CLI_SWITCH, &a->force, 0, 0, 0},
    };
    const int nflags = (int)(sizeof flags / sizeof flags[0]);
    int nown = 0;
    for (int i = 1; i < argc; i++) {
        /* The table's flags (a switch as it is, the others as --name VALUE or --name=VALUE). */
        const cli_flag *f = NULL;
        for (int k = 0; k < nflags && !f; k++) {
            size_t n = strlen(flags[k].name);
            if (!strncmp(argv[i], flags[k].name, n) &&
                (!argv[i][n] || (argv[i][n] == '=' && flags[k].kind != CLI_SWITCH)))
                f = &flags[k];
        }
        if (cli_is_help(argv[i]) || f) {
            own[nown++] = argv[i];
            if (f && f->kind != CLI_SWITCH && !strchr(argv[i], '=') && i + 1 < argc)
                own[nown++] = argv[++i];
        } else {
            static const char *refused[] = {"--config", "--resume", "--threads"};
            for (size_t k = 0; k < sizeof refused / sizeof refused[0]; k++) {
                size_t n = strlen(refused[k]);
                if (!strncmp(argv[i], refused[k], n) && (!argv[i][n] || argv[i][n] == '='))
                    return cli_usage_error(sweep_usage,
                                           "sweep: %s is set by the sweep itself (use "
                                           "--threads-per-job for threads)",
                                           refused[k]);
            }
            a->pass[a->npass++] = argv[i];
        }
    }
    int rc = cli_parse_flags(nown, own, 0, flags, nflags, sweep_usage, "sweep");
    if (rc >= 0)
        return rc;
    if (!a->task || !a->data || !a->grid || !a->out)
        return cli_usage_error(sweep_usage, "sweep: --task, --data, --grid and --out are "
                                            "required");
    const char *const *tasks;
    const int nt = elm_task_names(&tasks);
    int known = 0;
    for (int k = 0; k < nt; k++)
        known |= !strcmp(a->task, tasks[k]);
    if (!known)
        return cli_usage_error(sweep_usage, "sweep: unknown task '%s'%s", a->task,
                               elm__suggest(a->task, tasks, nt));
    if (a->tpj == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        /* Under mpirun each rank runs one point at a time, and shares the node's cores with
         * the ranks beside it. */
        const char *lr = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
        long share = cli_mpi_env_size(NULL) > 1 ? (lr && atol(lr) > 0 ? atol(lr) : 1) : a->jobs;
        a->tpj = cores > share ? cores / share : 1;
    }
    return -1;
}

/* A flag passed to every point must not silently override a varied key: 0, or exit 2. */
static int check_pass(const sweep_args *a, const elm__sweep_grid *g) {
    for (int i = 0; i < a->npass; i++) {
        char key[64];
        flag_key(a->pass[i], key, sizeof key);
        if (!strncmp(a->pass[i], "--set", 5)) {
            const char *sv = a->pass[i][5] == '=' ? a->pass[i] + 6
                             : i + 1 < a->npass   ? a->pass[i + 1]
                                                  : "";
            const char *eq = strchr(sv, '=');
            snprintf(key, sizeof key, "%.*s", eq ? (int)(eq - sv) : 0, sv);
        }
        for (int k = 0; key[0] && k < g->nkeys; k++)
            if (!strcmp(key, g->keys[k]))
                return cli_usage_error(NULL, "sweep: %s sets '%s', which the grid varies",
                                       a->pass[i], key);
    }
    return 0;
}

/*
 * One sweep per folder at a time: two would train the same points into the same runs. The lock
 * is a POSIX record lock, released by the kernel however this process ends. Returns 0 (the
 * descriptor in *fd) or 1 after an error.
 */
static int lock_folder(const char *out, int *fd) {
    char path[4096];
    snprintf(path, sizeof path, "%s/runs", out);
    elm_status st = elm__mkdir_p(path);
    if (st)
        return cli_fail(st, "choose an --out folder you can write to");
    snprintf(path, sizeof path, "%s/sweep.lock", out);
    *fd = open(path, O_RDWR | O_CREAT, 0644);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (*fd < 0 || fcntl(*fd, F_SETLK, &fl) < 0) {
        int rc = cli_error("%s: %s", path,
                           *fd < 0 ? strerror(errno)
                                   : "another elm sweep is running in this folder");
        if (*fd >= 0)
            close(*fd);
        *fd = -1;
        return rc;
    }
    return 0;
}

/* OUT/sweep.json: the grid and this invocation's command line. */
static void write_manifest(const sweep_args *a, const cJSON *root) {
    cJSON *sj = cJSON_CreateObject();
    cJSON_AddItemToObject(sj, "grid", cJSON_Duplicate(root, 1));
    cJSON_AddStringToObject(sj, "grid_file", a->grid);
    cJSON_AddStringToObject(sj, "task", a->task);
    cJSON_AddStringToObject(sj, "data", a->data);
    if (a->valid)
        cJSON_AddStringToObject(sj, "valid", a->valid);
    if (a->test)
        cJSON_AddStringToObject(sj, "test", a->test);
    cJSON *pa = cJSON_AddArrayToObject(sj, "train_args");
    for (int i = 0; i < a->npass; i++)
        cJSON_AddItemToArray(pa, cJSON_CreateString(a->pass[i]));
    cJSON_AddNumberToObject(sj, "jobs", (double)a->jobs);
    cJSON_AddNumberToObject(sj, "threads_per_job", (double)a->tpj);
    char path[4096];
    snprintf(path, sizeof path, "%s/sweep.json", a->out);
    if (elm__json_write(path, sj))
        fprintf(stderr, "elm: warning: %s\n", elm_last_error());
    cJSON_Delete(sj);
}

/* The opening line: the grid, its keys, what is finished and what runs how. */
static void print_plan(const sweep_args *a, const elm__sweep_grid *g, int finished, int todo,
                       const char *metric) {
    fprintf(stderr, "elm: sweep %s: %d point%s (%s over", a->grid, g->np, CLI_S(g->np), g->mode);
    for (int k = 0; k < g->nkeys; k++)
        fprintf(stderr, "%s %s", k ? "," : "", g->keys[k]);
    fprintf(stderr, "); %d finished, %d to run, %d job%s x %ld thread%s; main metric %s%s\n",
            finished, todo, (int)a->jobs, CLI_S(a->jobs), a->tpj, CLI_S(a->tpj), metric,
            strncmp(metric, "valid_", 6) ? "" : " (no test data: give --test for test scores)");
}

/* ---- The process pool ---- */

typedef struct {
    const sweep_args *a;
    elm__sweep_grid *g;
    const char *metric;
    char exe[4096], threads[24], omp[48];
    char **envp, **cargv;
    int running, failed, started, todo, next, signalled;
    int dealt; /* points to run dealt so far, in grid order: under MPI, rank dealt % N runs it */
} pool;

/* argv of point p into v (room for npass + 18): elm train TASK --data D [--valid V] [--test T]
 * --out RUN --config P --threads N [--resume | --force] PASS...; returns its length. */
static int build_argv(const sweep_args *a, const point *p, char *cfgpath, char *threads,
                      char **v) {
    int n = 0;
    v[n++] = "elm";
    v[n++] = "train";
    v[n++] = (char *)a->task;
    v[n++] = "--data";
    v[n++] = (char *)a->data;
    if (a->valid) {
        v[n++] = "--valid";
        v[n++] = (char *)a->valid;
    }
    if (a->test) {
        v[n++] = "--test";
        v[n++] = (char *)a->test;
    }
    v[n++] = "--out";
    v[n++] = p->dir;
    v[n++] = "--config";
    v[n++] = cfgpath;
    v[n++] = "--threads";
    v[n++] = threads;
    /* A point that is not resumed starts over: whatever an earlier, failed attempt left in its
     * folder is the sweep's own, so the trainer may replace it. */
    v[n++] = p->state == ELM__PT_RESUME ? "--resume" : "--force";
    for (int i = 0; i < a->npass; i++)
        v[n++] = a->pass[i];
    v[n] = NULL;
    return n;
}

static int point_argv(pool *pl, const point *p, char *cfgpath) {
    return build_argv(pl->a, p, cfgpath, pl->threads, pl->cargv);
}

/*
 * The effective arguments of point p (sweep_args.json): its `elm train` command line resolved as
 * the trainer resolves it (task defaults < OUT/runs/<point>/point.json < flags), so `--lr 0.001`
 * and `--set lr=1e-3` are the same. NULL after printing the error when they do not parse.
 */
static cJSON *effective_args(const sweep_args *a, const point *p) {
    char cfgpath[4096], threads[] = "1";
    snprintf(cfgpath, sizeof cfgpath, "%s/point.json", p->dir);
    char **v = calloc((size_t)a->npass + 18, sizeof *v);
    if (!v) {
        cli_error("out of memory");
        return NULL;
    }
    /* Resolved as a fresh run (a --resume would take the run's own config.json instead). */
    point fresh = *p;
    fresh.state = ELM__PT_TODO;
    const int n = build_argv(a, &fresh, cfgpath, threads, v);
    elm_train_spec s;
    int resume;
    cJSON *j = NULL;
    if (train_parse(n - 1, v + 1, &s, &resume, NULL) < 0)
        j = elm__sweep_args_json(&s, a->pass, a->npass);
    free(v);
    return j;
}

/* Starts (or, with --dry-run, prints) point p. */
static void start_point(pool *pl, point *p) {
    const int resume = p->state == ELM__PT_RESUME;
    char cfgpath[4096], logpath[4096];
    snprintf(cfgpath, sizeof cfgpath, "%s/point.json", p->dir);
    snprintf(logpath, sizeof logpath, "%s/train.log", p->dir);
    const int n = point_argv(pl, p, cfgpath);
    pl->started++;
    if (pl->a->dry) {
        printf("%s:", p->name);
        for (int i = 0; i < n; i++)
            printf(" %s", pl->cargv[i]);
        char *cj = cJSON_PrintUnformatted(p->cfg);
        printf("\n  config %s\n", cj ? cj : "?");
        free(cj);
        return;
    }
    elm_status st = elm__mkdir_p(p->dir);
    if (!st)
        st = elm__json_write(cfgpath, p->cfg);
    if (st) {
        fprintf(stderr, "elm: error: %s: %s\n", p->name, elm_last_error());
        p->state = ELM__PT_FAILED;
        pl->failed++;
        return;
    }
    /* What this point is trained with, recorded before it starts (checked on reruns). */
    char argspath[4096];
    snprintf(argspath, sizeof argspath, "%s/sweep_args.json", p->dir);
    cJSON *eff = effective_args(pl->a, p);
    st = eff ? elm__json_write(argspath, eff) : ELM_ERR_ARG;
    cJSON_Delete(eff);
    if (st) {
        if (eff)
            fprintf(stderr, "elm: error: %s: %s\n", p->name, elm_last_error());
        p->state = ELM__PT_FAILED;
        pl->failed++;
        return;
    }
    p->job = spawn(pl->exe, pl->cargv, pl->envp, logpath);
    if (p->job < 0) {
        fprintf(stderr, "elm: error: %s: cannot start %s: %s\n", p->name, pl->exe,
                strerror(errno));
        p->state = ELM__PT_FAILED;
        pl->failed++;
        return;
    }
    p->state = ELM__PT_RUNNING;
    p->t0 = elm__now_s();
    pl->running++;
    fprintf(stderr, "elm: [%d/%d] %s: %s (log: %s)\n", pl->started, pl->todo, p->name,
            resume ? "resuming" : "started", logpath);
}

/* A point's process ended with `status`: done, stopped with a checkpoint, or failed. */
static void finish_point(pool *pl, point *p, int status) {
    pl->running--;
    double secs = elm__now_s() - p->t0;
    if (elm__sweep_wall_add(p->dir, secs))
        fprintf(stderr, "elm: warning: %s\n", elm_last_error());
    char path[4096], logpath[4096], tail[512];
    snprintf(path, sizeof path, "%s/test_metrics.json", p->dir);
    snprintf(logpath, sizeof logpath, "%s/train.log", p->dir);
    int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    p->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    cJSON *tm = NULL;
    if (ok && elm__is_file(path)) {
        p->state = ELM__PT_DONE;
        if (elm__json_read(path, 64 << 20, &tm))
            tm = NULL;
        const cJSON *mv = cJSON_GetObjectItemCaseSensitive(tm, pl->metric);
        const cJSON *np = cJSON_GetObjectItemCaseSensitive(tm, "num_params");
        fprintf(stderr, "elm: %s: done in %.1f s: %s %.6g, %.0f parameters\n", p->name, secs,
                pl->metric, cJSON_IsNumber(mv) ? mv->valuedouble : (double)NAN,
                cJSON_IsNumber(np) ? np->valuedouble : (double)NAN);
        cJSON_Delete(tm);
    } else if (ok || (g_stop && p->exit_code == 130)) {
        /* Stopped by --time-limit or by our signal, with a checkpoint. */
        p->state = ELM__PT_STOPPED;
        log_tail(logpath, tail, sizeof tail);
        fprintf(stderr, "elm: %s: stopped after %.0f s (%s); rerun to resume\n", p->name, secs,
                tail);
    } else {
        p->state = ELM__PT_FAILED;
        pl->failed++;
        log_tail(logpath, tail, sizeof tail);
        fprintf(stderr, "elm: %s: FAILED (exit %d) after %.0f s: %s\n", p->name, p->exit_code,
                secs, tail);
    }
}

/* After SIGINT / SIGTERM: the running points get SIGTERM (the trainer checkpoints on it). */
static void stop_running(pool *pl) {
    fprintf(stderr,
            "\nelm: sweep interrupted: stopping %d running point%s "
            "(they checkpoint; rerun the same command to resume)\n",
            pl->running, pl->running == 1 ? "" : "s");
    for (int i = 0; i < pl->g->np; i++)
        if (pl->g->p[i].state == ELM__PT_RUNNING)
            kill((pid_t)pl->g->p[i].job, SIGTERM);
    pl->signalled = 1;
}

/* Runs the points, up to `jobs` at a time, until all have ended or a signal stopped them. */
static void run_pool(pool *pl) {
    for (;;) {
        while (!g_stop && pl->running < pl->a->jobs && pl->next < pl->g->np) {
            point *p = &pl->g->p[pl->next++];
            if ((p->state == ELM__PT_TODO || p->state == ELM__PT_RESUME) &&
                pl->dealt++ % cli_mpi_size == cli_mpi_rank)
                start_point(pl, p);
        }
        if (pl->a->dry || pl->running == 0)
            return;
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno != EINTR)
                return; /* ECHILD: nothing left */
            if (g_stop && !pl->signalled)
                stop_running(pl);
            continue;
        }
        for (int i = 0; i < pl->g->np; i++)
            if (pl->g->p[i].state == ELM__PT_RUNNING && pl->g->p[i].job == pid) {
                finish_point(pl, &pl->g->p[i], status);
                break;
            }
    }
}

/* Sets up the pool (executable, environment, argv space) and runs it; returns 0 or 1. */
static int run_points(const sweep_args *a, elm__sweep_grid *g, const char *metric, int todo) {
    pool pl = {.a = a, .g = g, .metric = metric, .todo = todo};
    ssize_t el = readlink("/proc/self/exe", pl.exe, sizeof pl.exe - 1);
    if (el <= 0)
        return cli_error("cannot find this executable (/proc/self/exe): %s", strerror(errno));
    pl.exe[el] = 0;
    snprintf(pl.threads, sizeof pl.threads, "%ld", a->tpj);
    snprintf(pl.omp, sizeof pl.omp, "OMP_NUM_THREADS=%ld", a->tpj);
    pl.envp = child_env(pl.omp);
    pl.cargv = calloc((size_t)a->npass + 18, sizeof *pl.cargv);
    if (!pl.envp || !pl.cargv) {
        free(pl.envp);
        free(pl.cargv);
        return cli_error("out of memory");
    }
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: waitpid returns EINTR and we look at g_stop */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    g_stop = 0;
    run_pool(&pl);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    free(pl.cargv);
    free(pl.envp);
    return pl.failed;
}

/* The tables, the plot and the closing line; returns the exit status. */
static int conclude(const sweep_args *a, const elm__sweep_grid *g, const char *metric,
                    int failed, int refused, double t_start) {
    int ndone = 0, nstopped = 0, rows;
    for (int i = 0; i < g->np; i++) {
        ndone += g->p[i].state == ELM__PT_DONE;
        nstopped += g->p[i].state == ELM__PT_STOPPED || g->p[i].state == ELM__PT_TODO ||
                    g->p[i].state == ELM__PT_RESUME;
    }
    elm_status st = elm__sweep_write_results(g, a->out, a->task, metric, &rows);
    if (st)
        return cli_fail(st, NULL);
    if (!a->noplot && ndone > 0)
        plot(a->out, metric);
    fprintf(stderr,
            "elm: sweep %s: %d of %d point%s finished, %d failed, %d unfinished, %d refused "
            "(%.0f s); results in %s/results.csv\n",
            a->grid, ndone, g->np, CLI_S(g->np), failed, nstopped, refused,
            elm__now_s() - t_start, a->out);
    return g_stop ? 130 : (failed || nstopped || refused) ? 1 : 0;
}

/* The points of the grid file, checked against the pass-through flags and scanned in OUT. */
/* Every point's keys and values, checked as the trainer will take them, before anything starts:
 * a misspelt key must not fail every point one by one. Each distinct problem is named once. */
static int check_points(const sweep_args *a, const elm__sweep_grid *g) {
    char seen[8][512];
    int nseen = 0, nbad = 0;
    for (int i = 0; i < g->np; i++) {
        if (train_check_settings(a->task, g->p[i].cfg, a->grid) == ELM_OK)
            continue;
        nbad++;
        int dup = 0;
        for (int k = 0; k < nseen && !dup; k++)
            dup = !strcmp(seen[k], elm_last_error());
        if (!dup && nseen < 8) {
            snprintf(seen[nseen++], sizeof seen[0], "%s", elm_last_error());
            fprintf(stderr, "elm: error: %s (point %s)\n", elm_last_error(), g->p[i].name);
        }
    }
    if (!nbad)
        return 0;
    fprintf(stderr, "elm: sweep: %d of %d point%s would fail; nothing was started\n", nbad, g->np,
            CLI_S(g->np));
    return 1;
}

/* Under mpirun: every rank learns how each point ended (whichever rank ran it) and the number
 * of failures; this waits for all ranks, so their points' files are complete. */
static int g_gathered; /* every rank got past gather_states (or learnt that the folder is
                        * another sweep's): MPI ends without MPI_Abort */
static int gather_states(elm__sweep_grid *g, int *failed) {
    int *st = malloc(sizeof(int) * (size_t)(g->np + 1));
    if (!st)
        return cli_error("out of memory");
    for (int i = 0; i < g->np; i++) /* a point another rank ran is still to do here */
        st[i] = g->p[i].state == ELM__PT_TODO || g->p[i].state == ELM__PT_RESUME ? -1
                                                                                 : g->p[i].state;
    st[g->np] = *failed;
    int rc = cli_mpi_max_ints(st, g->np, &st[g->np]);
    for (int i = 0; !rc && i < g->np; i++)
        if (st[i] >= 0)
            g->p[i].state = st[i];
    *failed = st[g->np];
    free(st);
    return rc;
}

/*
 * Finished and checkpointed points are reused only with the arguments they were trained with
 * (their sweep_args.json): a point whose effective arguments would now differ is refused, each
 * difference named, and nothing starts (returns 1); with --force such points, and those whose
 * point.json differs from the grid, start over instead. Points from before sweep_args.json
 * cannot be checked: a note says so.
 */
static int check_recorded(const sweep_args *a, elm__sweep_grid *g, int *finished, int *todo,
                          int *refused) {
    int nbad = 0, legacy = 0;
    for (int i = 0; i < g->np; i++) {
        point *p = &g->p[i];
        if (p->state == ELM__PT_SKIPPED && a->force) {
            fprintf(stderr, "elm: --force: %s/point.json differs from the grid: point '%s' "
                            "starts over\n",
                    p->dir, p->name);
            p->state = ELM__PT_TODO;
            (*refused)--;
            (*todo)++;
            continue;
        }
        if (p->state != ELM__PT_DONE && p->state != ELM__PT_RESUME)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/sweep_args.json", p->dir);
        cJSON *old = NULL;
        if (!elm__is_file(path)) {
            legacy++;
            continue;
        }
        if (elm__json_read(path, 1 << 20, &old))
            return cli_fail(ELM_ERR_FORMAT, "remove that point's folder or use another --out");
        cJSON *now = effective_args(a, p);
        char diff[2048];
        const int nd = now ? elm__sweep_args_diff(old, now, diff, sizeof diff) : -1;
        cJSON_Delete(old);
        cJSON_Delete(now);
        if (nd < 0)
            return 1;
        if (nd == 0)
            continue;
        if (a->force) {
            fprintf(stderr, "elm: --force: point '%s' was trained with other arguments (%s): it "
                            "starts over\n",
                    p->name, diff);
            if (p->state == ELM__PT_DONE) {
                (*finished)--;
                (*todo)++;
            }
            p->state = ELM__PT_TODO;
            continue;
        }
        nbad++;
        fprintf(stderr, "elm: error: point '%s' was trained with other arguments: %s\n", p->name,
                diff);
    }
    if (legacy)
        fprintf(stderr, "elm: note: %d point%s predate%s sweep_args.json: the arguments %s "
                        "trained with cannot be checked\n",
                legacy, CLI_S(legacy), legacy == 1 ? "s" : "", legacy == 1 ? "it was" : "they were");
    if (!nbad)
        return 0;
    fprintf(stderr, "elm: sweep: %d point%s would be reused with other arguments; nothing was "
                    "started. Rerun with the arguments they were trained with, or add --force to "
                    "train them again with these (their runs are replaced)\n",
            nbad, CLI_S(nbad));
    return 1;
}

/*
 * The main metric's column: --metric, else the grid's "metric", else the task's (AUC, accuracy).
 * A bare score name means the test score where the points have test data and the validation
 * score otherwise (NeuronIO without --test), so a validation score is never shown as a test one;
 * test_*, valid_* and the run's own columns are taken as they are.
 */
static void main_metric(const sweep_args *a, const elm__sweep_grid *g, char *out, size_t n) {
    const char *m = a->metric   ? a->metric
                    : g->metric ? g->metric
                    : !strcmp(a->task, "neuronio") ? "AUC"
                                                   : "accuracy";
    static const char *const own[] = {"num_params", "train_seconds", "wall_seconds",
                                      "best_epoch", "train_loss"};
    int plain = !strncmp(m, "test_", 5) || !strncmp(m, "valid_", 6);
    for (size_t k = 0; k < sizeof own / sizeof own[0]; k++)
        plain |= !strcmp(m, own[k]);
    const int has_test = strcmp(a->task, "neuronio") || a->test;
    snprintf(out, n, "%s%s", plain ? "" : has_test ? "test_" : "valid_", m);
}

static int sweep_grid(const sweep_args *a, elm__sweep_grid *g, cJSON *root) {
    elm_status st = elm__sweep_grid_load(g, root, a->grid);
    if (st)
        return cli_fail(st, NULL);
    int rc = check_pass(a, g);
    if (rc)
        return rc;
    if ((rc = check_points(a, g)))
        return rc;
    int finished, todo, refused;
    if ((st = elm__sweep_scan(g, a->out, &finished, &todo, &refused)))
        return cli_fail(st, NULL);
    if ((rc = check_recorded(a, g, &finished, &todo, &refused)))
        return rc;
    for (int i = 0; i < g->np; i++)
        if (g->p[i].state == ELM__PT_SKIPPED)
            fprintf(stderr,
                    "elm: error: %s/point.json differs from the grid's point '%s'; remove %s, "
                    "choose another --out, or add --force to train it again\n",
                    g->p[i].dir, g->p[i].name, g->p[i].dir);
    char metric[128];
    main_metric(a, g, metric, sizeof metric);
    /* Under mpirun, rank 0 holds the folder, speaks and tabulates; every rank runs its points. */
    const int lead = cli_mpi_rank == 0;
    int lock_fd = -1;
    if (!a->dry && lead)
        rc = lock_folder(a->out, &lock_fd);
    /* No rank starts a point before rank 0 holds the folder: the others would otherwise train
     * into a folder another sweep is using until rank 0's MPI_Abort reached them. All learn
     * whether it does, and end together (no MPI_Abort) when it does not. */
    if (cli_mpi_size > 1 && !a->dry) {
        int no_lock = rc != 0, unused = 0;
        int mrc = cli_mpi_max_ints(&no_lock, 1, &unused);
        if (mrc || no_lock) {
            g_gathered = !mrc;
            return mrc ? mrc : 1;
        }
    }
    if (rc)
        return rc;
    if (lead)
        print_plan(a, g, finished, todo, metric);
    if (lead && cli_mpi_size > 1)
        fprintf(stderr, "elm: sweep over %d MPI ranks: one point per rank at a time\n",
                cli_mpi_size);
    if (!a->dry && lead)
        write_manifest(a, root);
    double t_start = elm__now_s();
    int failed = run_points(a, g, metric, todo);
    if (cli_mpi_size > 1 && (rc = gather_states(g, &failed)))
        return rc;
    g_gathered = 1;
    if (!a->dry && !lead)
        return 0;
    if (!a->dry)
        rc = conclude(a, g, metric, failed, refused, t_start);
    if (lock_fd >= 0)
        close(lock_fd);
    return rc;
}

int cmd_sweep(int argc, char **argv) {
    sweep_args a = {.jobs = 1};
    a.pass = calloc((size_t)argc + 1, sizeof *a.pass);
    char **own = calloc((size_t)argc + 1, sizeof *own);
    if (!a.pass || !own) {
        free(a.pass);
        free(own);
        return cli_error("out of memory");
    }
    int rc = parse_args(argc, argv, &a, own);
    cJSON *root = NULL;
    elm__sweep_grid g = {0};
    /* Under mpirun: the points are dealt over the ranks (cli/mpi.c). */
    if (rc < 0) {
        int mrc = cli_mpi_start("sweep", &argc, &argv);
        if (mrc)
            rc = mrc;
    }
    if (rc < 0) {
        elm_status st = elm__json_read(a.grid, 64 << 20, &root);
        rc = st ? cli_fail(st, NULL) : sweep_grid(&a, &g, root);
    }
    elm__sweep_grid_free(&g);
    cJSON_Delete(root);
    free(a.pass);
    free(own);
    /* A failure before the ranks met ends the job (the others would wait); after, each rank
     * ends MPI normally and rank 0's status tells how the sweep went. */
    return g_gathered ? cli_mpi_finish(rc) : cli_mpi_end(rc);
}
