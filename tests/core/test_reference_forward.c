/*
 * test_reference_forward.c - the forward pass against an independent implementation, without the
 * reference folder: docs/MODEL.md section 1's equations for a plain ELM v1 (one synapse per
 * input, relu MLP with one hidden layer), written out naively here in double precision from the
 * model's own tensors. The finite-difference tests cannot see a bug that forward and backward
 * share (a wrong decay, a wrong memory gain); this can. dt = 0.5 and lambda = 3 (not the
 * defaults) and spread synaptic time constants make every constant visible.
 * Tolerance: same arithmetic up to summation order and the kernels' exp/tanh (~1e-16 in double):
 * 1e-12 of max |y| over 40 steps.
 */
#include "elm.h"
#include "model_internal.h"
#include "test.h"

static const double *tensor(elm_model *m, const char *name, size_t numel) {
    int i = elm_model_find_tensor(m, name);
    elm_tensor t;
    if (i < 0 || elm_model_tensor(m, i, &t) != ELM_OK || t.numel != numel) {
        CHECK(0, "tensor %s missing or not %zu values", name, numel);
        test_end();
        exit(1);
    }
    return t.data;
}

int main(void) {
    enum { I = 4, M = 3, H = 5, O = 2, B = 2, T = 40 };
    const double dt = 0.5, lam = 3, tmin = 1, tmax = 30;
    elm_config c;
    elm_config_default(&c, I, O, M);
    c.mlp_hidden_size = H;
    c.delta_t = dt;
    c.lambda_value = lam;
    c.memory_tau_min = tmin;
    c.memory_tau_max = tmax;
    elm_model *m = NULL;
    CHECK_OK(elm_model_create(&m, &c, ELM_F64, 8));
    if (!m)
        return test_end();
    elm__rng r;
    elm__rng_seed(&r, 2);
    {
        double *ws = (double *)tensor(m, "_proto_w_s", I), *ts = (double *)tensor(m, "tau_s", I);
        for (int k = 0; k < I; k++) {
            ws[k] = k == 1 ? -0.2 : 0.3 + elm__rng_uniform(&r); /* one synapse cut by the relu */
            ts[k] = 1.5 + 8 * elm__rng_uniform(&r);
        }
        elm_model_refresh(m);
    }
    const double *wsp = tensor(m, "_proto_w_s", I), *tau_s = tensor(m, "tau_s", I);
    const double *tmp = tensor(m, "_proto_tau_m", M);
    const double *W0 = tensor(m, "mlp.network.0.weight", (size_t)H * (I + M));
    const double *b0 = tensor(m, "mlp.network.0.bias", H);
    const double *W1 = tensor(m, "mlp.network.2.weight", (size_t)M * H);
    const double *b1 = tensor(m, "mlp.network.2.bias", M);
    const double *Wy = tensor(m, "w_y.weight", (size_t)O * M), *cy = tensor(m, "w_y.bias", O);
    double x[B * T * I], y[B * T * O], want[B * T * O];
    for (int i = 0; i < B * T * I; i++)
        x[i] = elm__rng_uniform(&r) < 0.6 ? 0 : elm__rng_uniform(&r) * 2;
    CHECK_OK(elm_model_forward_f64(m, x, y, B, T));
    for (int b = 0; b < B; b++) {
        double s[I] = {0}, mem[M] = {0};
        for (int t = 0; t < T; t++) {
            const double *xt = x + ((size_t)b * T + (size_t)t) * I;
            double z[I + M], h[H], mnew[M];
            for (int k = 0; k < I; k++) {
                double ks = exp(-dt / fmax(tau_s[k], 1e-6)), w = fmax(wsp[k], 0);
                s[k] = ks * s[k] + w * xt[k];
                z[k] = s[k]; /* one synapse per branch */
            }
            double km[M];
            for (int j = 0; j < M; j++) {
                double tau = tmin + (tmax - tmin) / (1 + exp(-tmp[j]));
                km[j] = exp(-dt / fmax(tau, 1e-6));
                z[I + j] = km[j] * mem[j];
            }
            for (int o = 0; o < H; o++) {
                double a = b0[o];
                for (int i = 0; i < I + M; i++)
                    a += W0[o * (I + M) + i] * z[i];
                h[o] = a > 0 ? a : 0;
            }
            for (int j = 0; j < M; j++) {
                double a = b1[j];
                for (int o = 0; o < H; o++)
                    a += W1[j * H + o] * h[o];
                mnew[j] = km[j] * mem[j] + lam * (1 - km[j]) * 1.7159 * tanh(2.0 / 3.0 * a);
            }
            memcpy(mem, mnew, sizeof mem);
            for (int o = 0; o < O; o++) {
                double a = cy[o];
                for (int j = 0; j < M; j++)
                    a += Wy[o * M + j] * mem[j];
                want[((size_t)b * T + (size_t)t) * O + (size_t)o] = a;
            }
        }
    }
    double worst = 0;
    test_close("v1 forward vs MODEL.md equations", y, want, (size_t)B * T * O, 0, 1e-12, 1,
               &worst);
    printf("v1 forward against the written-out equations: worst %.2g of max|y|\n", worst);
    elm_model_free(m);
    return test_end();
}
