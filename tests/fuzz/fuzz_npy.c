/*
 * fuzz_npy.c - libFuzzer driver for the .npy reader (elm__npy_load). The input is the file.
 *
 * On success the array must be self-consistent (numel = product of the shape, every element
 * readable) and must survive elm__npy_save + elm__npy_load unchanged, bitwise.
 */
// fuzz-areas:
#include "fuzz_util.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static volatile double sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
    char in[600], out[600];
    fuzz_path(in, sizeof in, "in.npy");
    fuzz_path(out, sizeof out, "out.npy");
    fuzz_write(in, data, len);
    elm__array a;
    elm_status st = elm__npy_load(in, &a);
    if (st != ELM_OK) {
        fuzz_note("npy", st, elm_last_error());
        FUZZ_ASSERT(a.data == NULL, "failed load left data");
        FUZZ_ASSERT(strstr(elm_last_error(), "in.npy") != NULL,
                    "error message does not name the file: %s", elm_last_error());
        return 0;
    }
    fuzz_note("npy", 0, "ok");
    size_t numel = 1;
    for (int d = 0; d < a.ndim; d++) {
        FUZZ_ASSERT(a.shape[d] >= 0, "negative dimension");
        numel *= (size_t)a.shape[d];
    }
    FUZZ_ASSERT(numel == a.numel, "numel %zu != shape product %zu", a.numel, numel);
    double s = 0;
    for (size_t i = 0; i < a.numel; i++)
        s += elm__array_get(&a, i);
    sink = s;
    FUZZ_ASSERT(elm__npy_save(out, a.dtype, a.ndim, a.shape, a.data) == ELM_OK, "save: %s",
                elm_last_error());
    elm__array b;
    FUZZ_ASSERT(elm__npy_load(out, &b) == ELM_OK, "reload: %s", elm_last_error());
    FUZZ_ASSERT(b.dtype == a.dtype && b.ndim == a.ndim && b.numel == a.numel &&
                    !memcmp(b.shape, a.shape, sizeof a.shape[0] * (size_t)a.ndim) &&
                    !memcmp(b.data, a.data, a.numel * elm__dtype_size(a.dtype)),
                "save + load changed the array");
    elm__array_free(&a);
    elm__array_free(&b);
    return 0;
}
