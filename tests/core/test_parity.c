/*
 * test_parity.c - elm against the authors' PyTorch code: the released NeuronIO models' outputs
 * (float32 and float64) and the seven gradient cases (outputs, states, loss, every gradient) from
 * ../shared/parity. Prints the worst error of each comparison.
 */
#include "elm.h"
#include "model_internal.h"
#include "test.h"
#include "tolerance.h"

#include <cjson/cJSON.h>

static double *to_f64(const elm__array *a) {
    double *d = malloc(sizeof(double) * (a->numel ? a->numel : 1));
    for (size_t i = 0; i < a->numel; i++)
        d[i] = elm__array_get(a, i);
    return d;
}

static void pretrained(const char *shared, const char *name) {
    char path[1024];
    elm__array X, Yref;
    snprintf(path, sizeof path, "%s/parity/pretrained/X.npy", shared);
    CHECK_OK(elm__npy_load(path, &X));
    snprintf(path, sizeof path, "%s/parity/pretrained/%s_y_f64.npy", shared, name);
    CHECK_OK(elm__npy_load(path, &Yref));
    int B = (int)X.shape[0], T = (int)X.shape[1];
    double *yref = to_f64(&Yref);
    snprintf(path, sizeof path, "%s/models/neuronio/%s", shared, name);

    /* float64 */
    elm_model *m = NULL;
    CHECK_OK(elm_model_load(&m, path, ELM_F64));
    if (!m)
        return;
    double *x64 = to_f64(&X), *y64 = malloc(sizeof(double) * Yref.numel);
    CHECK_OK(elm_model_forward_f64(m, x64, y64, B, T));
    double worst;
    char label[256];
    snprintf(label, sizeof label, "%s f64 forward", name);
    test_close(label, y64, yref, Yref.numel, 0, TOL_F64_REL_TO_MAX, 1, &worst);
    printf("%-40s rel-to-max %.3g\n", label, worst);
    /* The per-synapse (general) path must agree as tightly. */
    elm__model_set_general_path(m, 1);
    CHECK_OK(elm_model_forward_f64(m, x64, y64, B, T));
    snprintf(label, sizeof label, "%s f64 forward, general path", name);
    test_close(label, y64, yref, Yref.numel, 0, TOL_F64_REL_TO_MAX, 1, &worst);
    printf("%-40s rel-to-max %.3g\n", label, worst);
    elm_model_free(m);

    /* float32 */
    CHECK_OK(elm_model_load(&m, path, ELM_F32));
    float *y32 = malloc(sizeof(float) * Yref.numel);
    CHECK_OK(elm_model_forward(m, (const float *)X.data, y32, B, T));
    double *y32d = malloc(sizeof(double) * Yref.numel);
    for (size_t i = 0; i < Yref.numel; i++)
        y32d[i] = y32[i];
    snprintf(label, sizeof label, "%s f32 forward", name);
    test_close(label, y32d, yref, Yref.numel, TOL_F32_ABS, 0, 0, NULL);
    test_close(label, y32d, yref, Yref.numel, 0, TOL_F32_REL_TO_MAX, 1, &worst);
    printf("%-40s rel-to-max %.3g\n", label, worst);

    /* Streaming gives the batch forward's numbers. */
    elm_state *s = NULL;
    CHECK_OK(elm_state_create(&s, m, B));
    float *xt = malloc(sizeof(float) * (size_t)B * (size_t)m->I), yt[64];
    int same = 1;
    for (int t = 0; t < T; t++) {
        for (int b = 0; b < B; b++)
            memcpy(xt + (size_t)b * (size_t)m->I,
                   (const float *)X.data + ((size_t)b * (size_t)T + (size_t)t) * (size_t)m->I,
                   sizeof(float) * (size_t)m->I);
        CHECK_OK(elm_model_step(m, s, xt, yt));
        for (int b = 0; b < B; b++)
            for (int o = 0; o < m->O; o++)
                same &= yt[b * m->O + o] == y32[((size_t)b * (size_t)T + (size_t)t) * 2 + (size_t)o];
    }
    CHECK(same, "%s: streaming differs from the batch forward", name);
    elm_state_free(s);
    free(xt);
    elm_model_free(m);
    free(y32);
    free(y32d);
    free(x64);
    free(y64);
    free(yref);
    elm__array_free(&X);
    elm__array_free(&Yref);
}

/* Builds the model of a gradient case from its config and param.* tensors. */
static elm_model *case_model(const elm__st_file *f, int *learn) {
    cJSON *meta = (cJSON *)f->meta;
    cJSON *cj = cJSON_Parse(cJSON_GetObjectItem(meta, "case_json")->valuestring);
    cJSON *kw = cJSON_GetObjectItem(cj, "ctor_kwargs");
    const char *ver = cJSON_GetObjectItem(cj, "reference_version")->valuestring;
    elm_config c;
    elm_config_default(&c, 0, 0, 0);
    c.version = !strcmp(ver, "v2") ? ELM_V2 : ELM_V1;
    char *kws = cJSON_PrintUnformatted(kw);
    CHECK_OK(elm_config_from_json(&c, kws, "case"));
    free(kws);
    cJSON_Delete(cj);
    elm_model *m = NULL;
    CHECK_OK(elm_model_create(&m, &c, ELM_F64, 1));
    if (!m)
        return NULL;
    /* init._proto_tau_m: our logspace + inverse sigmoid must match the reference's init. */
    const elm__st_tensor *it = elm__st_find(f, "init._proto_tau_m");
    double *init = malloc(sizeof(double) * it->numel);
    elm__st_copy_real(f, it, init, ELM_F64);
    elm_tensor tt;
    elm_model_tensor(m, elm_model_find_tensor(m, "_proto_tau_m"), &tt);
    test_close("init _proto_tau_m", tt.data, init, it->numel, 0, 1e-12, 1, NULL);
    free(init);
    for (int i = 0; i < elm_model_num_tensors(m); i++) {
        elm_model_tensor(m, i, &tt);
        char nm[96];
        snprintf(nm, sizeof nm, "param.%s", tt.name);
        const elm__st_tensor *p = elm__st_find(f, nm);
        CHECK(p && p->numel == tt.numel, "case lacks %s", nm);
        if (p && p->numel == tt.numel)
            elm__st_copy_real(f, p, tt.data, ELM_F64);
    }
    if (m->routed) {
        const elm__st_tensor *ti = elm__st_find(f, "param.input_to_synapse_indices");
        const elm__st_tensor *tm = elm__st_find(f, "param.valid_indices_mask");
        int64_t *idx = malloc(sizeof(int64_t) * ti->numel);
        double *mask = malloc(sizeof(double) * tm->numel);
        elm__array ai = {.dtype = ti->dtype, .numel = ti->numel, .data = (void *)ti->data};
        elm__array am = {.dtype = tm->dtype, .numel = tm->numel, .data = (void *)tm->data};
        for (size_t k = 0; k < ti->numel; k++) {
            idx[k] = (int64_t)elm__array_get(&ai, k);
            mask[k] = elm__array_get(&am, k);
        }
        elm_status elm__model_set_routing(elm_model * mm, const int64_t *i, const double *mk);
        CHECK_OK(elm__model_set_routing(m, idx, mask));
        /* Our own routing construction must reproduce the reference's for neuronio_routing. */
        if (m->cfg.input_to_synapse_routing == ELM_ROUTE_NEURONIO) {
            elm_model *fresh = NULL;
            CHECK_OK(elm_model_create(&fresh, &m->cfg, ELM_F64, 7));
            int same = 1;
            for (int k = 0; k < m->S; k++)
                same &= fresh->route_idx[k] == m->route_idx[k] &&
                        fresh->route_mask[k] == m->route_mask[k];
            CHECK(same, "neuronio_routing differs from the reference's indices/mask");
            elm_model_free(fresh);
        }
        free(idx);
        free(mask);
    }
    elm_model_refresh(m);
    *learn = m->cfg.learn_memory_tau;
    return m;
}

static void grad_case(const char *shared, const char *name, int general) {
    char path[1024];
    snprintf(path, sizeof path, "%s/parity/grad/%s.safetensors", shared, name);
    elm__st_file f;
    CHECK_OK(elm__st_read(&f, path));
    if (!f.buf)
        return;
    int learn = 0;
    elm_model *m = case_model(&f, &learn);
    if (!m) {
        elm__st_free(&f);
        return;
    }
    elm__model_set_general_path(m, general);
    const elm__st_tensor *tx = elm__st_find(&f, "input.X");
    const elm__st_tensor *tw = elm__st_find(&f, "loss.weights");
    const elm__st_tensor *ty = elm__st_find(&f, "output.Y");
    const elm__st_tensor *tl = elm__st_find(&f, "loss.value");
    int B = (int)tx->shape[0], T = (int)tx->shape[1];
    double *x = malloc(sizeof(double) * tx->numel), *w = malloc(sizeof(double) * tw->numel);
    double *yref = malloc(sizeof(double) * ty->numel), *y = malloc(sizeof(double) * ty->numel);
    double lref;
    elm__st_copy_real(&f, tx, x, ELM_F64);
    elm__st_copy_real(&f, tw, w, ELM_F64);
    elm__st_copy_real(&f, ty, yref, ELM_F64);
    elm__st_copy_real(&f, tl, &lref, ELM_F64);
    elm_model_zero_grad(m);
    CHECK_OK(elm_model_forward_train(m, x, y, B, T));
    CHECK_OK(elm_model_backward(m, w));
    char label[256];
    double worst, all_worst = 0;
    snprintf(label, sizeof label, "%s%s output.Y", name, general ? " (general)" : "");
    test_close(label, y, yref, ty->numel, 0, TOL_F64_REL_TO_MAX, 1, &worst);
    all_worst = fmax(all_worst, worst);
    double loss = 0;
    for (size_t i = 0; i < ty->numel; i++)
        loss += y[i] * w[i];
    CHECK(fabs(loss - lref) <= TOL_F64_REL_TO_MAX * fmax(1, fabs(lref)),
          "%s loss %.17g want %.17g", name, loss, lref);
    int ngrads = 0;
    for (int i = 0; i < elm_model_num_tensors(m); i++) {
        elm_tensor t;
        elm_model_tensor(m, i, &t);
        char nm[96];
        snprintf(nm, sizeof nm, "grad.%s", t.name);
        const elm__st_tensor *g = elm__st_find(&f, nm);
        if (!t.trainable) {
            CHECK(!g, "%s: reference has a gradient for non-trainable %s", name, t.name);
            continue;
        }
        CHECK(g != NULL, "%s: reference lacks %s", name, nm);
        if (!g)
            continue;
        double *gref = malloc(sizeof(double) * g->numel);
        elm__st_copy_real(&f, g, gref, ELM_F64);
        snprintf(label, sizeof label, "%s%s %s", name, general ? " (general)" : "", nm);
        test_close(label, t.grad, gref, g->numel, 0, TOL_GRAD_REL_TO_MAX, 1, &worst);
        all_worst = fmax(all_worst, worst);
        if (!strcmp(t.name, "_proto_w_s")) {
            const double *proto = t.data, *gg = t.grad;
            int exact = 1;
            for (size_t k = 0; k < t.numel; k++)
                if (proto[k] <= 0 || (m->routed && !m->route_mask[k]))
                    exact &= gg[k] == 0.0;
            CHECK(exact, "%s: gradient of a negative or masked _proto_w_s is not exactly 0",
                  name);
        }
        free(gref);
        ngrads++;
    }
    CHECK(ngrads == (learn ? 1 : 0) + 1 + 2 * m->L + 2, "%s: compared %d gradients", name,
          ngrads);
    printf("%-60s worst rel-to-max %.3g over output and %d gradients\n", name, all_worst, ngrads);
    free(x);
    free(w);
    free(y);
    free(yref);
    elm_model_free(m);
    elm__st_free(&f);
}

int main(void) {
    const char *shared = test_shared();
    const char *models[] = {"num_memory_1", "num_memory_15", "best_elm_neuron"};
    for (int i = 0; i < 3; i++)
        pretrained(shared, models[i]);
    const char *cases[] = {"v1_route_relu_L1",
                           "v1_plain_silu_L2_learntau",
                           "v1_branch_noroute_silu_L1_custom",
                           "v2_route_relu_L1",
                           "v2_route_overlap_silu_L2_learntau",
                           "v2_plain_relu_L1",
                           "v2_randroute_silu_L2_custom"};
    for (int i = 0; i < 7; i++) {
        grad_case(shared, cases[i], 0);
        grad_case(shared, cases[i], 1);
    }
    return test_end();
}
