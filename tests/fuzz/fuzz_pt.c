/*
 * fuzz_pt.c - libFuzzer driver for the torch.save reader (elm__pt_parse: libzip over the
 * archive, the safe pickle reader's torch dialect over data.pkl). The input is the file's bytes.
 *
 * Beyond "no crash", it checks what the reader promises: on success every tensor's bytes lie in
 * the block it returns and are exactly numel x dtype bytes (every byte is read, so ASan sees any
 * overrun), names are findable; on failure there is a message naming the file. Inputs that are
 * not zip archives go to the pickle reader's torch dialect alone (data.pkl seeds), whose tensors
 * must be views inside their storages.
 */
// fuzz-areas:
#include "fuzz_util.h"
#include "pickle.h"
#include "pt.h"

#include <stdlib.h>
#include <string.h>

static volatile unsigned sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
    char *buf = malloc(len ? len : 1); /* exact size: ASan guards the end */
    if (!buf)
        return 0;
    if (len)
        memcpy(buf, data, len);
    if (!elm__pt_is_zip(buf, len)) {
        elm_pk *pk = NULL;
        if (elm_pk_parse_ex(&pk, (const uint8_t *)buf, len, "fuzz.pkl", ELM_PK_TORCH) == ELM_OK) {
            const elm_pk_val *r = elm_pk_root(pk);
            for (size_t i = 0; r->type == ELM_PK_DICT && i < r->u.o->len; i++) {
                const elm_pk_val *v = &r->u.o->items[2 * i + 1];
                if (v->type != ELM_PK_TENSOR)
                    continue;
                const elm_pk_tensor *t = v->u.o->tensor;
                uint64_t numel = 1, last = (uint64_t)t->offset;
                for (int d = 0; d < t->ndim; d++) {
                    numel *= (uint64_t)t->shape[d];
                    last += t->shape[d] ? (uint64_t)(t->shape[d] - 1) * (uint64_t)t->stride[d] : 0;
                }
                FUZZ_ASSERT(numel == 0 || (last < (uint64_t)t->storage_numel &&
                                           numel <= (uint64_t)t->storage_numel),
                            "tensor view outside its storage");
                for (size_t k = 0; k < t->key_len; k++)
                    sink += t->key[k];
            }
            elm_pk_free(pk);
        } else {
            FUZZ_ASSERT(strstr(elm_last_error(), "fuzz.pkl") != NULL,
                        "error message does not name the file: %s", elm_last_error());
        }
        free(buf);
        return 0;
    }
    elm__st_file f;
    elm_status st = elm__pt_parse(&f, buf, len, "fuzz.pt");
    if (st != ELM_OK) {
        fuzz_note("pt", st, elm_last_error());
        FUZZ_ASSERT(strstr(elm_last_error(), "fuzz.pt") != NULL,
                    "error message does not name the file: %s", elm_last_error());
        return 0;
    }
    fuzz_note("pt", 0, "ok");
    unsigned sum = 0;
    for (int i = 0; i < f.n; i++) {
        const elm__st_tensor *t = &f.t[i];
        size_t bytes = t->numel * elm__dtype_size(t->dtype);
        const char *p = t->data;
        FUZZ_ASSERT(p >= f.buf && p + bytes <= f.buf + f.len, "tensor '%s' outside the block",
                    t->name);
        for (size_t k = 0; k < bytes; k++)
            sum += (unsigned char)p[k];
        FUZZ_ASSERT(elm__st_find(&f, t->name) != NULL, "tensor '%s' not findable", t->name);
    }
    sink = sum;
    elm__st_free(&f);
    return 0;
}
