/*
 * losses.c - the tasks' losses and their gradients with respect to the raw outputs.
 */
#include "train/task.h"

#include <math.h>
#include <string.h>

/* Binary cross-entropy with logits, the stable form torch uses:
 * max(x, 0) - x z + log(1 + exp(-|x|)); its derivative is sigmoid(x) - z. */
static double bce_logits(double x, double z) {
    return (x > 0 ? x : 0) - x * z + log1p(exp(-fabs(x)));
}

double elm__loss_neuronio(const float *y, const float *target, float *dy, int B, int T) {
    size_t n = (size_t)B * (size_t)T;
    double bce = 0, mse = 0;
    for (size_t i = 0; i < n; i++) {
        double x = (double)y[2 * i], z = (double)target[2 * i];
        double s = (double)y[2 * i + 1], v = (double)target[2 * i + 1];
        bce += bce_logits(x, z);
        mse += (s - v) * (s - v);
        double sig = 1 / (1 + exp(-x));
        dy[2 * i] = (float)(0.5 * (sig - z) / (double)n);
        dy[2 * i + 1] = (float)(0.5 * 2 * (s - v) / (double)n);
    }
    return 0.5 * bce / (double)n + 0.5 * mse / (double)n;
}

double elm__loss_ce_last(const float *y, const float *target, float *dy, int B, int T, int O) {
    memset(dy, 0, sizeof(float) * (size_t)B * (size_t)T * (size_t)O);
    double loss = 0;
    for (int b = 0; b < B; b++) {
        const float *z = y + ((size_t)b * (size_t)T + (size_t)(T - 1)) * (size_t)O;
        float *dz = dy + ((size_t)b * (size_t)T + (size_t)(T - 1)) * (size_t)O;
        int label = (int)target[b];
        double mx = (double)z[0];
        for (int o = 1; o < O; o++)
            mx = (double)z[o] > mx ? (double)z[o] : mx;
        double se = 0;
        for (int o = 0; o < O; o++)
            se += exp((double)z[o] - mx);
        double lse = mx + log(se);
        loss += lse - (double)z[label];
        for (int o = 0; o < O; o++)
            dz[o] = (float)((exp((double)z[o] - lse) - (o == label)) / B);
    }
    return loss / B;
}
