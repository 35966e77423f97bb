/*
 * metrics.h - NeuronIO evaluation exactly as the reference does it (neuronio_eval_utils.py of
 * AaronSpieler/elmneuron, itself from SelfishGene/neuron_as_deep_net's evaluate_CNN_test.py):
 *
 *   1. each simulation is cut into windows of 500 ms starting every 350 ms
 *      (int(2 + (T - 500) / 350) windows, the last zero-padded); a window's first 150 ms are
 *      burn-in and dropped, except in the first window;
 *   2. predictions: spike probability sigmoid(out0) (float32), soma out1 / 0.1 (mV above -67.7);
 *   3. per source file, the predicted soma is rescaled to the mean and standard deviation of the
 *      clipped target soma (v clipped at -55 mV, plus 67.7) over all its simulations and steps;
 *   4. the first 500 ms of every simulation are dropped, and only simulations with 0..24 output
 *      spikes (bins) are kept;
 *   5. metrics on all kept bins: ROC AUC (sklearn roc_curve + auc), "TP @ x FP" and
 *      "AUC @ x FP" for x = 0.0025 and 0.01, soma RMSE / MAE (mV), explained variance (%).
 */
#ifndef ELM_NEURONIO_METRICS_H
#define ELM_NEURONIO_METRICS_H

#include "nio_data.h"

/* ---- ROC ------------------------------------------------------------------------------------ */

/* A ROC curve as sklearn.metrics.roc_curve(y, score) returns it (drop_intermediate=True). */
typedef struct elm_roc {
    size_t n;    /* points, the leading (0, 0) included */
    double *fpr; /* (n) */
    double *tpr; /* (n) */
} elm_roc;

/* label: 0/1 per sample; score: higher = more likely positive. Needs >= 1 positive and negative. */
elm_status elm_roc_curve(elm_roc *roc, const uint8_t *label, const double *score, size_t n);
void elm_roc_free(elm_roc *roc);
/* Trapezoidal area under the curve (sklearn.metrics.auc). */
double elm_roc_auc(const elm_roc *roc);
/* The reference's calc_TP_at_desired_FP: tpr at the curve point whose fpr is nearest to fp
 * (first one on ties), never the leading (0, 0) point. */
double elm_roc_tp_at_fp(const elm_roc *roc, double fp);
/* The reference's calc_AUC_at_desired_FP: the curve is sampled (np.interp) at 20000 evenly spaced
 * fpr in [0, 1]; the result is the mean tpr over the samples below the one nearest to fp. */
double elm_roc_auc_at_fp(const elm_roc *roc, double fp);

/* ---- evaluation ----------------------------------------------------------------------------- */

typedef struct elm_nio_metrics {
    double auc;
    double auc_at_fp[2]; /* at 0.0025 and 0.0100 */
    double tp_at_fp[2];
    double soma_rmse, soma_mae, soma_ev_percent;
    int num_simulations; /* evaluated */
    int num_kept;        /* passing the output-spike filter */
} elm_nio_metrics;

/* The false-positive rates of the metrics, and the reference's metric names. */
extern const double elm_nio_fp_rates[2];
/* "AUC", "AUC @ 0.0025 FP", "AUC @ 0.0100 FP", "TP @ 0.0025 FP", "TP @ 0.0100 FP",
 * "soma_RMSE", "soma_MAE", "soma_explained_variance_percent". */
extern const char *const elm_nio_metric_names[8];
/* The value of metric elm_nio_metric_names[i]. */
double elm_nio_metric_value(const elm_nio_metrics *m, int i);

typedef struct elm_nio_eval_opts {
    int window;      /* 500 */
    int burn_in;     /* 150 */
    int ignore_ms;   /* 500 */
    int min_spikes;  /* 0 */
    int max_spikes;  /* 24 */
    int batch;       /* windows per forward call: 16 */
    int max_sims;    /* evaluate the first max_sims simulations only; 0 = all (the soma rescale
                      * then covers the evaluated simulations of each file) */
} elm_nio_eval_opts;
void elm_nio_eval_opts_default(elm_nio_eval_opts *o);

/*
 * Steps 4-5 on predictions already made: N simulations of T steps, row-major (N, T).
 * spike_gt 0/1, spike_hat probabilities, soma_gt the clipped target and soma_hat the rescaled
 * prediction (both mV above -67.7; any common offset cancels).
 */
elm_status elm_nio_metrics_compute(elm_nio_metrics *out, const uint8_t *spike_gt,
                                   const double *spike_hat, const double *soma_gt,
                                   const double *soma_hat, int N, int T,
                                   const elm_nio_eval_opts *o);

/* Step 3: rescales hat[0..n) to the mean and (population) standard deviation of ref[0..n). */
void elm_nio_rescale(double *hat, const double *ref, size_t n);

/*
 * Steps 1-5: runs the float32 model `m` (1278 inputs, 2 outputs) over the simulations of `d`
 * and fills *out. All simulations must have the same length T >= window.
 */
elm_status elm_nio_evaluate(elm_nio_metrics *out, elm_model *m, const elm_nio_data *d,
                            const elm_nio_eval_opts *o);

#endif
