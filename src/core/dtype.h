/*
 * dtype.h - element types of the file formats (safetensors, .npy): sizes, names, conversions.
 *
 * A leaf module: it depends on nothing else in the library, and the format readers (st.c,
 * npy.c) build on it. The model's own real type is the public elm_dtype (ELM_F32/ELM_F64).
 */
#ifndef ELM_DTYPE_H
#define ELM_DTYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    ELM_DT_F16,
    ELM_DT_F32,
    ELM_DT_F64,
    ELM_DT_I8,
    ELM_DT_U8,
    ELM_DT_I16,
    ELM_DT_I32,
    ELM_DT_I64,
    ELM_DT_BOOL
} elm__dtype;

/* Bytes per element (0 for an unknown value). */
size_t elm__dtype_size(elm__dtype t);
/* The safetensors spelling: "F32", "I64", "BOOL", ...; "?" for an unknown value. */
const char *elm__dtype_name(elm__dtype t);
/* The type a safetensors spelling names; 0 when unknown, 1 on success. */
int elm__dtype_parse(const char *name, elm__dtype *t);
/* 1 for the floating-point types (F16, F32, F64). */
int elm__dtype_is_real(elm__dtype t);
/* Element i of little-endian `data` of type t, as a double (integers above 2^53 round). */
double elm__dtype_get(elm__dtype t, const void *data, size_t i);

float elm__half_to_float(uint16_t h);
uint16_t elm__float_to_half(float f);

#endif
