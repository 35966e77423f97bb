/*
 * fuzz_config.c - libFuzzer driver for the JSON model configuration (elm_config_from_json and
 * elm_config_resolve). The input is the JSON text.
 *
 * A configuration that resolves must round-trip through elm_config_to_json unchanged, and a small
 * one must give a model that runs a forward pass (this reaches the routing and layer-table code
 * with unusual but valid sizes: no hidden layer, branches, both routings, v2).
 */
// fuzz-areas:
#include "fuzz_util.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    setenv("OMP_NUM_THREADS", "1", 1);
    return 0;
}

static int same_config(const elm_config *a, const elm_config *b) {
    return a->version == b->version && a->num_input == b->num_input &&
           a->num_output == b->num_output && a->num_memory == b->num_memory &&
           a->lambda_value == b->lambda_value && a->mlp_num_layers == b->mlp_num_layers &&
           a->mlp_hidden_size == b->mlp_hidden_size && a->mlp_activation == b->mlp_activation &&
           a->tau_s_value == b->tau_s_value && a->memory_tau_min == b->memory_tau_min &&
           a->memory_tau_max == b->memory_tau_max && a->learn_memory_tau == b->learn_memory_tau &&
           a->w_s_value == b->w_s_value && a->num_branch == b->num_branch &&
           a->num_synapse_per_branch == b->num_synapse_per_branch &&
           a->input_to_synapse_routing == b->input_to_synapse_routing && a->delta_t == b->delta_t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
    char *js = malloc(len + 1);
    if (!js)
        return 0;
    memcpy(js, data, len);
    js[len] = 0;
    elm_config c;
    elm_config_default(&c, 0, 0, 0);
    elm_status st = elm_config_from_json(&c, js, "fuzz.json");
    free(js);
    if (st != ELM_OK) {
        fuzz_note("config", st, elm_last_error());
        FUZZ_ASSERT(strstr(elm_last_error(), "fuzz.json") != NULL,
                    "error message does not name the file: %s", elm_last_error());
        return 0;
    }
    if ((st = elm_config_resolve(&c)) != ELM_OK) {
        fuzz_note("resolve", st, elm_last_error());
        return 0;
    }
    fuzz_note("config", 0, "ok");
    /* Round trip through JSON. */
    char *out = elm_config_to_json(&c);
    FUZZ_ASSERT(out != NULL, "to_json failed");
    elm_config r;
    elm_config_default(&r, 0, 0, 0);
    r.version = c.version; /* the JSON names tau_b_value for v2 but not the version itself */
    FUZZ_ASSERT(elm_config_from_json(&r, out, "roundtrip") == ELM_OK, "reparse: %s\n%s",
                elm_last_error(), out);
    FUZZ_ASSERT(elm_config_resolve(&r) == ELM_OK, "re-resolve: %s\n%s", elm_last_error(), out);
    FUZZ_ASSERT(same_config(&c, &r), "config changed through JSON:\n%s", out);
    free(out);
    /* Small models: build with the reference init and run two steps. */
    long long S = (long long)c.num_branch * c.num_synapse_per_branch;
    long long K = c.num_branch + c.num_memory, H = c.mlp_hidden_size;
    long long params = S + K * H + (long long)c.mlp_num_layers * H * H + H * c.num_memory +
                       (long long)c.num_output * c.num_memory;
    if (params <= 20000 && c.num_input <= 512 && c.num_output <= 64) {
        elm_model *m = NULL;
        FUZZ_ASSERT(elm_model_create(&m, &c, ELM_F32, 1) == ELM_OK, "create: %s", elm_last_error());
        enum { T = 2 };
        float *x = calloc((size_t)c.num_input * T, sizeof(float));
        float *y = calloc((size_t)c.num_output * T, sizeof(float));
        FUZZ_ASSERT(x && y, "oom");
        for (int i = 0; i < c.num_input * T; i++)
            x[i] = 1;
        FUZZ_ASSERT(elm_model_forward(m, x, y, 1, T) == ELM_OK, "forward: %s", elm_last_error());
        free(x);
        free(y);
        elm_model_free(m);
    }
    return 0;
}
