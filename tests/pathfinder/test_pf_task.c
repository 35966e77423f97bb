/*
 * test_pf_task.c - the pathfinder training task (src/pathfinder/task.c) on a small generated
 * set: sizes, epoch shuffling (every training image once per epoch), targets, loss gradient,
 * evaluation counts and argument errors. The task is linked from the training library.
 */
#include "pathfinder/pf_task.h"

#include "pathfinder/pf_gen.h"
#include "test.h"
#include "tmpfiles.h"

int main(void) {
    tmpdir_make("elm_pf_task");
    atexit(tmpdir_remove);
    /* 50 images: splits 40 / 5 / 5. */
    elm_pf_gen_params gp;
    elm_pf_gen *g = NULL;
    CHECK_OK(elm_pf_gen_preset(&gp, 32, 6));
    CHECK_OK(elm_pf_gen_create(&g, &gp));
    if (!g)
        return test_end();
    CHECK_OK(elm_pf_gen_write(g, tmpdir, 50, 3, 1000, 2, 0));
    elm_pf_gen_free(g);

    elm_task_opts o;
    memset(&o, 0, sizeof o);
    o.data = tmpdir;
    o.seed = 1;
    o.threads = 2;
    o.eval_batch = 4;
    o.for_training = 1;
    elm_task *t = NULL;
    CHECK_OK(elm__task_pathfinder_create(&t, &o));
    if (!t)
        return test_end();
    CHECK(t->num_input == 1 && t->num_output == 2 && t->seq_len == 1024 && t->target_len == 1,
          "I %d O %d T %d", t->num_input, t->num_output, t->seq_len);
    CHECK(t->batches_per_epoch == 3, "batches per epoch %ld, want ceil(40 / 16)",
          t->batches_per_epoch);
    CHECK(!strcmp(t->select_metric, "accuracy") && t->select_larger_is_better, "select metric");
    pf_ctx *c = t->ctx;
    CHECK(c->ntrain == 40, "ntrain %ld", c->ntrain);

    /* Two epochs of batches of 8 (5 batches each), positions set as the trainer sets them: each
     * training image exactly once per epoch, in a different order; targets are the labels;
     * inputs the normalised pixels. The order depends only on (epoch seed, batch), so serving a
     * batch again (as a resumed run does) gives the same images. */
    int B = 8;
    float *x = malloc((size_t)B * 1024 * sizeof(float)), tg[8];
    float *want = malloc(1024 * sizeof(float));
    long order[2][40];
    int count[2][40];
    memset(count, 0, sizeof count);
    int bad_x = 0, bad_t = 0;
    for (int step = 0; step < 10; step++) {
        elm__rng rng;
        elm__rng_seed(&rng, 100 + (uint64_t)step);
        t->epoch = step / 5;
        t->batch_in_epoch = step % 5;
        t->epoch_seed = 777 + (uint64_t)t->epoch;
        CHECK_OK(t->train_batch(t, &rng, B, x, tg));
        for (int b = 0; b < B; b++) {
            long k = c->idx[b];
            int e = step / 5;
            order[e][(step % 5) * B + b] = k;
            if (k >= 0 && k < 40)
                count[e][k]++;
            int label = -1;
            CHECK_OK(elm_pf_load(c->data, ELM_PF_TRAIN, k, want, &label));
            bad_x += memcmp(want, x + (size_t)b * 1024, 1024 * sizeof(float)) != 0;
            bad_t += tg[b] != (float)label;
        }
    }
    /* Resume: batch 2 of epoch 1 again, after a fresh task would have seen nothing. */
    {
        long again[8];
        elm__rng rng;
        elm__rng_seed(&rng, 5);
        t->epoch = 0; /* another epoch in between, to force a reshuffle */
        t->batch_in_epoch = 0;
        t->epoch_seed = 777;
        CHECK_OK(t->train_batch(t, &rng, B, x, tg));
        t->epoch = 1;
        t->batch_in_epoch = 2;
        t->epoch_seed = 778;
        CHECK_OK(t->train_batch(t, &rng, B, x, tg));
        memcpy(again, c->idx, sizeof again);
        CHECK(!memcmp(again, &order[1][16], sizeof again), "batch 2 of epoch 1 not reproduced");
    }
    int once = 0;
    for (int e = 0; e < 2; e++)
        for (int k = 0; k < 40; k++)
            once += count[e][k] == 1;
    CHECK(once == 80, "%d of 2 x 40 training images served exactly once per epoch", once);
    CHECK(memcmp(order[0], order[1], sizeof order[0]) != 0, "the second epoch repeats the first");
    CHECK(bad_x == 0 && bad_t == 0, "%d inputs and %d targets differ from the split's images",
          bad_x, bad_t);

    /* Loss: cross-entropy at the last step only; gradient zero elsewhere. */
    float *y = calloc((size_t)2 * 1024 * 2, sizeof(float)), *dy = malloc(2 * 1024 * 2 * 4);
    float t2[2] = {0, 1};
    y[(1023) * 2 + 0] = 2.0f;        /* sample 0: logits (2, 0), label 0 */
    y[(1024 + 1023) * 2 + 1] = 1.0f; /* sample 1: logits (0, 1), label 1 */
    double loss = t->loss(t, y, t2, dy, 2);
    double want_loss = 0.5 * (log(1 + exp(-2.0)) + log(1 + exp(-1.0)));
    CHECK(fabs(loss - want_loss) < 1e-12, "loss %.15g want %.15g", loss, want_loss);
    int nonzero_early = 0;
    for (int i = 0; i < 2 * 1024 * 2; i++)
        nonzero_early += dy[i] != 0 && (i / 2) % 1024 != 1023;
    CHECK(nonzero_early == 0, "%d gradient entries before the last step", nonzero_early);
    free(y);
    free(dy);

    /* Evaluation of a small fresh model: counts and ranges. */
    elm_config cfg;
    elm_config_default(&cfg, 1, 2, 4);
    cfg.mlp_hidden_size = 6;
    elm_model *m = NULL;
    CHECK_OK(elm_config_resolve(&cfg));
    CHECK_OK(elm_model_create(&m, &cfg, ELM_F32, 5));
    if (m) {
        const char *splits[2] = {"valid", "test"};
        for (int s = 0; s < 2; s++) {
            cJSON *mt = cJSON_CreateObject();
            CHECK_OK(t->evaluate(t, m, splits[s], mt));
            cJSON *n = cJSON_GetObjectItem(mt, "num_samples");
            cJSON *acc = cJSON_GetObjectItem(mt, "accuracy");
            cJSON *ls = cJSON_GetObjectItem(mt, "loss");
            CHECK(n && n->valuedouble == 5, "%s: num_samples", splits[s]);
            CHECK(acc && acc->valuedouble >= 0 && acc->valuedouble <= 1, "%s: accuracy", splits[s]);
            CHECK(ls && isfinite(ls->valuedouble) && ls->valuedouble > 0, "%s: loss", splits[s]);
            cJSON_Delete(mt);
        }
        /* "train" and "all" (elm eval --split): 40 and 50 images of the 50-image folder. */
        const char *more[2] = {"train", "all"};
        for (int s = 0; s < 2; s++) {
            cJSON *mt = cJSON_CreateObject();
            CHECK_OK(t->evaluate(t, m, more[s], mt));
            cJSON *n = cJSON_GetObjectItem(mt, "num_samples");
            CHECK(n && n->valuedouble == (s ? 50 : 40), "%s: num_samples", more[s]);
            cJSON_Delete(mt);
        }
        cJSON *mt = cJSON_CreateObject();
        CHECK(t->evaluate(t, m, "bogus", mt) == ELM_ERR_ARG, "split 'bogus' accepted");
        CHECK(strstr(elm_last_error(), "all, train, valid or test") != NULL, "message: %s",
              elm_last_error());
        cJSON_Delete(mt);
    }
    elm_model_free(m);
    t->free(t);

    /* A wrong seq_len and a missing folder are refused with messages. */
    o.seq_len = 500;
    t = NULL;
    CHECK(elm__task_pathfinder_create(&t, &o) == ELM_ERR_CONFIG && !t, "seq_len 500 accepted");
    CHECK(strstr(elm_last_error(), "1024") != NULL, "message: %s", elm_last_error());
    o.seq_len = 0;
    o.data = "/nonexistent/pathfinder";
    CHECK(elm__task_pathfinder_create(&t, &o) != ELM_OK && !t, "missing folder accepted");
    free(x);
    free(want);
    return test_end();
}
