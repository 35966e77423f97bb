/*
 * pickle.c - the safe pickle-subset reader declared in pickle.h.
 *
 * Invariants: the parser only ever reads inside [data, data + len) (every read is preceded by a
 * bounds check), never recurses, and allocates only amounts bounded by the file size (the memo
 * index is bounded by the file length, the stack and mark stack by fixed limits, decoded strings
 * by the length of their encoded form). Objects live in an arena freed as a whole, except the
 * growable item arrays of lists and dicts, which are tracked and freed by elm_pk_free().
 */
#include "pickle.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* A legitimate NeuronIO pickle never nests deeper than a few levels nor keeps more than ~1000
 * items (one APPENDS batch) on the stack; these limits only stop hostile files. */
#define MAX_STACK ((size_t)1 << 22)
#define MAX_MARKS ((size_t)1 << 16)
/* The largest array dimension product accepted before comparing with the data length. */
#define MAX_NUMEL ((uint64_t)1 << 40)

enum {
    G_RECONSTRUCT = 1,
    G_NDARRAY,
    G_DTYPE,
    G_SCALAR,
    G_ENCODE,
    G_BYTES,
    /* ELM_PK_TORCH */
    G_ODICT,
    G_REBUILD_V2,
    G_REBUILD_PARAM,
    G_STORAGE = 64 /* + the elm__dtype of a typed torch.*Storage class */
};

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char mem[];
} chunk;

struct elm_pk {
    char *name;
    const uint8_t *data;
    size_t len;
    void *map;
    size_t map_len;
    chunk *arena;
    elm_pk_obj **grow; /* lists and dicts whose items were malloc'd */
    size_t n_grow, cap_grow;
    int dialect; /* ELM_PK_NUMPY or ELM_PK_TORCH */
    elm_pk_val root;
};

typedef struct parser {
    elm_pk *pk;
    size_t pos;    /* offset of the next byte to read */
    size_t op_pos; /* offset of the current opcode */
    int op;
    elm_pk_val *stack;
    size_t sp, stack_cap;
    size_t *marks;
    size_t n_marks, marks_cap;
    elm_pk_val *memo;
    size_t memo_cap;
    size_t memo_n; /* entries set: MEMOIZE's next index */
} parser;

/* ---- arena --------------------------------------------------------------------------------- */

static void *arena_alloc(elm_pk *pk, size_t n) {
    n = (n + 15) & ~(size_t)15;
    chunk *c = pk->arena;
    if (!c || c->cap - c->used < n) {
        /* Chunks grow from 64 KB to 1 MB: a small pickle does not pay for a megabyte. */
        size_t base = !c ? ((size_t)1 << 16) : c->cap < ((size_t)1 << 20) ? 2 * c->cap
                                                                           : ((size_t)1 << 20);
        size_t cap = n > base ? n : base;
        chunk *nc = malloc(sizeof(chunk) + cap);
        if (!nc)
            return NULL;
        nc->used = 0;
        nc->cap = cap;
        if (c && n > ((size_t)1 << 19)) {
            /* A big block gets its own chunk behind the current one, so the current one's
             * free space stays usable. */
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            pk->arena = nc;
        }
        c = nc;
    }
    void *p = c->mem + c->used;
    c->used += n;
    return p;
}

static elm_pk_obj *new_obj(elm_pk *pk, int type) {
    elm_pk_obj *o = arena_alloc(pk, sizeof *o);
    if (o) {
        memset(o, 0, sizeof *o);
        o->type = type;
        if (type == ELM_PK_ARRAY || type == ELM_PK_DTYPE) {
            o->arr = arena_alloc(pk, sizeof *o->arr);
            if (!o->arr)
                return NULL;
            memset(o->arr, 0, sizeof *o->arr);
        } else if (type == ELM_PK_STORAGE || type == ELM_PK_TENSOR) {
            o->tensor = arena_alloc(pk, sizeof *o->tensor);
            if (!o->tensor)
                return NULL;
            memset(o->tensor, 0, sizeof *o->tensor);
        }
    }
    return o;
}

/* ---- names and errors ---------------------------------------------------------------------- */

static const char *op_name(int op) {
    switch (op) {
    case '(': return "MARK";
    case '.': return "STOP";
    case '0': return "POP";
    case '1': return "POP_MARK";
    case '2': return "DUP";
    case 'F': return "FLOAT";
    case 'I': return "INT";
    case 'J': return "BININT";
    case 'K': return "BININT1";
    case 'L': return "LONG";
    case 'M': return "BININT2";
    case 'N': return "NONE";
    case 'P': return "PERSID";
    case 'Q': return "BINPERSID";
    case 'R': return "REDUCE";
    case 'S': return "STRING";
    case 'T': return "BINSTRING";
    case 'U': return "SHORT_BINSTRING";
    case 'V': return "UNICODE";
    case 'X': return "BINUNICODE";
    case 'a': return "APPEND";
    case 'b': return "BUILD";
    case 'c': return "GLOBAL";
    case 'd': return "DICT";
    case '}': return "EMPTY_DICT";
    case 'e': return "APPENDS";
    case 'g': return "GET";
    case 'h': return "BINGET";
    case 'i': return "INST";
    case 'j': return "LONG_BINGET";
    case 'l': return "LIST";
    case ']': return "EMPTY_LIST";
    case 'o': return "OBJ";
    case 'p': return "PUT";
    case 'q': return "BINPUT";
    case 'r': return "LONG_BINPUT";
    case 's': return "SETITEM";
    case 't': return "TUPLE";
    case ')': return "EMPTY_TUPLE";
    case 'u': return "SETITEMS";
    case 'G': return "BINFLOAT";
    case 'B': return "BINBYTES";
    case 'C': return "SHORT_BINBYTES";
    case 0x80: return "PROTO";
    case 0x81: return "NEWOBJ";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 0x85: return "TUPLE1";
    case 0x86: return "TUPLE2";
    case 0x87: return "TUPLE3";
    case 0x88: return "NEWTRUE";
    case 0x89: return "NEWFALSE";
    case 0x8a: return "LONG1";
    case 0x8b: return "LONG4";
    case 0x8c: return "SHORT_BINUNICODE";
    case 0x8d: return "BINUNICODE8";
    case 0x8e: return "BINBYTES8";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x92: return "NEWOBJ_EX";
    case 0x93: return "STACK_GLOBAL";
    case 0x94: return "MEMOIZE";
    case 0x95: return "FRAME";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    default: return "unknown opcode";
    }
}

const char *elm_pk_type_name(int type) {
    switch (type) {
    case ELM_PK_NONE: return "None";
    case ELM_PK_BOOL: return "bool";
    case ELM_PK_INT: return "int";
    case ELM_PK_FLOAT: return "float";
    case ELM_PK_STR: return "str";
    case ELM_PK_BYTES: return "bytes";
    case ELM_PK_LIST: return "list";
    case ELM_PK_TUPLE: return "tuple";
    case ELM_PK_DICT: return "dict";
    case ELM_PK_ARRAY: return "numpy.ndarray";
    case ELM_PK_DTYPE: return "numpy.dtype";
    case ELM_PK_GLOBAL: return "global";
    case ELM_PK_MARK: return "mark";
    case ELM_PK_STORAGE: return "torch storage";
    case ELM_PK_TENSOR: return "torch.Tensor";
    default: return "?";
    }
}

static int val_type(const elm_pk_val *v) {
    return v->type;
}

ELM_PRINTF(3, 4)
static elm_status perr(parser *P, elm_status code, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return elm__fail(code, "%s: pickle opcode %s (0x%02x) at byte offset %zu: %s", P->pk->name,
                     op_name(P->op), (unsigned)P->op, P->op_pos, msg);
}

static elm_status nomem(parser *P) {
    return perr(P, ELM_ERR_NOMEM, "out of memory");
}

/* ---- reading bytes ------------------------------------------------------------------------- */

static elm_status need(parser *P, size_t n, const uint8_t **p) {
    if (n > P->pk->len - P->pos)
        return perr(P, ELM_ERR_FORMAT,
                    "needs %zu more bytes but the file ends %zu bytes later (truncated?)", n,
                    P->pk->len - P->pos);
    *p = P->pk->data + P->pos;
    P->pos += n;
    return ELM_OK;
}

static uint64_t le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* A protocol-0 argument: the bytes up to the next newline (excluded). */
static elm_status read_line(parser *P, const uint8_t **line, size_t *n) {
    const uint8_t *start = P->pk->data + P->pos;
    size_t left = P->pk->len - P->pos;
    const uint8_t *nl = memchr(start, '\n', left);
    if (!nl)
        return perr(P, ELM_ERR_FORMAT, "no end of line before the end of the file (truncated?)");
    *line = start;
    *n = (size_t)(nl - start);
    P->pos += *n + 1;
    return ELM_OK;
}

/* ---- the stack ----------------------------------------------------------------------------- */

static elm_status push(parser *P, elm_pk_val v) {
    if (P->sp == P->stack_cap) {
        if (P->stack_cap >= MAX_STACK)
            return perr(P, ELM_ERR_FORMAT, "stack deeper than %zu entries", MAX_STACK);
        size_t nc = P->stack_cap ? P->stack_cap * 2 : 1024;
        elm_pk_val *ns = realloc(P->stack, nc * sizeof *ns);
        if (!ns)
            return nomem(P);
        P->stack = ns;
        P->stack_cap = nc;
    }
    P->stack[P->sp++] = v;
    return ELM_OK;
}

static elm_status push_obj(parser *P, elm_pk_obj *o) {
    if (!o)
        return nomem(P);
    elm_pk_val v = {o->type, {0}};
    v.u.o = o;
    return push(P, v);
}

/* The items above the innermost mark start at this index. */
static size_t mark_floor(const parser *P) {
    return P->n_marks ? P->marks[P->n_marks - 1] : 0;
}

static elm_status pop(parser *P, elm_pk_val *v) {
    if (P->sp <= mark_floor(P))
        return perr(P, ELM_ERR_FORMAT, "stack underflow");
    *v = P->stack[--P->sp];
    return ELM_OK;
}

static elm_status top(parser *P, elm_pk_val **v) {
    if (P->sp <= mark_floor(P))
        return perr(P, ELM_ERR_FORMAT, "stack underflow");
    *v = &P->stack[P->sp - 1];
    return ELM_OK;
}

static elm_status pop_mark(parser *P, size_t *start) {
    if (!P->n_marks)
        return perr(P, ELM_ERR_FORMAT, "no MARK to pop");
    *start = P->marks[--P->n_marks];
    return ELM_OK;
}

static elm_status track_growable(parser *P, elm_pk_obj *o) {
    elm_pk *pk = P->pk;
    if (pk->n_grow == pk->cap_grow) {
        size_t nc = pk->cap_grow ? pk->cap_grow * 2 : 256;
        elm_pk_obj **ng = realloc(pk->grow, nc * sizeof *ng);
        if (!ng)
            return nomem(P);
        pk->grow = ng;
        pk->cap_grow = nc;
    }
    pk->grow[pk->n_grow++] = o;
    return ELM_OK;
}

/* Appends n values to a list (n) or dict (2n values = n pairs). */
static elm_status seq_append(parser *P, elm_pk_obj *o, const elm_pk_val *v, size_t nvals) {
    size_t have = o->type == ELM_PK_DICT ? 2 * o->len : o->len;
    if (have + nvals > o->cap) {
        size_t nc = o->cap ? o->cap : 8;
        while (nc < have + nvals)
            nc *= 2;
        int first = o->cap == 0;
        elm_pk_val *ni = realloc(o->items, nc * sizeof *ni);
        if (!ni)
            return nomem(P);
        o->items = ni;
        o->cap = nc;
        if (first) {
            elm_status st = track_growable(P, o);
            if (st != ELM_OK)
                return st;
        }
    }
    memcpy(o->items + have, v, nvals * sizeof *v);
    o->len += o->type == ELM_PK_DICT ? nvals / 2 : nvals;
    return ELM_OK;
}

static elm_pk_obj *new_tuple(parser *P, const elm_pk_val *v, size_t n) {
    elm_pk_obj *o = new_obj(P->pk, ELM_PK_TUPLE);
    if (!o)
        return NULL;
    if (n) {
        o->items = arena_alloc(P->pk, n * sizeof *v);
        if (!o->items)
            return NULL;
        memcpy(o->items, v, n * sizeof *v);
    }
    o->len = n;
    return o;
}

/* ---- memo ---------------------------------------------------------------------------------- */

static elm_status memo_put(parser *P, uint64_t idx) {
    elm_pk_val *t = NULL;
    elm_status st = top(P, &t);
    if (st != ELM_OK)
        return st;
    /* Each PUT takes at least two bytes, so a valid index is below the file length. */
    if (idx > P->pk->len)
        return perr(P, ELM_ERR_FORMAT, "memo index %llu is beyond what a %zu-byte file can hold",
                    (unsigned long long)idx, P->pk->len);
    if (idx >= P->memo_cap) {
        size_t nc = P->memo_cap ? P->memo_cap : 1024;
        while (nc <= idx)
            nc *= 2;
        elm_pk_val *nm = realloc(P->memo, nc * sizeof *nm);
        if (!nm)
            return nomem(P);
        for (size_t i = P->memo_cap; i < nc; i++)
            nm[i].type = -1;
        P->memo = nm;
        P->memo_cap = nc;
    }
    if (P->memo[idx].type < 0)
        P->memo_n++;
    P->memo[idx] = *t;
    return ELM_OK;
}

static elm_status memo_get(parser *P, uint64_t idx) {
    if (idx >= P->memo_cap || P->memo[idx].type < 0)
        return perr(P, ELM_ERR_FORMAT, "memo index %llu was never stored",
                    (unsigned long long)idx);
    return push(P, P->memo[idx]);
}

/* ---- protocol-0 text arguments --------------------------------------------------------------- */

static elm_status parse_decimal(parser *P, const uint8_t *s, size_t n, int allow_l, int64_t *out) {
    char buf[32];
    if (allow_l && n > 0 && s[n - 1] == 'L')
        n--;
    if (n == 0 || n >= sizeof buf)
        return perr(P, ELM_ERR_FORMAT, "malformed or oversized integer (%zu characters)", n);
    memcpy(buf, s, n);
    buf[n] = 0;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (*end || errno)
        return perr(P, ELM_ERR_FORMAT, "malformed or out-of-range integer '%s'", buf);
    *out = v;
    return ELM_OK;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* STRING 'S': a quoted Python 2 repr with backslash escapes (codecs.escape_decode rules). */
static elm_status parse_string0(parser *P, const uint8_t *s, size_t n, elm_pk_obj **out) {
    if (n < 2 || (s[0] != '\'' && s[0] != '"') || s[n - 1] != s[0])
        return perr(P, ELM_ERR_FORMAT, "STRING argument is not quoted");
    s++;
    n -= 2;
    uint8_t *d = arena_alloc(P->pk, n + 1);
    if (!d)
        return nomem(P);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            d[k++] = s[i];
            continue;
        }
        if (++i >= n)
            return perr(P, ELM_ERR_FORMAT, "STRING ends with a lone backslash");
        int c = s[i];
        switch (c) {
        case '\n': break; /* line continuation */
        case '\\': d[k++] = '\\'; break;
        case '\'': d[k++] = '\''; break;
        case '"': d[k++] = '"'; break;
        case 'a': d[k++] = 7; break;
        case 'b': d[k++] = 8; break;
        case 'f': d[k++] = 12; break;
        case 'n': d[k++] = 10; break;
        case 'r': d[k++] = 13; break;
        case 't': d[k++] = 9; break;
        case 'v': d[k++] = 11; break;
        case 'x': {
            int h1 = i + 1 < n ? hexval(s[i + 1]) : -1, h2 = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (h1 < 0 || h2 < 0)
                return perr(P, ELM_ERR_FORMAT, "invalid \\x escape in STRING");
            d[k++] = (uint8_t)(h1 * 16 + h2);
            i += 2;
            break;
        }
        default:
            if (c >= '0' && c <= '7') {
                int v = c - '0', m = 1;
                while (m < 3 && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '7') {
                    v = v * 8 + (s[++i] - '0');
                    m++;
                }
                d[k++] = (uint8_t)(v & 0xff);
            } else {
                /* Unknown escapes keep their backslash, as Python does. */
                d[k++] = '\\';
                d[k++] = (uint8_t)c;
            }
        }
    }
    elm_pk_obj *o = new_obj(P->pk, ELM_PK_STR);
    if (!o)
        return nomem(P);
    o->bytes = d;
    o->len = k;
    *out = o;
    return ELM_OK;
}

static size_t put_utf8(uint8_t *d, uint32_t cp) {
    if (cp < 0x80) {
        d[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (uint8_t)(0xc0 | (cp >> 6));
        d[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (uint8_t)(0xe0 | (cp >> 12));
        d[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        d[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    d[0] = (uint8_t)(0xf0 | (cp >> 18));
    d[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    d[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    d[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

/* UNICODE 'V': raw-unicode-escape (latin-1 bytes plus \uXXXX and \UXXXXXXXX), stored as UTF-8. */
static elm_status parse_unicode0(parser *P, const uint8_t *s, size_t n, elm_pk_obj **out) {
    if (n > SIZE_MAX / 4)
        return nomem(P);
    uint8_t *d = arena_alloc(P->pk, 2 * n + 1);
    if (!d)
        return nomem(P);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n && (s[i + 1] == 'u' || s[i + 1] == 'U')) {
            int digits = s[i + 1] == 'u' ? 4 : 8;
            uint32_t cp = 0;
            if (i + 2 + (size_t)digits > n)
                return perr(P, ELM_ERR_FORMAT, "truncated \\u escape in UNICODE");
            for (int j = 0; j < digits; j++) {
                int h = hexval(s[i + 2 + (size_t)j]);
                if (h < 0)
                    return perr(P, ELM_ERR_FORMAT, "invalid \\u escape in UNICODE");
                cp = cp * 16 + (uint32_t)h;
            }
            if (cp > 0x10ffff)
                return perr(P, ELM_ERR_FORMAT, "code point beyond U+10FFFF in UNICODE");
            /* 6 or 10 escape bytes become at most 4 UTF-8 bytes: stays within 2n. */
            k += put_utf8(d + k, cp);
            i += 1 + (size_t)digits;
        } else {
            k += put_utf8(d + k, s[i]);
        }
    }
    elm_pk_obj *o = new_obj(P->pk, ELM_PK_STR);
    if (!o)
        return nomem(P);
    o->bytes = d;
    o->len = k;
    o->unicode = 1;
    *out = o;
    return ELM_OK;
}

/* ---- numpy and friends --------------------------------------------------------------------- */

static int is_strlike(const elm_pk_val *v) {
    return v->type == ELM_PK_STR || v->type == ELM_PK_BYTES;
}

static int str_eq(const elm_pk_val *v, const char *s) {
    size_t n = strlen(s);
    return is_strlike(v) && v->u.o->len == n && memcmp(v->u.o->bytes, s, n) == 0;
}

static elm_status lookup_global(parser *P, const uint8_t *mod, size_t nm, const uint8_t *name,
                                size_t nn) {
    static const struct {
        const char *mod, *name;
        int id;
    } torch_allowed[] = {
        {"collections", "OrderedDict", G_ODICT},
        {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_V2},
        {"torch._utils", "_rebuild_parameter", G_REBUILD_PARAM},
        {"torch", "HalfStorage", G_STORAGE + ELM_DT_F16},
        {"torch", "FloatStorage", G_STORAGE + ELM_DT_F32},
        {"torch", "DoubleStorage", G_STORAGE + ELM_DT_F64},
        {"torch", "CharStorage", G_STORAGE + ELM_DT_I8},
        {"torch", "ByteStorage", G_STORAGE + ELM_DT_U8},
        {"torch", "ShortStorage", G_STORAGE + ELM_DT_I16},
        {"torch", "IntStorage", G_STORAGE + ELM_DT_I32},
        {"torch", "LongStorage", G_STORAGE + ELM_DT_I64},
        {"torch", "BoolStorage", G_STORAGE + ELM_DT_BOOL},
    };
    if (P->pk->dialect == ELM_PK_TORCH) {
        for (size_t i = 0; i < sizeof torch_allowed / sizeof torch_allowed[0]; i++) {
            if (strlen(torch_allowed[i].mod) == nm && !memcmp(torch_allowed[i].mod, mod, nm) &&
                strlen(torch_allowed[i].name) == nn && !memcmp(torch_allowed[i].name, name, nn)) {
                elm_pk_obj *o = new_obj(P->pk, ELM_PK_GLOBAL);
                if (!o)
                    return nomem(P);
                o->global = torch_allowed[i].id;
                return push_obj(P, o);
            }
        }
    }
    static const struct {
        const char *mod, *name;
        int id;
    } allowed[] = {
        {"numpy.core.multiarray", "_reconstruct", G_RECONSTRUCT},
        {"numpy._core.multiarray", "_reconstruct", G_RECONSTRUCT},
        {"numpy", "ndarray", G_NDARRAY},
        {"numpy", "dtype", G_DTYPE},
        {"numpy.core.multiarray", "scalar", G_SCALAR},
        {"numpy._core.multiarray", "scalar", G_SCALAR},
        {"_codecs", "encode", G_ENCODE},
        {"__builtin__", "bytes", G_BYTES},
        {"builtins", "bytes", G_BYTES},
    };
    for (size_t i = 0; P->pk->dialect == ELM_PK_NUMPY && i < sizeof allowed / sizeof allowed[0];
         i++) {
        if (strlen(allowed[i].mod) == nm && !memcmp(allowed[i].mod, mod, nm) &&
            strlen(allowed[i].name) == nn && !memcmp(allowed[i].name, name, nn)) {
            elm_pk_obj *o = new_obj(P->pk, ELM_PK_GLOBAL);
            if (!o)
                return nomem(P);
            o->global = allowed[i].id;
            return push_obj(P, o);
        }
    }
    char m[80], n[80];
    snprintf(m, sizeof m, "%.*s", (int)(nm < 60 ? nm : 60), (const char *)mod);
    snprintf(n, sizeof n, "%.*s", (int)(nn < 60 ? nn : 60), (const char *)name);
    for (char *c = m; *c; c++)
        if ((unsigned char)*c < 32 || (unsigned char)*c > 126)
            *c = '?';
    for (char *c = n; *c; c++)
        if ((unsigned char)*c < 32 || (unsigned char)*c > 126)
            *c = '?';
    if (P->pk->dialect == ELM_PK_TORCH)
        return perr(P, ELM_ERR_UNSUPPORTED,
                    "refusing global '%s.%s': a state dict may only use collections.OrderedDict, "
                    "torch._utils._rebuild_tensor_v2 / _rebuild_parameter and the typed "
                    "torch.*Storage classes (BFloat16, complex and quantized tensors are not "
                    "supported either)",
                    m, n);
    return perr(P, ELM_ERR_UNSUPPORTED,
                "refusing global '%s.%s': only numpy arrays, dtypes and scalars, "
                "_codecs.encode and bytes may appear in a NeuronIO file",
                m, n);
}

/* numpy dtype strings: optional byte order, kind, size ("f8", "<f2", "i8", "|b1"). */
static elm_status parse_dtype_str(parser *P, const elm_pk_val *v, int *dtype, int *swap) {
    if (!is_strlike(v))
        return perr(P, ELM_ERR_FORMAT, "dtype() takes a type string, got %s",
                    elm_pk_type_name(v->type));
    const uint8_t *s = v->u.o->bytes;
    size_t n = v->u.o->len;
    *swap = 0;
    if (n && (s[0] == '<' || s[0] == '>' || s[0] == '|' || s[0] == '=')) {
        *swap = s[0] == '>';
        s++;
        n--;
    }
    static const struct {
        const char *s;
        int t;
    } map[] = {{"f2", ELM_DT_F16}, {"f4", ELM_DT_F32}, {"f8", ELM_DT_F64}, {"i1", ELM_DT_I8},
               {"u1", ELM_DT_U8},  {"i2", ELM_DT_I16}, {"i4", ELM_DT_I32}, {"i8", ELM_DT_I64},
               {"b1", ELM_DT_BOOL}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (n == 2 && !memcmp(s, map[i].s, 2)) {
            *dtype = map[i].t;
            return ELM_OK;
        }
    return perr(P, ELM_ERR_UNSUPPORTED, "unsupported numpy dtype '%.*s'",
                (int)(v->u.o->len < 16 ? v->u.o->len : 16), (const char *)v->u.o->bytes);
}

static uint64_t load_swapped(const uint8_t *p, size_t size, int swap) {
    uint64_t v = 0;
    for (size_t i = 0; i < size; i++) {
        size_t j = swap ? i : size - 1 - i;
        v = (v << 8) | p[j];
    }
    return v;
}

static double decode_elem(const uint8_t *p, int dtype, int swap) {
    size_t size = elm__dtype_size((elm__dtype)dtype);
    uint64_t u = load_swapped(p, size, swap);
    switch (dtype) {
    case ELM_DT_F16: return (double)elm__half_to_float((uint16_t)u);
    case ELM_DT_F32: {
        uint32_t w = (uint32_t)u;
        float f;
        memcpy(&f, &w, 4);
        return (double)f;
    }
    case ELM_DT_F64: {
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    case ELM_DT_I8: return (double)(int8_t)u;
    case ELM_DT_U8: return (double)(uint8_t)u;
    case ELM_DT_I16: return (double)(int16_t)u;
    case ELM_DT_I32: return (double)(int32_t)u;
    case ELM_DT_I64: return (double)(int64_t)u;
    case ELM_DT_BOOL: return u ? 1.0 : 0.0;
    }
    return NAN;
}

double elm_pk_array_get(const elm_pk_array *a, size_t i) {
    size_t size = elm__dtype_size((elm__dtype)a->dtype);
    return decode_elem(a->data + i * size, a->dtype, a->swap);
}

/* ---- torch state dicts (ELM_PK_TORCH) -------------------------------------------------------- */

/* A size or stride tuple: at most ELM_PK_MAXDIM ints in [0, MAX_NUMEL]. */
static elm_status int_tuple(parser *P, const elm_pk_val *v, const char *what, int64_t *out,
                            int *n) {
    if (v->type != ELM_PK_TUPLE)
        return perr(P, ELM_ERR_FORMAT, "tensor %s is a %s, not a tuple", what,
                    elm_pk_type_name(v->type));
    if (v->u.o->len > ELM_PK_MAXDIM)
        return perr(P, ELM_ERR_UNSUPPORTED, "tensor %s has %zu dimensions (at most %d)", what,
                    v->u.o->len, ELM_PK_MAXDIM);
    for (size_t i = 0; i < v->u.o->len; i++) {
        const elm_pk_val *d = &v->u.o->items[i];
        if (d->type != ELM_PK_INT || d->u.i < 0 || (uint64_t)d->u.i > MAX_NUMEL)
            return perr(P, ELM_ERR_FORMAT, "tensor %s[%zu] is not an integer in [0, 2^40]", what,
                        i);
        out[i] = d->u.i;
    }
    *n = (int)v->u.o->len;
    return ELM_OK;
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks
 * [, metadata]): checked to be a view that lies inside its storage and holds no more elements
 * than the storage does (so copying every tensor costs no more than the storages' bytes). */
static elm_status rebuild_tensor(parser *P, const elm_pk_val *a, size_t na) {
    if (na != 6 && na != 7)
        return perr(P, ELM_ERR_FORMAT,
                    "_rebuild_tensor_v2 takes (storage, offset, size, stride, requires_grad, "
                    "backward_hooks[, metadata]), got %zu arguments",
                    na);
    if (a[0].type != ELM_PK_STORAGE)
        return perr(P, ELM_ERR_FORMAT, "_rebuild_tensor_v2's storage is a %s, not a storage",
                    elm_pk_type_name(a[0].type));
    if (a[1].type != ELM_PK_INT || a[1].u.i < 0 || (uint64_t)a[1].u.i > MAX_NUMEL)
        return perr(P, ELM_ERR_FORMAT, "tensor storage offset is not an integer in [0, 2^40]");
    if (a[4].type != ELM_PK_BOOL && a[4].type != ELM_PK_INT)
        return perr(P, ELM_ERR_FORMAT, "tensor requires_grad is a %s, not a bool",
                    elm_pk_type_name(a[4].type));
    if (a[5].type != ELM_PK_DICT || a[5].u.o->len != 0)
        return perr(P, ELM_ERR_UNSUPPORTED, "tensor backward hooks must be an empty OrderedDict");
    if (na == 7 && a[6].type != ELM_PK_NONE && (a[6].type != ELM_PK_DICT || a[6].u.o->len != 0))
        return perr(P, ELM_ERR_UNSUPPORTED,
                    "tensor metadata (conjugate or negative bits, or the like) is not supported");
    elm_pk_obj *o = new_obj(P->pk, ELM_PK_TENSOR);
    if (!o)
        return nomem(P);
    elm_pk_tensor *t = o->tensor;
    *t = *a[0].u.o->tensor;
    t->offset = a[1].u.i;
    int nst = 0;
    elm_status st = int_tuple(P, &a[2], "size", t->shape, &t->ndim);
    if (st == ELM_OK)
        st = int_tuple(P, &a[3], "stride", t->stride, &nst);
    if (st != ELM_OK)
        return st;
    if (nst != t->ndim)
        return perr(P, ELM_ERR_FORMAT, "tensor has %d sizes but %d strides", t->ndim, nst);
    /* Element count and the last element's index, without overflow: every factor is at most 2^40
     * and every product is checked against 2^40 before it is formed. */
    uint64_t numel = 1, last = (uint64_t)t->offset;
    for (int i = 0; i < t->ndim; i++) {
        uint64_t n = (uint64_t)t->shape[i], s = (uint64_t)t->stride[i];
        if (n && numel > MAX_NUMEL / n)
            return perr(P, ELM_ERR_FORMAT, "tensor size is absurdly large");
        numel *= n;
        if (n > 1 && s > MAX_NUMEL / (n - 1))
            return perr(P, ELM_ERR_FORMAT, "tensor stride is absurdly large");
        last += n ? (n - 1) * s : 0;
    }
    if (numel && last >= (uint64_t)t->storage_numel)
        return perr(P, ELM_ERR_FORMAT,
                    "tensor reaches element %llu of its storage, which holds %lld elements",
                    (unsigned long long)last, (long long)t->storage_numel);
    if (numel > (uint64_t)t->storage_numel)
        return perr(P, ELM_ERR_UNSUPPORTED,
                    "tensor of %llu elements views a storage of %lld (overlapping views, as "
                    "from expand(), are not accepted)",
                    (unsigned long long)numel, (long long)t->storage_numel);
    return push_obj(P, o);
}

/* BINPERSID's id: ('storage', torch.<Type>Storage, key, location, numel). */
static elm_status torch_persid(parser *P) {
    elm_pk_val pid = {0};
    elm_status st = pop(P, &pid);
    if (st != ELM_OK)
        return st;
    const elm_pk_val *a = pid.type == ELM_PK_TUPLE ? pid.u.o->items : NULL;
    if (!a || pid.u.o->len != 5 || !str_eq(&a[0], "storage"))
        return perr(P, ELM_ERR_FORMAT,
                    "persistent id is not ('storage', type, key, location, numel)");
    if (a[1].type != ELM_PK_GLOBAL || a[1].u.o->global < G_STORAGE)
        return perr(P, ELM_ERR_FORMAT, "persistent id names a %s, not a torch.*Storage class",
                    elm_pk_type_name(a[1].type));
    /* The key names an archive record: torch writes decimal numbers. Nothing that could climb
     * out of the archive's data/ folder is accepted. */
    if (a[2].type != ELM_PK_STR || a[2].u.o->len < 1 || a[2].u.o->len > 64)
        return perr(P, ELM_ERR_FORMAT, "storage key is not a short string");
    for (size_t i = 0; i < a[2].u.o->len; i++) {
        uint8_t c = a[2].u.o->bytes[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '_'))
            return perr(P, ELM_ERR_FORMAT,
                        "storage key holds a character other than letters, digits and '_'");
    }
    if (a[3].type != ELM_PK_STR)
        return perr(P, ELM_ERR_FORMAT, "storage location is a %s, not a string",
                    elm_pk_type_name(a[3].type));
    if (a[4].type != ELM_PK_INT || a[4].u.i < 0 || (uint64_t)a[4].u.i > MAX_NUMEL)
        return perr(P, ELM_ERR_FORMAT, "storage size is not an integer in [0, 2^40]");
    elm_pk_obj *o = new_obj(P->pk, ELM_PK_STORAGE);
    if (!o)
        return nomem(P);
    o->tensor->dtype = a[1].u.o->global - G_STORAGE;
    o->tensor->key = a[2].u.o->bytes;
    o->tensor->key_len = a[2].u.o->len;
    o->tensor->storage_numel = a[4].u.i;
    return push_obj(P, o);
}

static elm_status torch_reduce(parser *P, int g, const elm_pk_val *a, size_t na) {
    switch (g) {
    case G_ODICT:
        /* OrderedDict(): its items follow by SETITEMS. */
        if (na != 0)
            return perr(P, ELM_ERR_UNSUPPORTED,
                        "OrderedDict is only accepted called without arguments");
        return push_obj(P, new_obj(P->pk, ELM_PK_DICT));
    case G_REBUILD_V2:
        return rebuild_tensor(P, a, na);
    case G_REBUILD_PARAM:
        /* _rebuild_parameter(data, requires_grad, backward_hooks): the tensor itself. */
        if (na != 3 || a[0].type != ELM_PK_TENSOR || a[2].type != ELM_PK_DICT ||
            a[2].u.o->len != 0)
            return perr(P, ELM_ERR_FORMAT,
                        "_rebuild_parameter takes (tensor, requires_grad, empty hooks)");
        return push(P, a[0]);
    default:
        return perr(P, ELM_ERR_UNSUPPORTED, "this global cannot be called");
    }
}

/* numpy's scalar(dtype, bytes): one value of the dtype. */
static elm_status reduce_scalar(parser *P, const elm_pk_val *a, size_t na) {
    if (na != 2 || a[0].type != ELM_PK_DTYPE || !is_strlike(&a[1]))
        return perr(P, ELM_ERR_FORMAT, "numpy scalar() needs (dtype, bytes)");
    const elm_pk_array *d = a[0].u.o->arr;
    size_t size = elm__dtype_size((elm__dtype)d->dtype);
    if (a[1].u.o->len != size)
        return perr(P, ELM_ERR_FORMAT, "numpy scalar of %zu-byte dtype holds %zu bytes", size,
                    a[1].u.o->len);
    elm_pk_val v = {ELM_PK_INT, {0}};
    const uint8_t *p = a[1].u.o->bytes;
    if (d->dtype == ELM_DT_F16 || d->dtype == ELM_DT_F32 || d->dtype == ELM_DT_F64) {
        v.type = ELM_PK_FLOAT;
        v.u.f = decode_elem(p, d->dtype, d->swap);
    } else if (d->dtype == ELM_DT_BOOL) {
        v.type = ELM_PK_BOOL;
        v.u.i = p[0] != 0;
    } else if (d->dtype == ELM_DT_I64) {
        v.u.i = (int64_t)load_swapped(p, 8, d->swap);
    } else {
        v.u.i = (int64_t)decode_elem(p, d->dtype, d->swap);
    }
    return push(P, v);
}

/* _codecs.encode(text, 'latin1'): each code point 0..255 becomes one byte. */
static elm_status reduce_encode(parser *P, const elm_pk_val *a, size_t na) {
    if (na != 2 || a[0].type != ELM_PK_STR || !a[0].u.o->unicode ||
        !(str_eq(&a[1], "latin1") || str_eq(&a[1], "latin-1") || str_eq(&a[1], "iso-8859-1")))
        return perr(P, ELM_ERR_UNSUPPORTED,
                    "_codecs.encode is only accepted as encode(text, 'latin1')");
    const uint8_t *s = a[0].u.o->bytes;
    size_t n = a[0].u.o->len, k = 0;
    uint8_t *d = arena_alloc(P->pk, n + 1);
    if (!d)
        return nomem(P);
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x80) {
            d[k++] = s[i++];
        } else if ((s[i] & 0xe0) == 0xc0 && i + 1 < n && (s[i + 1] & 0xc0) == 0x80) {
            unsigned cp = ((unsigned)(s[i] & 0x1f) << 6) | (s[i + 1] & 0x3f);
            if (cp > 0xff)
                return perr(P, ELM_ERR_FORMAT, "code point U+%04X cannot be encoded as latin1", cp);
            d[k++] = (uint8_t)cp;
            i += 2;
        } else {
            return perr(P, ELM_ERR_FORMAT,
                        "text for latin1 encoding holds a character beyond U+00FF or "
                        "invalid UTF-8");
        }
    }
    elm_pk_obj *o = new_obj(P->pk, ELM_PK_BYTES);
    if (!o)
        return nomem(P);
    o->bytes = d;
    o->len = k;
    return push_obj(P, o);
}

static elm_status do_reduce(parser *P) {
    elm_pk_val args = {0}, fn = {0};
    elm_status st = pop(P, &args);
    if (st == ELM_OK)
        st = pop(P, &fn);
    if (st != ELM_OK)
        return st;
    if (fn.type != ELM_PK_GLOBAL)
        return perr(P, ELM_ERR_UNSUPPORTED, "REDUCE on a %s, not a whitelisted global",
                    elm_pk_type_name(fn.type));
    if (args.type != ELM_PK_TUPLE)
        return perr(P, ELM_ERR_FORMAT, "REDUCE arguments are a %s, not a tuple",
                    elm_pk_type_name(args.type));
    const elm_pk_val *a = args.u.o->items;
    size_t na = args.u.o->len;
    if (P->pk->dialect == ELM_PK_TORCH)
        return torch_reduce(P, fn.u.o->global, a, na);
    switch (fn.u.o->global) {
    case G_SCALAR:
        return reduce_scalar(P, a, na);
    case G_ENCODE:
        return reduce_encode(P, a, na);
    case G_RECONSTRUCT: {
        /* _reconstruct(ndarray, (0,), b'b'): an empty array that BUILD fills in. */
        if (na != 3 || a[0].type != ELM_PK_GLOBAL || a[0].u.o->global != G_NDARRAY)
            return perr(P, ELM_ERR_UNSUPPORTED,
                        "numpy _reconstruct is only accepted as _reconstruct(ndarray, shape, "
                        "typecode)");
        return push_obj(P, new_obj(P->pk, ELM_PK_ARRAY));
    }
    case G_DTYPE: {
        if (na < 1)
            return perr(P, ELM_ERR_FORMAT, "dtype() without arguments");
        int dt = 0, swap = 0;
        if ((st = parse_dtype_str(P, &a[0], &dt, &swap)) != ELM_OK)
            return st;
        elm_pk_obj *o = new_obj(P->pk, ELM_PK_DTYPE);
        if (!o)
            return nomem(P);
        o->arr->dtype = dt;
        o->arr->swap = swap;
        return push_obj(P, o);
    }
    case G_BYTES: {
        if (na == 0) {
            elm_pk_obj *o = new_obj(P->pk, ELM_PK_BYTES);
            if (!o)
                return nomem(P);
            o->bytes = (const uint8_t *)"";
            return push_obj(P, o);
        }
        if (na == 1 && a[0].type == ELM_PK_BYTES)
            return push(P, a[0]);
        return perr(P, ELM_ERR_UNSUPPORTED, "bytes() is only accepted without arguments");
    }
    default:
        return perr(P, ELM_ERR_UNSUPPORTED, "this global cannot be called");
    }
}

static elm_status build_array(parser *P, elm_pk_array *arr, const elm_pk_val *state) {
    if (state->type != ELM_PK_TUPLE || (state->u.o->len != 5 && state->u.o->len != 4))
        return perr(P, ELM_ERR_FORMAT,
                    "ndarray state must be a tuple (version, shape, dtype, fortran, data)");
    const elm_pk_val *s = state->u.o->items;
    if (state->u.o->len == 5)
        s++; /* skip the version number */
    if (s[0].type != ELM_PK_TUPLE)
        return perr(P, ELM_ERR_FORMAT, "ndarray shape is a %s, not a tuple",
                    elm_pk_type_name(s[0].type));
    size_t nd = s[0].u.o->len;
    if (nd > ELM_PK_MAXDIM)
        return perr(P, ELM_ERR_UNSUPPORTED, "ndarray with %zu dimensions", nd);
    uint64_t numel = 1;
    for (size_t i = 0; i < nd; i++) {
        const elm_pk_val *d = &s[0].u.o->items[i];
        if (d->type != ELM_PK_INT || d->u.i < 0)
            return perr(P, ELM_ERR_FORMAT, "ndarray dimension %zu is not a non-negative int", i);
        arr->shape[i] = d->u.i;
        /* Refuse absurd sizes before any arithmetic can overflow. */
        if ((uint64_t)d->u.i > MAX_NUMEL || (d->u.i && numel > MAX_NUMEL / (uint64_t)d->u.i))
            return perr(P, ELM_ERR_FORMAT, "ndarray shape is absurdly large");
        numel *= (uint64_t)d->u.i;
    }
    if (s[1].type != ELM_PK_DTYPE)
        return perr(P, ELM_ERR_FORMAT, "ndarray dtype is a %s", elm_pk_type_name(s[1].type));
    int fortran = (s[2].type == ELM_PK_BOOL || s[2].type == ELM_PK_INT) && s[2].u.i != 0;
    if (fortran && nd > 1)
        return perr(P, ELM_ERR_UNSUPPORTED, "Fortran-ordered arrays are not supported");
    if (!(s[3].type == ELM_PK_BYTES || (s[3].type == ELM_PK_STR && !s[3].u.o->unicode)))
        return perr(P, ELM_ERR_UNSUPPORTED, "ndarray data is a %s (object arrays unsupported)",
                    s[3].type == ELM_PK_STR ? "text string" : elm_pk_type_name(s[3].type));
    size_t size = elm__dtype_size((elm__dtype)s[1].u.o->arr->dtype);
    if (numel > P->pk->len / size + 1 || s[3].u.o->len != numel * size)
        return perr(P, ELM_ERR_FORMAT,
                    "ndarray of %llu elements of %zu bytes has %zu data bytes",
                    (unsigned long long)numel, size, s[3].u.o->len);
    arr->ndim = (int)nd;
    arr->numel = (size_t)numel;
    arr->dtype = s[1].u.o->arr->dtype;
    arr->swap = s[1].u.o->arr->swap && size > 1;
    arr->data = s[3].u.o->bytes;
    arr->built = 1;
    return ELM_OK;
}

static elm_status do_build(parser *P) {
    elm_pk_val state = {0}, *t = NULL;
    elm_status st = pop(P, &state);
    if (st == ELM_OK)
        st = top(P, &t);
    if (st != ELM_OK)
        return st;
    if (t->type == ELM_PK_ARRAY && !t->u.o->arr->built)
        return build_array(P, t->u.o->arr, &state);
    /* A state dict's attributes (its _metadata: module versions) are of no use here. */
    if (P->pk->dialect == ELM_PK_TORCH && t->type == ELM_PK_DICT &&
        (state.type == ELM_PK_DICT || state.type == ELM_PK_NONE))
        return ELM_OK;
    if (t->type == ELM_PK_DTYPE) {
        /* (version, byteorder, subarray, names, fields, elsize, alignment, flags): only the byte
         * order matters for the plain numeric types accepted. */
        if (state.type != ELM_PK_TUPLE || state.u.o->len < 2 || !is_strlike(&state.u.o->items[1]))
            return perr(P, ELM_ERR_FORMAT, "dtype state must be a tuple with a byte order");
        const elm_pk_val *bo = &state.u.o->items[1];
        if (str_eq(bo, ">"))
            t->u.o->arr->swap = 1;
        else if (str_eq(bo, "<") || str_eq(bo, "|") || str_eq(bo, "="))
            t->u.o->arr->swap = 0;
        else
            return perr(P, ELM_ERR_FORMAT, "unknown dtype byte order");
        return ELM_OK;
    }
    return perr(P, ELM_ERR_UNSUPPORTED, "BUILD on a %s", elm_pk_type_name(t->type));
}

/* ---- the main loop ------------------------------------------------------------------------- */

static elm_status push_str(parser *P, const uint8_t *p, size_t n, int type, int unicode) {
    elm_pk_obj *o = new_obj(P->pk, type);
    if (!o)
        return nomem(P);
    o->bytes = p;
    o->len = n;
    o->unicode = unicode;
    return push_obj(P, o);
}

static elm_status push_int(parser *P, int type, int64_t i) {
    elm_pk_val v = {type, {0}};
    v.u.i = i;
    return push(P, v);
}

/* MARK, POP, POP_MARK and DUP: the stack itself. */
static elm_status op_stack(parser *P) {
    elm_status st = ELM_OK;
    switch (P->op) {
    case '(':
        if (P->n_marks == P->marks_cap) {
            if (P->marks_cap >= MAX_MARKS)
                return perr(P, ELM_ERR_FORMAT, "more than %zu nested MARKs", MAX_MARKS);
            size_t nc = P->marks_cap ? P->marks_cap * 2 : 64;
            size_t *nm = realloc(P->marks, nc * sizeof *nm);
            if (!nm)
                return nomem(P);
            P->marks = nm;
            P->marks_cap = nc;
        }
        P->marks[P->n_marks++] = P->sp;
        break;
    case '0': { /* POP */
        elm_pk_val v = {0};
        if (P->sp > mark_floor(P))
            st = pop(P, &v);
        else {
            size_t s = 0;
            st = pop_mark(P, &s);
        }
        break;
    }
    case '1': { /* POP_MARK */
        size_t s = 0;
        if ((st = pop_mark(P, &s)) == ELM_OK)
            P->sp = s;
        break;
    }
    case '2': { /* DUP */
        elm_pk_val *t = NULL;
        if ((st = top(P, &t)) == ELM_OK)
            st = push(P, *t);
        break;
    }
    }
    return st;
}

/* None, booleans and integers. */
static elm_status op_int(parser *P) {
    elm_status st = ELM_OK;
    const uint8_t *b = NULL;
    switch (P->op) {
    case 'N':
        st = push_int(P, ELM_PK_NONE, 0);
        break;
    case 0x88:
    case 0x89:
        st = push_int(P, ELM_PK_BOOL, P->op == 0x88);
        break;
    case 'K':
        if ((st = need(P, 1, &b)) == ELM_OK)
            st = push_int(P, ELM_PK_INT, b[0]);
        break;
    case 'M':
        if ((st = need(P, 2, &b)) == ELM_OK)
            st = push_int(P, ELM_PK_INT, (int64_t)le(b, 2));
        break;
    case 'J':
        if ((st = need(P, 4, &b)) == ELM_OK)
            st = push_int(P, ELM_PK_INT, (int32_t)(uint32_t)le(b, 4));
        break;
    case 0x8a: { /* LONG1: n bytes of little-endian two's complement */
        if ((st = need(P, 1, &b)) != ELM_OK)
            break;
        int n = b[0];
        if (n > 8) {
            st = perr(P, ELM_ERR_UNSUPPORTED, "integer of %d bytes does not fit 64 bits", n);
            break;
        }
        if ((st = need(P, (size_t)n, &b)) != ELM_OK)
            break;
        uint64_t u = le(b, n);
        if (n > 0 && n < 8 && (b[n - 1] & 0x80))
            u |= ~(uint64_t)0 << (8 * n);
        st = push_int(P, ELM_PK_INT, (int64_t)u);
        break;
    }
    case 'I':
    case 'L': {
        size_t n = 0;
        if ((st = read_line(P, &b, &n)) != ELM_OK)
            break;
        if (P->op == 'I' && n == 2 && b[0] == '0' && (b[1] == '0' || b[1] == '1')) {
            st = push_int(P, ELM_PK_BOOL, b[1] == '1');
            break;
        }
        int64_t v;
        if ((st = parse_decimal(P, b, n, P->op == 'L', &v)) == ELM_OK)
            st = push_int(P, ELM_PK_INT, v);
        break;
    }
    }
    return st;
}

/* Floats: binary (big-endian) and text. */
static elm_status op_float(parser *P) {
    elm_status st = ELM_OK;
    const uint8_t *b = NULL;
    switch (P->op) {
    case 'G': {
        if ((st = need(P, 8, &b)) != ELM_OK)
            break;
        uint64_t u = 0;
        for (int i = 0; i < 8; i++)
            u = (u << 8) | b[i];
        elm_pk_val v = {ELM_PK_FLOAT, {0}};
        memcpy(&v.u.f, &u, 8);
        st = push(P, v);
        break;
    }
    case 'F': {
        size_t n = 0;
        if ((st = read_line(P, &b, &n)) != ELM_OK)
            break;
        char buf[64];
        if (n == 0 || n >= sizeof buf) {
            st = perr(P, ELM_ERR_FORMAT, "malformed float");
            break;
        }
        memcpy(buf, b, n);
        buf[n] = 0;
        char *end;
        elm_pk_val v = {ELM_PK_FLOAT, {0}};
        v.u.f = strtod(buf, &end);
        if (*end)
            st = perr(P, ELM_ERR_FORMAT, "malformed float '%s'", buf);
        else
            st = push(P, v);
        break;
    }
    }
    return st;
}

/* Strings and bytes: counted binary, and quoted text lines. */
static elm_status op_string(parser *P) {
    elm_status st = ELM_OK;
    const uint8_t *b = NULL;
    switch (P->op) {
    case 'X':
    case 0x8c:
    case 'T':
    case 'U':
    case 'B':
    case 'C': {
        int lenbytes = (P->op == 'X' || P->op == 'T' || P->op == 'B') ? 4 : 1;
        if ((st = need(P, (size_t)lenbytes, &b)) != ELM_OK)
            break;
        uint64_t n = le(b, lenbytes);
        if (P->op == 'T' && (n & 0x80000000u)) {
            st = perr(P, ELM_ERR_FORMAT, "negative string length");
            break;
        }
        if ((st = need(P, (size_t)n, &b)) != ELM_OK)
            break;
        int unicode = P->op == 'X' || P->op == 0x8c;
        int type = (P->op == 'B' || P->op == 'C') ? ELM_PK_BYTES : ELM_PK_STR;
        st = push_str(P, b, (size_t)n, type, unicode);
        break;
    }
    case 'S':
    case 'V': {
        size_t n = 0;
        elm_pk_obj *o = NULL;
        if ((st = read_line(P, &b, &n)) != ELM_OK)
            break;
        st = P->op == 'S' ? parse_string0(P, b, n, &o) : parse_unicode0(P, b, n, &o);
        if (st == ELM_OK)
            st = push_obj(P, o);
        break;
    }
    }
    return st;
}

/* New dicts, lists and tuples: empty, from the stack above a MARK, or from its top 1-3. */
static elm_status op_new_container(parser *P) {
    elm_pk *pk = P->pk;
    elm_status st = ELM_OK;
    switch (P->op) {
    case '}':
    case ']': {
        elm_pk_obj *o = new_obj(pk, P->op == '}' ? ELM_PK_DICT : ELM_PK_LIST);
        st = push_obj(P, o);
        break;
    }
    case ')':
        st = push_obj(P, new_tuple(P, NULL, 0));
        break;
    case 't':
    case 'l':
    case 'd': {
        size_t s = 0;
        if ((st = pop_mark(P, &s)) != ELM_OK)
            break;
        size_t n = P->sp - s;
        elm_pk_obj *o;
        if (P->op == 't') {
            o = new_tuple(P, n ? P->stack + s : NULL, n);
        } else {
            if (P->op == 'd' && n % 2) {
                st = perr(P, ELM_ERR_FORMAT, "DICT with an odd number of items");
                break;
            }
            o = new_obj(pk, P->op == 'd' ? ELM_PK_DICT : ELM_PK_LIST);
            if (o && n && (st = seq_append(P, o, P->stack + s, n)) != ELM_OK)
                break;
        }
        P->sp = s;
        st = push_obj(P, o);
        break;
    }
    case 0x85:
    case 0x86:
    case 0x87: {
        size_t n = (size_t)(P->op - 0x84);
        if (P->sp < mark_floor(P) + n) {
            st = perr(P, ELM_ERR_FORMAT, "stack underflow");
            break;
        }
        elm_pk_obj *o = new_tuple(P, n ? P->stack + P->sp - n : NULL, n);
        P->sp -= n;
        st = push_obj(P, o);
        break;
    }
    }
    return st;
}

/* APPEND, SETITEM, APPENDS and SETITEMS: into the list or dict below. */
static elm_status op_fill_container(parser *P) {
    elm_status st = ELM_OK;
    switch (P->op) {
    case 'a': {
        elm_pk_val v = {0}, *t = NULL;
        if ((st = pop(P, &v)) != ELM_OK || (st = top(P, &t)) != ELM_OK)
            break;
        if (t->type != ELM_PK_LIST)
            st = perr(P, ELM_ERR_FORMAT, "APPEND to a %s", elm_pk_type_name(t->type));
        else
            st = seq_append(P, t->u.o, &v, 1);
        break;
    }
    case 's': {
        elm_pk_val kv[2] = {{0}}, *t = NULL;
        if ((st = pop(P, &kv[1])) != ELM_OK || (st = pop(P, &kv[0])) != ELM_OK ||
            (st = top(P, &t)) != ELM_OK)
            break;
        if (t->type != ELM_PK_DICT)
            st = perr(P, ELM_ERR_FORMAT, "SETITEM on a %s", elm_pk_type_name(t->type));
        else
            st = seq_append(P, t->u.o, kv, 2);
        break;
    }
    case 'e':
    case 'u': {
        size_t s = 0;
        if ((st = pop_mark(P, &s)) != ELM_OK)
            break;
        if (s == 0 || s <= mark_floor(P)) {
            st = perr(P, ELM_ERR_FORMAT, "no container below the MARK");
            break;
        }
        elm_pk_val *t = &P->stack[s - 1];
        size_t n = P->sp - s;
        int want = P->op == 'e' ? ELM_PK_LIST : ELM_PK_DICT;
        if (val_type(t) != want)
            st = perr(P, ELM_ERR_FORMAT, "%s on a %s", op_name(P->op), elm_pk_type_name(t->type));
        else if (P->op == 'u' && n % 2)
            st = perr(P, ELM_ERR_FORMAT, "SETITEMS with an odd number of items");
        else if (n)
            st = seq_append(P, t->u.o, P->stack + s, n);
        P->sp = s;
        break;
    }
    }
    return st;
}

/* The memo: PUT, MEMOIZE and GET in their text and binary forms. */
static elm_status op_memo(parser *P) {
    elm_status st = ELM_OK;
    const uint8_t *b = NULL;
    switch (P->op) {
    case 'q':
    case 'r':
    case 'p': {
        uint64_t idx;
        if (P->op == 'p') {
            size_t n = 0;
            int64_t v;
            if ((st = read_line(P, &b, &n)) != ELM_OK ||
                (st = parse_decimal(P, b, n, 0, &v)) != ELM_OK)
                break;
            if (v < 0) {
                st = perr(P, ELM_ERR_FORMAT, "negative memo index");
                break;
            }
            idx = (uint64_t)v;
        } else {
            int nb = P->op == 'q' ? 1 : 4;
            if ((st = need(P, (size_t)nb, &b)) != ELM_OK)
                break;
            idx = le(b, nb);
        }
        st = memo_put(P, idx);
        break;
    }
    case 0x94: /* MEMOIZE: the next index is the memo's size */
        st = memo_put(P, P->memo_n);
        break;
    case 'h':
    case 'j':
    case 'g': {
        uint64_t idx;
        if (P->op == 'g') {
            size_t n = 0;
            int64_t v;
            if ((st = read_line(P, &b, &n)) != ELM_OK ||
                (st = parse_decimal(P, b, n, 0, &v)) != ELM_OK)
                break;
            idx = v < 0 ? UINT64_MAX : (uint64_t)v;
        } else {
            int nb = P->op == 'h' ? 1 : 4;
            if ((st = need(P, (size_t)nb, &b)) != ELM_OK)
                break;
            idx = le(b, nb);
        }
        st = memo_get(P, idx);
        break;
    }
    }
    return st;
}

/* GLOBAL and STACK_GLOBAL: a name looked up in the dialect's allowed list. */
static elm_status op_global(parser *P) {
    elm_status st = ELM_OK;
    switch (P->op) {
    case 'c': {
        const uint8_t *mod = NULL, *name = NULL;
        size_t nm = 0, nn = 0;
        if ((st = read_line(P, &mod, &nm)) != ELM_OK || (st = read_line(P, &name, &nn)) != ELM_OK)
            break;
        st = lookup_global(P, mod, nm, name, nn);
        break;
    }
    case 0x93: { /* STACK_GLOBAL */
        elm_pk_val mod = {0}, name = {0};
        if ((st = pop(P, &name)) != ELM_OK || (st = pop(P, &mod)) != ELM_OK)
            break;
        if (mod.type != ELM_PK_STR || name.type != ELM_PK_STR) {
            st = perr(P, ELM_ERR_FORMAT, "STACK_GLOBAL needs two strings");
            break;
        }
        st = lookup_global(P, mod.u.o->bytes, mod.u.o->len, name.u.o->bytes, name.u.o->len);
        break;
    }
    }
    return st;
}

/* The handler of each opcode the readers accept, by family; PROTO, FRAME, STOP and BINPERSID
 * are run's own. */
typedef elm_status (*op_handler)(parser *P);
static const op_handler op_handlers[256] = {
    ['('] = op_stack,
    ['0'] = op_stack,
    ['1'] = op_stack,
    ['2'] = op_stack,
    ['N'] = op_int,
    [0x88] = op_int,
    [0x89] = op_int,
    ['K'] = op_int,
    ['M'] = op_int,
    ['J'] = op_int,
    [0x8a] = op_int,
    ['I'] = op_int,
    ['L'] = op_int,
    ['G'] = op_float,
    ['F'] = op_float,
    ['X'] = op_string,
    [0x8c] = op_string,
    ['T'] = op_string,
    ['U'] = op_string,
    ['B'] = op_string,
    ['C'] = op_string,
    ['S'] = op_string,
    ['V'] = op_string,
    ['}'] = op_new_container,
    [']'] = op_new_container,
    [')'] = op_new_container,
    ['t'] = op_new_container,
    ['l'] = op_new_container,
    ['d'] = op_new_container,
    [0x85] = op_new_container,
    [0x86] = op_new_container,
    [0x87] = op_new_container,
    ['a'] = op_fill_container,
    ['s'] = op_fill_container,
    ['e'] = op_fill_container,
    ['u'] = op_fill_container,
    ['q'] = op_memo,
    ['r'] = op_memo,
    ['p'] = op_memo,
    [0x94] = op_memo,
    ['h'] = op_memo,
    ['j'] = op_memo,
    ['g'] = op_memo,
    ['c'] = op_global,
    [0x93] = op_global,
    ['R'] = do_reduce,
    ['b'] = do_build,
};

static elm_status run(parser *P) {
    elm_pk *pk = P->pk;
    elm_status st = ELM_OK;
    const uint8_t *b = NULL;
    while (st == ELM_OK) {
        P->op_pos = P->pos;
        P->op = -1;
        if (P->pos >= pk->len)
            return elm__fail(ELM_ERR_FORMAT,
                             "%s: pickle ends at byte %zu without a STOP opcode (truncated?)",
                             pk->name, pk->len);
        P->op = pk->data[P->pos++];
        switch (P->op) {
        case 0x80: /* PROTO */
            if ((st = need(P, 1, &b)) == ELM_OK && b[0] > 5)
                st = perr(P, ELM_ERR_UNSUPPORTED, "pickle protocol %d", b[0]);
            break;
        case 0x95: /* FRAME: a length hint only */
            st = need(P, 8, &b);
            break;
        case '.': { /* STOP */
            elm_pk_val v = {0};
            if ((st = pop(P, &v)) != ELM_OK)
                return st;
            pk->root = v;
            return ELM_OK;
        }
        case 'Q': /* BINPERSID */
            if (pk->dialect == ELM_PK_TORCH) {
                st = torch_persid(P);
                break;
            }
            /* fall through */
        default:
            if (op_handlers[P->op]) {
                st = op_handlers[P->op](P);
                break;
            }
            if (pk->dialect == ELM_PK_TORCH)
                return perr(P, ELM_ERR_UNSUPPORTED,
                            "opcode not accepted in a torch state dict (only plain data, "
                            "OrderedDicts and tensors are)");
            return perr(P, ELM_ERR_UNSUPPORTED,
                        "opcode not accepted in a NeuronIO pickle (only plain data, numpy "
                        "arrays and scalars are)");
        }
    }
    return st;
}

elm_status elm_pk_parse(elm_pk **out, const uint8_t *data, size_t len, const char *name) {
    return elm_pk_parse_ex(out, data, len, name, ELM_PK_NUMPY);
}

elm_status elm_pk_parse_ex(elm_pk **out, const uint8_t *data, size_t len, const char *name,
                           int dialect) {
    *out = NULL;
    elm_pk *pk = calloc(1, sizeof *pk);
    if (!pk)
        return elm__fail(ELM_ERR_NOMEM, "%s: out of memory", name);
    pk->name = elm__strdup(name ? name : "(pickle)");
    pk->data = data;
    pk->len = len;
    pk->dialect = dialect;
    parser P;
    memset(&P, 0, sizeof P);
    P.pk = pk;
    elm_status st = pk->name ? run(&P) : elm__fail(ELM_ERR_NOMEM, "out of memory");
    if (st == ELM_OK && pk->root.type == ELM_PK_MARK)
        st = elm__fail(ELM_ERR_FORMAT, "%s: pickle result is a MARK", pk->name);
    free(P.stack);
    free(P.marks);
    free(P.memo);
    if (st != ELM_OK) {
        elm_pk_free(pk);
        return st;
    }
    *out = pk;
    return ELM_OK;
}

elm_status elm_pk_load_file(elm_pk **out, const char *path) {
    *out = NULL;
    int fd;
    size_t len;
    elm_status ost = elm__open_regular(path, &fd, &len);
    if (ost != ELM_OK)
        return ost;
    if (len == 0) {
        close(fd);
        return elm__fail(ELM_ERR_FORMAT, "%s: empty file, not a pickle", path);
    }
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return elm__fail(ELM_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
    posix_madvise(map, len, POSIX_MADV_SEQUENTIAL);
    elm_pk *pk = NULL;
    elm_status st = elm_pk_parse(&pk, map, len, path);
    if (st != ELM_OK) {
        munmap(map, len);
        return st;
    }
    pk->map = map;
    pk->map_len = len;
    *out = pk;
    return ELM_OK;
}

void elm_pk_free(elm_pk *pk) {
    if (!pk)
        return;
    for (size_t i = 0; i < pk->n_grow; i++)
        free(pk->grow[i]->items);
    free(pk->grow);
    chunk *c = pk->arena;
    while (c) {
        chunk *n = c->next;
        free(c);
        c = n;
    }
    if (pk->map)
        munmap(pk->map, pk->map_len);
    free(pk->name);
    free(pk);
}

const elm_pk_val *elm_pk_root(const elm_pk *pk) {
    return &pk->root;
}

size_t elm_pk_size(const elm_pk *pk) {
    return pk->len;
}

const elm_pk_val *elm_pk_dict_get(const elm_pk_val *dict, const char *key) {
    if (!dict || dict->type != ELM_PK_DICT)
        return NULL;
    const elm_pk_obj *d = dict->u.o;
    /* The last assignment of a key wins, as in Python. */
    for (size_t i = d->len; i > 0; i--)
        if (str_eq(&d->items[2 * (i - 1)], key))
            return &d->items[2 * (i - 1) + 1];
    return NULL;
}

const elm_pk_val *elm_pk_seq_items(const elm_pk_val *v, size_t *n) {
    if (!v || (v->type != ELM_PK_LIST && v->type != ELM_PK_TUPLE)) {
        *n = 0;
        return NULL;
    }
    *n = v->u.o->len;
    return v->u.o->items;
}
