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
 *
 * Inputs reach the kernels as spike lists (CSR rows of nonzero inputs, one row per step): a
 * dense x is scanned once into such lists (its zeros skipped), spike lists are taken as given
 * (their zero values skipped too), so both give the same bits. The input projection then costs
 * one row of W_ih^T (4H contiguous reals) per nonzero input instead of a pass over all I inputs.
 * Each forward call lays out W_ih^T, W_hh^T and W_r^T, so that every per-step product is a sum
 * of contiguous vectors into the gates (vectorisable over the 4H gates, where PyTorch-order dot
 * products were sums along a row); every gate still adds the same terms in the same order as the
 * plain dot product (bias, then the inputs in ascending id, then h_{t-1} in ascending j), so the
 * bits are those of the straightforward loops (no FMA contraction: ISO C, -ffp-contract=off).
 * Backward gathers dL/dW_ih the same way, per sample in a (I, 4H) scratch, transposed at the
 * end; the hot loops are compiled for AVX-512, AVX2 and plain x86-64 (chosen at run time).
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

/* Nonzero inputs as CSR rows (b, t), values in the model's dtype. */
typedef struct {
    int64_t *ptr;  /* (rows + 1) */
    int32_t *idx;  /* (nnz) */
    void *val;     /* (nnz) */
    size_t cap_rows, cap_nz;
} lstm_rows;

struct elm__lstm {
    int I, H, O;
    elm_dtype dtype;
    int threads;
    size_t n;                /* parameters */
    size_t off[N_TENSORS];   /* offsets into params / grads */
    int shape[N_TENSORS][2]; /* rows, cols (cols 0 for vectors) */
    void *params;            /* (n) */
    void *grads;             /* (n) */
    /* Weights laid out for the forward pass, refreshed by every forward call: W_ih^T (I, 4H),
     * W_hh^T (H, 4H), W_r^T (H, O), b_ih + b_hh (4H). */
    void *wt;
    size_t cap_wt;
    lstm_rows in; /* the input of an inference forward */
    /* Records of the last forward_train, for backward. */
    int B, T, ready;
    lstm_rows x; /* its input's nonzeros */
    void *gates; /* (B, T, 4H) i, f, g, o after their nonlinearities */
    void *cell;  /* (B, T, H) c_t */
    void *tcell; /* (B, T, H) tanh(c_t), for backward (computed once) */
    void *hid;   /* (B, T, H) h_t */
    void *gs;    /* (B, n) per-sample gradients */
    /* (B, I, 4H) per-sample dL/dW_ih^T and (B, I) flags of its rows in use: all zero between
     * backward calls (each sample clears the rows it used), so only those rows cost anything. */
    void *gT;
    unsigned char *touched;
    size_t cap_g, cap_c, cap_tc, cap_h, cap_gs, cap_gT, cap_touched; /* in reals / bytes */
};

static size_t real_size(elm_dtype d) {
    return d == ELM_F64 ? sizeof(double) : sizeof(float);
}

static int lstm_threads(const elm__lstm *m) {
    return m->threads > 0 ? m->threads : omp_get_max_threads();
}

/* Hot loops: AVX-512, AVX2 and plain x86-64 builds, picked at run time (as the ELM's kernels).
 * Only element-wise vector loops: every width gives the same bits. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(ELM_NO_CLONES)
#define LSTM_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define LSTM_CLONES
#endif

static void rows_free(lstm_rows *r) {
    free(r->ptr);
    free(r->idx);
    free(r->val);
    memset(r, 0, sizeof *r);
}

/* Room for `rows` rows and `nz` entries of rs bytes each. */
static int rows_reserve(lstm_rows *r, size_t rows, size_t nz, size_t rs) {
    if (r->cap_rows < rows + 1 || !r->ptr) {
        int64_t *p = realloc(r->ptr, (rows + 1) * sizeof *p);
        if (!p)
            return 0;
        r->ptr = p;
        r->cap_rows = rows + 1;
    }
    if (r->cap_nz < nz || !r->idx) {
        size_t cap = nz + nz / 4 + 64;
        int32_t *i = realloc(r->idx, cap * sizeof *i);
        if (!i)
            return 0;
        r->idx = i;
        void *v = realloc(r->val, cap * rs);
        if (!v)
            return 0;
        r->val = v;
        r->cap_nz = cap;
    }
    return 1;
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
    rows_free(&m->x);
    free(m->gT);
    free(m->touched);
    rows_free(&m->in);
    free(m->wt);
    free(m->gates);
    free(m->cell);
    free(m->tcell);
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

/* The nonzeros of dense x (rows of I reals) into r. */
static elm_status rows_from_dense(const elm__lstm *m, lstm_rows *r, const void *x, size_t rows) {
    const size_t n = rows * (size_t)m->I;
    const int f64 = m->dtype == ELM_F64;
    size_t nz = f64 ? count_nz_f64(x, n) : count_nz_f32(x, n);
    if (!rows_reserve(r, rows, nz, real_size(m->dtype)))
        return elm__fail(ELM_ERR_NOMEM, "lstm: out of memory for %zu nonzero inputs", nz);
    if (f64)
        fill_dense_f64(r, x, rows, m->I);
    else
        fill_dense_f32(r, x, rows, m->I);
    return ELM_OK;
}

/* The nonzero entries of spike lists (checked by the caller) into r. */
static elm_status rows_from_lists(const elm__lstm *m, lstm_rows *r, const elm_sparse_input *x,
                                  size_t rows) {
    size_t nz = (size_t)x->ptr[rows];
    if (!rows_reserve(r, rows, nz, real_size(m->dtype)))
        return elm__fail(ELM_ERR_NOMEM, "lstm: out of memory for %zu input spikes", nz);
    if (m->dtype == ELM_F64)
        fill_lists_f64(r, x, rows);
    else
        fill_lists_f32(r, x, rows);
    return ELM_OK;
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

/* The forward pass over input rows r: lays the weights out, then runs the kernels. */
static elm_status run_forward(elm__lstm *m, const lstm_rows *r, void *y, int B, int T, int keep) {
    const size_t G = 4 * (size_t)m->H;
    const size_t nwt = ((size_t)m->I + (size_t)m->H) * G + (size_t)m->H * (size_t)m->O + G;
    if (!grow(&m->wt, &m->cap_wt, nwt, real_size(m->dtype)))
        return elm__fail(ELM_ERR_NOMEM, "lstm: out of memory for the weights' layout");
    if (m->dtype == ELM_F64) {
        layout_f64(m);
        return forward_f64(m, r, y, B, T, keep);
    }
    layout_f32(m);
    return forward_f32(m, r, y, B, T, keep);
}

elm_status elm__lstm_forward(elm__lstm *m, const float *x, float *y, int B, int T) {
    elm_status st = check_call(m, ELM_F32, x, y, B, T);
    if (!st)
        st = rows_from_dense(m, &m->in, x, (size_t)B * (size_t)T);
    return st ? st : run_forward(m, &m->in, y, B, T, 0);
}

elm_status elm__lstm_forward_f64(elm__lstm *m, const double *x, double *y, int B, int T) {
    elm_status st = check_call(m, ELM_F64, x, y, B, T);
    if (!st)
        st = rows_from_dense(m, &m->in, x, (size_t)B * (size_t)T);
    return st ? st : run_forward(m, &m->in, y, B, T, 0);
}

/* Room for the records of a B x T training forward. */
static elm_status train_records(elm__lstm *m, int B, int T) {
    size_t rs = real_size(m->dtype);
    size_t bt = (size_t)B * (size_t)T;
    m->ready = 0;
    if (!grow(&m->gates, &m->cap_g, bt * 4 * (size_t)m->H, rs) ||
        !grow(&m->cell, &m->cap_c, bt * (size_t)m->H, rs) ||
        !grow(&m->tcell, &m->cap_tc, bt * (size_t)m->H, rs) ||
        !grow(&m->hid, &m->cap_h, bt * (size_t)m->H, rs))
        return elm__fail(ELM_ERR_NOMEM, "lstm: out of memory for the records of %d x %d steps", B,
                         T);
    m->B = B;
    m->T = T;
    return ELM_OK;
}

elm_status elm__lstm_forward_train(elm__lstm *m, const void *x, void *y, int B, int T) {
    elm_status st = check_call(m, m->dtype, x, y, B, T);
    if (!st)
        st = train_records(m, B, T);
    if (!st)
        st = rows_from_dense(m, &m->x, x, (size_t)B * (size_t)T);
    if (!st)
        st = run_forward(m, &m->x, y, B, T, 1);
    if (!st)
        m->ready = 1;
    return st;
}

elm_status elm__lstm_forward_sparse(elm__lstm *m, const elm_sparse_input *x, void *y, int B,
                                    int T, int train) {
    elm_status st = check_call(m, m->dtype, x, y, B, T);
    if (st)
        return st;
    const size_t rows = (size_t)B * (size_t)T;
    lstm_rows *r = train ? &m->x : &m->in;
    if (train && (st = train_records(m, B, T)) != ELM_OK)
        return st;
    if ((st = rows_from_lists(m, r, x, rows)) != ELM_OK ||
        (st = run_forward(m, r, y, B, T, train)) != ELM_OK)
        return st;
    if (train)
        m->ready = 1;
    return ELM_OK;
}

elm_status elm__lstm_backward(elm__lstm *m, const void *dy) {
    if (!m->ready)
        return elm__fail(ELM_ERR_ARG, "lstm: backward needs a forward_train first");
    if (!dy)
        return elm__fail(ELM_ERR_ARG, "lstm: backward needs dy");
    size_t rs = real_size(m->dtype);
    if (!grow(&m->gs, &m->cap_gs, (size_t)m->B * m->n, rs))
        return elm__fail(ELM_ERR_NOMEM, "lstm: out of memory for per-sample gradients");
    /* The dL/dW_ih^T scratch starts zero; a grown one is zeroed whole (grow keeps no contents
     * worth keeping: they are zero anyway). */
    const size_t nT = (size_t)m->B * (size_t)m->I * 4 * (size_t)m->H;
    size_t old_T = m->cap_gT, old_f = m->cap_touched;
    if (!grow(&m->gT, &m->cap_gT, nT, rs) ||
        !grow((void **)&m->touched, &m->cap_touched, (size_t)m->B * (size_t)m->I, 1))
        return elm__fail(ELM_ERR_NOMEM, "lstm: out of memory for per-sample gradients");
    if (m->cap_gT != old_T)
        memset(m->gT, 0, m->cap_gT * rs);
    if (m->cap_touched != old_f)
        memset(m->touched, 0, m->cap_touched);
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

/*
 * Checks each tensor's shape against the sizes I, H, O, before anything is allocated (D4 of issue
 * 15: the model was once built from lstm.weight_ih_l0's shape alone, so a 176 KB file asked for
 * 15 GB). The tensors lie inside the file without overlapping (elm__st_parse), so once every
 * shape fits, the parameters are no more than the file's values.
 */
static elm_status check_shapes(const elm__st_file *f, const elm__st_tensor *const t[N_TENSORS],
                               int64_t I, int64_t H, int64_t O) {
    const int64_t want[N_TENSORS][2] = {{4 * H, I}, {4 * H, H}, {4 * H, 0},
                                        {4 * H, 0}, {O, H},     {O, 0}};
    for (int k = 0; k < N_TENSORS; k++) {
        int64_t r = want[k][0], c = want[k][1];
        if (c && (t[k]->shape[0] != r || t[k]->shape[1] != c))
            return elm__fail(ELM_ERR_SHAPE, "%s: tensor '%s' is [%lld, %lld], expected [%lld, %lld]",
                             f->path, tensor_names[k], (long long)t[k]->shape[0],
                             (long long)t[k]->shape[1], (long long)r, (long long)c);
        if (!c && t[k]->shape[0] != r)
            return elm__fail(ELM_ERR_SHAPE, "%s: tensor '%s' is [%lld], expected [%lld]", f->path,
                             tensor_names[k], (long long)t[k]->shape[0], (long long)r);
    }
    return ELM_OK;
}

/* Copies the tensors (shapes checked) into m. */
static elm_status copy_tensors(elm__lstm *m, const elm__st_file *f,
                               const elm__st_tensor *const t[N_TENSORS]) {
    for (int k = 0; k < N_TENSORS; k++) {
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
    st = check_shapes(f, t, I, G / 4, O);
    if (st)
        return st;
    elm__lstm *m = NULL;
    st = build(&m, (int)I, (int)(G / 4), (int)O, dtype);
    if (st) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", elm_last_error());
        return elm__fail(st, "%s: %s", f->path, msg);
    }
    st = copy_tensors(m, f, t);
    if (st) {
        elm__lstm_free(m);
        return st;
    }
    *out = m;
    return ELM_OK;
}

#else /* ELM_LSTM_KERNELS: instantiated for real = float and real = double above. */

/* a[k] += w[k] * v for k < n: the one vector operation of both passes. */
static inline __attribute__((always_inline)) void FN(axpy)(real *restrict a,
                                                          const real *restrict w, real v,
                                                          int n) {
    for (int k = 0; k < n; k++)
        a[k] += w[k] * v;
}

/* Nonzeros among x[0 .. n). */
static size_t FN(count_nz)(const real *x, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += x[i] != 0;
    return c;
}

/* The nonzeros of `rows` dense rows of I reals, in ascending input id (room reserved). */
static void FN(fill_dense)(lstm_rows *r, const real *x, size_t rows, int I) {
    real *val = r->val;
    int64_t n = 0;
    r->ptr[0] = 0;
    for (size_t row = 0; row < rows; row++) {
        const real *xr = x + row * (size_t)I;
        for (int i = 0; i < I; i++)
            if (xr[i] != 0) {
                r->idx[n] = i;
                val[n++] = xr[i];
            }
        r->ptr[row + 1] = n;
    }
}

/* The entries of spike lists but their zeros (a dense row has none of those to add either);
 * NULL values are ones. */
static void FN(fill_lists)(lstm_rows *r, const elm_sparse_input *x, size_t rows) {
    const real *xv = x->val;
    real *val = r->val;
    int64_t n = 0;
    r->ptr[0] = 0;
    for (size_t row = 0; row < rows; row++) {
        for (int64_t k = x->ptr[row]; k < x->ptr[row + 1]; k++) {
            real v = xv ? xv[k] : (real)1;
            if (v != 0) {
                r->idx[n] = x->idx[k];
                val[n++] = v;
            }
        }
        r->ptr[row + 1] = n;
    }
}

/* m->wt from the parameters: W_ih^T (I, 4H), W_hh^T (H, 4H), W_r^T (H, O), b_ih + b_hh. */
static void FN(layout)(elm__lstm *m) {
    const int I = m->I, H = m->H, O = m->O, G = 4 * H;
    const real *P = m->params;
    const real *Wih = P + m->off[T_WIH], *Whh = P + m->off[T_WHH];
    const real *bih = P + m->off[T_BIH], *bhh = P + m->off[T_BHH], *Wr = P + m->off[T_RW];
    real *WihT = m->wt, *WhhT = WihT + (size_t)I * G, *WrT = WhhT + (size_t)H * G;
    real *bsum = WrT + (size_t)H * O;
    for (int k = 0; k < G; k++) {
        for (int i = 0; i < I; i++)
            WihT[(size_t)i * G + k] = Wih[(size_t)k * I + i];
        for (int j = 0; j < H; j++)
            WhhT[(size_t)j * G + k] = Whh[(size_t)k * H + j];
        bsum[k] = bih[k] + bhh[k];
    }
    for (int o = 0; o < O; o++)
        for (int j = 0; j < H; j++)
            WrT[(size_t)j * O + o] = Wr[(size_t)o * H + j];
}

static real FN(sigmoid)(real a) {
    return (real)1 / ((real)1 + rexp(-a));
}

/*
 * One sample over T steps: input rows row0 .. row0 + T - 1 of r -> y (T, O). With keep, the
 * gates (T, 4H), cells (T, H), their tanh (ts, (T, H)) and hidden states (T, H) of every step
 * are written to gs/cs/ts/hs; without, gs holds one step and cs/hs two (the current and the
 * previous step alternate) and ts is unused.
 */
LSTM_CLONES static void FN(sample_forward)(const elm__lstm *m, const lstm_rows *r, size_t row0,
                                           real *y, int T, real *gs, real *cs, real *ts,
                                           real *hs, int keep) {
    const int I = m->I, H = m->H, O = m->O, G = 4 * H;
    const real *WihT = m->wt, *WhhT = WihT + (size_t)I * G, *WrT = WhhT + (size_t)H * G;
    const real *bsum = WrT + (size_t)H * O, *br = (const real *)m->params + m->off[T_RB];
    const real *val = r->val;
    for (int t = 0; t < T; t++) {
        real *a = gs + (keep ? (size_t)t * G : 0);
        real *c = cs + (size_t)(keep ? t : t % 2) * H, *h = hs + (size_t)(keep ? t : t % 2) * H;
        const real *cp = t ? cs + (size_t)(keep ? t - 1 : (t - 1) % 2) * H : NULL;
        const real *hp = t ? hs + (size_t)(keep ? t - 1 : (t - 1) % 2) * H : NULL;
        /* a = (b_ih + b_hh) + W_ih x_t + W_hh h_{t-1}: per gate, the terms of the dot products
         * in their order, each input a contiguous row of W_ih^T. */
        memcpy(a, bsum, sizeof(real) * (size_t)G);
        for (int64_t q = r->ptr[row0 + (size_t)t]; q < r->ptr[row0 + (size_t)t + 1]; q++)
            FN(axpy)(a, WihT + (size_t)r->idx[q] * G, val[q], G);
        if (hp)
            for (int j = 0; j < H; j++)
                FN(axpy)(a, WhhT + (size_t)j * G, hp[j], G);
        for (int j = 0; j < H; j++) {
            real ig = FN(sigmoid)(a[j]), fg = FN(sigmoid)(a[H + j]);
            real gg = rtanh(a[2 * H + j]), og = FN(sigmoid)(a[3 * H + j]);
            a[j] = ig;
            a[H + j] = fg;
            a[2 * H + j] = gg;
            a[3 * H + j] = og;
            c[j] = (cp ? fg * cp[j] : 0) + ig * gg;
            real tc = rtanh(c[j]);
            if (keep)
                ts[(size_t)t * H + j] = tc;
            h[j] = og * tc;
        }
        real *yt = y + (size_t)t * O;
        memcpy(yt, br, sizeof(real) * (size_t)O);
        for (int j = 0; j < H; j++)
            FN(axpy)(yt, WrT + (size_t)j * O, h[j], O);
    }
}

static elm_status FN(forward)(elm__lstm *m, const lstm_rows *r, real *y, int B, int T,
                              int keep) {
    const int H = m->H, O = m->O;
    const size_t tg = (size_t)T * 4 * (size_t)H, th = (size_t)T * (size_t)H;
    const int nt = lstm_threads(m);
    int failed = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)                                      \
    reduction(|                                                                                    \
              : failed) if (nt > 1 && B > 1)
    for (int b = 0; b < B; b++) {
        const size_t row0 = (size_t)b * (size_t)T;
        if (keep) {
            FN(sample_forward)
            (m, r, row0, y + row0 * O, T, (real *)m->gates + b * tg, (real *)m->cell + b * th,
             (real *)m->tcell + b * th, (real *)m->hid + b * th, 1);
        } else {
            real *scratch = malloc(sizeof(real) * (size_t)8 * (size_t)H);
            if (!scratch)
                failed = 1;
            else
                FN(sample_forward)(m, r, row0, y + row0 * O, T, scratch, scratch + 4 * H, NULL,
                                   scratch + 6 * H, 0);
            free(scratch);
        }
    }
    return failed ? elm__fail(ELM_ERR_NOMEM, "lstm: out of memory for per-sample scratch") : ELM_OK;
}

/*
 * Backpropagation through time for sample b: dy (T, O) -> g (n), the sample's gradient (g is
 * overwritten). tmp: (7H) scratch; gT: (I, 4H) zeroed scratch for dL/dW_ih^T, whose rows of the
 * inputs that occur (touched, (I) zeroed) are transposed into g at the end and zeroed again.
 */
LSTM_CLONES static void FN(sample_backward)(const elm__lstm *m, int b, const real *dy, real *g,
                                            real *tmp, real *gT, unsigned char *touched) {
    const int I = m->I, H = m->H, O = m->O, G = 4 * H, T = m->T;
    const real *P = m->params;
    const real *Whh = P + m->off[T_WHH], *Wr = P + m->off[T_RW];
    real *gWih = g + m->off[T_WIH], *gWhh = g + m->off[T_WHH];
    real *gbih = g + m->off[T_BIH], *gbhh = g + m->off[T_BHH];
    real *gWr = g + m->off[T_RW], *gbr = g + m->off[T_RB];
    const lstm_rows *r = &m->x;
    const real *val = r->val;
    const size_t row0 = (size_t)b * (size_t)T;
    const real *gates = (const real *)m->gates + (size_t)b * T * G;
    const real *cs = (const real *)m->cell + (size_t)b * T * H;
    const real *tcs = (const real *)m->tcell + (size_t)b * T * H;
    const real *hs = (const real *)m->hid + (size_t)b * T * H;
    real *dh = tmp, *dh_next = tmp + H, *dc_next = tmp + 2 * H, *da = tmp + 3 * H;
    /* g is overwritten: dL/dW_ih (first in the layout) whole at the end, the rest now. */
    memset(g + m->off[T_WHH], 0, sizeof(real) * (m->n - m->off[T_WHH]));
    memset(tmp, 0, sizeof(real) * 7 * (size_t)H);
    for (int t = T - 1; t >= 0; t--) {
        const real *dyt = dy + (size_t)t * O, *a = gates + (size_t)t * G;
        const real *c = cs + (size_t)t * H, *h = hs + (size_t)t * H, *tct = tcs + (size_t)t * H;
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
            real tc = tct[j];
            real dc = dh[j] * og * (1 - tc * tc) + dc_next[j];
            da[j] = dc * gg * ig * (1 - ig);
            da[H + j] = (cp ? dc * cp[j] : 0) * fg * (1 - fg);
            da[2 * H + j] = dc * ig * (1 - gg * gg);
            da[3 * H + j] = dh[j] * tc * og * (1 - og);
            dc_next[j] = dc * fg;
        }
        /* Pre-activations a = W_ih x + b_ih + W_hh h_prev + b_hh. */
        for (int k = 0; k < G; k++) {
            gbih[k] += da[k];
            gbhh[k] += da[k];
        }
        for (int64_t q = r->ptr[row0 + (size_t)t]; q < r->ptr[row0 + (size_t)t + 1]; q++) {
            touched[r->idx[q]] = 1;
            FN(axpy)(gT + (size_t)r->idx[q] * G, da, val[q], G);
        }
        for (int j = 0; j < H; j++)
            dh_next[j] = 0;
        if (hp)
            for (int k = 0; k < G; k++) {
                real d = da[k];
                FN(axpy)(gWhh + (size_t)k * H, hp, d, H);
                FN(axpy)(dh_next, Whh + (size_t)k * H, d, H);
            }
    }
    /* dL/dW_ih = (dL/dW_ih^T)^T, written row by row; rows of inputs never seen are zero. */
    for (int k = 0; k < G; k++) {
        real *gw = gWih + (size_t)k * I;
        for (int i = 0; i < I; i++)
            gw[i] = touched[i] ? gT[(size_t)i * G + k] : 0;
    }
    for (int i = 0; i < I; i++)
        if (touched[i]) {
            memset(gT + (size_t)i * G, 0, sizeof(real) * (size_t)G);
            touched[i] = 0;
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
        if (!tmp)
            failed = 1;
        else
            FN(sample_backward)(m, b, dy + (size_t)b * T * O, gs + (size_t)b * n, tmp,
                                (real *)m->gT + (size_t)b * I * 4 * H,
                                m->touched + (size_t)b * I);
        free(tmp);
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
