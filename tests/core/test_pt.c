/*
 * test_pt.c - PyTorch .pt state dicts (src/core/pt.c): tensors written by elm__pt_write read back
 * bit for bit (every dtype, 0-d, empty and 2-d tensors, strided views), and hostile archives
 * (wrong globals, storages that lie about their size, views outside their storage, entries outside
 * the archive's folder, a zip bomb, truncation, the pre-1.6 format) fail with a clear message.
 *
 * The hostile archives are built here with libzip and a small pickle writer, so the test needs
 * nothing from ../shared. tests/core/test_pt_models.c checks the authors' released checkpoints.
 */
#include "elm.h"
#include "model_internal.h"
#include "pt.h"
#include "test.h"
#include "tmpfiles.h"

#include <stdint.h>
#include <unistd.h>
#include <zip.h>

/* ---- a tiny pickle writer for hand-made state dicts ---- */

typedef struct {
    uint8_t b[4096];
    size_t n;
} pk;

static void raw(pk *p, const void *s, size_t n) {
    if (p->n + n > sizeof p->b) {
        fprintf(stderr, "pickle buffer full\n");
        exit(1);
    }
    memcpy(p->b + p->n, s, n);
    p->n += n;
}
static void rs(pk *p, const char *s) {
    raw(p, s, strlen(s));
}
static void str(pk *p, const char *s) {
    uint32_t n = (uint32_t)strlen(s);
    uint8_t h[5] = {'X', (uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    raw(p, h, 5);
    raw(p, s, n);
}
static void num(pk *p, long long v) {
    uint8_t h[10] = {0x8a, 8};
    for (int i = 0; i < 8; i++)
        h[2 + i] = (uint8_t)((unsigned long long)v >> (8 * i));
    raw(p, h, 10);
}

/* One-entry state dict: name -> rebuild(persid(storage_cls, key, numel), offset, shape, stride). */
typedef struct {
    const char *rebuild; /* "torch._utils\n_rebuild_tensor_v2" or a hostile global */
    const char *storage; /* "FloatStorage" */
    const char *key;
    long long numel, offset;
    int ndim;
    long long shape[3], stride[3];
} tdesc;

static void tensor(pk *p, const char *name, const tdesc *t) {
    str(p, name);
    rs(p, "c");
    rs(p, t->rebuild);
    rs(p, "\n((");
    str(p, "storage");
    rs(p, "ctorch\n");
    rs(p, t->storage);
    rs(p, "\n");
    str(p, t->key);
    str(p, "cpu");
    num(p, t->numel);
    rs(p, "tQ");
    num(p, t->offset);
    rs(p, "(");
    for (int d = 0; d < t->ndim; d++)
        num(p, t->shape[d]);
    rs(p, "t(");
    for (int d = 0; d < t->ndim; d++)
        num(p, t->stride[d]);
    raw(p, "t\x89h\x00)RtR", 8);
}

static void dict_start(pk *p) {
    p->n = 0;
    raw(p, "\x80\x02", 2);
    raw(p, "ccollections\nOrderedDict\nq\x00)R(", 30);
}
static void dict_end(pk *p) {
    rs(p, "u.");
}

/* Writes a zip of (name, data, len) records; `deflate` compresses them. */
typedef struct {
    const char *name;
    const void *data;
    size_t len;
} rec;

static void make_zip(const char *path, const rec *r, int n, int deflate) {
    int err = 0;
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
    if (!z) {
        fprintf(stderr, "zip_open %s: %d\n", path, err);
        exit(1);
    }
    for (int i = 0; i < n; i++) {
        zip_source_t *s = zip_source_buffer(z, r[i].data, r[i].len, 0);
        zip_int64_t idx = zip_file_add(z, r[i].name, s, ZIP_FL_ENC_UTF_8);
        if (idx < 0 || zip_set_file_compression(z, (zip_uint64_t)idx,
                                                deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0)) {
            fprintf(stderr, "zip add %s: %s\n", r[i].name, zip_strerror(z));
            exit(1);
        }
    }
    if (zip_close(z) != 0) {
        fprintf(stderr, "zip_close: %s\n", zip_strerror(z));
        exit(1);
    }
}

static const float six[6] = {1, 2, 3, 4, 5, 6};

static const tdesc good = {"torch._utils\n_rebuild_tensor_v2", "FloatStorage", "0", 6, 0, 2,
                           {2, 3}, {3, 1}};

/* An archive holding one tensor described by `t` and a storage record of `len` bytes. */
static const char *one(const char *file, const tdesc *t, size_t len) {
    pk p;
    dict_start(&p);
    tensor(&p, "w", t);
    dict_end(&p);
    static float data[64];
    memcpy(data, six, sizeof six);
    rec r[] = {{"archive/data.pkl", p.b, p.n}, {"archive/data/0", data, len},
               {"archive/version", "3\n", 2}};
    make_zip(tpath(file), r, 3, 0);
    return tpath(file);
}

static void test_views(void) {
    elm__st_file f;
    /* A transposed view: shape (3, 2), strides (1, 3) of the 2x3 storage. */
    tdesc t = good;
    t.shape[0] = 3, t.shape[1] = 2, t.stride[0] = 1, t.stride[1] = 3;
    CHECK_OK(elm__tensors_read(&f, one("view.pt", &t, sizeof six)));
    if (f.n == 1) {
        const float *v = f.t[0].data;
        const float want[6] = {1, 4, 2, 5, 3, 6};
        CHECK(f.t[0].ndim == 2 && f.t[0].shape[0] == 3 && f.t[0].shape[1] == 2 &&
                  !memcmp(v, want, sizeof want),
              "transposed view not copied in row-major order");
    }
    elm__st_free(&f);
    /* An offset view of 2 elements. */
    t = good;
    t.ndim = 1, t.offset = 4, t.shape[0] = 2, t.stride[0] = 1;
    CHECK_OK(elm__tensors_read(&f, one("offset.pt", &t, sizeof six)));
    CHECK(f.n == 1 && ((const float *)f.t[0].data)[0] == 5 && ((const float *)f.t[0].data)[1] == 6,
          "offset view");
    elm__st_free(&f);
}

static void test_roundtrip(void) {
    /* Every dtype elm__pt_write knows, 0-d, empty, 1-d and 2-d. */
    static const double d2[2][3] = {{1.5, -2, 1e300}, {INFINITY, -INFINITY, 0x1p-1074}};
    static const float f1[4] = {0.1f, -0.0f, 3e38f, 1e-45f};
    static const int64_t i1[3] = {INT64_MIN, -1, INT64_MAX};
    static const uint8_t b1[3] = {1, 0, 1};
    static const uint16_t h1[2] = {0x3c00, 0xfbff};
    static const int32_t i32[1] = {-7};
    static const int16_t i16[2] = {-3, 3};
    static const int8_t i8[2] = {-128, 127};
    static const uint8_t u8[2] = {0, 255};
    static const float empty[1] = {0};
    elm__st_out t[] = {
        {"mlp.network.0.weight", ELM_DT_F64, 2, {2, 3}, d2},
        {"f", ELM_DT_F32, 1, {4}, f1},
        {"scalar", ELM_DT_I32, 0, {0}, i32},
        {"idx", ELM_DT_I64, 1, {3}, i1},
        {"mask", ELM_DT_BOOL, 1, {3}, b1},
        {"half", ELM_DT_F16, 1, {2}, h1},
        {"short", ELM_DT_I16, 1, {2}, i16},
        {"char", ELM_DT_I8, 1, {2}, i8},
        {"byte", ELM_DT_U8, 1, {2}, u8},
        {"empty", ELM_DT_F32, 1, {0}, empty},
    };
    int n = (int)(sizeof t / sizeof t[0]);
    const char *p = tpath("rt.pt");
    CHECK_OK(elm__pt_write(p, t, n));
    elm__st_file f;
    CHECK_OK(elm__tensors_read(&f, p));
    CHECK(f.n == n, "read %d tensors, wrote %d", f.n, n);
    for (int i = 0; i < n && i < f.n; i++) {
        size_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++)
            numel *= (size_t)t[i].shape[d];
        int same = !strcmp(f.t[i].name, t[i].name) && f.t[i].dtype == t[i].dtype &&
                   f.t[i].ndim == t[i].ndim && f.t[i].numel == numel &&
                   !memcmp(f.t[i].data, t[i].data, numel * elm__dtype_size(t[i].dtype));
        for (int d = 0; d < t[i].ndim; d++)
            same = same && f.t[i].shape[d] == t[i].shape[d];
        CHECK(same, "tensor %d ('%s') differs after the round trip", i, t[i].name);
    }
    elm__st_free(&f);
    /* The same tensors give the same bytes (a fixed time stamp): reproducible files. */
    char *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    CHECK_OK(elm__read_file(p, 1 << 20, &a, &la));
    CHECK_OK(elm__pt_write(tpath("rt2.pt"), t, n));
    CHECK_OK(elm__read_file(tpath("rt2.pt"), 1 << 20, &b, &lb));
    CHECK(a && b && la == lb && !memcmp(a, b, la), "two writes of the same tensors differ");
    free(a);
    free(b);
}

static void test_hostile(void) {
    elm__st_file f;
    tdesc t = good;
    CHECK_OK(elm__tensors_read(&f, one("good.pt", &t, sizeof six)));
    CHECK(f.n == 1 && !memcmp(f.t[0].data, six, sizeof six), "the good archive");
    elm__st_free(&f);

    t = good;
    t.rebuild = "posix\nsystem";
    EXPECT("os.system", elm__tensors_read(&f, one("system.pt", &t, sizeof six)),
           ELM_ERR_UNSUPPORTED, "refusing global 'posix.system'", "system.pt");
    t = good;
    t.rebuild = "builtins\neval";
    EXPECT("eval", elm__tensors_read(&f, one("eval.pt", &t, sizeof six)), ELM_ERR_UNSUPPORTED,
           "refusing global 'builtins.eval'", NULL);
    t = good;
    t.rebuild = "numpy.core.multiarray\n_reconstruct";
    EXPECT("numpy global in a state dict", elm__tensors_read(&f, one("np.pt", &t, sizeof six)),
           ELM_ERR_UNSUPPORTED, "refusing global", NULL);
    t = good;
    t.storage = "BFloat16Storage";
    EXPECT("bfloat16", elm__tensors_read(&f, one("bf16.pt", &t, sizeof six)),
           ELM_ERR_UNSUPPORTED, "torch.BFloat16Storage", NULL);

    /* Storage sizes that lie: the persistent id claims more than the record holds, or less. */
    t = good;
    t.numel = 1000000000;
    EXPECT("storage larger than its record",
           elm__tensors_read(&f, one("lie.pt", &t, sizeof six)), ELM_ERR_FORMAT,
           "holds 24 bytes", "4000000000");
    EXPECT("record larger than its storage",
           elm__tensors_read(&f, one("lie2.pt", &good, sizeof six + 4)), ELM_ERR_FORMAT,
           "holds 28 bytes", NULL);
    t = good;
    t.numel = (long long)1 << 50;
    EXPECT("storage of 2^50", elm__tensors_read(&f, one("huge.pt", &t, sizeof six)),
           ELM_ERR_FORMAT, "storage size", NULL);
    /* Views outside their storage. */
    t = good;
    t.offset = 1;
    EXPECT("offset past the end", elm__tensors_read(&f, one("off.pt", &t, sizeof six)),
           ELM_ERR_FORMAT, "reaches element 6", NULL);
    t = good;
    t.stride[0] = 4;
    EXPECT("stride past the end", elm__tensors_read(&f, one("stride.pt", &t, sizeof six)),
           ELM_ERR_FORMAT, "reaches element", NULL);
    t = good;
    t.stride[0] = 0, t.stride[1] = 0, t.shape[0] = 1 << 20, t.shape[1] = 1 << 20;
    EXPECT("stride-0 view of 2^40 elements", elm__tensors_read(&f, one("exp.pt", &t, sizeof six)),
           ELM_ERR_UNSUPPORTED, "overlapping views", NULL);
    t = good;
    t.shape[0] = -1;
    EXPECT("negative size", elm__tensors_read(&f, one("neg.pt", &t, sizeof six)), ELM_ERR_FORMAT,
           "size[0]", NULL);
    t = good;
    t.key = "../../etc/passwd";
    EXPECT("storage key with a path", elm__tensors_read(&f, one("key.pt", &t, sizeof six)),
           ELM_ERR_FORMAT, "storage key", NULL);
    t = good;
    t.key = "7";
    EXPECT("missing storage record", elm__tensors_read(&f, one("nokey.pt", &t, sizeof six)),
           ELM_ERR_FORMAT, "no record archive/data/7", NULL);

    /* Entries outside archive/. */
    pk p;
    dict_start(&p);
    tensor(&p, "w", &good);
    dict_end(&p);
    {
        rec r[] = {{"archive/data.pkl", p.b, p.n}, {"archive/data/0", six, sizeof six},
                   {"archive/version", "3\n", 2}, {"archive/../../evil", "x", 1}};
        make_zip(tpath("dotdot.pt"), r, 4, 0);
        EXPECT("../ entry", elm__tensors_read(&f, tpath("dotdot.pt")), ELM_ERR_FORMAT,
               "lies outside the archive's folder 'archive/'", NULL);
        r[3].name = "other/data.pkl";
        make_zip(tpath("other.pt"), r, 4, 0);
        EXPECT("second top folder", elm__tensors_read(&f, tpath("other.pt")), ELM_ERR_FORMAT,
               "'other/data.pkl' lies outside", NULL);
        r[3].name = "/etc/passwd";
        make_zip(tpath("abs.pt"), r, 4, 0);
        EXPECT("absolute entry", elm__tensors_read(&f, tpath("abs.pt")), ELM_ERR_FORMAT,
               "lies outside", NULL);
        rec r2[] = {{"data.pkl", p.b, p.n}};
        make_zip(tpath("flat.pt"), r2, 1, 0);
        EXPECT("no top folder", elm__tensors_read(&f, tpath("flat.pt")), ELM_ERR_FORMAT,
               "not inside a top folder", NULL);
        rec r3[] = {{"archive/data.pkl", p.b, p.n}, {"archive/data/0", six, sizeof six}};
        make_zip(tpath("nover.pt"), r3, 2, 0);
        EXPECT("no version record", elm__tensors_read(&f, tpath("nover.pt")), ELM_ERR_FORMAT,
               "not a torch.save file", NULL);
        rec r4[] = {{"archive/data/0", six, sizeof six}, {"archive/version", "3\n", 2}};
        make_zip(tpath("nopkl.pt"), r4, 2, 0);
        EXPECT("no data.pkl", elm__tensors_read(&f, tpath("nopkl.pt")), ELM_ERR_FORMAT,
               "no archive/data.pkl", NULL);
        rec r5[] = {{"archive/data.pkl", p.b, p.n}, {"archive/data/0", six, sizeof six},
                    {"archive/version", "3\n", 2}, {"archive/byteorder", "big", 3}};
        make_zip(tpath("big.pt"), r5, 4, 0);
        EXPECT("big-endian", elm__tensors_read(&f, tpath("big.pt")), ELM_ERR_UNSUPPORTED,
               "byteorder is 'big'", NULL);
    }
    /* Deflated records are read (a re-zipped file), and their CRC is checked. */
    {
        rec r[] = {{"archive/data.pkl", p.b, p.n}, {"archive/data/0", six, sizeof six},
                   {"archive/version", "3\n", 2}};
        make_zip(tpath("deflated.pt"), r, 3, 1);
        CHECK_OK(elm__tensors_read(&f, tpath("deflated.pt")));
        CHECK(f.n == 1 && !memcmp(f.t[0].data, six, sizeof six), "deflated archive");
        elm__st_free(&f);
        /* Flip a byte of the stored storage: the CRC catches it. */
        make_zip(tpath("crc.pt"), r, 3, 0);
        char *buf;
        size_t len;
        CHECK_OK(elm__read_file(tpath("crc.pt"), 1 << 20, &buf, &len));
        char *at = NULL;
        for (size_t i = 0; !at && i + sizeof six <= len; i++)
            if (!memcmp(buf + i, six, sizeof six))
                at = buf + i;
        CHECK(at != NULL, "storage bytes not found in the stored archive");
        if (at) {
            at[5] ^= 1;
            FILE *o = fopen(tpath("crc.pt"), "wb");
            fwrite(buf, 1, len, o);
            fclose(o);
            EXPECT("CRC", elm__tensors_read(&f, tpath("crc.pt")), ELM_ERR_FORMAT, "damaged",
                   "archive/data/0");
        }
        /* Truncated. */
        FILE *o = fopen(tpath("trunc.pt"), "wb");
        fwrite(buf, 1, len / 2, o);
        fclose(o);
        EXPECT("truncated", elm__tensors_read(&f, tpath("trunc.pt")), ELM_ERR_FORMAT,
               "not a readable zip archive", NULL);
        free(buf);
    }
    /* A zip bomb: 80 MiB of zeros deflate to about 80 KB; the storage claims them honestly. */
    {
        size_t big = (size_t)80 << 20;
        char *zeros = calloc(big, 1);
        tdesc tb = good;
        tb.numel = (long long)(big / 4), tb.ndim = 1, tb.shape[0] = tb.numel, tb.stride[0] = 1;
        pk pb;
        dict_start(&pb);
        tensor(&pb, "w", &tb);
        dict_end(&pb);
        rec r[] = {{"archive/data.pkl", pb.b, pb.n}, {"archive/data/0", zeros, big},
                   {"archive/version", "3\n", 2}};
        make_zip(tpath("bomb.pt"), r, 3, 1);
        free(zeros);
        EXPECT("zip bomb", elm__tensors_read(&f, tpath("bomb.pt")), ELM_ERR_FORMAT, "zip bomb",
               "tensor 'w'");
    }
    /* Not a state dict. */
    {
        pk q;
        q.n = 0;
        raw(&q, "\x80\x02]q\x00.", 6);
        rec r[] = {{"archive/data.pkl", q.b, q.n}, {"archive/version", "3\n", 2}};
        make_zip(tpath("list.pt"), r, 2, 0);
        EXPECT("a list", elm__tensors_read(&f, tpath("list.pt")), ELM_ERR_FORMAT,
               "holds a list, not a state dict", NULL);
        dict_start(&q);
        str(&q, "epoch");
        raw(&q, "K\x03", 2);
        dict_end(&q);
        rec r2[] = {{"archive/data.pkl", q.b, q.n}, {"archive/version", "3\n", 2}};
        make_zip(tpath("ckpt.pt"), r2, 2, 0);
        EXPECT("an int entry", elm__tensors_read(&f, tpath("ckpt.pt")), ELM_ERR_FORMAT,
               "entry 'epoch' is a int, not a tensor", NULL);
    }
    /* The pre-1.6 format: a bare pickle. */
    {
        FILE *o = fopen(tpath("legacy.pt"), "wb");
        fwrite("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 1, 15, o);
        fclose(o);
        EXPECT("legacy", elm__tensors_read(&f, tpath("legacy.pt")), ELM_ERR_UNSUPPORTED,
               "torch < 1.6", NULL);
    }
}

int main(void) {
    tmpdir_make("elm_test_pt");
    test_views();
    test_roundtrip();
    test_hostile();
    tmpdir_remove();
    return test_end();
}
