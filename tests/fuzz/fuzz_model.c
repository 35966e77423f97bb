/*
 * fuzz_model.c - libFuzzer driver for loading a whole model: elm_model_load on a safetensors file,
 * with or without a model_config.json beside it.
 *
 * Input: the safetensors bytes, optionally followed by the separator "\n#CONFIG#\n" and the text
 * of model_config.json. With a config the pair is loaded as a folder (model.safetensors +
 * model_config.json); without one the file is loaded alone (its __metadata__ must configure it).
 *
 * A model that loads must be usable: a short forward pass runs (small models only, to keep the
 * executions fast), and a save + reload must succeed and give back the same parameters bitwise,
 * since anything elm accepts it must also be able to write.
 */
// fuzz-areas:
#include "fuzz_util.h"
#include "model_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char SEP[] = "\n#CONFIG#\n";

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    setenv("OMP_NUM_THREADS", "1", 1); /* one thread: deterministic and cheap per execution */
    return 0;
}

static void check_model(elm_model *m, const char *dir) {
    /* A short forward pass on small models. */
    const elm_config *c = elm_model_config(m);
    if (elm_model_num_params(m) <= 20000 && c->num_input <= 256 && c->num_output <= 64) {
        enum { T = 3 };
        float *x = calloc((size_t)c->num_input * T, sizeof(float));
        float *y = calloc((size_t)c->num_output * T, sizeof(float));
        FUZZ_ASSERT(x && y, "oom");
        for (int i = 0; i < c->num_input * T; i++)
            x[i] = (float)(i % 3);
        if (elm_model_dtype(m) == ELM_F32)
            FUZZ_ASSERT(elm_model_forward(m, x, y, 1, T) == ELM_OK, "forward: %s",
                        elm_last_error());
        free(x);
        free(y);
    }
    /* Save and reload: same tensors, bitwise. */
    char path[600];
    snprintf(path, sizeof path, "%s/roundtrip.safetensors", dir);
    FUZZ_ASSERT(elm_model_save(m, path) == ELM_OK, "save: %s", elm_last_error());
    elm_model *r = NULL;
    FUZZ_ASSERT(elm_model_load(&r, path, elm_model_dtype(m)) == ELM_OK, "reload: %s",
                elm_last_error());
    FUZZ_ASSERT(elm_model_num_tensors(r) == elm_model_num_tensors(m), "tensor count differs");
    size_t rs = elm_model_dtype(m) == ELM_F64 ? sizeof(double) : sizeof(float);
    for (int i = 0; i < elm_model_num_tensors(m); i++) {
        elm_tensor a, b;
        elm_model_tensor(m, i, &a);
        elm_model_tensor(r, i, &b);
        FUZZ_ASSERT(!strcmp(a.name, b.name) && a.numel == b.numel &&
                        !memcmp(a.data, b.data, a.numel * rs),
                    "tensor '%s' differs after save + load", a.name);
    }
    elm_model_free(r);
    remove(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
    size_t cut = fuzz_split(data, len, SEP, sizeof SEP - 1);
    char stp[600], cfp[600], dirp[600];
    snprintf(dirp, sizeof dirp, "%s/model", fuzz_dir());
    snprintf(stp, sizeof stp, "%s/model.safetensors", dirp);
    snprintf(cfp, sizeof cfp, "%s/model_config.json", dirp);
    if (elm__mkdir_p(dirp) != ELM_OK)
        abort();
    fuzz_write(stp, data, cut);
    int with_cfg = cut < len;
    if (with_cfg)
        fuzz_write(cfp, data + cut + sizeof SEP - 1, len - cut - (sizeof SEP - 1));
    else
        remove(cfp);
    /* Both dtypes load from the same file; the first byte picks one so both get covered. */
    elm_dtype dt = len && (data[len - 1] & 1) ? ELM_F64 : ELM_F32;
    elm_model *m = NULL;
    elm_status st = elm_model_load(&m, with_cfg ? dirp : stp, dt);
    if (st != ELM_OK) {
        fuzz_note("model", st, elm_last_error());
        FUZZ_ASSERT(m == NULL, "failed load left a model");
        FUZZ_ASSERT(strstr(elm_last_error(), "model") != NULL,
                    "error message does not name the file: %s", elm_last_error());
        return 0;
    }
    fuzz_note("model", 0, "ok");
    check_model(m, fuzz_dir());
    elm_model_free(m);
    return 0;
}
