/* kernels_f64.c - the float64 instantiation of kernels.inc (tight gradient and parity checks). */
#include "model_internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define REAL double
#define FN(name) name##_f64
#include "kernels.inc"
