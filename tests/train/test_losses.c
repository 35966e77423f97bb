/*
 * test_losses.c - the training losses (src/train/losses.c): their values against the textbook
 * definitions written out here, and every element of dL/dy against central finite differences
 * of the loss itself.
 *   NeuronIO: 0.5 * BCEWithLogits(y0, spike) + 0.5 * MSE(y1, soma), means over B * T;
 *   SHD / Pathfinder: cross-entropy of the last step's logits against a class id, mean over B;
 *             every other step's dy must be exactly 0.
 *
 * Finite differences: y is float, so every y and y +- h must be exact floats: y lies on a grid of
 * 2^-8 and h = 2^-9, which makes y +- h exact and the loss (computed in double from those floats)
 * differentiable there. Truncation error h^2 / 6 * |L'''| <= 1e-6 * |L'''|, with |L'''| <= 0.1 / n
 * for the BCE and the softmax here, and 0 for the MSE; dy is stored as float (relative rounding
 * 6e-8). TOL_LOSS_FD = 1e-5 of max |dy| covers both with a margin of ~100 and is five orders
 * below a sign error (2 |dy|) or a wrong scale (>= |dy| / 2).
 *
 * The loss value is compared with a naive log(sigmoid) / log(softmax) form, which for the
 * moderate logits used (|y| <= 6) agrees with the stable forms to ~1e-15 relative: 1e-12.
 */
#include "train/task.h"
#include "test.h"

#define TOL_LOSS_FD 1e-5
#define TOL_LOSS_VALUE 1e-12

typedef double (*loss_fn)(const float *y, const float *target, float *dy, void *ctx);

typedef struct {
    int B, T, O;
} shape;

static double nio(const float *y, const float *target, float *dy, void *ctx) {
    shape *s = ctx;
    return elm__loss_neuronio(y, target, dy, s->B, s->T);
}

static double ce(const float *y, const float *target, float *dy, void *ctx) {
    shape *s = ctx;
    return elm__loss_ce_last(y, target, dy, s->B, s->T, s->O);
}

/* A value on the 2^-8 grid in [-lim, lim]. */
static float grid(elm__rng *r, double lim) {
    return (float)(round((2 * elm__rng_uniform(r) - 1) * lim * 256) / 256);
}

/* Central differences over every element of y against dy; returns the worst error / max|dy|. */
static double fd_all(const char *label, loss_fn f, void *ctx, float *y, const float *target,
                     size_t ny) {
    float *dy = malloc(sizeof(float) * ny), *scratch = malloc(sizeof(float) * ny);
    f(y, target, dy, ctx);
    double maxd = 0;
    for (size_t i = 0; i < ny; i++)
        maxd = fmax(maxd, fabs((double)dy[i]));
    const float h = 0x1p-9f;
    double worst = 0;
    size_t wi = 0;
    double wfd = 0;
    for (size_t i = 0; i < ny; i++) {
        float keep = y[i];
        y[i] = keep + h;
        double lp = f(y, target, scratch, ctx);
        y[i] = keep - h;
        double lm = f(y, target, scratch, ctx);
        y[i] = keep;
        double fd = (lp - lm) / (2 * (double)h);
        double err = fabs(fd - (double)dy[i]);
        if (err > worst) {
            worst = err;
            wi = i;
            wfd = fd;
        }
    }
    CHECK(maxd > 0 && worst <= TOL_LOSS_FD * maxd,
          "%s: dy[%zu] = %.9g, central difference %.9g (error %.3g, tolerance %.3g)", label, wi,
          (double)dy[wi], wfd, worst, TOL_LOSS_FD * maxd);
    printf("%-34s %4zu elements of dy, worst error %.2g of max|dy|\n", label, ny,
           maxd > 0 ? worst / maxd : 0.0);
    free(dy);
    free(scratch);
    return worst / (maxd > 0 ? maxd : 1);
}

static void test_neuronio(void) {
    shape s = {3, 7, 2};
    const size_t n = (size_t)s.B * (size_t)s.T, ny = 2 * n;
    float *y = malloc(sizeof(float) * ny), *tg = malloc(sizeof(float) * ny);
    float *dy = malloc(sizeof(float) * ny);
    elm__rng r;
    elm__rng_seed(&r, 17);
    for (size_t i = 0; i < n; i++) {
        y[2 * i] = grid(&r, 6);                           /* spike logit */
        y[2 * i + 1] = grid(&r, 2);                       /* soma prediction */
        tg[2 * i] = elm__rng_uniform(&r) < 0.3 ? 1.f : 0.f; /* spike bin */
        tg[2 * i + 1] = grid(&r, 1.5);                    /* scaled soma */
    }
    double L = elm__loss_neuronio(y, tg, dy, s.B, s.T);
    double bce = 0, mse = 0;
    for (size_t i = 0; i < n; i++) {
        double x = (double)y[2 * i], z = (double)tg[2 * i], sg = 1 / (1 + exp(-x));
        bce += -(z * log(sg) + (1 - z) * log(1 - sg));
        double e = (double)y[2 * i + 1] - (double)tg[2 * i + 1];
        mse += e * e;
    }
    double want = 0.5 * bce / (double)n + 0.5 * mse / (double)n;
    CHECK(fabs(L - want) <= TOL_LOSS_VALUE * fabs(want), "NeuronIO loss %.17g, definition %.17g", L,
          want);
    fd_all("NeuronIO (BCE + MSE)", nio, &s, y, tg, ny);
    /* Large logits: the stable form stays finite and its gradient saturates at +-0.5 / n. */
    y[0] = 80;
    tg[0] = 0;
    y[2] = -80;
    tg[2] = 1;
    L = elm__loss_neuronio(y, tg, dy, s.B, s.T);
    CHECK(isfinite(L) && fabs((double)dy[0] - 0.5 / (double)n) < 1e-9 &&
              fabs((double)dy[2] + 0.5 / (double)n) < 1e-9,
          "saturated logits: loss %g, dy %g %g", L, (double)dy[0], (double)dy[2]);
    free(y);
    free(tg);
    free(dy);
}

static void test_ce(int B, int T, int O, const char *label) {
    shape s = {B, T, O};
    const size_t ny = (size_t)B * (size_t)T * (size_t)O;
    float *y = malloc(sizeof(float) * ny), *tg = malloc(sizeof(float) * (size_t)B);
    float *dy = malloc(sizeof(float) * ny);
    elm__rng r;
    elm__rng_seed(&r, (uint64_t)(B * 100 + O));
    for (size_t i = 0; i < ny; i++)
        y[i] = grid(&r, 4);
    for (int b = 0; b < B; b++)
        tg[b] = (float)elm__rng_below(&r, (uint64_t)O);
    double L = elm__loss_ce_last(y, tg, dy, B, T, O), want = 0;
    for (int b = 0; b < B; b++) {
        const float *z = y + ((size_t)b * (size_t)T + (size_t)(T - 1)) * (size_t)O;
        double se = 0;
        for (int o = 0; o < O; o++)
            se += exp((double)z[o]);
        want += -log(exp((double)z[(int)tg[b]]) / se);
    }
    want /= B;
    CHECK(fabs(L - want) <= TOL_LOSS_VALUE * fabs(want), "%s: loss %.17g, definition %.17g", label,
          L, want);
    int nonzero_early = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T - 1; t++)
            for (int o = 0; o < O; o++)
                nonzero_early += dy[((size_t)b * (size_t)T + (size_t)t) * (size_t)O + (size_t)o] != 0;
    CHECK(nonzero_early == 0, "%s: %d elements of dy before the last step are not 0", label,
          nonzero_early);
    /* Each sample's last-step gradient sums to 0 (softmax minus one-hot). */
    for (int b = 0; b < B; b++) {
        double sum = 0;
        for (int o = 0; o < O; o++)
            sum += (double)dy[((size_t)b * (size_t)T + (size_t)(T - 1)) * (size_t)O + (size_t)o];
        CHECK(fabs(sum) < 1e-7, "%s: sample %d's dy sums to %g", label, b, sum);
    }
    fd_all(label, ce, &s, y, tg, ny);
    free(y);
    free(tg);
    free(dy);
}

int main(void) {
    test_neuronio();
    test_ce(4, 3, 20, "cross-entropy, SHD (20 classes)");
    test_ce(5, 4, 2, "cross-entropy, Pathfinder (2 classes)");
    test_ce(3, 2, 19, "cross-entropy, SHD-Adding (19)");
    return test_end();
}
