/*
 * plot.c - `elm plot neuronio` and `elm plot pathfinder`: a model's predictions on one sample,
 * drawn as a PNG; `elm plot curves`: a training run's learning curves.
 *
 * The split of work: this file loads the data and the model and computes every number that is
 * plotted (in C, with the library's own forward pass), writes them as .npy files into a private
 * temporary folder, and runs scripts/plot_neuronio.py (matplotlib) only to draw them; the curves
 * come from the run's metrics.csv as the trainer wrote it (scripts/plot_curves.py). The
 * interpreter and the scripts are found by pyplot.c. Python is never needed by any other
 * command.
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

static const char plot_usage[] =
    "usage: elm plot neuronio --model MODEL --data FILE_OR_DIR --sim K --out FIG.png\n"
    "                         [--t0 MS] [--t1 MS] [--memory]\n"
    "       elm plot pathfinder --model MODEL --data DIR --index K --out FIG.png\n"
    "                           [--split all|train|valid|test]\n"
    "       elm plot curves RUN [RUN...] --out FIG.png [--metric NAME]...\n\n"
    "neuronio: simulation K (0-based, numbered file by file as `elm data info` lists them) of a\n"
    "  NeuronIO cache or pickle folder: the input raster (excitatory red, inhibitory blue), the\n"
    "  true and predicted soma voltage, the true spikes and the predicted spike probability, as\n"
    "  in Figure 2 of the ELM paper. The model runs over the whole simulation at once; --t0 and\n"
    "  --t1 (ms, default 0 and the end) choose the part drawn. --memory adds a panel with every\n"
  "  memory unit's trace m_t, coloured by its time constant tau_m (as the reference's\n"
  "  visualize_neuron_workings).\n"
    "pathfinder: image K (of --split, default all = metadata order) with the model's readout:\n"
    "  the softmax probability of class 1 after each pixel.\n"
    "curves: the learning curves of the training run RUN from its metrics.csv: the training\n"
    "  loss and, per epoch, each --metric NAME (a column of metrics.csv; default: the task's\n"
    "  usual ones present, such as AUC and soma_RMSE or accuracy), one panel each. Several\n"
    "  RUNs (a run, then the runs that went on from its model with --init, in order) are drawn\n"
    "  one after another, the epochs counted on, with a dashed line where each begins.\n\n"
    "Drawing needs Python 3 with numpy and matplotlib: $ELM_PYTHON if set, else the first of\n"
    "python3 on PATH and /usr/bin/python3 that has both. The scripts (plot_neuronio.py,\n"
    "plot_curves.py) are looked for in $ELM_SCRIPTS if set, else in share/elm beside the\n"
    "folder of the elm executable, the install folder, and the scripts/ folder of the source\n"
    "tree elm was built from.\n";

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
    elm_status st = elm__npy_save(p, dt, ndim, shape, data);
    free(p);
    return st;
}

static int make_tmpdir(char *tmpl, size_t n) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpl, n, "%s/elm-plot-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpl))
        return cli_error("cannot create a temporary folder %s: %s", tmpl, strerror(errno));
    return 0;
}

/* ---- neuronio -------------------------------------------------------------------------------- */

/* Opens the data and simulation `sim` of it, and the model, checking they fit NeuronIO. 0, or the
 * exit status after printing why not; *d and *m are the caller's to free either way. */
static int nio_open(elm_nio_data **d, elm_nio_view *v, elm_model **m, const char *data, long sim,
                    const char *model) {
    elm_status st;
    if ((st = elm_nio_data_open_list(d, data)) != ELM_OK)
        return cli_fail(st, NULL);
    if (sim >= elm_nio_data_num_sims(*d))
        return cli_error("%s: --sim %ld out of range: the data has %d simulations (0..%d)", data,
                         sim, elm_nio_data_num_sims(*d), elm_nio_data_num_sims(*d) - 1);
    if ((st = elm_nio_data_sim(*d, (int)sim, v)) != ELM_OK)
        return cli_fail(st, NULL);
    if ((st = elm_model_load(m, model, ELM_F32)) != ELM_OK)
        return cli_fail(st, NULL);
    const elm_config *cfg = elm_model_config(*m);
    if (cfg->num_input != v->n_in || cfg->num_output < 2)
        return cli_error("%s: the model takes %d inputs and gives %d outputs; NeuronIO needs %d "
                         "inputs and 2 outputs (spike logit, scaled soma)",
                         model, cfg->num_input, cfg->num_output, v->n_in);
    return 0;
}

/* The model over the whole simulation as one sequence, inputs times the synapse sign
 * (nio_data.h), x (T, I) and y (T, O) the caller's; buf (3, T): true soma, predicted soma
 * (out1 / 0.1 - 67.7 mV), spike probability sigmoid(out0). */
static elm_status nio_predict(const elm_nio_view *v, elm_model *m, float *x, float *y, float *buf) {
    const int T = v->T, O = elm_model_config(m)->num_output;
    elm_status st;
    if ((st = elm_nio_fill_window(v, 0, T, x, NULL, 1)) != ELM_OK ||
        (st = elm_model_forward(m, x, y, 1, T)) != ELM_OK)
        return st;
    float *soma = buf, *pred = buf + T, *prob = buf + 2 * T;
    for (int t = 0; t < T; t++) {
        soma[t] = elm_nio_view_soma(v, t);
        pred[t] = (float)((double)y[(size_t)t * O + 1] / ELM_NIO_SOMA_SCALE + ELM_NIO_SOMA_BIAS);
        prob[t] = (float)(1.0 / (1.0 + exp(-(double)y[(size_t)t * O])));
    }
    return ELM_OK;
}

/* The input raster of the first T steps as (step, input id) pairs (malloc'd), or NULL. */
static int32_t *nio_raster(const elm_nio_view *v, int T) {
    int64_t nnz = v->spike_ptr[T] - v->spike_ptr[0];
    int32_t *raster = malloc((size_t)(nnz > 0 ? nnz : 1) * 2 * sizeof *raster);
    if (!raster)
        return NULL;
    for (int t = 0; t < T; t++)
        for (int64_t q = v->spike_ptr[t]; q < v->spike_ptr[t + 1]; q++) {
            raster[2 * (q - v->spike_ptr[0])] = t;
            raster[2 * (q - v->spike_ptr[0]) + 1] = v->spike_idx[q];
        }
    return raster;
}

/*
 * The memory units' traces over x (T, I): the model streamed step by step (elm_model_step gives
 * the batch forward's numbers), m_t read after each step, into *mem (T, M); and each unit's tau_m
 * from its prototype into *taus (M). Both malloc'd and the caller's, even on failure. 0, or the
 * exit status after printing why not.
 */
static int nio_memory_traces(elm_model *m, const char *model, const float *x, int T,
                             float **mem_out, float **taus_out) {
    const elm_config *cfg = elm_model_config(m);
    const int I = cfg->num_input, O = cfg->num_output, M = cfg->num_memory;
    if (cfg->model_type != ELM_MODEL_ELM)
        return cli_error("%s: --memory needs an ELM model (this one is an LSTM)", model);
    float *mem = *mem_out = malloc((size_t)T * M * sizeof *mem);
    float *taus = *taus_out = malloc((size_t)M * sizeof *taus);
    float *yt = malloc((size_t)O * sizeof *yt);
    if (!mem || !taus || !yt) {
        free(yt);
        return cli_error("out of memory for %d x %d memory traces", T, M);
    }
    elm_state *state = NULL;
    elm_status st = elm_state_create(&state, m, 1);
    for (int t = 0; t < T && st == ELM_OK; t++) {
        st = elm_model_step(m, state, x + (size_t)t * I, yt);
        const float *mt = elm_state_memory(state, 0);
        const int stride = elm_state_memory_stride(state, 0);
        for (int j = 0; j < M && st == ELM_OK; j++)
            mem[(size_t)t * M + j] = mt[(size_t)j * stride];
    }
    free(yt);
    elm_state_free(state);
    int ti = elm_model_find_tensor(m, "_proto_tau_m");
    elm_tensor tt;
    if (st == ELM_OK &&
        (ti < 0 || (st = elm_model_tensor(m, ti, &tt)) != ELM_OK || tt.numel != (size_t)M))
        return st != ELM_OK ? cli_fail(st, NULL)
                            : cli_error("%s: the model has no _proto_tau_m of %d values", model, M);
    if (st != ELM_OK)
        return cli_fail(st, NULL);
    /* tau_m = tau_min + (tau_max - tau_min) * sigmoid(proto) (docs/MODEL.md section 1). */
    for (int j = 0; j < M; j++) {
        double p = (double)((const float *)tt.data)[j];
        taus[j] = (float)(cfg->memory_tau_min +
                          (cfg->memory_tau_max - cfg->memory_tau_min) / (1.0 + exp(-p)));
    }
    return 0;
}

/* The arrays plot_neuronio.py reads, as .npy files in dir: buf holds the true soma, predicted soma
 * and spike probability (T each); mem (T, M) and taus (M) only with --memory (mem not NULL). */
static elm_status nio_save(const char *dir, const elm_nio_view *v, const float *buf,
                           const int32_t *raster, int64_t nnz, const float *mem, const float *taus,
                           int M) {
    const int T = v->T;
    int64_t sh_t[1] = {T}, sh_r[2] = {nnz, 2}, sh_s[1] = {v->n_out_spikes};
    int64_t sh_m[2] = {T, M}, sh_tau[1] = {M};
    elm_status st;
    if (mem && ((st = save(dir, "memory.npy", ELM_DT_F32, 2, sh_m, mem)) != ELM_OK ||
                (st = save(dir, "memory_tau.npy", ELM_DT_F32, 1, sh_tau, taus)) != ELM_OK))
        return st;
    float empty = 0;
    if ((st = save(dir, "soma_true.npy", ELM_DT_F32, 1, sh_t, buf)) != ELM_OK ||
        (st = save(dir, "soma_pred.npy", ELM_DT_F32, 1, sh_t, buf + T)) != ELM_OK ||
        (st = save(dir, "spike_prob.npy", ELM_DT_F32, 1, sh_t, buf + 2 * T)) != ELM_OK ||
        (st = save(dir, "raster.npy", ELM_DT_I32, 2, sh_r, raster)) != ELM_OK ||
        (st = save(dir, "spike_times.npy", ELM_DT_F32, 1, sh_s,
                   v->n_out_spikes ? (const void *)v->out_spike_times : &empty)) != ELM_OK)
        return st;
    return ELM_OK;
}

/* Runs plot_neuronio.py over the files in the folder tmp; its exit status. */
static int nio_draw(const char *python, char *script, char *tmp, const char *out, const char *data,
                    const char *model, long sim, double t0, double t1, int I, int memory) {
    char s_t0[32], s_t1[32], s_ni[32], title[1024], b_data[256], b_model[256];
    base_name(b_data, sizeof b_data, data);
    base_name(b_model, sizeof b_model, model);
    snprintf(s_t0, sizeof s_t0, "%g", t0);
    snprintf(s_t1, sizeof s_t1, "%g", t1);
    snprintf(s_ni, sizeof s_ni, "%d", I);
    snprintf(title, sizeof title, "NeuronIO simulation %ld of %s  |  model %s", sim, b_data,
             b_model);
    char *args[] = {(char *)python,
                    script,
                    "neuronio",
                    "--dir",
                    tmp,
                    "--out",
                    (char *)out,
                    "--t0",
                    s_t0,
                    "--t1",
                    s_t1,
                    "--n-in",
                    s_ni,
                    "--title",
                    title,
                    memory ? "--memory" : NULL,
                    NULL};
    return cli_run_python(python, args);
}

static int plot_neuronio(int argc, char **argv) {
    const char *model = NULL, *data = NULL, *out = NULL;
    long sim = -1;
    double t0 = 0, t1 = -1;
    int memory = 0;
    const cli_flag flags[] = {
        {"--model", CLI_STR, &model, 0, 0, 0},
        {"--data", CLI_STR, &data, 0, 0, 0},
        {"--out", CLI_STR, &out, 0, 0, 0},
        {"--sim", CLI_INT, &sim, 0, HUGE_VAL, 0},
        {"--t0", CLI_REAL, &t0, -HUGE_VAL, HUGE_VAL, 0},
        {"--t1", CLI_REAL, &t1, -HUGE_VAL, HUGE_VAL, 0},
        {"--memory", CLI_SWITCH, &memory, 0, 0, 0},
    };
    int prc = cli_parse_flags(argc, argv, 1, flags, (int)(sizeof flags / sizeof flags[0]),
                              plot_usage, "plot neuronio");
    if (prc >= 0)
        return prc;
    if (!model || !data || !out || sim < 0)
        return cli_usage_error(plot_usage,
                               "plot neuronio needs --model, --data, --sim K (>= 0) and --out");
    const char *python = cli_python(0);
    char *script = python ? cli_script("plot_neuronio.py", 0) : NULL;
    if (!script)
        return 1;

    int rc = 1;
    elm_status st;
    elm_nio_data *d = NULL;
    elm_model *m = NULL;
    float *x = NULL, *y = NULL, *buf = NULL, *mem = NULL, *taus = NULL;
    int32_t *raster = NULL;
    char tmp[4096] = "";
    elm_nio_view v;
    const int orc = nio_open(&d, &v, &m, data, sim, model);
    if (orc) {
        rc = orc;
        goto done;
    }
    const elm_config *cfg = elm_model_config(m);
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
    if ((st = nio_predict(&v, m, x, y, buf)) != ELM_OK) {
        rc = cli_fail(st, NULL);
        goto done;
    }
    int64_t nnz = v.spike_ptr[T] - v.spike_ptr[0];
    if (!(raster = nio_raster(&v, T))) {
        rc = cli_error("out of memory");
        goto done;
    }
    const int M = cfg->num_memory;
    const int mrc = memory ? nio_memory_traces(m, model, x, T, &mem, &taus) : 0;
    if (mrc) {
        rc = mrc;
        goto done;
    }
    if (make_tmpdir(tmp, sizeof tmp)) {
        tmp[0] = 0;
        goto done;
    }
    if ((st = nio_save(tmp, &v, buf, raster, nnz, memory ? mem : NULL, taus, M)) != ELM_OK) {
        rc = cli_fail(st, NULL);
        goto done;
    }
    rc = nio_draw(python, script, tmp, out, data, model, sim, t0, t1, I, memory);
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
    free(mem);
    free(taus);
    free(raster);
    elm_model_free(m);
    elm_nio_data_free(d);
    return rc;
}

/* ---- pathfinder ------------------------------------------------------------------------------ */

/* --split NAME -> *split; -1 for a name that is none of all, train, valid, test. */
static int pf_split_named(const char *name, elm_pf_split *split) {
    if (!strcmp(name, "all"))
        *split = ELM_PF_ALL;
    else if (!strcmp(name, "train"))
        *split = ELM_PF_TRAIN;
    else if (!strcmp(name, "valid"))
        *split = ELM_PF_VALID;
    else if (!strcmp(name, "test"))
        *split = ELM_PF_TEST;
    else
        return -1;
    return 0;
}

/* Writes the image (S, S) and P(class 1) after each pixel (S * S) for plot_neuronio.py's
 * pathfinder mode in a temporary folder and runs it; the exit status. */
static int pf_draw(const char *python, char *script, const char *out, const char *model,
                   const elm_pf *pf, elm_pf_split split, const char *split_s, long index,
                   const uint8_t *pix, const float *prob, int label) {
    const int S = elm_pf_get_info(pf)->image_size, T = S * S;
    char tmp[4096];
    if (make_tmpdir(tmp, sizeof tmp))
        return 1;
    int rc;
    elm_status st;
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
    char *args[] = {(char *)python, script,    "pathfinder", "--dir",   tmp,   "--out",
                    (char *)out,    "--label", s_label,      "--title", title, NULL};
    rc = cli_run_python(python, args);
    if (rc == 0)
        printf("wrote %s (label %d, P(class 1) at the last pixel %.3f)\n", out, label,
               (double)prob[T - 1]);
done:
    remove_tmpdir(tmp);
    return rc;
}

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
    if (pf_split_named(split_s, &split))
        return cli_usage_error(plot_usage, "--split must be all, train, valid or test, got '%s'",
                               split_s);
    const char *python = cli_python(0);
    char *script = python ? cli_script("plot_neuronio.py", 0) : NULL;
    if (!script)
        return 1;

    int rc = 1;
    elm_status st;
    elm_pf *pf = NULL;
    elm_model *m = NULL;
    float *x = NULL, *y = NULL, *prob = NULL;
    uint8_t *pix = NULL;
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
    /* The model's inputs say how its pixels were encoded: 1, the plain pixel; L in 2..256,
     * one-hot over L grey levels (trained with pixel_levels L). */
    const int I = cfg->num_input, levels = I > 1 ? I : 0;
    if ((I != 1 && !elm_pf_levels_valid(I)) || O != 2) {
        rc = cli_error("%s: the model takes %d inputs and gives %d outputs; Pathfinder needs 1 "
                       "input (the pixel) or 2 to 256 (pixel_levels, one-hot grey levels) and "
                       "2 outputs (class logits)",
                       model, I, O);
        goto done;
    }
    x = malloc((size_t)T * (size_t)I * sizeof *x);
    y = malloc((size_t)T * O * sizeof *y);
    prob = malloc((size_t)T * sizeof *prob);
    pix = malloc((size_t)T);
    int label = -1;
    if (!x || !y || !prob || !pix) {
        rc = cli_error("out of memory");
        goto done;
    }
    if ((st = elm_pf_load_u8(pf, split, index, pix, &label)) != ELM_OK) {
        rc = cli_fail(st, NULL);
        goto done;
    }
    elm_pf_encode(x, pix, (size_t)T, levels);
    if ((st = elm_model_forward(m, x, y, 1, T)) != ELM_OK) {
        rc = cli_fail(st, NULL);
        goto done;
    }
    /* softmax(y)[1] = sigmoid(y1 - y0), the readout if the sequence ended at that pixel. */
    for (int t = 0; t < T; t++)
        prob[t] = (float)(1.0 / (1.0 + exp((double)y[2 * t] - (double)y[2 * t + 1])));
    rc = pf_draw(python, script, out, model, pf, split, split_s, index, pix, prob, label);
done:
    free(script);
    free(x);
    free(y);
    free(prob);
    free(pix);
    elm_model_free(m);
    elm_pf_free(pf);
    return rc;
}

/* ---- curves ---------------------------------------------------------------------------------- */

/* The RUNs and the --metric NAMEs of `plot curves`, each in order; `what` names them in the
 * message when there are too many. */
enum { MAX_LIST = 16 };
typedef struct {
    const char *v[MAX_LIST];
    int n;
    const char *what;
} name_list;

static int add_name(void *ctx, const char *flag, const char *value) {
    name_list *l = ctx;
    if (l->n == MAX_LIST)
        return cli_usage_error(plot_usage, "plot curves: at most %d %s", MAX_LIST, l->what);
    l->v[l->n++] = value;
    return 0;
}

static int plot_curves(int argc, char **argv) {
    const char *out = NULL;
    name_list ml = {{NULL}, 0, "--metric"}, rl = {{NULL}, 0, "runs"};
    const char **metrics = ml.v;
    const cli_call metric = {add_name, &ml};
    const cli_call run_arg = {add_name, &rl};
    const cli_flag flags[] = {
        {"--out", CLI_STR, &out, 0, 0, 0},
        {"--metric", CLI_CALL, (void *)&metric, 0, 0, 0},
        {NULL, CLI_CALL, (void *)&run_arg, 0, 0, 0},
    };
    int prc = cli_parse_flags(argc, argv, 1, flags, (int)(sizeof flags / sizeof flags[0]),
                              plot_usage, "plot curves");
    if (prc >= 0)
        return prc;
    const int nm = ml.n, nr = rl.n;
    if (!nr || !out)
        return cli_usage_error(plot_usage, "plot curves needs RUN (a training run's folder) and "
                                           "--out FIG.png");
    char *csv[MAX_LIST] = {NULL};
    int rc = 0;
    for (int k = 0; k < nr && !rc; k++) {
        if (!(csv[k] = elm__path_join(rl.v[k], "metrics.csv")))
            rc = cli_error("out of memory");
        else if (access(csv[k], R_OK) != 0)
            rc = cli_error("%s: %s (RUN must be a folder `elm train` wrote; metrics.csv appears "
                           "after its first epoch)",
                           csv[k], strerror(errno));
    }
    const char *python = rc ? NULL : cli_python(0);
    char *script = python ? cli_script("plot_curves.py", 0) : NULL;
    if (!script) {
        for (int k = 0; k < nr; k++)
            free(csv[k]);
        return rc ? rc : 1;
    }
    char *args[8 + 3 * MAX_LIST];
    int na = 0;
    args[na++] = (char *)python;
    args[na++] = script;
    for (int k = 0; k < nr; k++)
        args[na++] = csv[k];
    args[na++] = "--out";
    args[na++] = (char *)out;
    for (int k = 0; k < nm; k++) {
        args[na++] = "--metric";
        args[na++] = (char *)metrics[k];
    }
    args[na] = NULL;
    rc = cli_run_python(python, args);
    if (rc == 0)
        printf("wrote %s\n", out);
    free(script);
    for (int k = 0; k < nr; k++)
        free(csv[k]);
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
    if (!strcmp(argv[1], "curves"))
        return plot_curves(argc - 1, argv + 1);
    return cli_usage_error(plot_usage, "plot: unknown kind '%s' (neuronio, pathfinder or curves)",
                           argv[1]);
}
