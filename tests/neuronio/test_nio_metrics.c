/*
 * test_nio_metrics.c - the NeuronIO metrics on hand-made data: a perfect and a random scorer,
 * a tied-score case whose ROC points, AUC, "TP @ FP" and "AUC @ FP" were computed with the
 * reference's definitions (sklearn roc_curve/auc semantics, np.interp, np.linspace) in Python,
 * the soma rescale and RMSE/MAE/explained variance, the spike-count filter and the burn-in cut.
 * Expected values are exact rationals or Python doubles: tolerance 1e-12 (summation order only).
 */
#include "elm.h"
#include "neuronio/metrics.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>

static void test_perfect_and_random(void) {
    enum { N = 20000 };
    uint8_t *y = malloc(N);
    double *s = malloc(N * sizeof *s);
    for (int i = 0; i < N; i++) {
        y[i] = i % 10 == 0;
        s[i] = y[i] ? 0.9 + 1e-6 * i / N : 0.1 * i / N; /* every positive above every negative */
    }
    elm_roc r;
    CHECK_OK(elm_roc_curve(&r, y, s, N));
    CHECK(fabs(elm_roc_auc(&r) - 1.0) < 1e-12, "perfect AUC %g", elm_roc_auc(&r));
    /* The reference's quirk: the positives' distinct scores make a vertical run of collinear
     * points, which drop_intermediate reduces to its ends; the point nearest to fpr 0.0025 is
     * then index 0, bumped to index 1, the run's first point: tpr = 1 / 2000, not 1. (This is
     * why the expected "TP @ 0.0025 FP" of a nearly perfect model can be 0.) */
    CHECK(elm_roc_tp_at_fp(&r, 0.0025) == 1.0 / 2000, "perfect TP@FP %g",
          elm_roc_tp_at_fp(&r, 0.0025));
    /* The interpolated curve is 1 from fpr 0 on, except the sample at 0 itself sits on the
     * vertical segment's last point (np.interp's rule), which is tpr 1 too. */
    CHECK(fabs(elm_roc_auc_at_fp(&r, 0.01) - 1.0) < 1e-12, "perfect AUC@FP %g",
          elm_roc_auc_at_fp(&r, 0.01));
    elm_roc_free(&r);
    /* Scores independent of labels (a fixed pseudo-random sequence): AUC near 0.5. */
    uint64_t z = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        z ^= z << 13;
        z ^= z >> 7;
        z ^= z << 17;
        s[i] = (double)(z >> 11) / 9007199254740992.0;
    }
    CHECK_OK(elm_roc_curve(&r, y, s, N));
    double auc = elm_roc_auc(&r);
    /* std of the AUC for 2000 positives / 18000 negatives is ~0.007: 0.5 +- 0.03 is > 4 sigma. */
    CHECK(fabs(auc - 0.5) < 0.03, "random AUC %g", auc);
    CHECK(elm_roc_auc_at_fp(&r, 0.01) < 0.05, "random AUC@1%%FP %g", elm_roc_auc_at_fp(&r, 0.01));
    elm_roc_free(&r);
    /* All-equal scores: one threshold, the diagonal. */
    for (int i = 0; i < N; i++)
        s[i] = 0.5;
    CHECK_OK(elm_roc_curve(&r, y, s, N));
    CHECK(r.n == 2 && fabs(elm_roc_auc(&r) - 0.5) < 1e-12, "constant scorer: %zu points, AUC %g",
          r.n, elm_roc_auc(&r));
    elm_roc_free(&r);
    /* Non-finite scores are refused. */
    s[7] = NAN;
    CHECK(elm_roc_curve(&r, y, s, N) == ELM_ERR_NUMERIC, "NaN score accepted");
    free(y);
    free(s);
}

static void test_ties_against_python(void) {
    enum { N = 400 };
    uint8_t y[N];
    double s[N];
    for (int i = 0; i < N; i++) {
        y[i] = (i * 7) % 10 < 3;
        s[i] = (double)((i * 37) % 9) / 8 + y[i] * 0.25;
    }
    static const double fpr[] = {0.0, 0.0, 0.0, 0.11071428571428571, 0.22142857142857142,
                                 0.32857142857142857, 0.4392857142857143, 0.6607142857142857,
                                 0.775, 0.8892857142857142, 1.0};
    static const double tpr[] = {0.0, 0.10833333333333334, 0.21666666666666667,
                                 0.3333333333333333, 0.44166666666666665, 0.55,
                                 0.6666666666666666, 0.8833333333333333, 1.0, 1.0, 1.0};
    elm_roc r;
    CHECK_OK(elm_roc_curve(&r, y, s, N));
    CHECK(r.n == 11, "tied case: %zu ROC points, sklearn gives 11", r.n);
    if (r.n == 11) {
        test_close("fpr", r.fpr, fpr, 11, 1e-15, 0, 0, NULL);
        test_close("tpr", r.tpr, tpr, 11, 1e-15, 0, 0, NULL);
    }
    CHECK(fabs(elm_roc_auc(&r) - 0.6980505952380952) < 1e-12, "AUC %.17g", elm_roc_auc(&r));
    CHECK(fabs(elm_roc_tp_at_fp(&r, 0.0025) - 0.10833333333333334) < 1e-15, "TP@0.0025");
    CHECK(fabs(elm_roc_tp_at_fp(&r, 0.1) - 0.3333333333333333) < 1e-15, "TP@0.1");
    CHECK(fabs(elm_roc_auc_at_fp(&r, 0.0025) - 0.21795759142795848) < 1e-12, "AUC@0.0025 %.17g",
          elm_roc_auc_at_fp(&r, 0.0025));
    CHECK(fabs(elm_roc_auc_at_fp(&r, 0.01) - 0.221909401921709) < 1e-12, "AUC@0.01 %.17g",
          elm_roc_auc_at_fp(&r, 0.01));
    CHECK(fabs(elm_roc_auc_at_fp(&r, 0.1) - 0.2693311278467149) < 1e-12, "AUC@0.1 %.17g",
          elm_roc_auc_at_fp(&r, 0.1));
    elm_roc_free(&r);
}

static void test_soma_and_filter(void) {
    /* One "simulation" of 400 steps, nothing ignored, no spike filter effect on soma. */
    enum { T = 400 };
    double g[T], h[T], sp[T];
    uint8_t sg[T] = {0};
    for (int i = 0; i < T; i++) {
        g[i] = sin(i / 10.) * 5;
        h[i] = cos(i / 7.) + 0.3 * g[i];
        sp[i] = (double)i / T;
    }
    sg[100] = sg[300] = 1;
    elm_nio_rescale(h, g, T);
    CHECK(fabs(h[17] - 2.0758930502957726) < 1e-12, "rescaled h[17] = %.17g", h[17]);
    elm_nio_eval_opts o;
    elm_nio_eval_opts_default(&o);
    o.ignore_ms = 0;
    elm_nio_metrics m;
    CHECK_OK(elm_nio_metrics_compute(&m, sg, sp, g, h, 1, T, &o));
    CHECK(fabs(m.soma_rmse - 2.1071512792805063) < 1e-12, "RMSE %.17g", m.soma_rmse);
    CHECK(fabs(m.soma_mae - 1.8702155186116085) < 1e-12, "MAE %.17g", m.soma_mae);
    CHECK(fabs(m.soma_ev_percent - 64.75002808332471) < 1e-10, "EV %.17g", m.soma_ev_percent);
    /* Two spikes among 400 bins with scores i/T: 100 and 299 of the 398 negatives score below
     * the positives at 100 and 300. */
    CHECK(fabs(m.auc - (0.5 * (100.0 / 398) + 0.5 * (299.0 / 398))) < 1e-12, "AUC %.17g", m.auc);
    /* Burn-in cut: ignoring the first 200 steps leaves one positive (300, score 0.75) above all
     * negatives from 200 on except those above 300. */
    o.ignore_ms = 200;
    CHECK_OK(elm_nio_metrics_compute(&m, sg, sp, g, h, 1, T, &o));
    CHECK(fabs(m.auc - 100.0 / 199) < 1e-12, "AUC after the cut %.17g", m.auc);
    /* Spike filter: allow at most 1 spike -> the only simulation is dropped -> error. */
    o.max_spikes = 1;
    CHECK(elm_nio_metrics_compute(&m, sg, sp, g, h, 1, T, &o) != ELM_OK, "filter not applied");
    /* No positives among kept bins: NaN spike metrics, finite soma metrics (sklearn warns). */
    uint8_t none[T] = {0};
    o.max_spikes = 24;
    CHECK_OK(elm_nio_metrics_compute(&m, none, sp, g, h, 1, T, &o));
    CHECK(isnan(m.auc) && isfinite(m.soma_rmse), "no-positive case: AUC %g RMSE %g", m.auc,
          m.soma_rmse);
}

int main(void) {
    test_perfect_and_random();
    test_ties_against_python();
    test_soma_and_filter();
    return test_end();
}
