/*
 * plot.c - `elm plot neuronio` and `elm plot pathfinder`: a model's predictions on one sample,
 * drawn as a PNG.
 *
 * The split of work: this file loads the data and the model and computes every number that is
 * plotted (in C, with the library's own forward pass), writes them as .npy files into a private
 * temporary folder, and runs scripts/plot_neuronio.py (matplotlib) only to draw them. The
 * script is found in $ELM_SCRIPTS, else in the source tree the binary was built from
 * (ELM_SOURCE_DIR/scripts). Python is never needed by any other command.
 */
#include "cli.h"
#include "internal.h"
#include "neuronio/nio_data.h"
#include "pathfinder/pathfinder.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef ELM_SOURCE_DIR
#define ELM_SOURCE_DIR "."
#endif

#define PYTHON "/usr/bin/python3"

static const char plot_usage[] =
    "usage: elm plot neuronio --model MODEL --data FILE_OR_DIR --sim K --out FIG.png\n"
    "                         [--t0 MS] [--t1 MS]\n"
    "       elm plot pathfinder --model MODEL --data DIR --index K --out FIG.png\n"
    "                           [--split all|train|valid|test]\n\n"
    "neuronio: simulation K (0-based, numbered file by file as `elm data info` lists them) of a\n"
    "  NeuronIO cache or pickle folder: the input raster (excitatory red, inhibitory blue), the\n"
    "  true and predicted soma voltage, the true spikes and the predicted spike probability, as\n"
    "  in Figure 2 of the ELM paper. The model runs over the whole simulation at once; --t0 and\n"
    "  --t1 (ms, default 0 and the end) choose the part drawn.\n"
    "pathfinder: image K (of --split, default all = metadata order) with the model's readout:\n"
    "  the softmax probability of class 1 after each pixel.\n\n"
    "Drawing uses /usr/bin/python3 with numpy and matplotlib and scripts/plot_neuronio.py\n"
    "(found in $ELM_SCRIPTS, else in the source tree elm was built from).\n";

/* The folder holding plot_neuronio.py (static storage). */
static const char *scripts_dir(void) {
    const char *e = getenv("ELM_SCRIPTS");
    if (e && *e)
        return e;
    return ELM_SOURCE_DIR "/scripts";
}

/* The last component of a path, ignoring trailing '/' (for titles): "a/b/" -> "b". */
static void base_name(char *dst, size_t n, const char *path) {
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    size_t start = len;
    while (start > 0 && path[start - 1] != '/')
        start--;
    snprintf(dst, n, "%.*s", (int)(len - start), path + start);
}

/* Removes the files of a flat temporary folder, then the folder. */
static void remove_tmpdir(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char *p = elm__path_join(dir, e->d_name);
            if (p)
                unlink(p);
            free(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static elm_status save(const char *dir, const char *name, elm__dtype dt, int ndim,
                       const int64_t *shape, const void *data) {
    char *p = elm__path_join(dir, name);
    if (!p)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    elm_status st = elm_npy_save(p, dt, ndim, shape, data);
    free(p);
    return st;
}

/* Runs PYTHON script args... (no shell, so paths need no quoting); returns an exit status. */
static int run_python(char *const *args) {
    pid_t pid = fork();
    if (pid < 0)
        return cli_error("cannot start %s: %s", PYTHON, strerror(errno));
    if (pid == 0) {
        execv(PYTHON, args);
        fprintf(stderr, "elm: error: cannot run %s: %s\n", PYTHON, strerror(errno));
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return cli_error("waiting for %s: %s", PYTHON, strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return cli_error("the plotting script %s/plot_neuronio.py failed (exit %d)", scripts_dir(),
                         WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}

/* Checks the script exists before any work, so a missing one fails fast with a hint. */
static int find_script(char **path) {
    *path = elm__path_join(scripts_dir(), "plot_neuronio.py");
    if (!*path)
        return cli_error("out of memory");
    if (access(*path, R_OK) != 0) {
        fprintf(stderr,
                "elm: error: %s: %s\nhint: set ELM_SCRIPTS to the scripts/ folder of the "
                "elm sources\n",
                *path, strerror(errno));
        free(*path);
        *path = NULL;
        return 1;
    }
    if (access(PYTHON, X_OK) != 0) {
        free(*path);
        *path = NULL;
        return cli_error("%s: %s (plots need Python 3 with numpy and matplotlib)", PYTHON,
                         strerror(errno));
    }
    return 0;
}

static int make_tmpdir(char *tmpl, size_t n) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpl, n, "%s/elm-plot-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpl))
        return cli_error("cannot create a temporary folder %s: %s", tmpl, strerror(errno));
    return 0;
}

/* ---- neuronio -------------------------------------------------------------------------------- */

static int plot_neuronio(int argc, char **argv) {
    const char *model = NULL, *data = NULL, *out = NULL;
    long sim = -1;
    double t0 = 0, t1 = -1;
    const cli_flag flags[] = {
        {"--model", CLI_STR, &model, 0, 0, 0},
        {"--data", CLI_STR, &data, 0, 0, 0},
        {"--out", CLI_STR, &out, 0, 0, 0},
        {"--sim", CLI_INT, &sim, 0, HUGE_VAL, 0},
        {"--t0", CLI_REAL, &t0, -HUGE_VAL, HUGE_VAL, 0},
        {"--t1", CLI_REAL, &t1, -HUGE_VAL, HUGE_VAL, 0},
    };
    int prc = cli_parse_flags(argc, argv, 1, flags, (int)(sizeof flags / sizeof flags[0]),
                              plot_usage, "plot neuronio");
    if (prc >= 0)
        return prc;
    if (!model || !data || !out || sim < 0)
        return cli_usage_error(plot_usage,
                               "plot neuronio needs --model, --data, --sim K (>= 0) and --out");
    char *script = NULL;
    if (find_script(&script))
        return 1;

    int rc = 1;
    elm_status st;
    elm_nio_data *d = NULL;
    elm_model *m = NULL;
    float *x = NULL, *y = NULL, *buf = NULL;
    int32_t *raster = NULL;
    char tmp[4096] = "";
    if ((st = elm_nio_data_open_list(&d, data)) != ELM_OK) {
        rc = cli_fail(st, NULL);
        goto done;
    }
    if (sim >= elm_nio_data_num_sims(d)) {
        rc = cli_error("%s: --sim %ld out of range: the data has %d simulations (0..%d)", data, sim,
                       elm_nio_data_num_sims(d), elm_nio_data_num_sims(d) - 1);
        goto done;
    }
    elm_nio_view v;
    if ((st = elm_nio_data_sim(d, (int)sim, &v)) != ELM_OK) {
        rc = cli_fail(st, NULL);
        goto done;
    }
    if ((st = elm_model_load(&m, model, ELM_F32)) != ELM_OK) {
        rc = cli_fail(st, NULL);
        goto done;
    }
    const elm_config *cfg = elm_model_config(m);
    if (cfg->num_input != v.n_in || cfg->num_output < 2) {
        rc = cli_error("%s: the model takes %d inputs and gives %d outputs; NeuronIO needs %d "
                       "inputs and 2 outputs (spike logit, scaled soma)",
                       model, cfg->num_input, cfg->num_output, v.n_in);
        goto done;
    }
    const int T = v.T, I = v.n_in, O = cfg->num_output;
    if (t1 < 0 || t1 > T)
        t1 = T;
    if (!(t0 >= 0 && t0 < t1)) {
        rc =
            cli_usage_error(plot_usage, "need 0 <= --t0 < --t1 <= %d ms, got %g and %g", T, t0, t1);
        goto done;
    }
    x = malloc((size_t)T * I * sizeof *x);
    y = malloc((size_t)T * O * sizeof *y);
    buf = malloc((size_t)T * 3 * sizeof *buf);
    if (!x || !y || !buf) {
        rc = cli_error("out of memory for a %d x %d simulation", T, I);
        goto done;
    }
    /* The whole simulation as one sequence, inputs times the synapse sign (nio_data.h). */
    if ((st = elm_nio_fill_window(&v, 0, T, x, NULL, 1)) != ELM_OK ||
        (st = elm_model_forward(m, x, y, 1, T)) != ELM_OK) {
        rc = cli_fail(st, NULL);
        goto done;
    }
    /* buf: true soma, predicted soma (out1 / 0.1 - 67.7 mV), spike probability sigmoid(out0). */
    float *soma = buf, *pred = buf + T, *prob = buf + 2 * T;
    for (int t = 0; t < T; t++) {
        soma[t] = elm_nio_view_soma(&v, t);
        pred[t] = (float)((double)y[(size_t)t * O + 1] / ELM_NIO_SOMA_SCALE + ELM_NIO_SOMA_BIAS);
        prob[t] = (float)(1.0 / (1.0 + exp(-(double)y[(size_t)t * O])));
    }
    /* Input raster as (step, input id) pairs. */
    int64_t nnz = v.spike_ptr[T] - v.spike_ptr[0];
    raster = malloc((size_t)(nnz > 0 ? nnz : 1) * 2 * sizeof *raster);
    if (!raster) {
        rc = cli_error("out of memory");
        goto done;
    }
    for (int t = 0; t < T; t++)
        for (int64_t q = v.spike_ptr[t]; q < v.spike_ptr[t + 1]; q++) {
            raster[2 * (q - v.spike_ptr[0])] = t;
            raster[2 * (q - v.spike_ptr[0]) + 1] = v.spike_idx[q];
        }
    if (make_tmpdir(tmp, sizeof tmp)) {
        tmp[0] = 0;
        goto done;
    }
    int64_t sh_t[1] = {T}, sh_r[2] = {nnz, 2}, sh_s[1] = {v.n_out_spikes};
    float empty = 0;
    if ((st = save(tmp, "soma_true.npy", ELM_DT_F32, 1, sh_t, soma)) != ELM_OK ||
        (st = save(tmp, "soma_pred.npy", ELM_DT_F32, 1, sh_t, pred)) != ELM_OK ||
        (st = save(tmp, "spike_prob.npy", ELM_DT_F32, 1, sh_t, prob)) != ELM_OK ||
        (st = save(tmp, "raster.npy", ELM_DT_I32, 2, sh_r, raster)) != ELM_OK ||
        (st = save(tmp, "spike_times.npy", ELM_DT_F32, 1, sh_s,
                   v.n_out_spikes ? (const void *)v.out_spike_times : &empty)) != ELM_OK) {
        rc = cli_fail(st, NULL);
        goto done;
    }
    char s_t0[32], s_t1[32], s_ni[32], title[1024], b_data[256], b_model[256];
    base_name(b_data, sizeof b_data, data);
    base_name(b_model, sizeof b_model, model);
    snprintf(s_t0, sizeof s_t0, "%g", t0);
    snprintf(s_t1, sizeof s_t1, "%g", t1);
    snprintf(s_ni, sizeof s_ni, "%d", I);
    snprintf(title, sizeof title, "NeuronIO simulation %ld of %s  |  model %s", sim, b_data,
             b_model);
    char *args[] = {PYTHON, script, "neuronio", "--dir",  tmp,  "--out",   (char *)out, "--t0",
                    s_t0,   "--t1", s_t1,       "--n-in", s_ni, "--title", title,       NULL};
    rc = run_python(args);
    int shown = 0;
    for (int k = 0; k < v.n_out_spikes; k++)
        shown += (double)v.out_spike_times[k] >= t0 && (double)v.out_spike_times[k] < t1;
    if (rc == 0)
        printf("wrote %s (simulation %ld, %g..%g ms: %d of its %d output spikes)\n", out, sim, t0,
               t1, shown, v.n_out_spikes);
done:
    if (tmp[0])
        remove_tmpdir(tmp);
    free(script);
    free(x);
    free(y);
    free(buf);
    free(raster);
    elm_model_free(m);
    elm_nio_data_free(d);
    return rc;
}

/* ---- pathfinder ------------------------------------------------------------------------------ */

static int plot_pathfinder(int argc, char **argv) {
    const char *model = NULL, *data = NULL, *out = NULL, *split_s = "all";
    long index = -1;
    const cli_flag flags[] = {
        {"--model", CLI_STR, &model, 0, 0, 0},
        {"--data", CLI_STR, &data, 0, 0, 0},
        {"--out", CLI_STR, &out, 0, 0, 0},
        {"--split", CLI_STR, &split_s, 0, 0, 0},
        {"--index", CLI_INT, &index, 0, HUGE_VAL, 0},
    };
    int prc = cli_parse_flags(argc, argv, 1, flags, (int)(sizeof flags / sizeof flags[0]),
                              plot_usage, "plot pathfinder");
    if (prc >= 0)
        return prc;
    if (!model || !data || !out || index < 0)
        return cli_usage_error(plot_usage,
                               "plot pathfinder needs --model, --data, --index K (>= 0), --out");
    elm_pf_split split;
    if (!strcmp(split_s, "all"))
        split = ELM_PF_ALL;
    else if (!strcmp(split_s, "train"))
        split = ELM_PF_TRAIN;
    else if (!strcmp(split_s, "valid"))
        split = ELM_PF_VALID;
    else if (!strcmp(split_s, "test"))
        split = ELM_PF_TEST;
    else
        return cli_usage_error(plot_usage, "--split must be all, train, valid or test, got '%s'",
                               split_s);
    char *script = NULL;
    if (find_script(&script))
        return 1;

    int rc = 1;
    elm_status st;
    elm_pf *pf = NULL;
    elm_model *m = NULL;
    float *x = NULL, *y = NULL, *prob = NULL;
    uint8_t *pix = NULL;
    char tmp[4096] = "";
    if ((st = elm_pf_open(&pf, data, NULL, 0, ELM_PF_SPLIT_SEED)) != ELM_OK) {
        rc = cli_fail(st, NULL);
        goto done;
    }
    long n = elm_pf_len(pf, split);
    if (index >= n) {
        rc = cli_error("%s: --index %ld out of range: split '%s' has %ld images", data, index,
                       split_s, n);
        goto done;
    }
    if ((st = elm_model_load(&m, model, ELM_F32)) != ELM_OK) {
        rc = cli_fail(st, NULL);
        goto done;
    }
    const elm_config *cfg = elm_model_config(m);
    const int S = elm_pf_get_info(pf)->image_size, T = S * S, O = cfg->num_output;
    if (cfg->num_input != 1 || O != 2) {
        rc = cli_error("%s: the model takes %d inputs and gives %d outputs; Pathfinder needs 1 "
                       "input (one pixel per step) and 2 outputs (class logits)",
                       model, cfg->num_input, O);
        goto done;
    }
    x = malloc((size_t)T * sizeof *x);
    y = malloc((size_t)T * O * sizeof *y);
    prob = malloc((size_t)T * sizeof *prob);
    pix = malloc((size_t)T);
    int label = -1;
    if (!x || !y || !prob || !pix) {
        rc = cli_error("out of memory");
        goto done;
    }
    if ((st = elm_pf_load_u8(pf, split, index, pix, &label)) != ELM_OK ||
        (st = elm_pf_load(pf, split, index, x, NULL)) != ELM_OK ||
        (st = elm_model_forward(m, x, y, 1, T)) != ELM_OK) {
        rc = cli_fail(st, NULL);
        goto done;
    }
    /* softmax(y)[1] = sigmoid(y1 - y0), the readout if the sequence ended at that pixel. */
    for (int t = 0; t < T; t++)
        prob[t] = (float)(1.0 / (1.0 + exp((double)y[2 * t] - (double)y[2 * t + 1])));
    if (make_tmpdir(tmp, sizeof tmp)) {
        tmp[0] = 0;
        goto done;
    }
    int64_t sh_img[2] = {S, S}, sh_t[1] = {T};
    if ((st = save(tmp, "image.npy", ELM_DT_U8, 2, sh_img, pix)) != ELM_OK ||
        (st = save(tmp, "prob.npy", ELM_DT_F32, 1, sh_t, prob)) != ELM_OK) {
        rc = cli_fail(st, NULL);
        goto done;
    }
    char s_label[16], title[1024], b_model[256];
    snprintf(s_label, sizeof s_label, "%d", label);
    base_name(b_model, sizeof b_model, model);
    snprintf(title, sizeof title, "Pathfinder: %s image %ld (%s)  |  model %s", split_s, index,
             elm_pf_image_path(pf, split, index), b_model);
    char *args[] = {PYTHON,      script,    "pathfinder", "--dir",   tmp,   "--out",
                    (char *)out, "--label", s_label,      "--title", title, NULL};
    rc = run_python(args);
    if (rc == 0)
        printf("wrote %s (label %d, P(class 1) at the last pixel %.3f)\n", out, label,
               (double)prob[T - 1]);
done:
    if (tmp[0])
        remove_tmpdir(tmp);
    free(script);
    free(x);
    free(y);
    free(prob);
    free(pix);
    elm_model_free(m);
    elm_pf_free(pf);
    return rc;
}

int cmd_plot(int argc, char **argv) {
    if (argc < 2 || cli_is_help(argv[1])) {
        fputs(plot_usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "neuronio"))
        return plot_neuronio(argc - 1, argv + 1);
    if (!strcmp(argv[1], "pathfinder"))
        return plot_pathfinder(argc - 1, argv + 1);
    return cli_usage_error(plot_usage, "plot: unknown kind '%s' (neuronio or pathfinder)", argv[1]);
}
