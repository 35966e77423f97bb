/* kernels_f32.c - the float32 instantiation of kernels.inc (the fast path). */
/* The hot loops have run-time trip counts (layer widths); -O2's "very cheap" vectoriser model
 * leaves those scalar, the dynamic model vectorises them (with a scalar epilogue). Without
 * trapping math, comparisons (the clamps in exp) may become selects so those loops vectorise
 * too; elm never reads the floating-point exception flags. Neither changes a result:
 * floating-point contraction and reassociation stay off. */
#pragma GCC optimize("vect-cost-model=dynamic", "no-trapping-math")

#include "model_internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define REAL     float
#define ELM_KERNELS_F32
#define FN(name) name##_f32
#include "kernels.inc"
