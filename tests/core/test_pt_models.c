/*
 * test_pt_models.c - models in the reference's own forms (issue 14):
 *
 * - _proto_tau_m = +inf / -inf (what the reference's float32 init gives for the memory unit at
 *   tau_max) load, act as tau_max / tau_min with gradient 0, bit for bit like a model holding
 *   finite equivalents (+-1e4, whose sigmoid is exactly 1 and 0), in float32 and float64, and
 *   save back unchanged to safetensors and .pt; NaN there stays refused.
 * - model_config.json writes every real-valued option as a JSON real (v1, v2, routed, LSTM).
 * - the authors' released checkpoints (../shared/models/neuronio/<name>/
 *   neuronio_best_model_state.pt, read directly) give bitwise the tensors, parameters and outputs
 *   of their safetensors twins, loaded as a .pt file and as a folder holding only the .pt and
 *   model_config.json; this part is skipped with a message when ../shared is absent.
 */
#include "elm.h"
#include "model_internal.h"
#include "pt.h"
#include "test.h"
#include "tmpfiles.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdint.h>
#include <unistd.h>


static elm_config tiny(int version, int routed) {
    elm_config c;
    elm_config_default(&c, 12, 2, 5);
    c.version = version;
    c.memory_tau_max = 150.0;
    c.learn_memory_tau = 1;
    if (routed) {
        c.num_branch = 3;
        c.num_synapse_per_branch = 4;
        c.input_to_synapse_routing = ELM_ROUTE_NEURONIO;
    }
    return c;
}

static void set_tau_proto(elm_model *m, int j, double v) {
    elm_tensor t;
    elm_model_tensor(m, elm_model_find_tensor(m, "_proto_tau_m"), &t);
    if (elm_model_dtype(m) == ELM_F64)
        ((double *)t.data)[j] = v;
    else
        ((float *)t.data)[j] = (float)v;
    elm_model_refresh(m);
}

/* Forward, then backward with a fixed dL/dy; returns outputs and every gradient, as doubles. */
static void run(elm_model *m, double **y_out, double **g_out, size_t *ng) {
    const elm_config *c = elm_model_config(m);
    int B = 2, T = 30, I = c->num_input, O = c->num_output;
    int f64 = elm_model_dtype(m) == ELM_F64;
    size_t rs = f64 ? 8 : 4;
    char *x = calloc((size_t)B * T * I, rs), *y = calloc((size_t)B * T * O, rs),
         *dy = calloc((size_t)B * T * O, rs);
    for (size_t k = 0; k < (size_t)B * T * I; k++) {
        double v = ((k * 2654435761u) % 97) / 97.0;
        if (f64)
            ((double *)x)[k] = v;
        else
            ((float *)x)[k] = (float)v;
    }
    for (size_t k = 0; k < (size_t)B * T * O; k++) {
        double v = 0.01 * (double)(k % 7) - 0.03;
        if (f64)
            ((double *)dy)[k] = v;
        else
            ((float *)dy)[k] = (float)v;
    }
    elm_model_zero_grad(m);
    CHECK_OK(elm_model_forward_train(m, x, y, B, T));
    CHECK_OK(elm_model_backward(m, dy));
    *y_out = malloc(sizeof(double) * (size_t)B * T * O);
    for (size_t k = 0; k < (size_t)B * T * O; k++)
        (*y_out)[k] = f64 ? ((double *)y)[k] : (double)((float *)y)[k];
    size_t n = 0;
    for (int i = 0; i < elm_model_num_tensors(m); i++) {
        elm_tensor t;
        elm_model_tensor(m, i, &t);
        n += t.grad ? t.numel : 0;
    }
    *g_out = malloc(sizeof(double) * (n ? n : 1));
    *ng = 0;
    for (int i = 0; i < elm_model_num_tensors(m); i++) {
        elm_tensor t;
        elm_model_tensor(m, i, &t);
        for (size_t k = 0; t.grad && k < t.numel; k++)
            (*g_out)[(*ng)++] = f64 ? ((double *)t.grad)[k] : (double)((float *)t.grad)[k];
    }
    free(x);
    free(y);
    free(dy);
}

static void test_inf_tau(int version, elm_dtype dt) {
    elm_config c = tiny(version, 0);
    elm_model *a = NULL, *b = NULL;
    CHECK_OK(elm_model_create(&a, &c, dt, 7));
    CHECK_OK(elm_model_create(&b, &c, dt, 7));
    if (!a || !b)
        return;
    set_tau_proto(a, 4, INFINITY);
    set_tau_proto(a, 0, -INFINITY);
    set_tau_proto(b, 4, 1e4);
    set_tau_proto(b, 0, -1e4);
    double *ya, *yb, *ga, *gb;
    size_t na, nb;
    run(a, &ya, &ga, &na);
    run(b, &yb, &gb, &nb);
    int nout = 2 * 30 * c.num_output;
    int same_y = 1, same_g = na == nb, finite = 1;
    for (int k = 0; k < nout; k++) {
        same_y &= ya[k] == yb[k];
        finite &= isfinite(ya[k]);
    }
    for (size_t k = 0; same_g && k < na; k++) {
        same_g &= ga[k] == gb[k];
        finite &= isfinite(ga[k]);
    }
    const char *tag = dt == ELM_F64 ? "f64" : "f32";
    CHECK(same_y && finite, "v%d %s: outputs with +-inf tau_m protos differ from +-1e4", version,
          tag);
    CHECK(same_g, "v%d %s: gradients with +-inf tau_m protos differ from +-1e4", version, tag);
    /* Gradient 0 at the two saturated units (the _proto_tau_m gradient is trainable here). */
    elm_tensor t;
    elm_model_tensor(a, elm_model_find_tensor(a, "_proto_tau_m"), &t);
    double g0 = dt == ELM_F64 ? ((double *)t.grad)[0] : (double)((float *)t.grad)[0];
    double g4 = dt == ELM_F64 ? ((double *)t.grad)[4] : (double)((float *)t.grad)[4];
    double g2 = dt == ELM_F64 ? ((double *)t.grad)[2] : (double)((float *)t.grad)[2];
    CHECK(g0 == 0 && g4 == 0 && g2 != 0, "v%d %s: tau_m proto gradients %g %g (want 0 0), %g",
          version, tag, g0, g4, g2);
    free(ya);
    free(yb);
    free(ga);
    free(gb);
    /* Saved back unchanged, to safetensors and to .pt. */
    const char *files[2] = {tpath("inf.safetensors"), tpath("inf.pt")};
    for (int f = 0; f < 2; f++) {
        CHECK_OK(elm_model_save(a, files[f]));
        elm_model *r = NULL;
        if (f == 1) {
            /* A .pt carries no configuration: model_config.json goes beside it. */
            char *js = elm_config_to_json(elm_model_config(a));
            CHECK_OK(elm__write_file_atomic(tpath("model_config.json"), js, strlen(js)));
            free(js);
        }
        CHECK_OK(elm_model_load(&r, files[f], dt));
        if (!r)
            continue;
        elm_tensor u;
        elm_model_tensor(r, elm_model_find_tensor(r, "_proto_tau_m"), &u);
        double u0 = dt == ELM_F64 ? ((double *)u.data)[0] : (double)((float *)u.data)[0];
        double u4 = dt == ELM_F64 ? ((double *)u.data)[4] : (double)((float *)u.data)[4];
        CHECK(isinf(u0) && u0 < 0 && isinf(u4) && u4 > 0, "v%d %s: %s gave back %g %g", version, tag,
              files[f], u0, u4);
        elm_model_free(r);
        unlink(tpath("model_config.json"));
    }
    /* NaN stays refused. */
    set_tau_proto(a, 1, NAN);
    CHECK_OK(elm_model_save(a, tpath("nan.safetensors")));
    elm_model *r = NULL;
    elm_status st = elm_model_load(&r, tpath("nan.safetensors"), dt);
    CHECK(st == ELM_ERR_NUMERIC && strstr(elm_last_error(), "'_proto_tau_m' holds a non-finite"),
          "NaN tau_m proto: %s", elm_last_error());
    elm_model_free(r);
    elm_model_free(a);
    elm_model_free(b);
}

/* Every real-valued option is written as a JSON real, every integer as an integer. */
static void test_config_types(void) {
    static const char *reals[] = {"lambda_value", "tau_s_value", "tau_b_value", "memory_tau_min",
                                  "memory_tau_max", "w_s_value", "delta_t"};
    static const char *ints[] = {"num_input", "num_output", "num_memory", "mlp_num_layers",
                                 "mlp_hidden_size", "num_branch", "num_synapse_per_branch",
                                 "lstm_hidden_size"};
    for (int kind = 0; kind < 4; kind++) {
        elm_config c = tiny(kind == 1 ? ELM_V2 : ELM_V1, kind == 2);
        c.lambda_value = 5, c.memory_tau_min = 1, c.w_s_value = 2, c.delta_t = 1;
        c.tau_s_value = 3;
        if (kind == 3) {
            elm_config_default(&c, 12, 2, 5);
            c.model_type = ELM_MODEL_LSTM;
            c.lstm_hidden_size = 8;
        }
        CHECK_OK(elm_config_resolve(&c));
        char *js = elm_config_to_json(&c);
        cJSON *root = cJSON_Parse(js);
        CHECK(root != NULL, "config %d is not JSON", kind);
        int n_reals = 0;
        for (cJSON *it = root ? root->child : NULL; it; it = it->next) {
            /* The value's text as written: after '"key":' up to ',' or end of line. */
            char pat[64];
            snprintf(pat, sizeof pat, "\"%s\":", it->string);
            const char *v = strstr(js, pat);
            if (!v || !cJSON_IsNumber(it))
                continue;
            v += strlen(pat);
            while (*v == ' ' || *v == '\t')
                v++;
            size_t len = strcspn(v, ",\n}");
            char text[64];
            snprintf(text, sizeof text, "%.*s", (int)len, v);
            int is_real = strpbrk(text, ".e") != NULL;
            for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++)
                if (!strcmp(it->string, reals[i])) {
                    CHECK(is_real, "config %d: real option %s written as %s", kind, it->string,
                          text);
                    n_reals++;
                }
            for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
                if (!strcmp(it->string, ints[i]))
                    CHECK(!is_real, "config %d: integer option %s written as %s", kind,
                          it->string, text);
        }
        CHECK(kind == 3 ? n_reals == 0 : n_reals == 6, "config %d: %d real options", kind,
              n_reals);
        /* The class: v2 configs name tau_b_value, v1 configs tau_s_value. */
        if (kind < 3)
            CHECK(cJSON_GetObjectItem(root, kind == 1 ? "tau_b_value" : "tau_s_value") &&
                      !cJSON_GetObjectItem(root, kind == 1 ? "tau_s_value" : "tau_b_value"),
                  "config %d names the wrong time-constant option", kind);
        cJSON_Delete(root);
        free(js);
    }
}

/* Bitwise equality of two parameter tables. */
static int same_params(const elm_model *a, const elm_model *b) {
    if (elm_model_num_tensors(a) != elm_model_num_tensors(b))
        return 0;
    for (int i = 0; i < elm_model_num_tensors(a); i++) {
        elm_tensor s, t;
        elm_model_tensor(a, i, &s);
        elm_model_tensor(b, i, &t);
        size_t rs = elm_model_dtype(a) == ELM_F64 ? 8 : 4;
        if (strcmp(s.name, t.name) || s.numel != t.numel || memcmp(s.data, t.data, s.numel * rs))
            return 0;
    }
    return 1;
}

static void test_released(const char *shared) {
    char root[1024];
    snprintf(root, sizeof root, "%s/models/neuronio", shared);
    DIR *d = opendir(root);
    CHECK(d != NULL, "cannot open %s", root);
    int n_models = 0;
    for (struct dirent *e = d ? readdir(d) : NULL; e; e = readdir(d)) {
        if (e->d_name[0] == '.')
            continue;
        char pt[2048], st[2048], cfg[2048];
        snprintf(pt, sizeof pt, "%s/%s/neuronio_best_model_state.pt", root, e->d_name);
        snprintf(st, sizeof st, "%s/%s/model.safetensors", root, e->d_name);
        snprintf(cfg, sizeof cfg, "%s/%s/model_config.json", root, e->d_name);
        if (access(pt, R_OK) != 0)
            continue;
        n_models++;
        /* The tensors themselves. */
        elm__st_file a, b;
        CHECK_OK(elm__tensors_read(&a, pt));
        CHECK_OK(elm__st_read(&b, st));
        CHECK(a.n == b.n, "%s: %d tensors in the .pt, %d in the safetensors", e->d_name, a.n, b.n);
        for (int i = 0; i < a.n; i++) {
            const elm__st_tensor *x = &a.t[i], *y = elm__st_find(&b, x->name);
            int same = y && x->dtype == y->dtype && x->ndim == y->ndim && x->numel == y->numel &&
                       !memcmp(x->data, y->data, x->numel * elm__dtype_size(x->dtype));
            for (int k = 0; same && k < x->ndim; k++)
                same = x->shape[k] == y->shape[k];
            CHECK(same, "%s: tensor '%s' differs from the safetensors twin", e->d_name, x->name);
        }
        elm__st_free(&a);
        elm__st_free(&b);
        /* The models: the .pt file, a folder with only the .pt and model_config.json, and the
         * safetensors twin give the same parameters and outputs, bit for bit. */
        char dir[512];
        snprintf(dir, sizeof dir, "%s/%s", tmpdir, e->d_name);
        char cmd[8192];
        snprintf(cmd, sizeof cmd, "mkdir -p '%s' && ln -sf '%s' '%s/' && cp '%s' '%s/'", dir, pt,
                 dir, cfg, dir);
        CHECK(system(cmd) == 0, "%s", cmd);
        elm_model *m[3] = {NULL, NULL, NULL};
        CHECK_OK(elm_model_load(&m[0], st, ELM_F32));
        CHECK_OK(elm_model_load(&m[1], pt, ELM_F32));
        CHECK_OK(elm_model_load(&m[2], dir, ELM_F32));
        if (m[0] && m[1] && m[2]) {
            CHECK(same_params(m[0], m[1]) && same_params(m[0], m[2]),
                  "%s: parameters from the .pt differ", e->d_name);
            const elm_config *c = elm_model_config(m[0]);
            int T = 40, I = c->num_input, O = c->num_output;
            float *x = calloc((size_t)T * I, sizeof *x);
            for (size_t k = 0; k < (size_t)T * I; k++)
                x[k] = (k * 2654435761u) % 211 == 0 ? 1.0f : 0.0f;
            float *y[3];
            for (int j = 0; j < 3; j++) {
                y[j] = calloc((size_t)T * O, sizeof **y);
                CHECK_OK(elm_model_forward(m[j], x, y[j], 1, T));
            }
            CHECK(!memcmp(y[0], y[1], sizeof(float) * (size_t)T * O) &&
                      !memcmp(y[0], y[2], sizeof(float) * (size_t)T * O),
                  "%s: outputs from the .pt differ", e->d_name);
            for (int j = 0; j < 3; j++)
                free(y[j]);
            free(x);
        }
        for (int j = 0; j < 3; j++)
            elm_model_free(m[j]);
    }
    if (d)
        closedir(d);
    CHECK(n_models == 15, "found %d released .pt models, expected 15", n_models);
    printf("%d released .pt checkpoints match their safetensors twins\n", n_models);
}

int main(void) {
    tmpdir_make("elm_test_pt_models");
    for (int v = 0; v < 2; v++) {
        test_inf_tau(v ? ELM_V2 : ELM_V1, ELM_F32);
        test_inf_tau(v ? ELM_V2 : ELM_V1, ELM_F64);
    }
    test_config_types();
    const char *shared = getenv("ELM_SHARED");
    char probe[1024];
    snprintf(probe, sizeof probe, "%s/models/neuronio", shared ? shared : "");
    if (shared && access(probe, R_OK) == 0)
        test_released(shared);
    else
        printf("note: the authors' released models are absent (../shared or $ELM_SHARED); "
               "their .pt checks were skipped\n");
    tmpdir_remove();
    return test_end();
}
