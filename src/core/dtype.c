/*
 * dtype.c - element types of the file formats: sizes, names, and reading any of them as a
 * double (half precision included).
 */
#include "dtype.h"

#include <math.h>
#include <string.h>

size_t elm__dtype_size(elm__dtype t) {
    switch (t) {
    case ELM_DT_F16:
    case ELM_DT_I16:
        return 2;
    case ELM_DT_F32:
    case ELM_DT_I32:
        return 4;
    case ELM_DT_F64:
    case ELM_DT_I64:
        return 8;
    case ELM_DT_I8:
    case ELM_DT_U8:
    case ELM_DT_BOOL:
        return 1;
    }
    return 0;
}

static const char *const names[] = {"F16", "F32", "F64", "I8", "U8", "I16", "I32", "I64", "BOOL"};

const char *elm__dtype_name(elm__dtype t) {
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

int elm__dtype_parse(const char *name, elm__dtype *t) {
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i])) {
            *t = (elm__dtype)i;
            return 1;
        }
    return 0;
}

int elm__dtype_is_real(elm__dtype t) {
    return t == ELM_DT_F16 || t == ELM_DT_F32 || t == ELM_DT_F64;
}

float elm__half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) & 1, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    float v;
    if (exp == 0)
        v = ldexpf((float)man, -24);
    else if (exp == 31)
        v = man ? NAN : INFINITY;
    else
        v = ldexpf((float)(man | 0x400), (int)exp - 25);
    return sign ? -v : v;
}

uint16_t elm__float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    if (isnan(f))
        return sign | 0x7e00;
    float a = fabsf(f);
    if (a >= 65520.0f)
        return sign | 0x7c00;
    if (a < 0x1p-25f)
        return sign;
    int e;
    float m = frexpf(a, &e); /* a = m * 2^e, m in [0.5, 1) */
    if (e < -13) {           /* subnormal half: units of 2^-24, round half to even */
        float q = ldexpf(a, 24);
        float r = nearbyintf(q);
        return sign | (uint16_t)r;
    }
    float q = ldexpf(m, 11); /* 1024..2048 */
    uint32_t mi = (uint32_t)nearbyintf(q);
    if (mi == 2048) {
        mi = 1024;
        e++;
    }
    if (e + 14 >= 31)
        return sign | 0x7c00;
    return sign | (uint16_t)((uint32_t)(e + 14) << 10) | (uint16_t)(mi & 0x3ff);
}

double elm__dtype_get(elm__dtype t, const void *data, size_t i) {
    const unsigned char *p = (const unsigned char *)data + i * elm__dtype_size(t);
    switch (t) {
    case ELM_DT_F16: {
        uint16_t h;
        memcpy(&h, p, 2);
        return elm__half_to_float(h);
    }
    case ELM_DT_F32: {
        float f;
        memcpy(&f, p, 4);
        return f;
    }
    case ELM_DT_F64: {
        double d;
        memcpy(&d, p, 8);
        return d;
    }
    case ELM_DT_I8:
        return (double)(int8_t)p[0];
    case ELM_DT_U8:
    case ELM_DT_BOOL:
        return p[0];
    case ELM_DT_I16: {
        int16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    case ELM_DT_I32: {
        int32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    case ELM_DT_I64: {
        int64_t v;
        memcpy(&v, p, 8);
        return (double)v;
    }
    }
    return 0;
}
