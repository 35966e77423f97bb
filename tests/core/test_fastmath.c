/*
 * test_fastmath.c - the kernels' exp and tanh (src/core/fastmath.h) against libm: relative error
 * of exp in double and float, absolute error of tanh, over their whole clamped ranges (a dense
 * sweep plus the edges), and NaN and infinity handling.
 */
#include "fastmath.h"
#include "test.h"

#include <float.h>

/* Units in the last place of float between a computed value and the exact (double) one. */
static double ulps_f(float got, double exact) {
    double ulp = ldexp(1.0, ilogb((float)exact) - 23);
    return fabs((double)got - exact) / ulp;
}

int main(void) {
    /* exp in double: degree-13 Taylor on |r| <= ln2/2 (truncation < 1e-17) plus ~10 roundings;
     * 4e-16 relative is two ulps. */
    double worst_d = 0;
    for (double x = -708.0; x <= 709.0; x += 0.0137) {
        double e = exp(x), rel = fabs(elm__exp_d(x) - e) / e;
        worst_d = rel > worst_d ? rel : worst_d;
    }
    CHECK(worst_d < 4e-16, "elm__exp_d: worst relative error %.3g", worst_d);
    printf("elm__exp_d: worst relative error %.3g\n", worst_d);

    /* exp in float: degree 7 (truncation < 6e-9 relative, 0.1 ulp) plus float roundings in the
     * reduction and the polynomial; the documented bound is 2 ulps. Every float of magnitude
     * 0.25 .. 1 (the reduced range |r| <= ln2/2 and beyond: 2^25 values), a geometric sweep
     * towards 0 and a linear sweep of the whole range. */
    double worst_f = 0;
    float at = 0;
#define TRY(xv)                                                                                        do {                                                                                                   float x_ = (xv);                                                                                   double u_ = ulps_f(elm__exp_f(x_), exp((double)x_));                                               if (u_ > worst_f) {                                                                                    worst_f = u_;                                                                                      at = x_;                                                                                       }                                                                                              } while (0)
    for (float x = 0.25f; x <= 1.0f; x = nextafterf(x, 2.0f)) {
        TRY(x);
        TRY(-x);
    }
    for (float x = 1e-30f; x < 0.25f; x *= 1.001f) {
        TRY(x);
        TRY(-x);
    }
    for (float x = -87.0f; x <= 88.0f; x += 0.000731f)
        TRY(x);
    CHECK(worst_f <= 2.0, "elm__exp_f: worst error %.3g ulp at %.9g", worst_f, (double)at);
    printf("elm__exp_f: worst error %.3g ulp (at %.9g)\n", worst_f, (double)at);

    /* Clamps: results stay finite and normal beyond the ranges; NaN propagates. */
    CHECK(elm__exp_f(-1000.0f) >= FLT_MIN && elm__exp_f(-1000.0f) < 1e-37f, "exp_f underflow");
    CHECK(isfinite(elm__exp_f(1000.0f)) && elm__exp_f(1000.0f) > 1e38f, "exp_f overflow");
    CHECK(isnan(elm__exp_f(NAN)), "exp_f(NaN)");
    CHECK(elm__exp_d(-1e6) >= DBL_MIN && isfinite(elm__exp_d(1e6)), "exp_d clamps");
    CHECK(isnan(elm__exp_d(NAN)), "exp_d(NaN)");
    CHECK(elm__exp_f(0.0f) == 1.0f && elm__exp_d(0.0) == 1.0, "exp(0) = 1");

    /* tanh in double: (1 - e) / (1 + e) loses relative accuracy near 0 but keeps the absolute
     * error at a few ulps of 1. */
    double worst_t = 0;
    for (double x = -20.0; x <= 20.0; x += 0.00113) {
        double err = fabs(elm__tanh_d(x) - tanh(x));
        worst_t = err > worst_t ? err : worst_t;
    }
    CHECK(worst_t < 5e-16, "elm__tanh_d: worst absolute error %.3g", worst_t);
    printf("elm__tanh_d: worst absolute error %.3g\n", worst_t);
    CHECK(elm__tanh_d(1000.0) == 1.0 && elm__tanh_d(-1000.0) == -1.0, "tanh saturates");
    CHECK(signbit(elm__tanh_d(-0.0)), "tanh(-0) = -0");
    return test_end();
}
