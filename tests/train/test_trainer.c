/*
 * test_trainer.c - the training library (elm_train.h) driven as a front end drives it, on small
 * synthetic NeuronIO data:
 *   - a run interrupted by elm_trainer_checkpoint + free, or by elm_trainer_request_stop, and
 *     resumed with elm_trainer_resume ends with the uninterrupted run's models, bit for bit;
 *   - the run folder holds what elm_train.h promises (config.json, metrics, best model, test
 *     metrics, one checkpoint);
 *   - the grads_ready hook sits between backward and the optimiser step (zeroing the gradients
 *     there leaves Adam's parameters unchanged), and its error stops the step;
 *   - the training knobs are checked when set, with messages naming the knob;
 *   - a float64 run trains and writes float64 checkpoints;
 *   - a resumed run judges divergence against the run's first batch, as the uninterrupted run
 *     does, not against its own first batch (issue 18: the resumed epoch's mean loss counts
 *     batches from before the resume);
 *   - a best model that cannot be read back at the end is an error naming it, not a run that
 *     ends without test metrics.
 */
#include "elm_train.h"
#include "internal.h"
#include "nio_synth.h"
#include "train/train_internal.h"
#include "test.h"

#include <dirent.h>
#include <unistd.h>

static char root[] = "/tmp/elm_test_trainer_XXXXXX";
static char data[4096];

static void rm_rf(const char *dir) {
    DIR *d = opendir(dir);
    for (struct dirent *e = d ? readdir(d) : NULL; e; e = readdir(d)) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) != 0)
            rm_rf(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

/* A small NeuronIO run in root/name: 2 epochs of 3 batches of 2, num_memory 3, one thread. */
static elm_train_spec spec(const char *name) {
    static char out[8][4096];
    static int k;
    elm_train_spec s;
    CHECK_OK(elm_train_spec_default(&s, "neuronio"));
    char *o = out[k++ % 8];
    snprintf(o, 4096, "%s/%s", root, name);
    s.data = data;
    s.out = o;
    const char *kv[][2] = {{"epochs", "2"},           {"batches_per_epoch", "3"},
                           {"batch_size", "2"},       {"threads", "1"},
                           {"seq_len", "40"},         {"checkpoint_every", "2"},
                           {"seed", "7"},             {"lr", "3e-3"},
                           {"num_memory", "3"},       {"num_branch", "4"},
                           {"num_synapse_per_branch", "8"},
                           {"input_to_synapse_routing", "random_routing"},
                           {"eval_samples", "2"}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        CHECK_OK(elm_train_config_set(&s.train, &s.model, kv[i][0], kv[i][1], "test"));
    return s;
}

/* The bytes of root/name/rel, malloc'd (NULL if absent). */
static char *slurp(const char *run, const char *rel, size_t *n) {
    char p[4096], *buf = NULL;
    snprintf(p, sizeof p, "%s/%s/%s", root, run, rel);
    *n = 0;
    if (elm__read_file(p, 1 << 26, &buf, n))
        return NULL;
    return buf;
}

static int same_file(const char *a, const char *b, const char *rel) {
    size_t na, nb;
    char *x = slurp(a, rel, &na), *y = slurp(b, rel, &nb);
    int same = x && y && na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

static int exists(const char *run, const char *rel) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s/%s", root, run, rel);
    return access(p, F_OK) == 0;
}

static int count_files(const char *run, const char *sub) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s/%s", root, run, sub);
    DIR *d = opendir(p);
    int n = 0;
    for (struct dirent *e = d ? readdir(d) : NULL; e; e = readdir(d))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static int epochs_seen;
static void count_epoch(void *user, const elm_train_epoch *e) {
    (void)user;
    epochs_seen++;
    CHECK(e->epoch == epochs_seen && !strcmp(e->select_metric, "soma_RMSE") &&
              isfinite(e->score) && strstr(e->metrics, "\"soma_RMSE\""),
          "epoch hook: epoch %ld, %s %g", e->epoch, e->select_metric, e->score);
}

static void test_uninterrupted(void) {
    elm_train_spec s = spec("ref");
    elm_trainer *tr = NULL;
    CHECK_OK(elm_trainer_create(&tr, &s));
    if (!tr)
        return;
    elm_train_hooks h = {.epoch_end = count_epoch};
    CHECK_OK(elm_trainer_set_hooks(tr, &h));
    CHECK_OK(elm_trainer_run(tr));
    elm_train_info in;
    elm_trainer_get_info(tr, &in);
    CHECK(in.step == 6 && in.total_steps == 6 && !in.stopped && !in.resumed && in.best_epoch >= 1,
          "info: step %ld of %ld, stopped %d, best epoch %ld", in.step, in.total_steps,
          in.stopped, in.best_epoch);
    CHECK(epochs_seen == 2, "epoch hook called %d times", epochs_seen);
    CHECK(elm_trainer_test_metrics(tr) && strstr(elm_trainer_test_metrics(tr), "\"best_epoch\""),
          "test metrics: %s", elm_trainer_test_metrics(tr) ? elm_trainer_test_metrics(tr) : "none");
    elm_trainer_free(tr);
    const char *files[] = {"config.json", "metrics.csv", "metrics.json", "model.safetensors",
                           "model_config.json", "test_metrics.json", "checkpoint/state.json",
                           "checkpoint/step-6.model.safetensors",
                           "checkpoint/step-6.optim.safetensors"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        CHECK(exists("ref", files[i]), "run folder lacks %s", files[i]);
    CHECK(count_files("ref", "checkpoint") == 3, "checkpoint/ holds %d files, want 3",
          count_files("ref", "checkpoint"));
    /* A step past the end is refused. */
    CHECK_OK(elm_trainer_resume(&tr, &s));
    if (tr) {
        elm_trainer_get_info(tr, &in);
        CHECK(in.resumed && in.step == 6, "resumed a finished run at %ld", in.step);
        CHECK(elm_trainer_step(tr, NULL) == ELM_ERR_ARG, "a step past the end was taken");
        elm_trainer_free(tr);
    }
}

/* Interrupted by hand after `at` batches (checkpoint + free), then resumed to the end. */
static void test_resume_by_hand(int at) {
    char name[32];
    snprintf(name, sizeof name, "hand%d", at);
    elm_train_spec s = spec(name);
    elm_trainer *tr = NULL;
    CHECK_OK(elm_trainer_create(&tr, &s));
    if (!tr)
        return;
    for (int i = 0; i < at; i++) {
        double loss = NAN;
        CHECK_OK(elm_trainer_step(tr, &loss));
        CHECK(isfinite(loss) && loss > 0, "loss %g", loss);
        if (i == 2)
            CHECK_OK(elm_trainer_end_epoch(tr));
    }
    CHECK_OK(elm_trainer_checkpoint(tr));
    elm_trainer_free(tr);
    tr = NULL;
    CHECK_OK(elm_trainer_resume(&tr, &s));
    if (!tr)
        return;
    elm_train_info in;
    elm_trainer_get_info(tr, &in);
    CHECK(in.resumed && in.resumed_from == at && in.step == at, "resumed at %ld (resumed %d)",
          in.resumed_from, in.resumed);
    CHECK_OK(elm_trainer_run(tr));
    elm_trainer_free(tr);
    CHECK(same_file("ref", name, "checkpoint/step-6.model.safetensors"),
          "resumed at batch %d: the final model differs from the uninterrupted run's", at);
    CHECK(same_file("ref", name, "checkpoint/step-6.optim.safetensors"),
          "resumed at batch %d: the final optimiser state differs", at);
    CHECK(same_file("ref", name, "model.safetensors"),
          "resumed at batch %d: the best model differs", at);
}

static void stop_at_4(void *user, const elm_train_progress *p) {
    if (p->step == 4)
        elm_trainer_request_stop(user);
}

static void test_request_stop(void) {
    elm_train_spec s = spec("stop");
    elm_trainer *tr = NULL;
    CHECK_OK(elm_trainer_create(&tr, &s));
    if (!tr)
        return;
    elm_train_hooks h = {.user = tr, .progress = stop_at_4};
    CHECK_OK(elm_trainer_set_hooks(tr, &h));
    CHECK_OK(elm_trainer_run(tr));
    elm_train_info in;
    elm_trainer_get_info(tr, &in);
    CHECK(in.stopped == 1 && in.step == 4, "stopped %d at %ld", in.stopped, in.step);
    elm_trainer_free(tr);
    CHECK(exists("stop", "checkpoint/step-4.model.safetensors") &&
              !exists("stop", "checkpoint/step-2.model.safetensors") &&
              !exists("stop", "test_metrics.json"),
          "a stopped run keeps exactly its last checkpoint and has no test metrics");
    CHECK_OK(elm_trainer_resume(&tr, &s));
    if (tr) {
        CHECK_OK(elm_trainer_run(tr));
        elm_trainer_free(tr);
    }
    CHECK(same_file("ref", "stop", "checkpoint/step-6.model.safetensors") &&
              same_file("ref", "stop", "model.safetensors"),
          "stopped and resumed: the models differ from the uninterrupted run's");
}

/* grads_ready: zeroing the gradients makes Adam's step a no-op; an error stops the step. */
static int hook_calls;
static elm_status zero_grads(void *user, elm_model *m) {
    (void)user;
    hook_calls++;
    for (int i = 0; i < elm_model_num_tensors(m); i++) {
        elm_tensor t;
        if (elm_model_tensor(m, i, &t) == ELM_OK && t.grad)
            memset(t.grad, 0, t.numel * sizeof(float));
    }
    return ELM_OK;
}

static elm_status refuse(void *user, elm_model *m) {
    (void)user;
    (void)m;
    return elm__fail(ELM_ERR_IO, "all-reduce failed (test)");
}

static void test_grads_hook(void) {
    elm_train_spec s = spec("hook");
    elm_trainer *tr = NULL;
    CHECK_OK(elm_trainer_create(&tr, &s));
    if (!tr)
        return;
    elm_model *m = elm_trainer_model(tr);
    size_t n = elm_model_num_params(m);
    float *before = malloc(n * sizeof *before), *after = malloc(n * sizeof *after);
    size_t k = 0;
    for (int i = 0; i < elm_model_num_tensors(m); i++) {
        elm_tensor t;
        elm_model_tensor(m, i, &t);
        if (t.trainable)
            memcpy(before + (k += t.numel) - t.numel, t.data, t.numel * sizeof(float));
    }
    elm_train_hooks h = {.grads_ready = zero_grads};
    CHECK_OK(elm_trainer_set_hooks(tr, &h));
    CHECK_OK(elm_trainer_step(tr, NULL));
    CHECK_OK(elm_trainer_step(tr, NULL));
    k = 0;
    for (int i = 0; i < elm_model_num_tensors(m); i++) {
        elm_tensor t;
        elm_model_tensor(m, i, &t);
        if (t.trainable)
            memcpy(after + (k += t.numel) - t.numel, t.data, t.numel * sizeof(float));
    }
    CHECK(hook_calls == 2, "grads_ready called %d times in 2 steps", hook_calls);
    CHECK(k == n && !memcmp(before, after, n * sizeof(float)),
          "zeroed gradients still moved the parameters: the hook is not before the step");
    h.grads_ready = refuse;
    CHECK_OK(elm_trainer_set_hooks(tr, &h));
    elm_train_info in;
    CHECK(elm_trainer_step(tr, NULL) == ELM_ERR_IO &&
              strstr(elm_last_error(), "all-reduce failed"),
          "the hook's error did not stop the step: %s", elm_last_error());
    elm_trainer_get_info(tr, &in);
    CHECK(in.step == 2, "a refused step counted (step %ld)", in.step);
    free(before);
    free(after);
    elm_trainer_free(tr);
}

static void test_knobs(void) {
    elm_train_config tc;
    elm_config mc;
    CHECK_OK(elm_train_config_default(&tc, &mc, "shd"));
    CHECK(tc.optimizer == ELM_OPT_ADAMAX && tc.epochs == 10 && tc.dtype == ELM_F32 &&
              mc.num_memory == 100 && mc.delta_t == 10,
          "shd defaults");
    struct {
        const char *key, *value, *want;
    } bad[] = {
        {"epochs", "0", "'epochs' must be at least 1, got '0'"},
        {"batch_size", "2.5", "'batch_size' expects an integer, got '2.5'"},
        {"lr", "-1", "'lr' must be in [0, 1], got '-1'"},
        {"lr", "1e6", "'lr' must be in [0, 1], got '1e6'"},
        {"weight_decay", "2", "'weight_decay' must be in [0, 1], got '2'"},
        {"input_dropout", "1", "'input_dropout' must be in [0, 1), got '1'"},
        {"optimizer", "adma", "did you mean 'adam'?"},
        {"dtype", "half", "'dtype' must be one of float32, float64"},
        {"num_memroy", "3", "did you mean 'num_memory'?"},
        {"bach_size", "3", "did you mean 'batch_size'?"},
        {"lr", "nan", "'lr' expects a number"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        elm_status st = elm_train_config_set(&tc, &mc, bad[i].key, bad[i].value, "f.json");
        CHECK(st == ELM_ERR_CONFIG && strstr(elm_last_error(), bad[i].want) &&
                  !strncmp(elm_last_error(), "f.json: ", 8),
              "%s=%s: %s (want '%s')", bad[i].key, bad[i].value, elm_last_error(), bad[i].want);
    }
    CHECK(tc.epochs == 10 && tc.optimizer == ELM_OPT_ADAMAX, "a refused value was stored");
    CHECK_OK(elm_train_config_set(&tc, &mc, "optimizer", "adamw", "t"));
    CHECK_OK(elm_train_config_set(&tc, &mc, "dtype", "float64", "t"));
    CHECK_OK(elm_train_config_set(&tc, &mc, "num_memory", "7", "t"));
    CHECK(tc.optimizer == ELM_OPT_ADAMW && tc.dtype == ELM_F64 && mc.num_memory == 7, "set");
    /* Knobs only (what `elm eval --set` takes): a model option is unknown there. */
    CHECK(elm_train_config_set(&tc, NULL, "num_memory", "3", "t") == ELM_ERR_CONFIG, "knob only");
    /* bin_ms: 10 for the SHD tasks, 0 (none) elsewhere; delta_t follows it while it equals the
     * old width, in either order of the two settings, and stays where it was set apart. */
    CHECK_OK(elm_train_config_default(&tc, &mc, "shd-adding"));
    CHECK(tc.bin_ms == 10 && mc.delta_t == 10, "shd-adding bins");
    CHECK_OK(elm_train_config_set(&tc, &mc, "bin_ms", "5", "t"));
    CHECK(tc.bin_ms == 5 && mc.delta_t == 5, "delta_t did not follow: %g", mc.delta_t);
    CHECK_OK(elm_train_config_set(&tc, &mc, "bin_ms", "20", "t"));
    CHECK(tc.bin_ms == 20 && mc.delta_t == 20, "delta_t did not follow again: %g", mc.delta_t);
    CHECK_OK(elm_train_config_set(&tc, &mc, "delta_t", "7", "t"));
    CHECK_OK(elm_train_config_set(&tc, &mc, "bin_ms", "50", "t"));
    CHECK(tc.bin_ms == 50 && mc.delta_t == 7, "delta_t set apart moved: %g", mc.delta_t);
    CHECK_OK(elm_train_config_set(&tc, NULL, "bin_ms", "2", "t")); /* eval: no model options */
    CHECK(tc.bin_ms == 2, "bin_ms without a model config");
    const char *badbin[4] = {"-1", "1001", "ten", "0.5"};
    for (int i = 0; i < 4; i++)
        CHECK(elm_train_config_set(&tc, &mc, "bin_ms", badbin[i], "f.json") == ELM_ERR_CONFIG &&
                  strstr(elm_last_error(), "'bin_ms'"),
              "bin_ms=%s: %s", badbin[i], elm_last_error());
    CHECK(tc.bin_ms == 2 && mc.delta_t == 7, "a refused bin_ms was stored");
    CHECK_OK(elm_train_config_default(&tc, &mc, "pathfinder"));
    CHECK(tc.bin_ms == 0, "pathfinder has bins: %g", tc.bin_ms);
    cJSON *tj = elm__train_config_json(&tc);
    CHECK(tj && cJSON_IsNumber(cJSON_GetObjectItem(tj, "bin_ms")), "config.json lacks bin_ms");
    cJSON_Delete(tj);
    CHECK(elm_train_config_default(&tc, &mc, "nueronio") == ELM_ERR_ARG &&
              strstr(elm_last_error(), "did you mean 'neuronio'?"),
          "unknown task: %s", elm_last_error());
}

static void test_float64(void) {
    elm_train_spec s = spec("f64");
    CHECK_OK(elm_train_config_set(&s.train, &s.model, "dtype", "float64", "test"));
    CHECK_OK(elm_train_config_set(&s.train, &s.model, "epochs", "1", "test"));
    elm_trainer *tr = NULL;
    CHECK_OK(elm_trainer_create(&tr, &s));
    if (!tr)
        return;
    CHECK(elm_model_dtype(elm_trainer_model(tr)) == ELM_F64, "the model is not float64");
    CHECK_OK(elm_trainer_run(tr));
    elm_trainer_free(tr);
    char p[4096];
    snprintf(p, sizeof p, "%s/f64/checkpoint/step-3.model.safetensors", root);
    elm_model *m = NULL;
    CHECK_OK(elm_model_load(&m, p, ELM_F64));
    size_t n;
    char *raw = slurp("f64", "checkpoint/step-3.model.safetensors", &n);
    int f64 = 0;
    for (size_t i = 0; raw && i + 5 <= n && !f64; i++)
        f64 = !memcmp(raw + i, "\"F64\"", 5);
    CHECK(f64, "the float64 checkpoint holds no F64 tensor");
    CHECK(exists("f64", "test_metrics.json"), "float64 run: no test metrics");
    free(raw);
    elm_model_free(m);
}

/* The epoch hook's verdicts: diverged[k] for epoch k + 1. */
static int diverged[2], verdicts;
static void note_epoch(void *user, const elm_train_epoch *e) {
    (void)user;
    if (e->epoch >= 1 && e->epoch <= 2)
        diverged[e->epoch - 1] = e->diverged;
    verdicts++;
}

/*
 * The divergence scale survives a resume. After batch 1 (loss l1) the soma output's bias is
 * raised so that the loss becomes about 30 x l1 (0.5 d^2 of the soma MSE = 30 l1): batches 2 and
 * 3 stay under the stop at 100 x l1, and epoch 1's mean, about 20 x l1, is over 10 x l1: not
 * eligible as the best. A run resumed at batch 2 must say the same; with its own first batch
 * (batch 3, about 30 x l1) as the scale it called the epoch healthy.
 */
static void test_resume_keeps_scale(void) {
    elm_train_spec s = spec("scale");
    elm_trainer *tr = NULL;
    CHECK_OK(elm_trainer_create(&tr, &s));
    if (!tr)
        return;
    elm_train_hooks h = {.epoch_end = note_epoch};
    CHECK_OK(elm_trainer_set_hooks(tr, &h));
    double l[3] = {NAN, NAN, NAN}, l3 = NAN;
    CHECK_OK(elm_trainer_step(tr, &l[0]));
    elm_model *m = elm_trainer_model(tr);
    elm_tensor t;
    CHECK_OK(elm_model_tensor(m, elm_model_find_tensor(m, "w_y.bias"), &t));
    ((float *)t.data)[1] += (float)sqrt(2 * 30 * l[0]);
    elm_model_refresh(m);
    CHECK_OK(elm_trainer_step(tr, &l[1]));
    CHECK_OK(elm_trainer_checkpoint(tr));
    CHECK_OK(elm_trainer_step(tr, &l[2]));
    CHECK_OK(elm_trainer_end_epoch(tr));
    const int uninterrupted = diverged[0];
    CHECK(verdicts == 1 && uninterrupted && l[1] > 10 * l[0] && l[1] < 100 * l[0] &&
              l[2] < 100 * l[0],
          "setup: losses %g %g %g, epoch 1 diverged %d (want 1)", l[0], l[1], l[2],
          uninterrupted);
    elm_trainer_free(tr);
    tr = NULL;
    CHECK_OK(elm_trainer_resume(&tr, &s));
    if (!tr)
        return;
    CHECK_OK(elm_trainer_set_hooks(tr, &h));
    diverged[0] = -1;
    CHECK_OK(elm_trainer_step(tr, &l3));
    CHECK_OK(elm_trainer_end_epoch(tr));
    CHECK(l3 == l[2], "resumed at batch 2: batch 3's loss %.17g, want %.17g", l3, l[2]);
    CHECK(diverged[0] == uninterrupted,
          "resumed at batch 2: epoch 1 (mean loss about 20 x the run's first batch) judged "
          "diverged %d, the uninterrupted run %d",
          diverged[0], uninterrupted);
    elm_trainer_free(tr);
}

/* The best model is read back at the end of the run to score it: if that fails (here the epoch
 * hook of the last epoch truncates it), the run fails naming the file. */
static void truncate_best(void *user, const elm_train_epoch *e) {
    if (e->epoch == 2)
        CHECK(truncate(user, 10) == 0, "cannot truncate %s", (const char *)user);
}

static void test_best_unreadable(void) {
    elm_train_spec s = spec("unreadable");
    char best[4096];
    snprintf(best, sizeof best, "%s/model.safetensors", s.out);
    elm_trainer *tr = NULL;
    CHECK_OK(elm_trainer_create(&tr, &s));
    if (!tr)
        return;
    elm_train_hooks h = {.user = best, .epoch_end = truncate_best};
    CHECK_OK(elm_trainer_set_hooks(tr, &h));
    elm_status st = elm_trainer_run(tr);
    CHECK(st != ELM_OK && strstr(elm_last_error(), "model.safetensors") &&
              strstr(elm_last_error(), "the best model"),
          "an unreadable best model: status %d, '%s'", st, st ? elm_last_error() : "");
    CHECK(!exists("unreadable", "test_metrics.json") && !elm_trainer_test_metrics(tr),
          "test metrics written without the best model");
    elm_trainer_free(tr);
}

int main(void) {
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(data, sizeof data, "%s/data", root);
    /* Two files: the trainer holds the last out for validation. */
    CHECK_OK(nio_synth_write(data, "a", 3, 1200, 64, 1));
    CHECK_OK(nio_synth_write(data, "b", 2, 1200, 64, 2));
    test_knobs();
    test_uninterrupted();
    test_resume_by_hand(2);
    test_resume_by_hand(4);
    test_request_stop();
    test_grads_hook();
    test_float64();
    test_resume_keeps_scale();
    test_best_unreadable();
    rm_rf(root);
    return test_end();
}
