/*
 * blas_compare.c - elm's lane-blocked products and weight-gradient panels against OpenBLAS's
 * sgemm on the same shapes, one thread: the measurement behind "BLAS was not used" in
 * docs/PERFORMANCE.md. Not part of the build or the tests (OpenBLAS is not a dependency):
 *
 *   apt-get install libopenblas-dev && make blas-compare
 *
 * The kernels are compiled here from src/core/kernels.inc itself (with their own name suffix),
 * so this measures the code the library runs. Time is process CPU time.
 */
#pragma GCC optimize("vect-cost-model=dynamic", "no-trapping-math")

#include "model_internal.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REAL float
#define FN(name) name##_bc
#include "kernels.inc"

/* After the kernels: OpenBLAS's header pulls in <complex.h>, whose macro I they use as a name. */
#include <cblas.h>

static double cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *filled(size_t n, unsigned seed) {
    float *p = elm__alloc_aligned(sizeof(float) * n + 64);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (float)((seed >> 8) & 0xffff) / 65536.0f - 0.5f;
    }
    return p;
}

/* Best of 5 timings of `reps` calls, as GFLOP/s. */
#define RATE(flops, reps, call)                                                                    \
    ({                                                                                             \
        double best_ = 0;                                                                          \
        for (int k_ = 0; k_ < 5; k_++) {                                                           \
            double t_ = cpu_s();                                                                   \
            for (long r_ = 0; r_ < (reps); r_++) {                                                 \
                call;                                                                              \
            }                                                                                      \
            t_ = cpu_s() - t_;                                                                     \
            double g_ = (flops) * (double)(reps) / t_ * 1e-9;                                      \
            best_ = g_ > best_ ? g_ : best_;                                                       \
        }                                                                                          \
        best_;                                                                                     \
    })

/* 8 lanes fixed at compile time, as the library's group kernels have them. */
ELM_CLONES static void products8(const gemm_t_bc *p) {
    gemm_lanes_bc(p, 8);
}

ELM_CLONES static void panel(float *dW, size_t ldw, const float *dout, const float *in, size_t ldi,
                             int N, int Kd, int L) {
    panel_outer_bc(dW, ldw, dout, in, ldi, N, Kd, L);
}

int main(void) {
    openblas_set_num_threads(1);
    const int G = 8;
    /* (outputs, inputs) of the d_m 100 models' layers: NeuronIO (145 inputs), Pathfinder (101). */
    const int shapes[][2] = {{200, 145}, {100, 200}, {145, 200}, {200, 101}, {101, 200}};
    printf("Layer products, %d lanes: out (N) = bias + W (N x K) in (K) per lane. GFLOP/s\n", G);
    printf("%5s %5s %10s %16s\n", "N", "K", "elm", "OpenBLAS sgemm");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int N = shapes[s][0], K = shapes[s][1];
        const size_t lda = padded_bc(N);
        float *A = filled((size_t)K * lda, 1), *W = filled((size_t)N * (size_t)K, 2);
        float *in = filled((size_t)K * (size_t)G, 3), *inT = filled((size_t)G * (size_t)K, 3);
        float *out = filled((size_t)N * (size_t)G, 4), *bias = filled((size_t)N, 5);
        gemm_t_bc p = {.out = out,
                       .ldo = (size_t)N,
                       .bias = bias,
                       .A = A,
                       .lda = lda,
                       .in = in,
                       .isk = (size_t)G,
                       .isg = 1,
                       .N = N,
                       .Kd = K};
        const double f = 2.0 * N * K * G;
        double e = RATE(f, 20000, products8(&p));
        /* BLAS: out (G x N) = inT (G x K) W^T + bias, one sgemm per step. */
        double b = RATE(f, 20000, {
            for (int g = 0; g < G; g++)
                memcpy(out + (size_t)g * (size_t)N, bias, sizeof(float) * (size_t)N);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, G, N, K, 1.0f, inT, K, W, K,
                        1.0f, out, N);
        });
        printf("%5d %5d %10.1f %16.1f\n", N, K, e, b);
        elm__free_aligned(A);
        elm__free_aligned(W);
        elm__free_aligned(in);
        elm__free_aligned(inT);
        elm__free_aligned(out);
        elm__free_aligned(bias);
    }
    const int L = 64;
    printf("\nWeight gradients: dW (N x K) += sum over a panel of %d lanes of dout in^T. GFLOP/s\n",
           L);
    printf("%5s %5s %10s %16s\n", "N", "K", "elm", "OpenBLAS sgemm");
    for (size_t s = 0; s < 3; s++) {
        const int N = shapes[s == 2 ? 3 : s][0], K = shapes[s == 2 ? 3 : s][1];
        const size_t ldi = padded_bc(K) - OB;
        float *dW = filled((size_t)N * (size_t)K, 6), *dout = filled((size_t)L * (size_t)N, 7);
        float *in = filled((size_t)L * ldi, 8);
        const double f = 2.0 * N * K * L;
        double e = RATE(f, 2000, panel(dW, (size_t)K, dout, in, ldi, N, K, L));
        double b = RATE(f, 2000,
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, K, L, 1.0f, dout,
                                    N, in, (int)ldi, 1.0f, dW, K));
        printf("%5d %5d %10.1f %16.1f\n", N, K, e, b);
        elm__free_aligned(dW);
        elm__free_aligned(dout);
        elm__free_aligned(in);
    }
    return 0;
}
