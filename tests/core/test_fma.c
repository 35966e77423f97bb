/*
 * test_fma.c - the fused multiply-add path (elm_model_set_fma, kernels_f32fma.c) against the
 * exact float32 path and float64.
 *
 * For the three kernel-test models (NeuronIO-, SHD- and Pathfinder-like, test_models.h):
 * - accuracy: the fused path's outputs and gradients are as close to float64 as the exact
 *   float32 path's are (a factor of 4 allowed, see TOL_FACTOR);
 * - the path runs: where elm_fma_fuses() says it fuses, its results differ from the exact
 *   path's somewhere (the same bits would mean the switch reached the exact kernels); and an
 *   optimised build on a CPU with FMA does fuse (an -O1 build once silently did not);
 * - within the fused path the lane, thread, streaming and sparse-input guarantees of the exact
 *   path hold bitwise: a batch row equals that row alone, 2 threads equal 1, a step at a time
 *   equals the batch forward, CSR inputs equal dense ones;
 * - a float32 clone keeps the setting, a float64 clone drops it; off again gives the exact bits;
 * - float64 models and LSTMs refuse it.
 */
#include "elm.h"
#include "internal.h"
#include "model_internal.h"
#include "test.h"
#include "test_models.h"

/* Rounding errors of two float32 evaluation orders against float64 are of one scale but not
 * equal (each is a sum of many roundings of either sign): the fused path may be up to 4x the
 * exact path's error, plus a floor of 1e-6 of the largest magnitude (16 ulps) for tensors that
 * both compute almost exactly. A wrong product or a missed term is off by far more. */
#define TOL_FACTOR 4.0
#define TOL_FLOOR  1e-6

/* max |a - b| / max |b| over n values. */
static double rel_err(const double *a, const double *b, size_t n) {
    double d = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(a[i] - b[i]);
        d = e > d ? e : d;
        mx = fabs(b[i]) > mx ? fabs(b[i]) : mx;
    }
    return mx > 0 ? d / mx : d;
}

static double *to_f64(const void *p, size_t n) {
    double *d = malloc(sizeof(double) * n);
    for (size_t i = 0; i < n; i++)
        d[i] = get(p, i, ELM_F32);
    return d;
}

static void check_model(int kind) {
    const int B = 11, T = 60;
    const char *name = test_model_name[kind];
    elm_model *m = test_model_make(kind, ELM_F32), *m64 = NULL;
    CHECK_OK(elm_model_clone(&m64, m, ELM_F64));
    const elm_config *c = elm_model_config(m);
    const int I = c->num_input, O = c->num_output;
    const size_t ny = (size_t)B * (size_t)T * (size_t)O, rowy = (size_t)T * (size_t)O;
    double *x = inputs(kind, B, T, I);
    size_t ng = 0, n2 = 0, where = 0;
    elm_model_set_threads(m, 1);

    double *y32 = fwd(m, x, 0, B, T), *g32 = grads(m, x, B, T, &ng);
    double *y64 = fwd(m64, x, 0, B, T), *g64 = grads(m64, x, B, T, &n2);
    CHECK_OK(elm_model_set_fma(m, 1));
    double *yf = fwd(m, x, 0, B, T), *gf = grads(m, x, B, T, &n2);

    /* Accuracy against float64. */
    double ey = rel_err(y32, y64, ny), eyf = rel_err(yf, y64, ny);
    double eg = rel_err(g32, g64, ng), egf = rel_err(gf, g64, ng);
    printf("%-16s outputs: exact %.3g fused %.3g; gradients: exact %.3g fused %.3g "
           "(relative to max, against float64)\n",
           name, ey, eyf, eg, egf);
    CHECK(eyf <= TOL_FACTOR * ey + TOL_FLOOR, "%s: fused outputs %.3g from float64, exact %.3g",
          name, eyf, ey);
    CHECK(egf <= TOL_FACTOR * eg + TOL_FLOOR, "%s: fused gradients %.3g from float64, exact %.3g",
          name, egf, eg);

    /* The switch reaches other kernels (where the build and the CPU fuse). */
    if (elm_fma_fuses()) {
        CHECK(!same_bits(yf, y32, ny, &where), "%s: fused outputs are the exact path's bits",
              name);
        CHECK(!same_bits(gf, g32, ng, &where), "%s: fused gradients are the exact path's bits",
              name);
    }

    /* Lanes: each row alone gives the batch's bits; 2 threads give 1 thread's. */
    for (int b = 0; b < B; b++) {
        double *y1 = fwd(m, x, b, 1, T);
        CHECK(same_bits(y1, yf + (size_t)b * rowy, rowy, &where),
              "%s fused: row %d alone differs from the batch at %zu", name, b, where);
        free(y1);
    }
    elm_model_set_threads(m, 2);
    double *y2 = fwd(m, x, 0, B, T), *g2 = grads(m, x, B, T, &n2);
    CHECK(same_bits(y2, yf, ny, &where), "%s fused: 2 threads differ from 1 at %zu", name, where);
    free(y2);
    free(g2);
    elm_model_set_threads(m, 1);

    /* Streaming equals the batch forward. */
    {
        elm_state *s = NULL;
        CHECK_OK(elm_state_create(&s, m, B));
        float *xt = malloc(sizeof(float) * (size_t)B * (size_t)I);
        float *yt = malloc(sizeof(float) * (size_t)B * (size_t)O);
        int same = 1;
        for (int t = 0; t < T && s; t++) {
            for (int b = 0; b < B; b++)
                for (int i = 0; i < I; i++)
                    xt[(size_t)b * (size_t)I + (size_t)i] =
                        (float)x[((size_t)b * (size_t)T + (size_t)t) * (size_t)I + (size_t)i];
            CHECK_OK(elm_model_step(m, s, xt, yt));
            for (int b = 0; b < B; b++)
                for (int o = 0; o < O; o++) {
                    double a = yt[(size_t)b * (size_t)O + (size_t)o];
                    double e = yf[((size_t)b * (size_t)T + (size_t)t) * (size_t)O + (size_t)o];
                    same &= memcmp(&a, &e, sizeof a) == 0;
                }
        }
        CHECK(same, "%s fused: streaming differs from the batch forward", name);
        free(xt);
        free(yt);
        elm_state_free(s);
    }

    /* Sparse (CSR) inputs: the dense bits. */
    {
        size_t rows = (size_t)B * (size_t)T, nnz = 0;
        int64_t *ptr = malloc(sizeof(int64_t) * (rows + 1));
        int32_t *idx = malloc(sizeof(int32_t) * rows * (size_t)I);
        float *val = malloc(sizeof(float) * rows * (size_t)I);
        ptr[0] = 0;
        for (size_t r = 0; r < rows; r++) {
            for (int i = 0; i < I; i++)
                if (x[r * (size_t)I + (size_t)i] != 0) {
                    idx[nnz] = i;
                    val[nnz++] = (float)x[r * (size_t)I + (size_t)i];
                }
            ptr[r + 1] = (int64_t)nnz;
        }
        elm_sparse_input sp = {ptr, idx, val};
        float *ys = malloc(sizeof(float) * ny);
        CHECK_OK(elm_model_forward_sparse(m, &sp, ys, B, T));
        double *ysd = to_f64(ys, ny);
        CHECK(same_bits(ysd, yf, ny, &where), "%s fused: sparse inputs differ from dense at %zu",
              name, where);
        free(ysd);
        free(ys);
        free(ptr);
        free(idx);
        free(val);
    }

    /* Clones: float32 keeps the setting, float64 drops it. */
    {
        elm_model *cf = NULL, *cd = NULL;
        CHECK_OK(elm_model_clone(&cf, m, ELM_F32));
        CHECK_OK(elm_model_clone(&cd, m, ELM_F64));
        double *yc = fwd(cf, x, 0, B, T), *yd = fwd(cd, x, 0, B, T);
        CHECK(same_bits(yc, yf, ny, &where), "%s: a float32 clone lost the fused path", name);
        CHECK(same_bits(yd, y64, ny, &where), "%s: a float64 clone is not the float64 model",
              name);
        free(yc);
        free(yd);
        elm_model_free(cf);
        elm_model_free(cd);
    }

    /* Off again: the exact bits. */
    CHECK_OK(elm_model_set_fma(m, 0));
    double *yo = fwd(m, x, 0, B, T);
    CHECK(same_bits(yo, y32, ny, &where), "%s: fma off does not restore the exact path", name);
    free(yo);

    /* float64 refuses it; switching it off is always allowed. */
    CHECK(elm_model_set_fma(m64, 1) == ELM_ERR_ARG && strstr(elm_last_error(), "float64"),
          "%s: a float64 model accepted fma (%s)", name, elm_last_error());
    CHECK_OK(elm_model_set_fma(m64, 0));

    free(y32);
    free(g32);
    free(y64);
    free(g64);
    free(yf);
    free(gf);
    free(x);
    elm_model_free(m);
    elm_model_free(m64);
}

static void check_lstm(void) {
    elm_config c;
    elm_config_default(&c, 3, 2, 5);
    c.model_type = ELM_MODEL_LSTM;
    elm_model *m = NULL;
    CHECK_OK(elm_model_create(&m, &c, ELM_F32, 1));
    if (!m)
        return;
    CHECK(elm_model_set_fma(m, 1) == ELM_ERR_ARG && strstr(elm_last_error(), "lstm"),
          "an LSTM accepted fma (%s)", elm_last_error());
    CHECK(elm_model_set_fma(NULL, 1) == ELM_ERR_ARG, "a NULL model accepted fma");
    elm_model_free(m);
}

/* The probe against the CPU: in a build with optimisation (this test is compiled as the library
 * is), a CPU with FMA must fuse, one without must not. */
static void check_probe(void) {
    int fuses = elm_fma_fuses();
    printf("elm_fma_fuses: %d (CPU has FMA: %d)\n", fuses, !!__builtin_cpu_supports("fma"));
    if (!__builtin_cpu_supports("fma"))
        CHECK(!fuses, "elm_fma_fuses says fused on a CPU without FMA");
#if defined(__OPTIMIZE__)
    else
        CHECK(fuses, "an optimised build does not fuse on a CPU with FMA");
#endif
}

int main(void) {
    check_probe();
    for (int kind = K_NIO; kind <= K_PF; kind++)
        check_model(kind);
    check_lstm();
    return test_end();
}
