/*
 * fastmath.h - exp and tanh for the kernels: branch-free and libm-free, so that loops over them
 * vectorise. tests/core/test_fastmath.c measures their error against libm.
 */
#ifndef ELM_FASTMATH_H
#define ELM_FASTMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/*
 * e^x in double without branches or libm: Cody-Waite reduction x = k ln2 + r, |r| <= ln2/2, a
 * degree-13 Taylor polynomial (truncation < 1e-17 relative), and 2^k built in the exponent bits.
 * x is clamped to [-708, 709] (results stay normal; NaN propagates through the polynomial).
 */
static inline __attribute__((always_inline)) double elm__exp_d(double x) {
    x = x < -708.0 ? -708.0 : x;
    x = x > 709.0 ? 709.0 : x;
    const double shift = 6755399441055744.0; /* 1.5 * 2^52: adding it rounds to an integer */
    double kf = (x * 1.4426950408889634 + shift) - shift;
    double r = x - kf * 6.93147180369123816490e-01; /* ln2 high part: kf * hi is exact */
    r = r - kf * 1.90821492927058770002e-10;        /* ln2 low part */
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    double t = kf + (shift + 1023.0); /* k + 1023 in the low mantissa bits */
    uint64_t u;
    memcpy(&u, &t, sizeof u);
    u <<= 52;
    double scale;
    memcpy(&scale, &u, sizeof scale);
    return p * scale;
}

/* tanh(x) = sign(x) (1 - e) / (1 + e), e = exp(-2|x|): absolute error ~1e-16. */
static inline __attribute__((always_inline)) double elm__tanh_d(double x) {
    double e = elm__exp_d(-2.0 * fabs(x));
    return copysign((1.0 - e) / (1.0 + e), x);
}

/*
 * e^x in float: the same reduction with ln2 split so that kf * hi is exact (hi has 16 significant
 * bits, |k| <= 127), and a degree-7 Taylor polynomial (truncation < 6e-9 relative on
 * |r| <= ln2/2). Maximum error about 1.5 ulp. x is clamped to [-87, 88], where e^x is normal.
 */
static inline __attribute__((always_inline)) float elm__exp_f(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    const float shift = 12582912.0f; /* 1.5 * 2^23 */
    float kf = (x * 1.44269504f + shift) - shift;
    float r = x - kf * 0.693145751953125f;
    r = r - kf * 1.42860676533018704e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    float t = kf + (shift + 127.0f); /* k + 127 in the low mantissa bits */
    uint32_t u;
    memcpy(&u, &t, sizeof u);
    u <<= 23;
    float scale;
    memcpy(&scale, &u, sizeof scale);
    return p * scale;
}

#endif
