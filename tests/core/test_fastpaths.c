/*
 * test_fastpaths.c - every fast path of the kernels against the plain path it replaces.
 *
 * Three small models cover the paths: a routed v1 model with a two-layer SiLU MLP (NeuronIO's
 * shape: branch traces, sparse inputs), an SHD-like model with 160 unrouted branches (projected
 * branch traces) and a Pathfinder-like model with one dense input. For each, in float32 and
 * float64:
 * - lanes: a batch of 11 (groups of 8 and 3) gives each row the bits of that row run alone (one
 *   lane), and so do 2 threads (groups of 6 and 5) and streaming;
 * - packed weights (lane-blocked products) against the plain row-major products: forward bitwise,
 *   gradients to rounding;
 * - projected branch traces against per-branch traces, and branch traces against v1's general
 *   per-synapse path: to rounding;
 * - checkpointed BPTT against plain BPTT: bitwise;
 * - float32 gradients against float64 gradients of the same parameters;
 * - sparse (CSR) inputs against the same inputs dense: outputs and gradients bitwise;
 * - the input scan (nonzero entries of a dense row): the vector scan this CPU runs, the portable
 *   one and a plain loop give the same list, for every length 0..70 and NeuronIO's 1278, at
 *   densities 0 to 1, with NaN, -0.0 and subnormals.
 */
#include "elm.h"
#include "internal.h"
#include "model_internal.h"
#include "test.h"
#include "test_models.h"

/* float64 results of two exact-in-maths evaluation orders differ by rounding only: a few ulps of
 * the largest term per sum, accumulated over T = 40 steps of recurrence. 1e-11 of the tensor's
 * largest magnitude is ~1e5 ulps: far above rounding, far below any real difference. */
#define TOL_REORDER_F64 1e-11
/* The same in float32 (ulp 6e-8): 2e-4 of max magnitude. */
#define TOL_REORDER_F32 2e-4
/* float32 gradients against float64 ones: each gradient sums ~B T H products whose float32
 * rounding (6e-8 relative) adds up, and the recurrence over T steps amplifies it by at most
 * 1 / (1 - kappa) (~5 here); measured worst ~1e-5 of the tensor's max; 1e-3 allows 100x. */
#define TOL_F32_VS_F64 1e-3

/* The CSR form of x (B, T, I): nonzero entries, plus an explicit 0.0 at every 7th zero input
 * (which must change nothing). val in the model's dtype. */
typedef struct {
    int64_t *ptr;
    int32_t *idx;
    void *val;
} csr_in;

static csr_in to_csr(const double *x, int B, int T, int I, elm_dtype dt) {
    size_t rows = (size_t)B * (size_t)T, n = 0;
    csr_in c;
    c.ptr = malloc(sizeof(int64_t) * (rows + 1));
    c.idx = malloc(sizeof(int32_t) * rows * (size_t)I + 1);
    double *v = malloc(sizeof(double) * rows * (size_t)I + 1);
    c.ptr[0] = 0;
    for (size_t r = 0; r < rows; r++) {
        for (int i = 0; i < I; i++) {
            double xv = x[r * (size_t)I + (size_t)i];
            if (xv != 0 || (r * (size_t)I + (size_t)i) % 7 == 0) {
                c.idx[n] = i;
                v[n++] = xv;
            }
        }
        c.ptr[r + 1] = (int64_t)n;
    }
    c.val = to_dtype(v, n ? n : 1, dt);
    free(v);
    return c;
}

static void check_model(int kind, elm_dtype dt) {
    const int B = 11, T = 40;
    char label[128];
    const char *dn = dt == ELM_F64 ? "f64" : "f32";
    const double tol = dt == ELM_F64 ? TOL_REORDER_F64 : TOL_REORDER_F32;
    elm_model *m = test_model_make(kind, dt);
    const elm_config *c = elm_model_config(m);
    const int I = c->num_input, O = c->num_output;
    double *x = inputs(kind, B, T, I);
    size_t ny = (size_t)B * (size_t)T * (size_t)O, rowy = (size_t)T * (size_t)O, where = 0;
    int paths = dt == ELM_F64 ? elm__fast_paths_f64(m) : elm__fast_paths_f32(m);
    CHECK(paths & ELM_FAST_NO_PACKED, "%s %s: packed weights not in use", test_model_name[kind],
          dn);
    CHECK(!(paths & ELM_FAST_NO_PROJ) == (kind != K_SHD), "%s %s: projected traces %s in use",
          test_model_name[kind], dn, kind == K_SHD ? "not" : "");

    /* Lanes: batch of 11 (G = 8 + 3) vs each row alone (G = 1). */
    elm_model_set_threads(m, 1);
    double *y = fwd(m, x, 0, B, T);
    for (int b = 0; b < B; b++) {
        double *y1 = fwd(m, x, b, 1, T);
        CHECK(same_bits(y1, y + (size_t)b * rowy, rowy, &where),
              "%s %s: row %d alone differs from the batch at %zu: %.17g vs %.17g",
              test_model_name[kind], dn, b, where, y1[where], y[(size_t)b * rowy + where]);
        free(y1);
    }
    /* Two threads (groups of 6 and 5 lanes), and 8 rows on two threads (4 + 4). */
    elm_model_set_threads(m, 2);
    double *y2 = fwd(m, x, 0, B, T);
    CHECK(same_bits(y2, y, ny, &where), "%s %s: 2 threads differ from 1 at %zu",
          test_model_name[kind], dn, where);
    free(y2);
    y2 = fwd(m, x, 0, 8, T);
    CHECK(same_bits(y2, y, (size_t)8 * rowy, &where), "%s %s: B=8 on 2 threads differs at %zu",
          test_model_name[kind], dn, where);
    free(y2);
    elm_model_set_threads(m, 1);

    /* Streaming, all 11 samples one step at a time. */
    {
        elm_state *s = NULL;
        CHECK_OK(elm_state_create(&s, m, B));
        size_t rs = dt == ELM_F64 ? sizeof(double) : sizeof(float);
        char *xt = malloc(rs * (size_t)B * (size_t)I), *yt = malloc(rs * (size_t)B * (size_t)O);
        int same = 1;
        for (int t = 0; t < T && s; t++) {
            for (int b = 0; b < B; b++)
                for (int i = 0; i < I; i++) {
                    double v = x[((size_t)b * (size_t)T + (size_t)t) * (size_t)I + (size_t)i];
                    size_t q = (size_t)b * (size_t)I + (size_t)i;
                    if (dt == ELM_F64)
                        ((double *)xt)[q] = v;
                    else
                        ((float *)xt)[q] = (float)v;
                }
            if (dt == ELM_F64)
                CHECK_OK(elm_model_step_f64(m, s, (double *)xt, (double *)yt));
            else
                CHECK_OK(elm_model_step(m, s, (float *)xt, (float *)yt));
            for (int b = 0; b < B; b++)
                for (int o = 0; o < O; o++) {
                    double a = get(yt, (size_t)b * (size_t)O + (size_t)o, dt);
                    double e = y[((size_t)b * (size_t)T + (size_t)t) * (size_t)O + (size_t)o];
                    same &= memcmp(&a, &e, sizeof a) == 0;
                }
        }
        CHECK(same, "%s %s: streaming differs from the batch forward", test_model_name[kind], dn);
        free(xt);
        free(yt);
        elm_state_free(s);
    }

    /* Gradients of the default (fastest) paths. */
    size_t ng = 0, n2 = 0;
    double *g = grads(m, x, B, T, &ng);

    /* Sparse (CSR) inputs: the same bits as dense, forward and gradients. */
    {
        csr_in cs = to_csr(x, B, T, I, dt);
        elm_sparse_input sp = {cs.ptr, cs.idx, cs.val};
        size_t rs = dt == ELM_F64 ? sizeof(double) : sizeof(float);
        void *ys = malloc(rs * ny);
        CHECK_OK(elm_model_forward_sparse(m, &sp, ys, B, T));
        int same = 1;
        for (size_t i = 0; i < ny; i++) {
            double a = get(ys, i, dt);
            same &= memcmp(&a, &y[i], sizeof a) == 0;
        }
        CHECK(same, "%s %s: sparse-input forward differs from dense", test_model_name[kind], dn);
        double *wgt = malloc(sizeof(double) * ny);
        for (size_t i = 0; i < ny; i++)
            wgt[i] = sin(0.37 * (double)i) / (double)T;
        void *dy = to_dtype(wgt, ny, dt);
        elm_model_zero_grad(m);
        CHECK_OK(elm_model_forward_train_sparse(m, &sp, ys, B, T));
        CHECK_OK(elm_model_backward(m, dy));
        size_t k = 0;
        int gsame = 1;
        elm_tensor tt;
        for (int i = 0; i < elm_model_num_tensors(m); i++) {
            elm_model_tensor(m, i, &tt);
            if (tt.trainable)
                for (size_t j = 0; j < tt.numel; j++, k++) {
                    double a = get(tt.grad, j, dt);
                    gsame &= k < ng && memcmp(&a, &g[k], sizeof a) == 0;
                }
        }
        CHECK(gsame && k == ng, "%s %s: sparse-input gradients differ from dense",
              test_model_name[kind], dn);
        /* Malformed rows are refused, naming the row. */
        if (cs.ptr[1] > 0) {
            int32_t keep = cs.idx[0];
            cs.idx[0] = I;
            CHECK(elm_model_forward_sparse(m, &sp, ys, B, T) == ELM_ERR_ARG &&
                      strstr(elm_last_error(), "row 0"),
                  "%s %s: an input id out of range was accepted", test_model_name[kind], dn);
            cs.idx[0] = keep;
        }
        free(wgt);
        free(dy);
        free(ys);
        free(cs.ptr);
        free(cs.idx);
        free(cs.val);
    }

    /* Checkpointed BPTT (stride 7, and 1) equals plain BPTT bitwise. */
    int strides[] = {7, 1, T};
    for (int k = 0; k < 3; k++) {
        elm_model_set_checkpoint_stride(m, strides[k]);
        double *gc = grads(m, x, B, T, &n2);
        CHECK(n2 == ng && same_bits(gc, g, ng, &where),
              "%s %s: checkpoint stride %d changes gradient %zu: %.17g vs %.17g",
              test_model_name[kind], dn, strides[k], where, gc[where], g[where]);
        free(gc);
    }
    elm_model_set_checkpoint_stride(m, 0);

    /* Plain products (no packed weights): forward bitwise, gradients to rounding. */
    m->fast_off = ELM_FAST_NO_PACKED;
    elm_model_refresh(m);
    double *yp = fwd(m, x, 0, B, T);
    if (kind != K_SHD) {
        CHECK(same_bits(yp, y, ny, &where), "%s %s: plain products differ at %zu: %.17g vs %.17g",
              test_model_name[kind], dn, where, yp[where], y[where]);
    } else { /* the plain path has no projected traces: rounding differs */
        snprintf(label, sizeof label, "%s %s plain-product forward", test_model_name[kind], dn);
        test_close(label, yp, y, ny, 0, tol, 1, NULL);
    }
    double *gp = grads(m, x, B, T, &n2);
    snprintf(label, sizeof label, "%s %s plain-product gradients", test_model_name[kind], dn);
    test_close(label, gp, g, ng, 0, tol, 1, NULL);
    free(yp);
    free(gp);

    /* Projected branch traces off (only the SHD-like model uses them). */
    m->fast_off = ELM_FAST_NO_PROJ;
    elm_model_refresh(m);
    paths = dt == ELM_F64 ? elm__fast_paths_f64(m) : elm__fast_paths_f32(m);
    CHECK(!(paths & ELM_FAST_NO_PROJ), "%s %s: projection still on", test_model_name[kind], dn);
    yp = fwd(m, x, 0, B, T);
    snprintf(label, sizeof label, "%s %s branch traces (no projection) forward",
             test_model_name[kind], dn);
    test_close(label, yp, y, ny, 0, tol, 1, NULL);
    gp = grads(m, x, B, T, &n2);
    snprintf(label, sizeof label, "%s %s branch traces (no projection) gradients",
             test_model_name[kind], dn);
    test_close(label, gp, g, ng, 0, tol, 1, NULL);
    free(yp);
    free(gp);
    m->fast_off = 0;

    /* v1's general per-synapse path. */
    elm__model_set_general_path(m, 1);
    yp = fwd(m, x, 0, B, T);
    snprintf(label, sizeof label, "%s %s general path forward", test_model_name[kind], dn);
    test_close(label, yp, y, ny, 0, tol, 1, NULL);
    gp = grads(m, x, B, T, &n2);
    snprintf(label, sizeof label, "%s %s general path gradients", test_model_name[kind], dn);
    test_close(label, gp, g, ng, 0, tol, 1, NULL);
    free(yp);
    free(gp);
    elm__model_set_general_path(m, 0);

    /* float32 gradients against float64 gradients of the same (float32-exact) parameters. */
    if (dt == ELM_F32) {
        elm_model *m64 = NULL;
        CHECK_OK(elm_model_clone(&m64, m, ELM_F64));
        double *g64 = grads(m64, x, B, T, &n2);
        snprintf(label, sizeof label, "%s f32 vs f64 gradients", test_model_name[kind]);
        double worst = 0;
        test_close(label, g, g64, ng, 0, TOL_F32_VS_F64, 1, &worst);
        printf("%-40s rel-to-max %.3g\n", label, worst);
        free(g64);
        elm_model_free(m64);
    }
    free(g);
    free(y);
    free(x);
    elm_model_free(m);
}

static void check_scan(void) {
    enum { NMAX = 1278 };
    static float x[NMAX];
    static int32_t ia[NMAX], ib[NMAX], ir[NMAX];
    static float va[NMAX], vb[NMAX], vr[NMAX];
    const double dens[] = {0, 0.01, 0.1, 0.5, 1};
    elm__rng r;
    elm__rng_seed(&r, 5);
    int bad = 0, cases = 0;
    for (int n = 0; n <= 71; n++) {
        const int len = n == 71 ? NMAX : n;
        for (size_t di = 0; di < sizeof dens / sizeof dens[0]; di++) {
            for (int i = 0; i < len; i++) {
                double u = elm__rng_uniform(&r);
                float v = u < dens[di] ? (float)(elm__rng_uniform(&r) * 2 - 1) : 0.0f;
                double w = elm__rng_uniform(&r);
                if (w < 0.02)
                    v = -0.0f;
                else if (w < 0.03 && v != 0)
                    v = NAN;
                else if (w < 0.04 && v != 0)
                    v = 1e-40f; /* subnormal: nonzero */
                x[i] = v;
            }
            int cr = 0;
            for (int i = 0; i < len; i++)
                if (x[i] != 0) {
                    ir[cr] = i;
                    vr[cr++] = x[i];
                }
            int ca = elm__gather_nonzero_f32(ia, va, x, len, 0);
            int cb = elm__gather_nonzero_f32(ib, vb, x, len, 1);
            int same = ca == cr && cb == cr;
            for (int k = 0; same && k < cr; k++)
                same = ia[k] == ir[k] && ib[k] == ir[k] && memcmp(&va[k], &vr[k], 4) == 0 &&
                       memcmp(&vb[k], &vr[k], 4) == 0;
            bad += !same;
            cases++;
        }
    }
    CHECK(bad == 0, "input scan: %d of %d rows give a different nonzero list", bad, cases);
}

int main(void) {
    check_scan();
    for (int kind = 0; kind < 3; kind++) {
        check_model(kind, ELM_F64);
        check_model(kind, ELM_F32);
    }
    return test_end();
}
