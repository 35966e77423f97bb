/*
 * bench_peak.c - the single-core float32 arithmetic peak of the machine `elm bench` runs on.
 *
 * The reference figures (docs/PERFORMANCE.md) state a peak of one core (216 GFLOP/s, measured on
 * a Zen 5 with AVX-512), but the same kind of VM may land on a different CPU: a Zen 4 splits each
 * 512-bit FMA into two 256-bit halves and peaks at half that. "Percent of peak" means something
 * only against the peak of the core the benchmark ran on, so it is measured here: independent
 * chains of FMAs, enough of them to cover the FMA latency on two pipes, with the widest vectors
 * this CPU has.
 * Timed with the thread's CPU clock, so time other jobs take from this core is not counted.
 */
#include "cli.h"
#include "internal.h"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>

/* 16 chains: at 4 cycles of latency and 2 FMAs a cycle, 8 would do; 16 leave margin. */
#define CHAINS(X)                                                                                  \
    X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)

/* Each returns the FLOPs done (2 per lane per FMA); the result is kept alive through *sink. */
__attribute__((target("avx512f"))) static double fma_avx512(long n, float *sink) {
#define DECL(i) __m512 a##i = _mm512_set1_ps((float)(i));
    CHAINS(DECL)
#undef DECL
    __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (long k = 0; k < n; k++) {
#define STEP(i) a##i = _mm512_fmadd_ps(a##i, b, c);
        CHAINS(STEP)
#undef STEP
        __asm__ volatile("" : "+v"(b), "+v"(c)); /* no hoisting, no folding */
    }
    __m512 s = _mm512_setzero_ps();
#define SUM(i) s = _mm512_add_ps(s, a##i);
    CHAINS(SUM)
#undef SUM
    *sink += _mm512_reduce_add_ps(s);
    return (double)n * 16 * 16 * 2;
}

/* 12 chains: the AVX2 register file has 16 registers. */
#define CHAINS12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

__attribute__((target("avx2,fma"))) static double fma_avx2(long n, float *sink) {
#define DECL(i) __m256 a##i = _mm256_set1_ps((float)(i));
    CHAINS12(DECL)
#undef DECL
    __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (long k = 0; k < n; k++) {
#define STEP(i) a##i = _mm256_fmadd_ps(a##i, b, c);
        CHAINS12(STEP)
#undef STEP
        __asm__ volatile("" : "+x"(b), "+x"(c));
    }
    __m256 s = _mm256_setzero_ps();
#define SUM(i) s = _mm256_add_ps(s, a##i);
    CHAINS12(SUM)
#undef SUM
    float t[8];
    _mm256_storeu_ps(t, s);
    *sink += t[0];
    return (double)n * 12 * 8 * 2;
}

/* SSE2 has no FMA: a multiply and an add per lane, the baseline x86-64 machine's best. */
static double muladd_sse(long n, float *sink) {
#define DECL(i) __m128 a##i = _mm_set1_ps((float)(i));
    CHAINS12(DECL)
#undef DECL
    __m128 b = _mm_set1_ps(0.999999f), c = _mm_set1_ps(1e-7f);
    for (long k = 0; k < n; k++) {
#define STEP(i) a##i = _mm_add_ps(_mm_mul_ps(a##i, b), c);
        CHAINS12(STEP)
#undef STEP
        __asm__ volatile("" : "+x"(b), "+x"(c));
    }
    __m128 s = _mm_setzero_ps();
#define SUM(i) s = _mm_add_ps(s, a##i);
    CHAINS12(SUM)
#undef SUM
    *sink += _mm_cvtss_f32(s);
    return (double)n * 12 * 4 * 2;
}
#endif

static volatile float peak_sink;

double bench_peak_gflops(const char **how) {
    *how = "not measured (not x86-64)";
    double best = 0;
#if defined(__GNUC__) && defined(__x86_64__)
    double (*kernel)(long, float *) = muladd_sse;
    *how = "SSE mul+add";
    if (__builtin_cpu_supports("avx512f")) {
        kernel = fma_avx512;
        *how = "AVX-512 FMA";
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        kernel = fma_avx2;
        *how = "AVX2 FMA";
    }
    float sink = 0;
    kernel(1000000, &sink); /* warm-up: clocks up, code paged in */
    /* Best of 5 short runs: the peak is a maximum, not a typical value. */
    for (int r = 0; r < 5; r++) {
        double t0 = elm__cpu_s(1);
        double flops = kernel(4000000, &sink); /* ~20 ms at 100 GFLOP/s */
        double dt = elm__cpu_s(1) - t0;
        if (dt > 0 && flops / dt * 1e-9 > best)
            best = flops / dt * 1e-9;
    }
    peak_sink = sink; /* a volatile store: the chains' results are used */
#endif
    return best;
}
