/*
 * kernels_f32fma.c - the float32 instantiation of kernels.inc with fused multiply-adds: the
 * passes of a model with elm_model_set_fma on.
 *
 * The same source as kernels_f32.c, compiled with floating-point contraction: a * b + c becomes
 * one FMA, rounded once, where the clone's target has FMA (the AVX2 and AVX-512 clones; the
 * plain x86-64 clone has none and computes kernels_f32.c's bits). The products of the MLP and
 * its weight gradients are most of a training step, and their loops become one instruction per
 * product instead of a multiply and an add: about 1.3x the training throughput of the exact
 * path on an AVX-512 core (docs/PERFORMANCE.md). The price is reproducibility across CPUs: the
 * exact path gives the same bits on every x86-64 CPU, this one only on CPUs of the same clone.
 * tests/core/test_fma.c holds it to the exact path's accuracy. "O3" here because GCC forms FMAs
 * in a pass that -O1 skips: a sanitizer build (make asan, -O1) would otherwise run this
 * instantiation unfused, and the switch would change nothing there. A build that asks for no
 * optimisation at all (-O0: make mutate, a debugger's build) gets none here either: at O3 this
 * file takes ten times as long to compile, and every mutant of kernels.inc recompiles it.
 * elm_fma_fuses() says whether the build and the CPU fuse.
 */
#if defined(__OPTIMIZE__)
#pragma GCC optimize("O3", "vect-cost-model=dynamic", "no-trapping-math", "fp-contract=fast")
#endif

#include "model_internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define REAL     float
#define ELM_KERNELS_F32
#define ELM_KERNELS_FMA
#define FN(name) name##_f32fma
#include "kernels.inc"

/* Runs in the clone the kernels run in, compiled as they are: when it rounds a * a + c once, so
 * do they. The operands are volatile so that the compiler cannot fold the sum. */
ELM_CLONES static float fma_probe(float a, float c) { return a * a + c; }

int elm_fma_fuses(void) {
    /* (1 + 2^-12)^2 = 1 + 2^-11 + 2^-24: rounded to float32 the 2^-24 is lost, so the unfused
     * sum is exactly 0 and the fused one is 2^-24. */
    volatile float a = 1.0f + 0x1p-12f, c = -(1.0f + 0x1p-11f);
    return fma_probe(a, c) != 0.0f;
}
