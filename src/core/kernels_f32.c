/* kernels_f32.c - the float32 instantiation of kernels.inc (the fast path). */
#include "model_internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define REAL float
#define FN(name) name##_f32
#include "kernels.inc"
