/*
 * model_cmds.c - `elm info`, `elm predict` and `elm grad`: a model and .npy files in and out.
 *
 * These spellings are a contract checked from outside the test suite (issue 2): keep them.
 */
#include "cli.h"
#include "model_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char info_usage[] =
    "usage: elm info MODEL [--json]\n\n"
    "MODEL is a .safetensors file or a folder holding model.safetensors (and perhaps\n"
    "model_config.json); or a PyTorch state dict: a .pt file with model_config.json beside\n"
    "it, or a folder holding neuronio_best_model_state.pt (or one other .pt) and\n"
    "model_config.json, as the authors' released models are. Every command that takes a\n"
    "MODEL reads these forms. Prints the ELM version, the configuration with defaults filled\n"
    "in, the trainable parameter count and the tensors.\n";

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    int json = 0;
    const cli_one_arg take_model = {&path, info_usage, "info"};
    const cli_call model_arg = {cli_take_one_arg, (void *)&take_model};
    const cli_flag flags[] = {
        {"--json", CLI_SWITCH, &json, 0, 0, 0},
        {NULL, CLI_CALL, (void *)&model_arg, 0, 0, 0},
    };
    int prc = cli_parse_flags(argc, argv, 1, flags, (int)(sizeof flags / sizeof flags[0]),
                              info_usage, "info");
    if (prc >= 0)
        return prc;
    if (!path)
        return cli_usage_error(info_usage, "info: MODEL is required");
    elm_model *m = NULL;
    elm_status st = elm_model_load(&m, path, ELM_F32);
    if (st)
        return cli_fail(st, NULL);
    const elm_config *c = elm_model_config(m);
    char *cfg = elm_config_to_json(c);
    const char *ver = c->model_type == ELM_MODEL_LSTM ? "lstm" : c->version == ELM_V2 ? "v2" : "v1";
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "version", ver);
        cJSON_AddStringToObject(o, "elm", ELM_VERSION_STRING);
        cJSON_AddStringToObject(o, "path", path);
        cJSON_AddNumberToObject(o, "num_params", (double)elm_model_num_params(m));
        cJSON_AddItemToObject(o, "config", cJSON_Parse(cfg));
        cJSON *ts = cJSON_AddArrayToObject(o, "tensors");
        for (int i = 0; i < elm_model_num_tensors(m); i++) {
            elm_tensor t;
            elm_model_tensor(m, i, &t);
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "name", t.name);
            cJSON *sh = cJSON_AddArrayToObject(e, "shape");
            for (int d = 0; d < t.ndim; d++)
                cJSON_AddItemToArray(sh, cJSON_CreateNumber(t.shape[d]));
            cJSON_AddBoolToObject(e, "trainable", t.trainable);
            cJSON_AddItemToArray(ts, e);
        }
        char *s = cJSON_Print(o);
        printf("%s\n", s);
        free(s);
        cJSON_Delete(o);
    } else {
        printf("model:       %s\n", path);
        printf("version:     %s%s\n", c->model_type == ELM_MODEL_LSTM ? "" : "ELM ",
               c->model_type == ELM_MODEL_LSTM ? "LSTM baseline" : ver);
        printf("parameters:  %zu trainable\n", elm_model_num_params(m));
        printf("config:      %s\n", cfg);
        printf("tensors:\n");
        for (int i = 0; i < elm_model_num_tensors(m); i++) {
            elm_tensor t;
            elm_model_tensor(m, i, &t);
            if (t.ndim == 2)
                printf("  %-26s [%d, %d]%s\n", t.name, t.shape[0], t.shape[1],
                       t.trainable ? "" : "  (fixed)");
            else
                printf("  %-26s [%d]%s\n", t.name, t.shape[0], t.trainable ? "" : "  (fixed)");
        }
    }
    free(cfg);
    elm_model_free(m);
    return 0;
}

/* numpy's name of an array's dtype, for messages about .npy files. */
static const char *npy_type_name(elm__dtype t) {
    static const char *names[] = {"float16", "float32", "float64", "int8", "uint8",
                                  "int16",   "int32",   "int64",   "bool"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

/* "[2, 300, 100]": every dimension of an array (messages print the whole shape). */
static const char *shape_str(const elm__array *a, char *buf, size_t cap) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < a->ndim && k < cap; d++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", d ? ", " : "", (long long)a->shape[d]);
    if (k < cap)
        snprintf(buf + k, cap - k, "]");
    return buf;
}

/* Loads an input .npy as (B, T, I) in `dtype`, checking shape and finiteness. Error messages
 * are built before the array is freed (they print its dtype and shape). */
static int load_input(const char *path, const elm_model *m, elm_dtype dtype, void **out, int *B,
                      int *T, int *squeezed) {
    elm__array a;
    elm_status st = elm__npy_load(path, &a);
    if (st)
        return cli_fail(st, NULL);
    int I = elm_model_config(m)->num_input;
    *squeezed = a.ndim == 2;
    char shp[160];
    if (a.dtype != ELM_DT_F32 && a.dtype != ELM_DT_F64) {
        int rc = cli_error("%s: input must be float32 or float64, not %s", path,
                           npy_type_name(a.dtype));
        elm__array_free(&a);
        return rc;
    }
    if ((a.ndim != 3 && a.ndim != 2) || a.shape[a.ndim - 1] != I) {
        int rc = cli_error("%s: input must be [B, T, %d] or [T, %d] for this model, not %s", path,
                           I, I, shape_str(&a, shp, sizeof shp));
        elm__array_free(&a);
        return rc;
    }
    *B = a.ndim == 3 ? (int)a.shape[0] : 1;
    *T = (int)a.shape[a.ndim - 2];
    if (*B < 1 || *T < 1) {
        elm__array_free(&a);
        return cli_error("%s: input has an empty batch or no time steps", path);
    }
    size_t rs = dtype == ELM_F64 ? sizeof(double) : sizeof(float);
    void *x = malloc(rs * a.numel);
    if (!x) {
        elm__array_free(&a);
        return cli_error("%s: out of memory for %zu values", path, a.numel);
    }
    for (size_t i = 0; i < a.numel; i++) {
        double v = elm__array_get(&a, i);
        if (!isfinite(v)) {
            size_t t = (i / (size_t)I) % (size_t)*T, b = i / ((size_t)I * (size_t)*T);
            elm__array_free(&a);
            free(x);
            return cli_error("%s: non-finite value at [%zu, %zu, %zu]", path, b, t,
                             i % (size_t)I);
        }
        if (dtype == ELM_F64)
            ((double *)x)[i] = v;
        else
            ((float *)x)[i] = (float)v;
    }
    elm__array_free(&a);
    *out = x;
    return 0;
}

static const char predict_usage[] =
    "usage: elm predict --model MODEL --input X.npy --output Y.npy [--f64] [--threads N]\n\n"
    "X: float32 or float64 .npy of shape [B, T, n_in] (or [T, n_in] for one sample).\n"
    "Y: the raw outputs, float32 [B, T, n_out] (float64, computed in float64, with --f64).\n";

static const char grad_usage[] =
    "usage: elm grad --model MODEL --input X.npy --dloss G.npy --output GRADS.safetensors\n"
    "                [--f64] [--threads N]\n\n"
    "Writes dL/dparam of L = sum(Y * G) for every trainable parameter, under the reference's\n"
    "tensor names, F32 (F64, computed in float64, with --f64). G has Y's shape [B, T, n_out].\n";

/* dL/dY from the .npy file `dloss` (float32 or float64, Y's shape (B, T, O), or (T, O) when the
 * input was one sequence) into *g_out (malloc'd, the model's dtype; the caller's even on
 * failure). 0, or the exit status after printing why not. */
static int load_dloss(const char *dloss, int B, int T, int O, int sq, int f64, void **g_out) {
    const size_t rs = f64 ? sizeof(double) : sizeof(float);
    const size_t ny = (size_t)B * (size_t)T * (size_t)O;
    elm__array ga;
    elm_status st = elm__npy_load(dloss, &ga);
    if (st)
        return cli_fail(st, NULL);
    int shape_ok = (ga.ndim == 3 && ga.shape[0] == B && ga.shape[1] == T && ga.shape[2] == O) ||
                   (sq && ga.ndim == 2 && ga.shape[0] == T && ga.shape[1] == O);
    if (!shape_ok || (ga.dtype != ELM_DT_F32 && ga.dtype != ELM_DT_F64)) {
        char shp[160];
        int rc =
            cli_error("%s: dloss must be float32 or float64 of Y's shape [%d, %d, %d], not %s %s",
                      dloss, B, T, O, npy_type_name(ga.dtype), shape_str(&ga, shp, sizeof shp));
        elm__array_free(&ga);
        return rc;
    }
    void *g = *g_out = malloc(rs * ny);
    for (size_t i = 0; g && i < ny; i++) {
        double gv = elm__array_get(&ga, i);
        if (!isfinite(gv)) {
            elm__array_free(&ga);
            return cli_error("%s: non-finite value at element %zu", dloss, i);
        }
        if (f64)
            ((double *)g)[i] = gv;
        else
            ((float *)g)[i] = (float)gv;
    }
    elm__array_free(&ga);
    if (!g)
        return cli_error("out of memory");
    return 0;
}

/* The gradients of the trainable tensors as safetensors at `output`, with the loss sum(y * g)
 * (ny elements, the model's dtype) in __metadata__. */
static elm_status write_grads(const elm_model *m, const char *output, const void *y, const void *g,
                              size_t ny) {
    const int f64 = elm_model_dtype(m) == ELM_F64;
    elm__st_out outs[64];
    int n = 0;
    for (int i = 0; i < elm_model_num_tensors(m) && n < 64; i++) {
        elm_tensor t;
        elm_model_tensor(m, i, &t);
        if (!t.trainable)
            continue;
        outs[n] = (elm__st_out){.name = t.name,
                                .dtype = f64 ? ELM_DT_F64 : ELM_DT_F32,
                                .ndim = t.ndim,
                                .shape = {t.shape[0], t.shape[1]},
                                .data = t.grad};
        n++;
    }
    double L = 0;
    for (size_t i = 0; i < ny; i++)
        L += f64 ? ((const double *)y)[i] * ((const double *)g)[i]
                 : (double)((const float *)y)[i] * (double)((const float *)g)[i];
    char lbuf[64];
    snprintf(lbuf, sizeof lbuf, "%.17g", L);
    const char *kv[] = {"loss", lbuf, "written_by", "elm " ELM_VERSION_STRING};
    return elm__st_write(output, outs, n, kv, 2);
}

static int predict_or_grad(int argc, char **argv, int grad) {
    const char *usage = grad ? grad_usage : predict_usage;
    const char *model = NULL, *input = NULL, *output = NULL, *dloss = NULL;
    int f64 = 0;
    long threads = 0;
    const cli_flag flags[] = {
        {"--model", CLI_STR, &model, 0, 0, 0},
        {"--input", CLI_STR, &input, 0, 0, 0},
        {"--output", CLI_STR, &output, 0, 0, 0},
        {"--threads", CLI_INT, &threads, 0, 4096, 0},
        {"--f64", CLI_SWITCH, &f64, 0, 0, 0},
        {"--dloss", CLI_STR, &dloss, 0, 0, 0}, /* grad only: last, left out for predict */
    };
    const int nflags = (int)(sizeof flags / sizeof flags[0]) - (grad ? 0 : 1);
    int prc = cli_parse_flags(argc, argv, 1, flags, nflags, usage, argv[0]);
    if (prc >= 0)
        return prc;
    if (!model || !input || !output || (grad && !dloss))
        return cli_usage_error(usage, "%s: --model, --input%s and --output are required", argv[0],
                               grad ? ", --dloss" : "");
    elm_dtype dt = f64 ? ELM_F64 : ELM_F32;
    size_t rs = f64 ? sizeof(double) : sizeof(float);
    elm_model *m = NULL;
    elm_status st = elm_model_load(&m, model, dt);
    if (st)
        return cli_fail(st, NULL);
    elm_model_set_threads(m, (int)threads);
    void *x = NULL, *y = NULL, *g = NULL;
    int B = 0, T = 0, sq = 0, rc = load_input(input, m, dt, &x, &B, &T, &sq);
    if (rc) {
        elm_model_free(m);
        return rc;
    }
    int O = elm_model_config(m)->num_output;
    size_t ny = (size_t)B * (size_t)T * (size_t)O;
    y = malloc(rs * ny);
    if (!y) {
        rc = cli_error("out of memory");
        goto done;
    }
    if (!grad) {
        st = f64 ? elm_model_forward_f64(m, x, y, B, T) : elm_model_forward(m, x, y, B, T);
        if (st) {
            rc = cli_fail(st, NULL);
            goto done;
        }
        int64_t shape[3] = {B, T, O};
        st = elm__npy_save(output, f64 ? ELM_DT_F64 : ELM_DT_F32, 3, shape, y);
        if (st)
            rc = cli_fail(st, NULL);
        goto done;
    }
    if ((rc = load_dloss(dloss, B, T, O, sq, f64, &g)) != 0)
        goto done;
    elm_model_zero_grad(m);
    st = elm_model_forward_train(m, x, y, B, T);
    if (!st)
        st = elm_model_backward(m, g);
    if (st) {
        rc = cli_fail(st, NULL);
        goto done;
    }
    if ((st = write_grads(m, output, y, g, ny)) != ELM_OK)
        rc = cli_fail(st, NULL);
done:
    free(x);
    free(y);
    free(g);
    elm_model_free(m);
    return rc;
}

int cmd_predict(int argc, char **argv) {
    return predict_or_grad(argc, argv, 0);
}

int cmd_grad(int argc, char **argv) {
    return predict_or_grad(argc, argv, 1);
}
