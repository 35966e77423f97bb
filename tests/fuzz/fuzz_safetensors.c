/*
 * fuzz_safetensors.c - libFuzzer driver for the safetensors parser (elm__st_parse, the buffer
 * half of elm__st_read). The input is the file's bytes.
 *
 * Beyond "no crash", it checks what the parser promises: on success every tensor's byte range
 * lies inside the buffer and is exactly numel x dtype bytes (every byte is read, so ASan sees any
 * overrun), names are findable, and float tensors convert; on failure there is a message.
 */
// fuzz-areas:
#include "fuzz_util.h"
#include "model_internal.h"

#include <stdlib.h>
#include <string.h>

static volatile unsigned sink; /* keeps the byte reads from being optimised away */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
    /* An exact-size heap copy: ASan flags any read past the end of the "file". */
    char *buf = malloc(len ? len : 1);
    if (!buf)
        return 0;
    if (len)
        memcpy(buf, data, len);
    elm__st_file f;
    elm_status st = elm__st_parse(&f, buf, len, "fuzz.safetensors");
    if (st != ELM_OK) {
        fuzz_note("st", st, elm_last_error());
        FUZZ_ASSERT(strstr(elm_last_error(), "fuzz.safetensors") != NULL,
                    "error message does not name the file: %s", elm_last_error());
        return 0;
    }
    fuzz_note("st", 0, "ok");
    unsigned sum = 0;
    for (int i = 0; i < f.n; i++) {
        const elm__st_tensor *t = &f.t[i];
        size_t bytes = t->numel * elm__dtype_size(t->dtype);
        const char *p = t->data;
        FUZZ_ASSERT(p >= f.buf + 8 && p + bytes <= f.buf + f.len, "tensor '%s' outside the file",
                    t->name);
        for (size_t k = 0; k < bytes; k++)
            sum += (unsigned char)p[k];
        FUZZ_ASSERT(elm__st_find(&f, t->name) != NULL, "tensor '%s' not findable", t->name);
        if (t->dtype == ELM_DT_F16 || t->dtype == ELM_DT_F32 || t->dtype == ELM_DT_F64) {
            double *d = malloc(sizeof(double) * (t->numel ? t->numel : 1));
            if (d) {
                FUZZ_ASSERT(elm__st_copy_real(&f, t, d, ELM_F64) == ELM_OK, "copy failed");
                free(d);
            }
        } else {
            FUZZ_ASSERT(elm__st_copy_real(&f, t, &sum, ELM_F32) != ELM_OK,
                        "an integer tensor was copied as reals");
        }
    }
    sink = sum;
    elm__st_free(&f);
    return 0;
}
