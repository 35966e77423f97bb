/* kernels_f64.c - the float64 instantiation of kernels.inc (tight gradient and parity checks). */
/* The hot loops have run-time trip counts (layer widths); -O2's "very cheap" vectoriser model
 * leaves those scalar, the dynamic model vectorises them (with a scalar epilogue). This changes
 * no result: floating-point contraction and reassociation stay off. */
#pragma GCC optimize("vect-cost-model=dynamic")

#include "model_internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define REAL double
#define FN(name) name##_f64
#include "kernels.inc"
