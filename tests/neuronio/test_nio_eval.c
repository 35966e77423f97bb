/*
 * test_nio_eval.c - the whole NeuronIO evaluation against the authors' own code: the released
 * models num_memory_1, num_memory_15 and best_elm_neuron evaluated (float32, windows of 500 ms,
 * burn-in 150) on the dev file and the two Python 2 style files must reproduce
 * ../shared/data/neuronio/expected_metrics.json. Tolerances: AUC and the soma metrics 1e-4 (the
 * README's; float32 forward vs torch float32: differences ~1e-6). "TP @ x FP" is a count ratio
 * k / P taken at one point of the ROC curve, and "AUC @ x FP" a mean of np.interp samples of it:
 * both change by a whole step (>= 1 / P, 1 / 20 or more here) as soon as two scores swap order,
 * and otherwise only by the rounding of the interpolation (~1e-15). elm's curve is the
 * reference's exactly (observed differences <= 1e-15), so their tolerance is TOL_AT_FP = 1e-9:
 * any reordering, any wrong tie rule or off-by-one point fails it. The positive counts P of the
 * files are asserted, so the step this argument relies on is known.
 * Also checks that a converted cache evaluates exactly like its pickle.
 */
#include "elm.h"
#include "neuronio/metrics.h"
#include "test.h"

/* See the file comment: a rounding margin, far below one step k / P of the at-FP metrics. */
#define TOL_AT_FP 1e-9

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEV_NAME                                                                                   \
    "L5PC_sim__Output_spikes_0056__Input_ranges_Exc_[0520,1017]_Inh_[0385,0839]_per100ms__simXsec_" \
    "8x6_randseed_700001.p"

/* Positive bins of the three files (counted by positives() from the data; the py2 files are
 * one simulation's worth of spikes each, so their at-FP metrics are 0 or 1: only an exact
 * tolerance makes those checks able to fail). */
#define DEV_POSITIVES 20
#define PY2_POSITIVES 1
#define PY0_POSITIVES 1

/* positives: the file's positive bins as positives() counts them (read once from the data). */
static const struct {
    const char *file, *key;
    int positives;
} files[] = {
    {DEV_NAME, "dev file (8 simulations)", DEV_POSITIVES},
    {"py2/L5PC_sim__py2style__simXsec_2x6_randseed_700001.p",
     "py2/ protocol-2 file (2 simulations)", PY2_POSITIVES},
    {"py2/L5PC_sim__py2style_protocol0__simXsec_1x6_randseed_700001.p",
     "py2/ protocol-0 file (1 simulation)", PY0_POSITIVES},
};
static const char *models[] = {"num_memory_1", "num_memory_15", "best_elm_neuron"};

/* Positive bins the metrics see: kept simulations (0..24 spikes), after 500 ms; -1 when a
 * simulation cannot be read. */
static int positives(const elm_nio_data *d) {
    int pos = 0;
    for (int k = 0; k < elm_nio_data_num_sims(d); k++) {
        elm_nio_view v;
        if (elm_nio_data_sim(d, k, &v) != ELM_OK)
            return -1;
        int bins = 0, late = 0, last = -1;
        for (int i = 0; i < v.n_out_spikes; i++) {
            int b = elm_nio_spike_bin((double)v.out_spike_times[i]);
            if (b != last) {
                bins++;
                late += b >= 500;
            }
            last = b;
        }
        if (bins <= 24)
            pos += late;
    }
    return pos;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(void) {
    const char *shared = test_shared();
    char path[4096];
    snprintf(path, sizeof path, "%s/data/neuronio/expected_metrics.json", shared);
    char *txt = NULL;
    size_t len = 0;
    CHECK_OK(elm__read_file(path, 1 << 20, &txt, &len));
    cJSON *exp = txt ? cJSON_Parse(txt) : NULL;
    free(txt);
    CHECK(exp != NULL, "expected_metrics.json does not parse");
    if (!exp)
        return test_end();
    double worst[8] = {0};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        snprintf(path, sizeof path, "%s/data/neuronio/%s", shared, files[f].file);
        const char *p = path;
        elm_nio_data *d = NULL;
        CHECK_OK(elm_nio_data_open(&d, &p, 1));
        if (!d)
            continue;
        const int pos = positives(d);
        printf("%s: %d positive bins\n", files[f].key, pos);
        CHECK(pos == files[f].positives, "%s: %d positive bins, expected %d", files[f].key, pos,
              files[f].positives);
        for (size_t mi = 0; mi < 3; mi++) {
            char mp[4096];
            snprintf(mp, sizeof mp, "%s/models/neuronio/%s", shared, models[mi]);
            elm_model *m = NULL;
            CHECK_OK(elm_model_load(&m, mp, ELM_F32));
            if (!m)
                continue;
            elm_nio_eval_opts o;
            elm_nio_eval_opts_default(&o);
            o.batch = 17; /* one simulation's windows per forward call */
            elm_nio_metrics r;
            double t0 = now();
            CHECK_OK(elm_nio_evaluate(&r, m, d, &o));
            double secs = now() - t0;
            const cJSON *e =
                cJSON_GetObjectItem(cJSON_GetObjectItem(exp, files[f].key), models[mi]);
            CHECK(e != NULL, "no expected numbers for %s / %s", files[f].key, models[mi]);
            printf("%-16s %-38s %.2fs", models[mi], files[f].key, secs);
            for (int i = 0; e && i < 8; i++) {
                const char *name = elm_nio_metric_names[i];
                double want = cJSON_GetObjectItem(e, name)->valuedouble;
                double got = elm_nio_metric_value(&r, i);
                /* AUC: 1e-4. soma: 1e-4 (RMSE/MAE in mV, EV in percent: 1e-4 of 100 % too).
                 * At-FP metrics: TOL_AT_FP (file comment). */
                double tol = (i >= 1 && i <= 4) ? TOL_AT_FP : 1e-4;
                double diff = fabs(got - want);
                if (diff > worst[i])
                    worst[i] = diff;
                CHECK(diff <= tol, "%s on %s: %s = %.9f, expected %.9f (diff %.2e, tolerance %.2e)",
                      models[mi], files[f].key, name, got, want, diff, tol);
                printf(" %s%+.1e", i == 0 ? "dAUC " : i == 5 ? "dRMSE " : "", got - want);
            }
            printf("\n");
            elm_model_free(m);
        }
        elm_nio_data_free(d);
    }
    /* A cache of the dev file evaluates bit for bit like the pickle. */
    {
        char tmp[] = "/tmp/elm_test_nio_eval_XXXXXX", mp[4096];
        snprintf(path, sizeof path, "%s/data/neuronio/%s", shared, DEV_NAME);
        snprintf(mp, sizeof mp, "%s/models/neuronio/num_memory_15", shared);
        elm_nio_sim *sims = NULL;
        int n = 0;
        elm_nio_writer *w = NULL;
        elm_model *m = NULL;
        elm_nio_data *dp = NULL, *dc = NULL;
        const char *pp = path, *pc = tmp;
        CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
        CHECK_OK(elm_nio_pickle_read(path, &sims, &n));
        CHECK_OK(elm_nio_writer_open(&w, tmp, "dev"));
        for (int k = 0; k < n && w; k++)
            CHECK_OK(elm_nio_writer_add(w, &sims[k]));
        CHECK_OK(elm_nio_writer_close(w));
        CHECK_OK(elm_model_load(&m, mp, ELM_F32));
        CHECK_OK(elm_nio_data_open(&dp, &pp, 1));
        CHECK_OK(elm_nio_data_open(&dc, &pc, 1));
        if (m && dp && dc) {
            elm_nio_eval_opts o;
            elm_nio_eval_opts_default(&o);
            elm_nio_metrics a, b;
            CHECK_OK(elm_nio_evaluate(&a, m, dp, &o));
            o.batch = 5; /* batching must not matter either */
            CHECK_OK(elm_nio_evaluate(&b, m, dc, &o));
            for (int i = 0; i < 8; i++)
                CHECK(elm_nio_metric_value(&a, i) == elm_nio_metric_value(&b, i),
                      "cache vs pickle: %s %.17g vs %.17g", elm_nio_metric_names[i],
                      elm_nio_metric_value(&a, i), elm_nio_metric_value(&b, i));
        }
        elm_nio_data_free(dp);
        elm_nio_data_free(dc);
        elm_model_free(m);
        elm_nio_sims_free(sims, n);
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        CHECK(system(cmd) == 0, "cleanup");
    }
    printf("largest |differences|:");
    for (int i = 0; i < 8; i++)
        printf(" %s %.2e;", elm_nio_metric_names[i], worst[i]);
    printf("\n");
    cJSON_Delete(exp);
    return test_end();
}
