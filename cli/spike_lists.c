/*
 * spike_lists.c - training and evaluation batches as spike lists (task.h), shared by the spiking
 * tasks: the arrays grow to the largest batch seen and are then reused.
 */
#include "task.h"

#include <stdlib.h>
#include <string.h>

void spike_lists_free(spike_lists *L) {
    free(L->ptr);
    free(L->idx);
    free(L->val);
    memset(L, 0, sizeof *L);
}

elm_status spike_lists_rows(spike_lists *L, size_t rows) {
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

elm_status spike_lists_reserve(spike_lists *L, size_t need) {
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

elm_sparse_input spike_lists_input(const spike_lists *L) {
    elm_sparse_input x = {L->ptr, L->idx, L->val};
    return x;
}
