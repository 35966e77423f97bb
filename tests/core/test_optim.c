/*
 * test_optim.c - the optimisers and the schedule in the settings training really uses, against
 * torch.optim's update rules written out here:
 *   - Adam and Adamax with L2 weight decay > 0 (g += wd * p), AdamW with decoupled decay;
 *   - each step taken with a learning rate different from the configured one (the trainer passes
 *     the scheduled rate; the configured one must not be used);
 *   - every parameter of a model, with gradients that change sign, over several steps;
 *   - elm_lr_cosine with lr_min > 0, at the ends, in between, and past the end (step > total).
 * float64 models: the update is the same double arithmetic in the same order, so the tolerance
 * is 1e-13 of max(1, |p|) (only libm's pow/sqrt may round differently); a sign or an lr mix-up
 * changes p by at least lr * 1e-3 here, ten orders of magnitude more. float32 models must agree
 * with the double rule rounded to float after every step.
 */
#include "elm.h"
#include "model_internal.h"
#include "test.h"

static const double CONF_LR = 0.1, WD = 0.05, PI = 3.14159265358979323846;
static const double STEP_LR[5] = {0.031, 0.0047, 0.077, 0.0123, 0.059};

/* One torch.optim step on p (double) for parameter i, given its gradient. */
static double rule(elm_optim_kind k, double p, double g, double lr, int s, double *m1, double *m2) {
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    if (k == ELM_OPT_ADAMW)
        p *= 1 - lr * WD;
    else
        g += WD * p;
    *m1 = b1 * *m1 + (1 - b1) * g;
    if (k == ELM_OPT_ADAMAX) {
        *m2 = fmax(b2 * *m2, fabs(g) + eps);
        return p - lr / (1 - pow(b1, s)) * *m1 / *m2;
    }
    *m2 = b2 * *m2 + (1 - b2) * g * g;
    return p - lr / (1 - pow(b1, s)) * *m1 / (sqrt(*m2) / sqrt(1 - pow(b2, s)) + eps);
}

static void check_kind(elm_optim_kind kind, elm_dtype dt) {
    static const char *names[] = {"Adam", "AdamW", "Adamax"};
    elm_config c;
    elm_config_default(&c, 3, 2, 2);
    elm_model *m = NULL;
    elm_optim *o = NULL;
    CHECK_OK(elm_model_create(&m, &c, dt, 5));
    if (!m)
        return;
    elm_optim_config oc;
    elm_optim_config_default(&oc, kind, CONF_LR);
    oc.weight_decay = WD;
    CHECK_OK(elm_optim_create(&o, m, &oc));
    const size_t n = m->n_train;
    const int f64 = dt == ELM_F64;
    double *pe = malloc(sizeof(double) * n), *m1 = calloc(n, sizeof(double));
    double *m2 = calloc(n, sizeof(double));
    for (size_t i = 0; i < n; i++)
        pe[i] = f64 ? ((double *)m->params)[i] : (double)((float *)m->params)[i];
    double worst = 0;
    for (int s = 1; s <= 5; s++) {
        for (size_t i = 0; i < n; i++) {
            /* Gradients of both signs and several sizes, changing from step to step. */
            double g = sin(1.3 * (double)i + 0.7 * s) * (0.2 + (double)(i % 5));
            if (f64)
                ((double *)m->grads)[i] = g;
            else
                ((float *)m->grads)[i] = (float)g;
            g = f64 ? g : (double)(float)g;
            pe[i] = rule(kind, pe[i], g, STEP_LR[s - 1], s, &m1[i], &m2[i]);
            if (!f64)
                pe[i] = (double)(float)pe[i];
        }
        CHECK_OK(elm_optim_step(o, m, STEP_LR[s - 1]));
        for (size_t i = 0; i < n; i++) {
            double p = f64 ? ((double *)m->params)[i] : (double)((float *)m->params)[i];
            double tol = f64 ? 1e-13 * fmax(1, fabs(pe[i])) : 2.5e-7 * fmax(1, fabs(pe[i]));
            worst = fmax(worst, fabs(p - pe[i]));
            if (!(fabs(p - pe[i]) <= tol)) {
                CHECK(0, "%s %s, step %d (lr %g, configured %g, weight decay %g): param %zu = "
                         "%.17g, the rule gives %.17g",
                      names[kind], f64 ? "f64" : "f32", s, STEP_LR[s - 1], CONF_LR, WD, i, p, pe[i]);
                s = 99;
                break;
            }
        }
    }
    printf("%-7s %s: %zu parameters x 5 steps, worst |diff| %.2g\n", names[kind],
           f64 ? "f64" : "f32", n, worst);
    free(pe);
    free(m1);
    free(m2);
    elm_optim_free(o);
    elm_model_free(m);
}

static void check_cosine(void) {
    const double lr0 = 3e-3, lr_min = 2e-4;
    const long total = 40;
    struct {
        long step;
        double want;
    } pts[] = {
        {0, lr0},
        {10, lr_min + (lr0 - lr_min) * (1 + cos(PI / 4)) / 2},
        {20, (lr0 + lr_min) / 2},
        {33, lr_min + (lr0 - lr_min) * (1 + cos(PI * 33 / 40)) / 2},
        {40, lr_min},
        {41, lr_min}, /* past the end the rate stays at its floor */
        {60, lr_min},
        {80, lr_min},
    };
    for (size_t k = 0; k < sizeof pts / sizeof pts[0]; k++) {
        double got = elm_lr_cosine(lr0, lr_min, pts[k].step, total);
        CHECK(fabs(got - pts[k].want) <= 1e-15, "elm_lr_cosine(%g, %g, %ld, %ld) = %.17g, want %.17g",
              lr0, lr_min, pts[k].step, total, got, pts[k].want);
    }
    /* Monotone non-increasing over the run and never below the floor. */
    double prev = INFINITY;
    int mono = 1;
    for (long s = 0; s <= 2 * total; s++) {
        double v = elm_lr_cosine(lr0, lr_min, s, total);
        mono &= v <= prev && v >= lr_min;
        prev = v;
    }
    CHECK(mono, "the cosine schedule rises or falls below lr_min somewhere");
    CHECK(elm_lr_cosine(lr0, lr_min, 5, 0) == lr0, "total 0: constant lr0");
}

int main(void) {
    for (int k = 0; k < 3; k++) {
        check_kind((elm_optim_kind)k, ELM_F64);
        check_kind((elm_optim_kind)k, ELM_F32);
    }
    check_cosine();
    return test_end();
}
