/*
 * lstm.c - the LSTM baseline (lstm.h): PyTorch's nn.LSTM + nn.Linear, forward and
 * backpropagation through time, float32 and float64, safetensors I/O.
 *
 * Invariant: the six tensors live in one flat block `params` in the order weight_ih, weight_hh,
 * bias_ih, bias_hh, readout.weight, readout.bias, and `grads` has the same layout. Samples are
 * independent, so both passes run one sample per OpenMP iteration; backward writes each sample's
 * gradient into its own row of a (B, n) scratch and sums the rows in sample order afterwards, so
 * the result is bitwise the same for every thread count.
 *
 * The kernels are written once over a real type and instantiated for float and double by
 * including this file into itself (the ELM_LSTM_KERNELS section below).
 */
#ifndef ELM_LSTM_KERNELS

#include "lstm.h"
#include "pt.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

enum { T_WIH, T_WHH, T_BIH, T_BHH, T_RW, T_RB, N_TENSORS };
static const char *const tensor_names[N_TENSORS] = {"lstm.weight_ih_l0", "lstm.weight_hh_l0",
                                                    "lstm.bias_ih_l0",   "lstm.bias_hh_l0",
                                                    "readout.weight",    "readout.bias"};

struct elm__lstm {
    int I, H, O;
    elm_dtype dtype;
    int threads;
    size_t n;                /* parameters */
    size_t off[N_TENSORS];   /* offsets into params / grads */
    int shape[N_TENSORS][2]; /* rows, cols (cols 0 for vectors) */
    void *params;            /* (n) */
    void *grads;             /* (n) */
    /* Records of the last forward_train, for backward. */
    int B, T, ready;
    void *x;     /* (B, T, I) copy of the input */
    void *gates; /* (B, T, 4H) i, f, g, o after their nonlinearities */
    void *cell;  /* (B, T, H) c_t */
    void *hid;   /* (B, T, H) h_t */
    void *gs;    /* (B, n) per-sample gradients */
    size_t cap_x, cap_g, cap_c, cap_h, cap_gs; /* capacities in reals */
};

static size_t real_size(elm_dtype d) {
    return d == ELM_F64 ? sizeof(double) : sizeof(float);
}

static int lstm_threads(const elm__lstm *m) {
    return m->threads > 0 ? m->threads : omp_get_max_threads();
}

/* Instantiate the kernels for float and double. */
#define ELM_LSTM_KERNELS
#define real     float
#define FN(name) name##_f32
#define rexp     expf
#define rtanh    tanhf
#include "lstm.c"
#undef real
#undef FN
#undef rexp
#undef rtanh
#define real     double
#define FN(name) name##_f64
#define rexp     exp
#define rtanh    tanh
#include "lstm.c"
#undef real
#undef FN
#undef rexp
#undef rtanh
#undef ELM_LSTM_KERNELS

/* ---- Creation ---- */

static elm_status build(elm__lstm **out, int I, int H, int O, elm_dtype dtype) {
    *out = NULL;
    if (I < 1 || H < 1 || O < 1)
        return elm__fail(ELM_ERR_ARG,
                         "lstm: sizes must be >= 1 (num_input %d, hidden %d, "
                         "num_output %d)",
                         I, H, O);
    if (dtype != ELM_F32 && dtype != ELM_F64)
        return elm__fail(ELM_ERR_ARG, "lstm: unknown dtype %d", (int)dtype);
    /* Sizes come from files too: refuse products that overflow before allocating. */
    if ((size_t)H > ((size_t)1 << 20) || (size_t)I > ((size_t)1 << 24) ||
        (size_t)O > ((size_t)1 << 24))
        return elm__fail(ELM_ERR_ARG,
                         "lstm: sizes too large (num_input %d, hidden %d, "
                         "num_output %d)",
                         I, H, O);
    elm__lstm *m = calloc(1, sizeof *m);
    if (!m)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    m->I = I;
    m->H = H;
    m->O = O;
    m->dtype = dtype;
    const int G = 4 * H;
    int shapes[N_TENSORS][2] = {{G, I}, {G, H}, {G, 0}, {G, 0}, {O, H}, {O, 0}};
    size_t off = 0;
    for (int k = 0; k < N_TENSORS; k++) {
        m->shape[k][0] = shapes[k][0];
        m->shape[k][1] = shapes[k][1];
        m->off[k] = off;
        off += (size_t)shapes[k][0] * (size_t)(shapes[k][1] ? shapes[k][1] : 1);
    }
    m->n = off;
    size_t bytes = m->n * real_size(dtype);
    if (bytes > ELM_MAX_ALLOC) {
        free(m);
        return elm__fail(ELM_ERR_ARG, "lstm: %zu parameters is too many", off);
    }
    m->params = elm__alloc_aligned(bytes);
    m->grads = elm__alloc_aligned(bytes);
    if (!m->params || !m->grads) {
        elm__lstm_free(m);
        return elm__fail(ELM_ERR_NOMEM, "out of memory for %zu LSTM parameters", off);
    }
    memset(m->params, 0, bytes);
    memset(m->grads, 0, bytes);
    *out = m;
    return ELM_OK;
}

elm_status elm__lstm_create(elm__lstm **out, int num_input, int hidden, int num_output,
                           elm_dtype dtype, uint64_t seed) {
    elm_status st = build(out, num_input, hidden, num_output, dtype);
    if (st)
        return st;
    elm__lstm *m = *out;
    /* nn.LSTM draws every weight and bias from U(-1/sqrt(H), 1/sqrt(H)); nn.Linear(H, O) uses
     * kaiming_uniform(a=sqrt(5)) for the weight and U(-1/sqrt(fan_in)) for the bias, which is the
     * same bound since fan_in = H. */
    double k = 1.0 / sqrt((double)m->H);
    elm__rng r;
    elm__rng_seed(&r, seed);
    for (size_t i = 0; i < m->n; i++) {
        double v = (2 * elm__rng_uniform(&r) - 1) * k;
        if (dtype == ELM_F64)
            ((double *)m->params)[i] = v;
        else
            ((float *)m->params)[i] = (float)v;
    }
    return ELM_OK;
}

void elm__lstm_free(elm__lstm *m) {
    if (!m)
        return;
    elm__free_aligned(m->params);
    elm__free_aligned(m->grads);
    free(m->x);
    free(m->gates);
    free(m->cell);
    free(m->hid);
    free(m->gs);
    free(m);
}

int elm__lstm_num_input(const elm__lstm *m) {
    return m->I;
}
int elm__lstm_hidden(const elm__lstm *m) {
    return m->H;
}
int elm__lstm_num_output(const elm__lstm *m) {
    return m->O;
}
elm_dtype elm__lstm_dtype(const elm__lstm *m) {
    return m->dtype;
}
size_t elm__lstm_num_params(const elm__lstm *m) {
    return m->n;
}
void *elm__lstm_params(elm__lstm *m) {
    return m->params;
}
void *elm__lstm_grads(elm__lstm *m) {
    return m->grads;
}
void elm__lstm_set_threads(elm__lstm *m, int threads) {
    m->threads = threads < 0 ? 0 : threads;
}

int elm__lstm_num_tensors(const elm__lstm *m) {
    (void)m;
    return N_TENSORS;
}

elm_status elm__lstm_tensor(const elm__lstm *m, int i, elm_tensor *out) {
    if (i < 0 || i >= N_TENSORS)
        return elm__fail(ELM_ERR_ARG, "lstm: tensor index %d out of range [0, %d)", i, N_TENSORS);
    size_t rs = real_size(m->dtype);
    out->name = tensor_names[i];
    out->ndim = m->shape[i][1] ? 2 : 1;
    out->shape[0] = m->shape[i][0];
    out->shape[1] = m->shape[i][1];
    out->numel = (size_t)m->shape[i][0] * (size_t)(m->shape[i][1] ? m->shape[i][1] : 1);
    out->trainable = 1;
    out->data = (char *)m->params + m->off[i] * rs;
    out->grad = (char *)m->grads + m->off[i] * rs;
    out->offset = m->off[i];
    return ELM_OK;
}

/* ---- Passes ---- */

static elm_status check_call(const elm__lstm *m, elm_dtype want, const void *x, const void *y, int B,
                             int T) {
    if (m->dtype != want)
        return elm__fail(ELM_ERR_ARG, "lstm: the model is %s but the call is for %s",
                         m->dtype == ELM_F64 ? "float64" : "float32",
                         want == ELM_F64 ? "float64" : "float32");
    if (!x || !y || B < 1 || T < 1)
        return elm__fail(ELM_ERR_ARG, "lstm: forward needs x, y and B, T >= 1 (B %d, T %d)", B, T);
    return ELM_OK;
}

elm_status elm__lstm_forward(elm__lstm *m, const float *x, float *y, int B, int T) {
    elm_status st = check_call(m, ELM_F32, x, y, B, T);
    return st ? st : forward_f32(m, x, y, B, T, 0);
}

elm_status elm__lstm_forward_f64(elm__lstm *m, const double *x, double *y, int B, int T) {
    elm_status st = check_call(m, ELM_F64, x, y, B, T);
    return st ? st : forward_f64(m, x, y, B, T, 0);
}

/* Grows a record buffer to `reals` elements. */
static int grow(void **p, size_t *cap, size_t reals, size_t rs) {
    if (*cap >= reals && *p)
        return 1;
    if (reals > ELM_MAX_ALLOC / rs)
        return 0;
    void *q = realloc(*p, reals * rs);
    if (!q)
        return 0;
    *p = q;
    *cap = reals;
    return 1;
}

elm_status elm__lstm_forward_train(elm__lstm *m, const void *x, void *y, int B, int T) {
    elm_status st = check_call(m, m->dtype, x, y, B, T);
    if (st)
        return st;
    size_t rs = real_size(m->dtype);
    size_t bt = (size_t)B * (size_t)T;
    m->ready = 0;
    if (!grow(&m->x, &m->cap_x, bt * (size_t)m->I, rs) ||
        !grow(&m->gates, &m->cap_g, bt * 4 * (size_t)m->H, rs) ||
        !grow(&m->cell, &m->cap_c, bt * (size_t)m->H, rs) ||
        !grow(&m->hid, &m->cap_h, bt * (size_t)m->H, rs))
        return elm__fail(ELM_ERR_NOMEM, "lstm: out of memory for the records of %d x %d steps", B,
                         T);
    memcpy(m->x, x, bt * (size_t)m->I * rs);
    m->B = B;
    m->T = T;
    st = m->dtype == ELM_F64 ? forward_f64(m, x, y, B, T, 1) : forward_f32(m, x, y, B, T, 1);
    if (!st)
        m->ready = 1;
    return st;
}

elm_status elm__lstm_backward(elm__lstm *m, const void *dy) {
    if (!m->ready)
        return elm__fail(ELM_ERR_ARG, "lstm: backward needs a forward_train first");
    if (!dy)
        return elm__fail(ELM_ERR_ARG, "lstm: backward needs dy");
    size_t rs = real_size(m->dtype);
    if (!grow(&m->gs, &m->cap_gs, (size_t)m->B * m->n, rs))
        return elm__fail(ELM_ERR_NOMEM, "lstm: out of memory for per-sample gradients");
    m->ready = 0;
    return m->dtype == ELM_F64 ? backward_f64(m, dy) : backward_f32(m, dy);
}

void elm__lstm_zero_grad(elm__lstm *m) {
    memset(m->grads, 0, m->n * real_size(m->dtype));
}

double elm__lstm_clip_grad_norm(elm__lstm *m, double max_norm) {
    double ss = 0;
    for (size_t i = 0; i < m->n; i++) {
        double g = m->dtype == ELM_F64 ? ((double *)m->grads)[i] : (double)((float *)m->grads)[i];
        ss += g * g;
    }
    double norm = sqrt(ss);
    /* torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is < 1, as
     * elm_model_clip_grad_norm does. */
    if (max_norm > 0 && isfinite(norm)) {
        double coef = max_norm / (norm + 1e-6);
        if (coef < 1)
            for (size_t i = 0; i < m->n; i++) {
                if (m->dtype == ELM_F64)
                    ((double *)m->grads)[i] *= coef;
                else
                    ((float *)m->grads)[i] *= (float)coef;
            }
    }
    return norm;
}

/* ---- Files ---- */

elm_status elm__lstm_to_st(const elm__lstm *m, const char *path) {
    size_t rs = real_size(m->dtype);
    elm__st_out t[N_TENSORS];
    for (int k = 0; k < N_TENSORS; k++) {
        t[k] = (elm__st_out){.name = tensor_names[k],
                             .dtype = m->dtype == ELM_F64 ? ELM_DT_F64 : ELM_DT_F32,
                             .ndim = m->shape[k][1] ? 2 : 1,
                             .data = (char *)m->params + m->off[k] * rs};
        t[k].shape[0] = m->shape[k][0];
        t[k].shape[1] = m->shape[k][1];
    }
    char vi[24], vh[24], vo[24];
    snprintf(vi, sizeof vi, "%d", m->I);
    snprintf(vh, sizeof vh, "%d", m->H);
    snprintf(vo, sizeof vo, "%d", m->O);
    const char *kv[] = {"model_type",  "lstm", "num_input",  vi,
                        "hidden_size", vh,     "num_output", vo,
                        "format",      "pt",   "written_by", "elm " ELM_VERSION_STRING};
    return elm__tensors_write(path, t, N_TENSORS, kv, 6); /* .safetensors or .pt */
}

int elm__lstm_st_is_lstm(const elm__st_file *f) {
    return elm__st_find(f, tensor_names[T_WIH]) != NULL;
}

/* The six tensors of f, each with its expected number of dimensions. */
static elm_status find_tensors(const elm__st_file *f, const elm__st_tensor *t[N_TENSORS]) {
    for (int k = 0; k < N_TENSORS; k++) {
        int nd = k == T_WIH || k == T_WHH || k == T_RW ? 2 : 1;
        t[k] = elm__st_find(f, tensor_names[k]);
        if (!t[k])
            return elm__fail(ELM_ERR_FORMAT, "%s: no tensor '%s' (not an LSTM model)", f->path,
                             tensor_names[k]);
        if (t[k]->ndim != nd)
            return elm__fail(ELM_ERR_SHAPE, "%s: tensor '%s' has %d dimensions, expected %d",
                             f->path, tensor_names[k], t[k]->ndim, nd);
    }
    return ELM_OK;
}

/* Copies the tensors into m after checking each shape against m's sizes. */
static elm_status copy_tensors(elm__lstm *m, const elm__st_file *f,
                               const elm__st_tensor *const t[N_TENSORS]) {
    for (int k = 0; k < N_TENSORS; k++) {
        int64_t r = m->shape[k][0], c = m->shape[k][1];
        if (c && (t[k]->shape[0] != r || t[k]->shape[1] != c))
            return elm__fail(ELM_ERR_SHAPE, "%s: tensor '%s' is [%lld, %lld], expected [%lld, %lld]",
                             f->path, tensor_names[k], (long long)t[k]->shape[0],
                             (long long)t[k]->shape[1], (long long)r, (long long)c);
        if (!c && t[k]->shape[0] != r)
            return elm__fail(ELM_ERR_SHAPE, "%s: tensor '%s' is [%lld], expected [%lld]", f->path,
                             tensor_names[k], (long long)t[k]->shape[0], (long long)r);
        elm_status st = elm__st_copy_real(f, t[k], (char *)m->params + m->off[k] * real_size(m->dtype),
                                          m->dtype);
        if (st)
            return st;
    }
    /* A model with NaN or infinite weights would only produce garbage later: say so now. */
    for (size_t i = 0; i < m->n; i++) {
        double v = m->dtype == ELM_F64 ? ((double *)m->params)[i] : (double)((float *)m->params)[i];
        if (!isfinite(v))
            return elm__fail(ELM_ERR_NUMERIC, "%s: non-finite parameter value", f->path);
    }
    return ELM_OK;
}

elm_status elm__lstm_from_st(elm__lstm **out, const elm__st_file *f, elm_dtype dtype) {
    *out = NULL;
    const elm__st_tensor *t[N_TENSORS];
    elm_status st = find_tensors(f, t);
    if (st)
        return st;
    /* Sizes from the shapes: weight_ih (4H, I), readout.weight (O, H). */
    int64_t G = t[T_WIH]->shape[0], I = t[T_WIH]->shape[1], O = t[T_RW]->shape[0];
    if (G < 4 || G % 4 || G / 4 > INT32_MAX || I < 1 || I > INT32_MAX || O < 1 || O > INT32_MAX)
        return elm__fail(ELM_ERR_SHAPE,
                         "%s: lstm.weight_ih_l0 is [%lld, %lld], expected [4 * hidden, num_input]",
                         f->path, (long long)G, (long long)I);
    elm__lstm *m = NULL;
    st = build(&m, (int)I, (int)(G / 4), (int)O, dtype);
    if (!st)
        st = copy_tensors(m, f, t);
    if (st) {
        elm__lstm_free(m);
        return st;
    }
    *out = m;
    return ELM_OK;
}

#else /* ELM_LSTM_KERNELS: instantiated for real = float and real = double above. */

/* The nonzero inputs of one step: spike inputs are mostly zero, and skipping them changes no
 * result (a zero times a finite weight adds exactly zero). Returns the count. */
static int FN(nonzeros)(int *idx, real *val, const real *x, int I) {
    int n = 0;
    for (int i = 0; i < I; i++)
        if (x[i] != 0) {
            idx[n] = i;
            val[n] = x[i];
            n++;
        }
    return n;
}

static real FN(sigmoid)(real a) {
    return (real)1 / ((real)1 + rexp(-a));
}

/*
 * One sample over T steps: x (T, I) -> y (T, O). With keep, the gates (T, 4H), cells (T, H) and
 * hidden states (T, H) of every step are written to gs/cs/hs; without, gs holds one step and
 * cs/hs two (the current and the previous step alternate). idx/val: (I) scratch.
 */
static void FN(sample_forward)(const elm__lstm *m, const real *x, real *y, int T, real *gs, real *cs,
                               real *hs, int keep, int *idx, real *val) {
    const int I = m->I, H = m->H, O = m->O, G = 4 * H;
    const real *P = m->params;
    const real *Wih = P + m->off[T_WIH], *Whh = P + m->off[T_WHH];
    const real *bih = P + m->off[T_BIH], *bhh = P + m->off[T_BHH];
    const real *Wr = P + m->off[T_RW], *br = P + m->off[T_RB];
    for (int t = 0; t < T; t++) {
        real *a = gs + (keep ? (size_t)t * G : 0);
        real *c = cs + (size_t)(keep ? t : t % 2) * H, *h = hs + (size_t)(keep ? t : t % 2) * H;
        const real *cp = t ? cs + (size_t)(keep ? t - 1 : (t - 1) % 2) * H : NULL;
        const real *hp = t ? hs + (size_t)(keep ? t - 1 : (t - 1) % 2) * H : NULL;
        int nnz = FN(nonzeros)(idx, val, x + (size_t)t * I, I);
        for (int k = 0; k < G; k++) {
            real s = bih[k] + bhh[k];
            const real *w = Wih + (size_t)k * I;
            for (int j = 0; j < nnz; j++)
                s += w[idx[j]] * val[j];
            if (hp) {
                const real *u = Whh + (size_t)k * H;
                for (int j = 0; j < H; j++)
                    s += u[j] * hp[j];
            }
            a[k] = s;
        }
        for (int j = 0; j < H; j++) {
            real ig = FN(sigmoid)(a[j]), fg = FN(sigmoid)(a[H + j]);
            real gg = rtanh(a[2 * H + j]), og = FN(sigmoid)(a[3 * H + j]);
            a[j] = ig;
            a[H + j] = fg;
            a[2 * H + j] = gg;
            a[3 * H + j] = og;
            c[j] = (cp ? fg * cp[j] : 0) + ig * gg;
            h[j] = og * rtanh(c[j]);
        }
        real *yt = y + (size_t)t * O;
        for (int o = 0; o < O; o++) {
            real s = br[o];
            const real *w = Wr + (size_t)o * H;
            for (int j = 0; j < H; j++)
                s += w[j] * h[j];
            yt[o] = s;
        }
    }
}

static elm_status FN(forward)(elm__lstm *m, const real *x, real *y, int B, int T, int keep) {
    const int I = m->I, H = m->H, O = m->O;
    const size_t tg = (size_t)T * 4 * (size_t)H, th = (size_t)T * (size_t)H;
    const int nt = lstm_threads(m);
    int failed = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)                                      \
    reduction(|                                                                                    \
              : failed) if (nt > 1 && B > 1)
    for (int b = 0; b < B; b++) {
        int *idx = malloc(sizeof(int) * (size_t)I);
        real *val = malloc(sizeof(real) * (size_t)I);
        real *scratch = keep ? NULL : malloc(sizeof(real) * (size_t)8 * (size_t)H);
        if (!idx || !val || (!keep && !scratch)) {
            failed = 1;
        } else if (keep) {
            FN(sample_forward)
            (m, x + (size_t)b * T * I, y + (size_t)b * T * O, T, (real *)m->gates + b * tg,
             (real *)m->cell + b * th, (real *)m->hid + b * th, 1, idx, val);
        } else {
            FN(sample_forward)
            (m, x + (size_t)b * T * I, y + (size_t)b * T * O, T, scratch, scratch + 4 * H,
             scratch + 6 * H, 0, idx, val);
        }
        free(idx);
        free(val);
        free(scratch);
    }
    return failed ? elm__fail(ELM_ERR_NOMEM, "lstm: out of memory for per-sample scratch") : ELM_OK;
}

/*
 * Backpropagation through time for sample b: dy (T, O) -> g (n), the sample's gradient (g is
 * overwritten). tmp: (7H) scratch, idx/val: (I).
 */
static void FN(sample_backward)(const elm__lstm *m, int b, const real *dy, real *g, real *tmp,
                                int *idx, real *val) {
    const int I = m->I, H = m->H, O = m->O, G = 4 * H, T = m->T;
    const real *P = m->params;
    const real *Whh = P + m->off[T_WHH], *Wr = P + m->off[T_RW];
    real *gWih = g + m->off[T_WIH], *gWhh = g + m->off[T_WHH];
    real *gbih = g + m->off[T_BIH], *gbhh = g + m->off[T_BHH];
    real *gWr = g + m->off[T_RW], *gbr = g + m->off[T_RB];
    const real *x = (const real *)m->x + (size_t)b * T * I;
    const real *gates = (const real *)m->gates + (size_t)b * T * G;
    const real *cs = (const real *)m->cell + (size_t)b * T * H;
    const real *hs = (const real *)m->hid + (size_t)b * T * H;
    real *dh = tmp, *dh_next = tmp + H, *dc_next = tmp + 2 * H, *da = tmp + 3 * H;
    memset(g, 0, sizeof(real) * m->n);
    memset(tmp, 0, sizeof(real) * 7 * (size_t)H);
    for (int t = T - 1; t >= 0; t--) {
        const real *dyt = dy + (size_t)t * O, *a = gates + (size_t)t * G;
        const real *c = cs + (size_t)t * H, *h = hs + (size_t)t * H;
        const real *cp = t ? c - H : NULL, *hp = t ? h - H : NULL;
        /* Readout: y_t = W_r h_t + b_r. */
        for (int j = 0; j < H; j++)
            dh[j] = dh_next[j];
        for (int o = 0; o < O; o++) {
            real d = dyt[o];
            gbr[o] += d;
            if (d == 0)
                continue;
            real *gw = gWr + (size_t)o * H;
            const real *w = Wr + (size_t)o * H;
            for (int j = 0; j < H; j++) {
                gw[j] += d * h[j];
                dh[j] += w[j] * d;
            }
        }
        /* Cell: h = o tanh(c), c = f c_prev + i g; derivatives through each nonlinearity. */
        for (int j = 0; j < H; j++) {
            real ig = a[j], fg = a[H + j], gg = a[2 * H + j], og = a[3 * H + j];
            real tc = rtanh(c[j]);
            real dc = dh[j] * og * (1 - tc * tc) + dc_next[j];
            da[j] = dc * gg * ig * (1 - ig);
            da[H + j] = (cp ? dc * cp[j] : 0) * fg * (1 - fg);
            da[2 * H + j] = dc * ig * (1 - gg * gg);
            da[3 * H + j] = dh[j] * tc * og * (1 - og);
            dc_next[j] = dc * fg;
        }
        /* Pre-activations a = W_ih x + b_ih + W_hh h_prev + b_hh. */
        int nnz = FN(nonzeros)(idx, val, x + (size_t)t * I, I);
        for (int j = 0; j < H; j++)
            dh_next[j] = 0;
        for (int k = 0; k < G; k++) {
            real d = da[k];
            gbih[k] += d;
            gbhh[k] += d;
            real *gw = gWih + (size_t)k * I;
            for (int q = 0; q < nnz; q++)
                gw[idx[q]] += d * val[q];
            if (hp) {
                real *gu = gWhh + (size_t)k * H;
                const real *u = Whh + (size_t)k * H;
                for (int j = 0; j < H; j++) {
                    gu[j] += d * hp[j];
                    dh_next[j] += u[j] * d;
                }
            }
        }
    }
}

static elm_status FN(backward)(elm__lstm *m, const real *dy) {
    const int B = m->B, T = m->T, H = m->H, O = m->O, I = m->I;
    const size_t n = m->n;
    real *gs = m->gs;
    int failed = 0;
    int nt = lstm_threads(m);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)                                      \
    reduction(|                                                                                    \
              : failed) if (nt > 1 && B > 1)
    for (int b = 0; b < B; b++) {
        real *tmp = malloc(sizeof(real) * 7 * (size_t)H);
        int *idx = malloc(sizeof(int) * (size_t)I);
        real *val = malloc(sizeof(real) * (size_t)I);
        if (!tmp || !idx || !val)
            failed = 1;
        else
            FN(sample_backward)(m, b, dy + (size_t)b * T * O, gs + (size_t)b * n, tmp, idx, val);
        free(tmp);
        free(idx);
        free(val);
    }
    if (failed)
        return elm__fail(ELM_ERR_NOMEM, "lstm: out of memory for per-sample scratch");
    /* Sum the samples in order, whatever the thread count: bitwise-reproducible gradients. */
    real *g = m->grads;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1 && n * (size_t)B > 65536)
    for (size_t p = 0; p < n; p++) {
        real s = g[p];
        for (int b = 0; b < B; b++)
            s += gs[(size_t)b * n + p];
        g[p] = s;
    }
    return ELM_OK;
}

#endif /* ELM_LSTM_KERNELS */
