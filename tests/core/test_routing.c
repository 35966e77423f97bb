/*
 * test_routing.c - elm_model_num_routes / elm_model_get_routing / elm_model_set_routing (used by
 * the Python binding's load_state_dict): a model given another model's parameters and routing
 * computes its outputs bit for bit; a bad index is refused before anything changes; an unrouted
 * model has no routing to read or write.
 */
#include "elm.h"
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static elm_model *routed(uint64_t seed, const char *routing) {
    elm_config c;
    elm_config_default(&c, 20, 3, 7);
    CHECK_OK(elm_config_set(&c, "num_branch", "4", "test"));
    CHECK_OK(elm_config_set(&c, "num_synapse_per_branch", "6", "test"));
    CHECK_OK(elm_config_set(&c, "input_to_synapse_routing", routing, "test"));
    CHECK_OK(elm_config_resolve(&c));
    elm_model *m = NULL;
    CHECK_OK(elm_model_create(&m, &c, ELM_F64, seed));
    return m;
}

static void forward(elm_model *m, double *y) {
    enum { B = 2, T = 30, I = 20 };
    static double x[B * T * I];
    for (int i = 0; i < B * T * I; i++)
        x[i] = (double)((i * 7919) % 13) / 13.0;
    CHECK_OK(elm_model_forward_f64(m, x, y, B, T));
}

int main(void) {
    enum { NY = 2 * 30 * 3 };
    double ya[NY], yb[NY];
    elm_model *a = routed(1, "random_routing"), *b = routed(2, "random_routing");
    const int S = elm_model_num_routes(a);
    CHECK(S == 24, "num_routes %d, want 24", S);
    size_t na = 0, nb = 0;
    double *pa = elm_model_params(a, &na), *pb = elm_model_params(b, &nb);
    CHECK(na == nb, "blocks differ in length");
    memcpy(pb, pa, sizeof(double) * na);
    elm_model_refresh(b);
    forward(a, ya);
    forward(b, yb);
    CHECK(memcmp(ya, yb, sizeof ya) != 0, "different routings gave the same outputs");

    int64_t idx[24], idx_b[24];
    double mask[24], mask_b[24];
    CHECK_OK(elm_model_get_routing(a, idx, mask));
    CHECK_OK(elm_model_get_routing(b, idx_b, mask_b));
    /* A bad index changes nothing. */
    int64_t bad[24];
    memcpy(bad, idx, sizeof bad);
    bad[23] = 20;
    CHECK(elm_model_set_routing(b, bad, mask) == ELM_ERR_ARG, "index 20 of 20 inputs accepted");
    CHECK(strstr(elm_last_error(), "input_to_synapse_indices[23] = 20") != NULL, "message: %s",
          elm_last_error());
    int64_t now[24];
    double now_mask[24];
    CHECK_OK(elm_model_get_routing(b, now, now_mask));
    CHECK(!memcmp(now, idx_b, sizeof now), "a refused routing changed the model");

    CHECK_OK(elm_model_set_routing(b, idx, mask));
    forward(b, yb);
    CHECK(!memcmp(ya, yb, sizeof ya), "same parameters and routing, different outputs");
    CHECK_OK(elm_model_get_routing(b, now, now_mask));
    CHECK(!memcmp(now, idx, sizeof now) && !memcmp(now_mask, mask, sizeof now_mask),
          "routing read back differs");

    /* A masked synapse: neuronio_routing masks none here, so mask one and see the output move. */
    mask[0] = 0;
    CHECK_OK(elm_model_set_routing(b, idx, mask));
    forward(b, yb);
    CHECK(memcmp(ya, yb, sizeof ya) != 0, "masking a synapse changed nothing");
    elm_model_free(a);
    elm_model_free(b);

    elm_config c;
    elm_config_default(&c, 20, 3, 7);
    CHECK_OK(elm_config_resolve(&c));
    elm_model *u = NULL;
    CHECK_OK(elm_model_create(&u, &c, ELM_F32, 1));
    CHECK(elm_model_num_routes(u) == 0, "unrouted model has routes");
    CHECK(elm_model_get_routing(u, idx, mask) == ELM_ERR_ARG, "unrouted get accepted");
    CHECK(elm_model_set_routing(u, idx, mask) == ELM_ERR_ARG, "unrouted set accepted");
    elm_model_free(u);
    return test_end();
}
