/*
 * bench.c - `elm bench`: throughput of the standard configurations against the authors'
 * PyTorch reference (its figures are tabled in docs/PERFORMANCE.md, "The reference figures"),
 * or of any model config file.
 *
 * Each case runs in a forked child so that its peak resident memory (getrusage ru_maxrss) is its
 * own and not the high-water mark of an earlier, larger case. The child times a few repetitions
 * after one warm-up and reports the median wall time. This is a measurement: it never fails
 * because a number is low.
 */
#include "cli.h"
#include "internal.h"
#include "neuronio/neuronio.h"
#include "neuronio/nio_data.h"
#include "neuronio/teacher.h"
#include "pathfinder/pathfinder.h"
#include "shd/shd.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *bench_usage =
    "usage: elm bench [--config NAME|FILE] [--batch B] [--steps T] [--threads N]\n"
    "                 [--mode train|infer|stream] [--json] [--reps N] [--min-time SECONDS]\n"
    "                 [--checkpoint-stride K] [--f64 | --fma] [--wall | --cpu]\n"
    "                 [--sparse] [--data | --no-data]\n"
    "\n"
    "Times the standard cases (all of them by default) and prints sample-steps/s (batch x\n"
    "steps / second), GFLOP/s by the reference's dense FLOP count and as a percentage of the\n"
    "float32 peak of the cores used (one core's peak is measured first, with the widest FMAs\n"
    "this CPU has), the ratio to the reference's figure (the table in docs/PERFORMANCE.md,\n"
    "\"The reference figures\"), peak memory and threads. NAME is one of neuronio-dm15,\n"
    "neuronio-dm100, shd, pathfinder; FILE is a model_config.json (options as the reference's\n"
    "constructor; inputs are Bernoulli(0.01) spikes, or uniform [0,1) when num_input is 1).\n"
    "--batch/--steps/--mode narrow or override the cases. Training = zero_grad + forward_train +\n"
    "MSE gradient + backward + Adam step. stream = elm_model_step once per time step.\n"
    "--checkpoint-stride K sets BPTT checkpointing (0 = auto, as the library's default).\n"
    "--sparse hands train/infer the inputs as CSR spike lists (elm_model_forward_*_sparse).\n"
    "--fma times float32 with fused multiply-adds (elm_model_set_fma; training knob fma=1).\n"
    "Times are medians after one warm-up: process CPU time with one thread (as the reference\n"
    "was measured), wall time with several or with --wall (to compare thread counts). --cpu\n"
    "times all threads' CPU time together: with N threads, N x its figure is the throughput the\n"
    "N threads would reach on N idle cores (it shows the parallel overhead, not contention).\n"
    "Data paths (after the model cases, or alone with --data): NeuronIO cache windows (500 x\n"
    "1278 dense, and as the spike lists training uses, from a generated 6000-step simulation\n"
    "written as a .nioc cache), SHD binning (the tests' fixture file, when the source tree is\n"
    "at hand) and PNG decoding (32x32, 128x128).\n";

/* The peak float32 FMA rate of one core of the machine the reference was timed on: about 216
 * GFLOP/s with AVX-512, a Zen 5 (docs/PERFORMANCE.md, "The reference figures"). */
#define PAGE_PEAK_GFLOPS 216.0

typedef enum { MODE_TRAIN = 0, MODE_INFER = 1, MODE_STREAM = 2 } bench_mode;
static const char *mode_name[] = {"train", "infer", "stream"};

/* The standard configurations: the reference's model configs timed in
 * docs/PERFORMANCE.md ("The reference figures"). */
typedef struct {
    const char *name;
    double flops; /* forward FLOPs per sample-step as the reference counts them (dense) */
    int uniform;  /* inputs uniform [0, 1) rather than Bernoulli(0.01) spikes */
    const char *json;
} std_config;

static const std_config std_configs[] = {
    {"neuronio-dm15", 27e3, 0,
     "{\"num_input\":1278,\"num_output\":2,\"num_memory\":15,\"num_branch\":45,"
     "\"num_synapse_per_branch\":100,\"input_to_synapse_routing\":\"neuronio_routing\","
     "\"memory_tau_min\":1.0,\"memory_tau_max\":150.0,\"learn_memory_tau\":false}"},
    {"neuronio-dm100", 123e3, 0,
     "{\"num_input\":1278,\"num_output\":2,\"num_memory\":100,\"num_branch\":45,"
     "\"num_synapse_per_branch\":100,\"input_to_synapse_routing\":\"neuronio_routing\","
     "\"memory_tau_min\":1.0,\"memory_tau_max\":150.0,\"learn_memory_tau\":false,"
     "\"mlp_activation\":\"silu\"}"},
    {"shd", 368e3, 0,
     "{\"num_input\":700,\"num_output\":20,\"num_memory\":100,\"mlp_hidden_size\":200,"
     "\"mlp_activation\":\"relu\",\"memory_tau_min\":1.0,\"memory_tau_max\":500.0,"
     "\"delta_t\":10.0}"},
    {"pathfinder", 82e3, 1,
     "{\"num_input\":1,\"num_output\":2,\"num_memory\":100,\"mlp_hidden_size\":200,"
     "\"mlp_activation\":\"relu\"}"},
};
#define N_STD ((int)(sizeof std_configs / sizeof std_configs[0]))

/* The reference figures (docs/PERFORMANCE.md), plus streaming of one sample for the NeuronIO
 * models (compared with the reference's batch-1 inference, the only single-sample figure it
 * has). */
typedef struct {
    int cfg;
    bench_mode mode;
    int B, T;
    double ref; /* reference sample-steps/s */
} std_case;

static const std_case std_cases[] = {
    {0, MODE_TRAIN, 8, 500, 4600},    {0, MODE_TRAIN, 32, 500, 6300},
    {0, MODE_INFER, 1, 500, 21600},   {0, MODE_STREAM, 1, 500, 21600},
    {1, MODE_TRAIN, 8, 500, 9200},    {1, MODE_TRAIN, 32, 500, 2900},
    {1, MODE_INFER, 1, 500, 15900},   {1, MODE_STREAM, 1, 500, 15900},
    {2, MODE_TRAIN, 32, 250, 38000},  {2, MODE_INFER, 32, 250, 129000},
    {3, MODE_TRAIN, 16, 1024, 55000}, {3, MODE_INFER, 32, 1024, 342000},
};
#define N_CASES ((int)(sizeof std_cases / sizeof std_cases[0]))

typedef struct {
    char label[256];
    const char *json; /* config JSON (standard) or NULL */
    const char *file; /* config file or NULL */
    double flops;     /* 0: derive from the config */
    int uniform;      /* -1: derive from the config */
    bench_mode mode;
    int B, T, threads, reps, ckpt, f64, fma, wall, sparse;
    double ref, min_time;
} bench_case;

typedef struct {
    int ok;
    char err[512];
    double sps, flops, sec_median;
    int reps, cpu_timer;
    long rss_kb;
} bench_result;

/* Wall time, or the process's CPU time: with one thread, CPU time is what the reference's
 * figures are (and it is steady on a machine shared with other jobs); with several threads only
 * wall time measures the speed-up. */
static double bench_time(int cpu) {
    return cpu ? elm__cpu_s(0) : elm__now_s();
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Dense forward FLOPs per sample-step of a config, counted as the reference computes it:
 * ~5 per synapse (gather, mask, weight, decay, branch sum), 2 per MLP and readout weight, and a
 * few per memory unit (tanh, update). Used only for config files; the standard configs use the
 * page's own numbers. */
static double derived_flops(const elm_config *c) {
    double S = (double)c->num_branch * c->num_synapse_per_branch;
    double f = 5 * S, in = c->num_branch + c->num_memory;
    for (int l = 0; l <= c->mlp_num_layers; l++) {
        double out = l == c->mlp_num_layers ? c->num_memory : c->mlp_hidden_size;
        f += 2 * in * out + 2 * out;
        in = out;
    }
    return f + 2.0 * c->num_memory * c->num_output + 6.0 * c->num_memory;
}

static int case_config(const bench_case *bc, elm_config *cfg, char *err, size_t errn) {
    elm_config_default(cfg, 0, 0, 0);
    char *text = NULL;
    size_t len;
    if (bc->file && elm__read_file(bc->file, 1 << 20, &text, &len) != ELM_OK) {
        snprintf(err, errn, "%s", elm_last_error());
        return 0;
    }
    elm_status st =
        elm_config_from_json(cfg, text ? text : bc->json, bc->file ? bc->file : "bench");
    free(text);
    if (st == ELM_OK)
        st = elm_config_resolve(cfg);
    if (st != ELM_OK) {
        snprintf(err, errn, "%s", elm_last_error());
        return 0;
    }
    return 1;
}

/* The buffers of one case. x, y, dy, tgt are in the model's dtype (rs bytes per value). */
typedef struct {
    elm_model *m;
    elm_optim *opt;
    elm_state *st;
    void *x, *y, *dy, *tgt, *xs, *spv;
    int64_t *spp;
    int32_t *spi;
    elm_sparse_input sp;
    size_t rs, nx, ny;
    int B, T, I, O;
} case_bufs;

static void case_bufs_free(case_bufs *b) {
    elm_state_free(b->st);
    elm_optim_free(b->opt);
    elm_model_free(b->m);
    free(b->x);
    free(b->y);
    free(b->dy);
    free(b->tgt);
    free(b->xs);
    free(b->spp);
    free(b->spi);
    free(b->spv);
}

/* Stores v at element i of a float or double array. */
static void put(void *a, size_t i, double v, int f64) {
    if (f64)
        ((double *)a)[i] = v;
    else
        ((float *)a)[i] = (float)v;
}

/* Inputs (spikes, or uniform [0, 1) values) and a random MSE target, from a fixed seed. */
static int fill_inputs(const bench_case *bc, case_bufs *b, int uniform, bench_result *r) {
    b->x = malloc(b->rs * b->nx);
    b->y = malloc(b->rs * b->ny);
    b->dy = malloc(b->rs * b->ny);
    b->tgt = malloc(b->rs * b->ny);
    if (!b->x || !b->y || !b->dy || !b->tgt) {
        snprintf(r->err, sizeof r->err, "out of memory for the inputs (%zu values)", b->nx);
        return 0;
    }
    elm__rng rng;
    elm__rng_seed(&rng, 42);
    for (size_t i = 0; i < b->nx; i++)
        put(b->x, i,
            uniform ? elm__rng_uniform(&rng) : (elm__rng_uniform(&rng) < 0.01 ? 1.0 : 0.0),
            bc->f64);
    for (size_t i = 0; i < b->ny; i++)
        put(b->tgt, i, elm__rng_normal(&rng), bc->f64);
    return 1;
}

/* The CSR form of x, made once (as a loader holding spike lists would hand it over). */
static int make_sparse(const bench_case *bc, case_bufs *b, bench_result *r) {
    size_t rows = (size_t)b->B * (size_t)b->T, n = 0;
    b->spp = malloc(sizeof(int64_t) * (rows + 1));
    b->spi = malloc(sizeof(int32_t) * b->nx + 1);
    b->spv = malloc(b->rs * b->nx + b->rs);
    if (!b->spp || !b->spi || !b->spv) {
        snprintf(r->err, sizeof r->err, "out of memory for the sparse inputs");
        return 0;
    }
    b->spp[0] = 0;
    for (size_t q = 0; q < rows; q++) {
        for (int i = 0; i < b->I; i++) {
            size_t e = q * (size_t)b->I + (size_t)i;
            double v = bc->f64 ? ((double *)b->x)[e] : (double)((float *)b->x)[e];
            if (v != 0) {
                b->spi[n] = i;
                put(b->spv, n, v, bc->f64);
                n++;
            }
        }
        b->spp[q + 1] = (int64_t)n;
    }
    b->sp = (elm_sparse_input){b->spp, b->spi, b->spv};
    return 1;
}

/* The optimiser (train) or the time-major inputs and a state (stream). */
static int prepare_mode(const bench_case *bc, case_bufs *b) {
    if (bc->mode == MODE_TRAIN) {
        elm_optim_config oc;
        elm_optim_config_default(&oc, ELM_OPT_ADAM, 1e-4);
        return elm_optim_create(&b->opt, b->m, &oc) == ELM_OK;
    }
    if (bc->mode != MODE_STREAM)
        return 1;
    /* Time-major copy so that each step reads one contiguous (B, I) block. */
    b->xs = malloc(b->rs * b->nx);
    if (!b->xs || elm_state_create(&b->st, b->m, b->B) != ELM_OK)
        return 0;
    const size_t row = (size_t)b->I * b->rs;
    for (int s = 0; s < b->B; s++)
        for (int t = 0; t < b->T; t++)
            memcpy((char *)b->xs + ((size_t)t * (size_t)b->B + (size_t)s) * row,
                   (char *)b->x + ((size_t)s * (size_t)b->T + (size_t)t) * row, row);
    return 1;
}

/* One repetition of the case's work. */
static elm_status one_rep(const bench_case *bc, case_bufs *b) {
    elm_model *m = b->m;
    const int B = b->B, T = b->T;
    if (bc->mode == MODE_TRAIN) {
        elm_model_zero_grad(m);
        elm_status s = bc->sparse ? elm_model_forward_train_sparse(m, &b->sp, b->y, B, T)
                                  : elm_model_forward_train(m, b->x, b->y, B, T);
        /* MSE loss gradient against a fixed random target. */
        double scale = 2.0 / (double)b->ny;
        if (bc->f64)
            for (size_t i = 0; i < b->ny; i++)
                ((double *)b->dy)[i] = scale * (((double *)b->y)[i] - ((double *)b->tgt)[i]);
        else
            for (size_t i = 0; i < b->ny; i++)
                ((float *)b->dy)[i] =
                    (float)scale * (((float *)b->y)[i] - ((float *)b->tgt)[i]);
        if (s == ELM_OK)
            s = elm_model_backward(m, b->dy);
        if (s == ELM_OK)
            s = elm_optim_step(b->opt, m, 1e-4);
        return s;
    }
    if (bc->mode == MODE_INFER)
        return bc->sparse ? elm_model_forward_sparse(m, &b->sp, b->y, B, T)
               : bc->f64  ? elm_model_forward_f64(m, b->x, b->y, B, T)
                          : elm_model_forward(m, b->x, b->y, B, T);
    elm_status s = ELM_OK;
    elm_state_reset(b->st);
    for (int t = 0; t < T && s == ELM_OK; t++) {
        const char *xt = (const char *)b->xs + (size_t)t * (size_t)B * (size_t)b->I * b->rs;
        char *yt = (char *)b->y + (size_t)t * (size_t)B * (size_t)b->O * b->rs;
        s = bc->f64 ? elm_model_step_f64(m, b->st, (const double *)xt, (double *)yt)
                    : elm_model_step(m, b->st, (const float *)xt, (float *)yt);
    }
    return s;
}

/* Times the repetitions (after one warm-up) and fills the median into r. */
static int time_reps(const bench_case *bc, case_bufs *b, bench_result *r) {
    /* Without --reps, min_time decides (the cap only bounds the array of times). */
    int maxreps = bc->reps > 0 ? bc->reps : 1000000;
    double *times = malloc(sizeof(double) * (size_t)(maxreps + 1));
    if (!times)
        return 0;
    double total = 0;
    int n = 0;
    const int cpu = bc->wall < 0 || (bc->threads == 1 && !bc->wall);
    for (int rep = -1; rep < maxreps; rep++) { /* rep -1 is the warm-up */
        double t0 = bench_time(cpu);
        elm_status s = one_rep(bc, b);
        double dtm = bench_time(cpu) - t0;
        if (s != ELM_OK) {
            free(times);
            return 0;
        }
        if (rep < 0)
            continue;
        times[n++] = dtm;
        total += dtm;
        if (bc->reps <= 0 && n >= 3 && total >= bc->min_time)
            break;
    }
    qsort(times, (size_t)n, sizeof(double), cmp_double);
    r->sec_median = n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
    r->sps = (double)b->B * (double)b->T / r->sec_median;
    r->reps = n;
    r->cpu_timer = cpu;
    free(times);
    return 1;
}

/* Runs one case in this process and fills r (the child's body). */
static void run_case(const bench_case *bc, bench_result *r) {
    elm_config cfg;
    case_bufs b;
    memset(&b, 0, sizeof b);
    memset(r, 0, sizeof *r);
    if (!case_config(bc, &cfg, r->err, sizeof r->err))
        return;
    r->flops = bc->flops > 0 ? bc->flops : derived_flops(&cfg);
    b.rs = bc->f64 ? sizeof(double) : sizeof(float);
    b.B = bc->B;
    b.T = bc->T;
    b.I = cfg.num_input;
    b.O = cfg.num_output;
    b.nx = (size_t)b.B * (size_t)b.T * (size_t)b.I;
    b.ny = (size_t)b.B * (size_t)b.T * (size_t)b.O;
    if (elm_model_create(&b.m, &cfg, bc->f64 ? ELM_F64 : ELM_F32, 1) != ELM_OK) {
        snprintf(r->err, sizeof r->err, "%s", elm_last_error());
        return;
    }
    elm_model_set_threads(b.m, bc->threads);
    if (bc->fma && elm_model_set_fma(b.m, 1) != ELM_OK) {
        snprintf(r->err, sizeof r->err, "%s", elm_last_error());
        elm_model_free(b.m);
        return;
    }
    if (bc->ckpt >= 0)
        elm_model_set_checkpoint_stride(b.m, bc->ckpt);
    const int uniform = bc->uniform >= 0 ? bc->uniform : b.I == 1;
    if (fill_inputs(bc, &b, uniform, r) && (!bc->sparse || make_sparse(bc, &b, r))) {
        if (prepare_mode(bc, &b) && time_reps(bc, &b, r))
            r->ok = 1;
        else
            snprintf(r->err, sizeof r->err, "%s", elm_last_error());
    }
    case_bufs_free(&b);
}

/* Runs a case in a child process, for a clean peak-memory figure per case. */
static int run_forked(const bench_case *bc, bench_result *r) {
    int fd[2];
    memset(r, 0, sizeof *r);
    fflush(stdout);
    fflush(stderr);
    if (pipe(fd) != 0) {
        run_case(bc, r); /* fall back to this process */
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        r->rss_kb = ru.ru_maxrss;
        return r->ok;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        bench_result cr;
        run_case(bc, &cr);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        cr.rss_kb = ru.ru_maxrss;
        ssize_t w = write(fd[1], &cr, sizeof cr);
        _exit(w == (ssize_t)sizeof cr ? 0 : 1);
    }
    close(fd[1]);
    if (pid < 0) {
        close(fd[0]);
        snprintf(r->err, sizeof r->err, "fork failed");
        return 0;
    }
    size_t got = 0;
    while (got < sizeof *r) {
        ssize_t k = read(fd[0], (char *)r + got, sizeof *r - got);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (got != sizeof *r) {
        memset(r, 0, sizeof *r);
        snprintf(r->err, sizeof r->err, "the benchmark process died (status %d)", status);
    }
    return r->ok;
}

static void json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

/* ---- Data paths ---- */

typedef struct {
    const char *name, *unit;
    double per_s;       /* units per second */
    double steps_per_s; /* sample-steps per second (0 when meaningless) */
    char note[160];
} data_result;

/* Repeats fn(arg, rep) until min_time of process CPU time has passed (at least 3 times). */
static double time_rate(int (*fn)(void *, int), void *arg, double min_time, int *ok) {
    *ok = fn(arg, 0); /* warm-up */
    double t0 = bench_time(1), t = 0;
    int n = 0;
    while (*ok && (n < 3 || t < min_time)) {
        *ok = fn(arg, n + 1);
        n++;
        t = bench_time(1) - t0;
    }
    return t > 0 ? n / t : 0;
}

/* Times fn (one `unit` per call, `steps` sample-steps each) and, if it ran, appends the result as
 * r[n]; returns the new count. `note` says what was timed. */
static int time_data_path(data_result *r, int n, const char *name, const char *unit,
                          int (*fn)(void *, int), void *arg, double steps, double min_time,
                          const char *note) {
    int ok = 0;
    data_result *q = &r[n];
    memset(q, 0, sizeof *q);
    q->name = name;
    q->unit = unit;
    q->per_s = time_rate(fn, arg, min_time, &ok);
    q->steps_per_s = q->per_s * steps;
    snprintf(q->note, sizeof q->note, "%s", note);
    return n + ok;
}

typedef struct {
    elm_nio_view v;
    float *x, *target;
    int T_sim, T_win;
    int64_t *ends; /* spike-list windows (what training cuts) */
    int32_t *idx;
    float *val;
    size_t cap;
} nio_arg;

static int nio_window(void *p, int rep) {
    nio_arg *a = p;
    int t0 = (rep * 397) % (a->T_sim - a->T_win);
    return elm_nio_fill_window(&a->v, t0, a->T_win, a->x, a->target, 1) == ELM_OK;
}

static int nio_spikes(void *p, int rep) {
    nio_arg *a = p;
    int t0 = (rep * 397) % (a->T_sim - a->T_win);
    return elm_nio_fill_window_sparse(&a->v, t0, a->T_win, 0, a->ends, a->idx, a->val, a->cap,
                                      a->target, 1) == ELM_OK;
}

typedef struct {
    const elm_shd *d;
    float *x;
} shd_arg;

static int shd_bin(void *p, int rep) {
    shd_arg *a = p;
    elm_shd_fill(a->d, rep % a->d->n, a->x);
    return 1;
}

typedef struct {
    char path[600];
} png_arg;

static int png_decode(void *p, int rep) {
    png_arg *a = p;
    uint8_t *px = NULL;
    int w = 0, h = 0;
    elm_status st = elm_pf_png_read(a->path, &px, &w, &h);
    free(px);
    (void)rep;
    return st == ELM_OK;
}

static void rm_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char p[1200];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            remove(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* NeuronIO: one 6000-step simulation (Bernoulli inputs at 10 Hz), written as a cache in dir;
 * its dense and spike-list windows. */
static int bench_nio(data_result *r, int n, int max, double min_time, const char *dir) {
    elm_nio_sim sim;
    memset(&sim, 0, sizeof sim);
    elm_nio_writer *w = NULL;
    elm_nio_cache *c = NULL;
    nio_arg a;
    memset(&a, 0, sizeof a);
    a.T_sim = 6000;
    a.T_win = 500;
    int good = elm_teacher_inputs_constant(&sim, a.T_sim, 10.0, 10.0, 5) == ELM_OK;
    if (good) {
        sim.soma = malloc(sizeof(float) * (size_t)a.T_sim);
        good = sim.soma != NULL;
        for (int t = 0; good && t < a.T_sim; t++)
            sim.soma[t] = -70.0f + 5.0f * (float)sin(0.01 * t);
    }
    good = good && elm_nio_writer_open(&w, dir, "bench") == ELM_OK;
    if (good) {
        good = elm_nio_writer_add(w, &sim) == ELM_OK;
        if (good)
            good = elm_nio_writer_close(w) == ELM_OK;
        else
            elm_nio_writer_abort(w);
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/bench.nioc", dir);
    good = good && elm_nio_cache_open(&c, path) == ELM_OK &&
           elm_nio_cache_sim(c, 0, &a.v) == ELM_OK;
    if (good) {
        a.x = malloc(sizeof(float) * (size_t)a.T_win * (size_t)sim.n_in);
        a.target = malloc(sizeof(float) * (size_t)a.T_win * 2);
        good = a.x && a.target;
    }
    char note[128];
    if (good && n < max) {
        snprintf(note, sizeof note, "%d x %d dense window + targets from a mapped cache",
                 a.T_win, sim.n_in);
        n = time_data_path(r, n, "neuronio-window", "windows", nio_window, &a, a.T_win,
                           min_time, note);
    }
    if (good) {
        a.cap = (size_t)a.v.spike_ptr[a.v.T];
        a.ends = malloc(sizeof *a.ends * (size_t)a.T_win);
        a.idx = malloc(sizeof *a.idx * (a.cap + 1));
        a.val = malloc(sizeof *a.val * (a.cap + 1));
        good = a.ends && a.idx && a.val;
    }
    if (good && n < max) {
        snprintf(note, sizeof note,
                 "%d-step window as spike lists + targets (what training cuts)", a.T_win);
        n = time_data_path(r, n, "neuronio-spikes", "windows", nio_spikes, &a, a.T_win,
                           min_time, note);
    }
    free(a.ends);
    free(a.idx);
    free(a.val);
    free(a.x);
    free(a.target);
    elm_nio_cache_close(c);
    elm_nio_sim_clear(&sim);
    return n;
}

/* SHD binning: the test fixture, if the source tree is at hand. */
static int bench_shd(data_result *r, int n, int max, double min_time) {
    const char *src = getenv("ELM_SOURCE_DIR");
#ifdef ELM_SOURCE_DIR
    if (!src)
        src = ELM_SOURCE_DIR;
#endif
    char path[1200];
    snprintf(path, sizeof path, "%s/tests/fixtures/shd_tiny.h5", src ? src : ".");
    elm_shd *d = NULL;
    if (access(path, R_OK) == 0 && elm_shd_load(&d, path, NULL) == ELM_OK && d->n > 0 &&
        n < max) {
        shd_arg a = {d, malloc(sizeof(float) * (size_t)d->num_bins * (size_t)d->num_channels)};
        if (a.x) {
            char note[128];
            snprintf(note, sizeof note, "%d x %d bins of %d samples (%lld spikes)",
                     d->num_bins, d->num_channels, d->n, (long long)d->kept_spikes);
            n = time_data_path(r, n, "shd-binning", "samples", shd_bin, &a, d->num_bins,
                               min_time, note);
        }
        free(a.x);
    }
    elm_shd_free(d);
    return n;
}

/* PNG decoding: 32x32 (Pathfinder) and 128x128 (Path-X) noise-free line images. */
static int bench_png(data_result *r, int n, int max, double min_time, const char *dir) {
    int sizes[] = {32, 128};
    for (int k = 0; k < 2 && n < max; k++) {
        int S = sizes[k];
        png_arg a;
        snprintf(a.path, sizeof a.path, "%s/img%d.png", dir, S);
        uint8_t *px = malloc((size_t)S * (size_t)S);
        if (!px)
            break;
        for (int i = 0; i < S * S; i++)
            px[i] = (uint8_t)((i % S == (i / S) % S || (i * 7) % 61 == 0) ? 255 : 0);
        int good = elm_pf_png_write(a.path, px, S, S) == ELM_OK;
        free(px);
        if (!good)
            continue;
        char note[128];
        snprintf(note, sizeof note, "%dx%d 8-bit grayscale, libpng", S, S);
        n = time_data_path(r, n, k ? "png-decode-128" : "png-decode-32", "images", png_decode, &a,
                           (double)S * S, min_time, note);
    }
    return n;
}

static int bench_data(data_result *r, int max, double min_time) {
    char tmpl[] = "/tmp/elm-bench-XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!dir)
        return 0;
    int n = bench_nio(r, 0, max, min_time, dir);
    n = bench_shd(r, n, max, min_time);
    n = bench_png(r, n, max, min_time, dir);
    rm_dir(dir);
    return n;
}

/* The command line. */
typedef struct {
    const char *config, *mode_s;
    long batch, steps, threads, reps, ckpt;
    double min_time;
    int json, f64, fma, data, data_only, wall, cpu, sparse;
    int mode;    /* -1: every mode */
    int std_idx; /* the standard configuration named by --config, or -1 */
} bench_opts;

/* Parses the flags into *o; returns -1 to go on, else the exit status. */
static int parse_bench(int argc, char **argv, bench_opts *o) {
    *o = (bench_opts){.threads = 1, .ckpt = -1, .min_time = 1.0, .mode = -1, .std_idx = -1};
    int no_data = 0;
    /* Integers are range-checked below, with one message for all of them. */
    const cli_flag flags[] = {
        {"--config", CLI_STR, &o->config, 0, 0, 0},
        {"--mode", CLI_STR, &o->mode_s, 0, 0, 0},
        {"--batch", CLI_INT, &o->batch, -HUGE_VAL, HUGE_VAL, 0},
        {"--steps", CLI_INT, &o->steps, -HUGE_VAL, HUGE_VAL, 0},
        {"--threads", CLI_INT, &o->threads, -HUGE_VAL, HUGE_VAL, 0},
        {"--reps", CLI_INT, &o->reps, -HUGE_VAL, HUGE_VAL, 0},
        {"--checkpoint-stride", CLI_INT, &o->ckpt, -HUGE_VAL, HUGE_VAL, 0},
        {"--min-time", CLI_REAL, &o->min_time, 0, HUGE_VAL, 0},
        {"--json", CLI_SWITCH, &o->json, 0, 0, 0},
        {"--f64", CLI_SWITCH, &o->f64, 0, 0, 0},
        {"--fma", CLI_SWITCH, &o->fma, 0, 0, 0},
        {"--wall", CLI_SWITCH, &o->wall, 0, 0, 0},
        {"--cpu", CLI_SWITCH, &o->cpu, 0, 0, 0},
        {"--sparse", CLI_SWITCH, &o->sparse, 0, 0, 0},
        {"--data", CLI_SWITCH, &o->data_only, 0, 0, 0},
        {"--no-data", CLI_SWITCH, &no_data, 0, 0, 0},
    };
    int rc = cli_parse_flags(argc, argv, 1, flags, (int)(sizeof flags / sizeof flags[0]),
                             bench_usage, "bench");
    if (rc >= 0)
        return rc;
    o->data = !no_data;
    if (o->wall && o->cpu)
        return cli_usage_error(bench_usage, "--wall and --cpu exclude each other");
    if (o->f64 && o->fma)
        return cli_usage_error(bench_usage, "--fma is a float32 path: it excludes --f64");
    if (o->cpu)
        o->wall = -1;
    if (o->mode_s) {
        for (int k = 0; k < 3; k++)
            if (!strcmp(o->mode_s, mode_name[k]))
                o->mode = k;
        if (o->mode < 0)
            return cli_usage_error(bench_usage, "--mode must be train, infer or stream, not '%s'",
                                   o->mode_s);
    }
    if (o->batch < 0 || o->batch > 100000 || o->steps < 0 || o->steps > 10000000 ||
        o->threads < 0 || o->threads > 1024 || o->reps < 0 || o->ckpt < -1)
        return cli_usage_error(bench_usage, "--batch, --steps, --threads, --reps out of range");
    if (o->config) {
        for (int k = 0; k < N_STD; k++)
            if (!strcmp(o->config, std_configs[k].name))
                o->std_idx = k;
        if (o->std_idx < 0 && access(o->config, R_OK) != 0)
            return cli_usage_error(bench_usage,
                                   "--config '%s' is neither a standard configuration "
                                   "(neuronio-dm15, neuronio-dm100, shd, pathfinder) nor a "
                                   "readable file",
                                   o->config);
    }
    return -1;
}

/* A case of standard configuration k. */
static bench_case *std_case_of(bench_case *c, int k, bench_mode mode, int B, int T) {
    memset(c, 0, sizeof *c);
    snprintf(c->label, sizeof c->label, "%s", std_configs[k].name);
    c->json = std_configs[k].json;
    c->flops = std_configs[k].flops;
    c->uniform = std_configs[k].uniform;
    c->mode = mode;
    c->B = B;
    c->T = T;
    return c;
}

/* The cases the options ask for; returns how many. */
static int make_cases(const bench_opts *o, bench_case *cases) {
    int nc = 0;
    const int B = (int)o->batch, T = (int)o->steps;
    if (o->config && o->std_idx < 0) {
        bench_case *c = &cases[nc++];
        memset(c, 0, sizeof *c);
        snprintf(c->label, sizeof c->label, "%s", o->config);
        c->file = o->config;
        c->uniform = -1;
        c->mode = o->mode >= 0 ? (bench_mode)o->mode : MODE_TRAIN;
        c->B = B ? B : c->mode == MODE_TRAIN ? 8 : 1;
        c->T = T ? T : 500;
        return nc;
    }
    for (int k = 0; k < N_CASES; k++) {
        const std_case *sc = &std_cases[k];
        if ((o->std_idx >= 0 && sc->cfg != o->std_idx) ||
            (o->mode >= 0 && sc->mode != (bench_mode)o->mode))
            continue;
        /* With --batch, keep one case per (config, mode). */
        int dup = 0;
        for (int q = 0; q < nc; q++)
            dup |= B && cases[q].json == std_configs[sc->cfg].json && cases[q].mode == sc->mode;
        if (dup)
            continue;
        bench_case *c = std_case_of(&cases[nc++], sc->cfg, sc->mode, B ? B : sc->B,
                                    T ? T : sc->T);
        /* The reference figure holds only for the page's own batch size and length. */
        c->ref = c->B == sc->B && c->T == sc->T ? sc->ref : 0;
    }
    if (nc == 0 && o->std_idx >= 0 && o->mode >= 0) /* e.g. shd in stream mode */
        std_case_of(&cases[nc++], o->std_idx, (bench_mode)o->mode, B ? B : 1, T ? T : 500);
    return nc;
}

/* One case's line of the table, or its JSON object. */
static void print_case(const bench_opts *o, const bench_case *c, const bench_result *r,
                       double peak, int first) {
    double mult = c->mode == MODE_TRAIN ? 3.0 : 1.0; /* training = ~3x forward FLOPs */
    double gflops = r->sps * r->flops * mult * 1e-9;
    double us_step = 1e6 * r->sec_median / (double)c->T;
    double ratio = c->ref > 0 ? r->sps / c->ref : 0;
    double mb = (double)r->rss_kb / 1024.0;
    /* Of the peak of the cores used (per core times threads). */
    double of_peak = peak > 0 ? gflops / (peak * (double)c->threads) : 0;
    if (!o->json) {
        char refs[32] = "-", rats[32] = "-", pct[16] = "-";
        if (c->ref > 0) {
            snprintf(refs, sizeof refs, "%.0f", c->ref);
            snprintf(rats, sizeof rats, "%.1f", ratio);
        }
        if (peak > 0)
            snprintf(pct, sizeof pct, "%.0f", 100 * of_peak);
        printf("%-16s %-6s %5d %6d %3d %14.0f %10.3f %8.2f %6s %9s %8s %9.1f\n", c->label,
               mode_name[c->mode], c->B, c->T, c->threads, r->sps, us_step, gflops, pct, refs,
               rats, mb);
        return;
    }
    printf("%s\n  {\"config\": ", first ? "" : ",");
    json_str(c->label);
    printf(", \"mode\": \"%s\", \"batch\": %d, \"steps\": %d, \"threads\": %d, "
           "\"dtype\": \"%s\", \"sample_steps_per_s\": %.6g, \"us_per_step\": %.6g, "
           "\"flops_per_sample_step\": %.6g, \"gflops\": %.6g, ",
           mode_name[c->mode], c->B, c->T, c->threads, o->f64 ? "f64" : o->fma ? "f32fma" : "f32",
           r->sps, us_step,
           r->flops * mult, gflops);
    if (c->ref > 0)
        printf("\"reference_sample_steps_per_s\": %.6g, \"ratio_to_reference\": %.6g, ", c->ref,
               ratio);
    else
        printf("\"reference_sample_steps_per_s\": null, \"ratio_to_reference\": null, ");
    if (peak > 0)
        printf("\"core_peak_gflops\": %.6g, \"fraction_of_core_peak\": %.4g, ", peak, of_peak);
    else
        printf("\"core_peak_gflops\": null, \"fraction_of_core_peak\": null, ");
    printf("\"fraction_of_reference_peak\": %.4g, ",
           gflops / (PAGE_PEAK_GFLOPS * (double)c->threads));
    printf("\"peak_rss_mb\": %.1f, \"reps\": %d, \"median_s\": %.6g, "
           "\"timer\": \"%s\", \"checkpoint_stride\": %d, \"sparse_input\": %s}",
           mb, r->reps, r->sec_median, r->cpu_timer ? "process-cpu" : "wall", c->ckpt,
           c->sparse ? "true" : "false");
}

/* Runs the model cases (peak line and table header first); returns the failures. */
static int run_cases(const bench_opts *o, bench_case *cases, int nc, int *printed) {
    /* The arithmetic peak of this core, measured, for "% of peak" (bench_peak.c). */
    const char *peak_how = "";
    const double peak = nc ? bench_peak_gflops(&peak_how) : 0;
    if (!o->json && nc) {
        if (peak > 0)
            printf("one core's float32 peak, measured here: %.0f GFLOP/s (%s); "
                   "the reference machine's: %.0f\n",
                   peak, peak_how, PAGE_PEAK_GFLOPS);
        printf("%-16s %-6s %5s %6s %3s %14s %10s %8s %6s %9s %8s %9s\n", "config", "mode", "B",
               "T", "thr", "sample-steps/s", "us/step", "GFLOP/s", "%peak", "ref", "x ref",
               "peak MB");
    }
    int failures = 0;
    for (int k = 0; k < nc; k++) {
        bench_case *c = &cases[k];
        bench_result r;
        run_forked(c, &r);
        if (!r.ok) {
            failures++;
            fprintf(stderr, "elm: error: bench %s %s: %s\n", c->label, mode_name[c->mode], r.err);
            continue;
        }
        print_case(o, c, &r, peak, !(*printed)++);
        fflush(stdout);
    }
    return failures;
}

/* The data paths' table, or their JSON objects. */
static void run_data(const bench_opts *o, int *printed) {
    data_result dr[8];
    int nd = bench_data(dr, 8, o->min_time);
    if (!o->json && nd)
        printf("\n%-16s %14s %16s  %s\n", "data path", "per second", "sample-steps/s", "what");
    for (int k = 0; k < nd; k++) {
        if (o->json) {
            printf("%s\n  {\"config\": \"%s\", \"mode\": \"data\", \"threads\": 1, "
                   "\"unit\": \"%s\", \"per_s\": %.6g, \"sample_steps_per_s\": %.6g, "
                   "\"what\": ",
                   (*printed)++ ? "," : "", dr[k].name, dr[k].unit, dr[k].per_s,
                   dr[k].steps_per_s);
            json_str(dr[k].note);
            printf("}");
        } else {
            char per[48];
            snprintf(per, sizeof per, "%.0f %s", dr[k].per_s, dr[k].unit);
            printf("%-16s %14s %16.0f  %s\n", dr[k].name, per, dr[k].steps_per_s, dr[k].note);
        }
    }
}

int cmd_bench(int argc, char **argv) {
    bench_opts o;
    int rc = parse_bench(argc, argv, &o);
    if (rc >= 0)
        return rc;
    bench_case cases[N_CASES + 4];
    int nc = o.data_only ? 0 : make_cases(&o, cases);
    /* Data paths run by default and with --data, not when a config or mode was picked. */
    const int data =
        o.data_only || (o.data && !o.config && !o.mode_s && !o.batch && !o.steps);
    for (int k = 0; k < nc; k++) {
        cases[k].threads = (int)o.threads;
        cases[k].reps = (int)o.reps;
        cases[k].ckpt = (int)o.ckpt;
        cases[k].min_time = o.min_time;
        cases[k].f64 = o.f64;
        cases[k].fma = o.fma;
        cases[k].wall = o.wall;
        cases[k].sparse = o.sparse && cases[k].mode != MODE_STREAM;
    }
    if (o.json)
        printf("[");
    int printed = 0;
    int failures = run_cases(&o, cases, nc, &printed);
    if (data)
        run_data(&o, &printed);
    if (o.json)
        printf("\n]\n");
    return failures ? 1 : 0;
}
