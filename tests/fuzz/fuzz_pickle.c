/*
 * fuzz_pickle.c - libFuzzer driver for the safe pickle reader (elm_pk_parse on a buffer).
 *
 * On success the whole value tree is walked (iteratively, with a visit budget, since memo
 * references can make a small pickle a large DAG): every string's bytes and every array element
 * are read, so ASan sees any pointer the parser let escape the buffer.
 */
// fuzz-areas: core
#include "fuzz_util.h"
#include "core/pickle.h"

#include <stdlib.h>
#include <string.h>

static volatile double sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
    uint8_t *buf = malloc(len ? len : 1); /* exact size: ASan guards the end */
    if (!buf)
        return 0;
    if (len)
        memcpy(buf, data, len);
    elm_pk *pk = NULL;
    elm_status st = elm_pk_parse(&pk, buf, len, "fuzz.p");
    if (st != ELM_OK) {
        fuzz_note("pickle", st, elm_last_error());
        FUZZ_ASSERT(pk == NULL, "failed parse returned an object");
        FUZZ_ASSERT(strstr(elm_last_error(), "fuzz.p") != NULL,
                    "error message does not name the file: %s", elm_last_error());
        free(buf);
        return 0;
    }
    fuzz_note("pickle", 0, "ok");
    enum { BUDGET = 200000 };
    /* Allocated once: a fresh 1.6 MB block per input cost more than the parse under ASan. */
    static const elm_pk_val *stack[BUDGET];
    size_t top = 0, visits = 0;
    double s = 0;
    stack[top++] = elm_pk_root(pk);
    while (top && visits++ < BUDGET) {
        const elm_pk_val *v = stack[--top];
        FUZZ_ASSERT(v->type >= ELM_PK_NONE && v->type < ELM_PK_MARK, "bad type %d in the tree",
                    v->type);
        FUZZ_ASSERT(elm_pk_type_name(v->type) != NULL, "no type name");
        switch (v->type) {
        case ELM_PK_INT:
        case ELM_PK_BOOL:
            s += (double)v->u.i;
            break;
        case ELM_PK_FLOAT:
            s += v->u.f;
            break;
        case ELM_PK_STR:
        case ELM_PK_BYTES:
            for (size_t i = 0; i < v->u.o->len; i++)
                s += v->u.o->bytes[i];
            break;
        case ELM_PK_LIST:
        case ELM_PK_TUPLE: {
            size_t n;
            const elm_pk_val *it = elm_pk_seq_items(v, &n);
            for (size_t i = 0; i < n && top < BUDGET; i++)
                stack[top++] = &it[i];
            break;
        }
        case ELM_PK_DICT: {
            const elm_pk_obj *d = v->u.o;
            for (size_t i = 0; i < 2 * d->len && top < BUDGET; i++)
                stack[top++] = &d->items[i];
            (void)elm_pk_dict_get(v, "Params");
            break;
        }
        case ELM_PK_ARRAY: {
            const elm_pk_array *a = v->u.o->arr;
            FUZZ_ASSERT(a != NULL, "array without its description");
            if (a->built) {
                size_t numel = 1;
                for (int d = 0; d < a->ndim; d++)
                    numel *= (size_t)a->shape[d];
                FUZZ_ASSERT(a->ndim >= 0 && a->ndim <= ELM_PK_MAXDIM && numel == a->numel,
                            "array numel %zu != shape product %zu", a->numel, numel);
                for (size_t i = 0; i < a->numel; i++)
                    s += elm_pk_array_get(a, i);
            }
            break;
        }
        default:
            break;
        }
    }
    sink = s;
    elm_pk_free(pk);
    free(buf);
    return 0;
}
