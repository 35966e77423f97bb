/*
 * sparse.c - the public entry points of the forward pass from sparse (CSR) inputs: they check the
 * rows once, then the kernels (kernels.inc) take the spike lists as they are instead of scanning
 * dense rows. Also the growable spike-list buffers the tasks and evaluations build them in.
 */
#include "model_internal.h"

#include <stdlib.h>
#include <string.h>

static elm_status check(const elm_model *m, const elm_sparse_input *x, int B, int T,
                        const char *fn) {
    if (!m || !x || !x->ptr || B < 1 || T < 1)
        return elm__fail(ELM_ERR_ARG, "%s: need a model, sparse input and B, T >= 1", fn);
    size_t rows = (size_t)B * (size_t)T;
    if (x->ptr[0] != 0)
        return elm__fail(ELM_ERR_ARG, "%s: ptr[0] is %lld, must be 0", fn, (long long)x->ptr[0]);
    if (x->ptr[rows] > 0 && !x->idx)
        return elm__fail(ELM_ERR_ARG, "%s: %lld entries but idx is NULL", fn,
                         (long long)x->ptr[rows]);
    for (size_t r = 0; r < rows; r++) {
        int64_t a = x->ptr[r], e = x->ptr[r + 1];
        if (e < a)
            return elm__fail(ELM_ERR_ARG, "%s: row %zu (b %zu, t %zu) ends before it starts", fn, r,
                             r / (size_t)T, r % (size_t)T);
        for (int64_t k = a; k < e; k++) {
            int32_t i = x->idx[k];
            if (i < 0 || i >= m->I || (k > a && i <= x->idx[k - 1]))
                return elm__fail(ELM_ERR_ARG,
                                 "%s: row %zu (b %zu, t %zu): input id %d out of range [0, %d) "
                                 "or not ascending",
                                 fn, r, r / (size_t)T, r % (size_t)T, (int)i, m->I);
        }
    }
    return ELM_OK;
}

elm_status elm_model_forward_sparse(elm_model *m, const elm_sparse_input *x, void *y, int B,
                                    int T) {
    elm_status st = check(m, x, B, T, "elm_model_forward_sparse");
    if (!st && m->batch_split.allgather && B > 0)
        return elm__split_forward(m, NULL, x, y, B, T);
    return st ? st : m->ops->forward_sparse(m, x, y, B, T, 0);
}

elm_status elm_model_forward_train_sparse(elm_model *m, const elm_sparse_input *x, void *y, int B,
                                          int T) {
    elm_status st = check(m, x, B, T, "elm_model_forward_train_sparse");
    return st ? st : m->ops->forward_sparse(m, x, y, B, T, 1);
}

/* The ELM type's sparse pass: the kernels of the model's dtype. */
elm_status elm__elm_forward_sparse(elm_model *m, const elm_sparse_input *x, void *y, int B, int T,
                                   int train) {
    if (m->dtype == ELM_F64)
        return elm__forward_sparse_f64(m, x, y, B, T, train);
    if (m->fma)
        return elm__forward_sparse_f32fma(m, x, y, B, T, train);
    return elm__forward_sparse_f32(m, x, y, B, T, train);
}

void elm__spike_lists_free(elm__spike_lists *L) {
    free(L->ptr);
    free(L->idx);
    free(L->val);
    memset(L, 0, sizeof *L);
}

elm_status elm__spike_lists_rows(elm__spike_lists *L, size_t rows) {
    if (L->rows < rows) {
        int64_t *p = realloc(L->ptr, sizeof *p * (rows + 1));
        if (!p)
            return elm__fail(ELM_ERR_NOMEM, "out of memory for a batch's spike lists");
        L->ptr = p;
        L->rows = rows;
    }
    L->ptr[0] = 0;
    return ELM_OK;
}

elm_status elm__spike_lists_reserve(elm__spike_lists *L, size_t need) {
    if (need <= L->cap)
        return ELM_OK;
    size_t cap = need + need / 2 + 4096;
    int32_t *ni = realloc(L->idx, sizeof *ni * cap);
    if (ni)
        L->idx = ni;
    float *nv = ni ? realloc(L->val, sizeof *nv * cap) : NULL;
    if (!nv)
        return elm__fail(ELM_ERR_NOMEM, "out of memory for a batch's spike lists");
    L->val = nv;
    L->cap = cap;
    return ELM_OK;
}

elm_sparse_input elm__spike_lists_input(const elm__spike_lists *L) {
    elm_sparse_input x = {L->ptr, L->idx, L->val};
    return x;
}
