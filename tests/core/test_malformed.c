/*
 * test_malformed.c - hostile inputs for every core parser: safetensors (the raw reader and whole
 * model loads), .npy, and the JSON model configuration. Each must fail with the right status and
 * a message naming the file and the problem, never crash, hang or allocate what a file merely
 * claims. Inputs found by fuzzing (tests/fuzz, docs/RELIABILITY.md) are kept here as regressions.
 *
 * Every hostile file is made here from a valid one (written by elm_model_save / elm__npy_save into
 * a private temporary folder), so the test needs nothing from ../shared.
 */
#include "elm.h"
#include "model_internal.h"
#include "test.h"
#include "tmpfiles.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- safetensors images built by hand ---- */

/* Writes 8-byte length + header + data to `name`; returns the path. */
static const char *st_image(const char *name, const char *header, const void *data, size_t dlen) {
    size_t hl = strlen(header);
    size_t len = 8 + hl + dlen;
    unsigned char *b = malloc(len);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, header, hl);
    if (dlen)
        memcpy(b + 8 + hl, data, dlen);
    const char *p = tpath(name);
    write_bytes(p, b, len);
    free(b);
    return p;
}

/* elm__st_read on a hand-made image must fail with ELM_ERR_FORMAT naming the file and `phrase`. */
static void st_bad(const char *label, const char *header, size_t dlen, const char *phrase) {
    static const char zeros[64];
    const char *p = st_image("bad.safetensors", header, zeros, dlen);
    elm__st_file f;
    EXPECT(label, elm__st_read(&f, p), ELM_ERR_FORMAT, "bad.safetensors", phrase);
}

static void test_safetensors_raw(void) {
    elm__st_file f;
    /* Files too short for the 8-byte length, or whose length lies. */
    write_bytes(tpath("empty.safetensors"), "", 0);
    EXPECT("empty file", elm__st_read(&f, tpath("empty.safetensors")), ELM_ERR_FORMAT,
           "empty.safetensors", "too short");
    write_bytes(tpath("seven.safetensors"), "\x02\0\0\0\0\0\0", 7);
    EXPECT("7 bytes", elm__st_read(&f, tpath("seven.safetensors")), ELM_ERR_FORMAT, "too short",
           NULL);
    unsigned char lie[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
    write_bytes(tpath("lie.safetensors"), lie, 10);
    EXPECT("header length 2^64-1", elm__st_read(&f, tpath("lie.safetensors")), ELM_ERR_FORMAT,
           "lie.safetensors", "does not fit");
    unsigned char lie2[10] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    write_bytes(tpath("lie2.safetensors"), lie2, 10);
    EXPECT("header length past the end", elm__st_read(&f, tpath("lie2.safetensors")),
           ELM_ERR_FORMAT, "does not fit", NULL);
    EXPECT("missing file", elm__st_read(&f, tpath("absent.safetensors")), ELM_ERR_IO,
           "absent.safetensors", NULL);

    /* Headers that are not what they should be. */
    st_bad("header not JSON", "{\"a\": ", 0, "not a JSON object");
    st_bad("header an array", "[1, 2]", 0, "not a JSON object");
    st_bad("tensor a number", "{\"a\": 5}", 0, "lacks a dtype");
    /* D13: a name twice (elm took the first, Python readers the last: one file, two models). */
    st_bad("duplicate name",
           "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, "
           "\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}",
           8, "the tensor 'w' appears twice");
    st_bad("tensor an array", "{\"a\": [\"dtype\", 1]}", 0, "lacks a dtype");
    st_bad("dtype unknown",
           "{\"a\": {\"dtype\": \"F8_E5M2\", \"shape\": [1], \"data_offsets\": [0, 1]}}", 1,
           "unsupported dtype 'F8_E5M2'");
    st_bad("dtype not a string",
           "{\"a\": {\"dtype\": 4, \"shape\": [1], \"data_offsets\": [0, 4]}}", 4, "lacks a dtype");
    st_bad("shape negative",
           "{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 4,
           "invalid or absurd shape");
    st_bad("shape fractional",
           "{\"a\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}", 4,
           "invalid or absurd shape");
    st_bad("shape a string",
           "{\"a\": {\"dtype\": \"F32\", \"shape\": [\"1\"], \"data_offsets\": [0, 4]}}", 4,
           "invalid or absurd shape");
    st_bad("nine dimensions",
           "{\"a\": {\"dtype\": \"U8\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 1]}}",
           1, "9 dimensions");
    /* 2^32 x 2^32 elements: refused from the header alone, nothing allocated. */
    st_bad("absurd shape",
           "{\"a\": {\"dtype\": \"F64\", \"shape\": [4294967296, 4294967296], "
           "\"data_offsets\": [0, 8]}}",
           8, "invalid or absurd shape");
    st_bad("huge shape, tiny data",
           "{\"a\": {\"dtype\": \"F32\", \"shape\": [1000000000], \"data_offsets\": [0, 8]}}", 8,
           "spans 8 bytes but its shape and dtype need 4000000000");
    st_bad("offsets reversed",
           "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 0]}}", 8,
           "data_offsets outside");
    st_bad("offsets past the data (truncated)",
           "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", 8,
           "data_offsets outside the 8 data bytes");
    st_bad("offsets 2^60",
           "{\"a\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [1152921504606846976, "
           "1152921504606846977]}}",
           8, "data_offsets outside");
    st_bad("three offsets",
           "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4, 8]}}", 8,
           "two data_offsets");
    st_bad("negative offset",
           "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}}", 8,
           "data_offsets outside");
    st_bad("span differs from shape x dtype",
           "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 4]}}", 8,
           "spans 4 bytes but its shape and dtype need 8");
    st_bad("overlapping tensors",
           "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
           " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
           16, "overlap");
    st_bad("tensor aliasing another",
           "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
           " \"b\": {\"dtype\": \"I32\", \"shape\": [2], \"data_offsets\": [0, 8]}}",
           8, "overlap");
    st_bad("metadata value not a string", "{\"__metadata__\": {\"num_input\": 3}}", 0,
           "__metadata__['num_input'] is not a string");
    st_bad("metadata not an object", "{\"__metadata__\": [\"a\"]}", 0,
           "__metadata__ is not an object");

    /* Valid corner cases still load: empty header, zero-size and 0-d tensors, touching ranges. */
    const char *p =
        st_image("ok.safetensors",
                 "{\"e\": {\"dtype\": \"F32\", \"shape\": [0, 3], \"data_offsets\": "
                 "[0, 0]}, \"s\": {\"dtype\": \"F64\", \"shape\": [], \"data_offsets\": "
                 "[0, 8]}, \"b\": {\"dtype\": \"BOOL\", \"shape\": [2], "
                 "\"data_offsets\": [8, 10]}}",
                 "\0\0\0\0\0\0\xf8\x3f\x01\x00", 10);
    elm_status st = elm__st_read(&f, p);
    CHECK_OK(st);
    if (st == ELM_OK) {
        const elm__st_tensor *s = elm__st_find(&f, "s");
        CHECK(f.n == 3 && s && s->numel == 1 && s->ndim == 0, "valid corner cases misread");
        double v = 0;
        if (s)
            CHECK_OK(elm__st_copy_real(&f, s, &v, ELM_F64));
        CHECK(v == 1.5, "0-d tensor reads %g, want 1.5", v);
        const elm__st_tensor *b = elm__st_find(&f, "b");
        float tmp;
        EXPECT("BOOL copied as reals", elm__st_copy_real(&f, b, &tmp, ELM_F32), ELM_ERR_FORMAT,
               "expected a float type", NULL);
        elm__st_free(&f);
    }
    p = st_image("empty_hdr.safetensors", "{}", NULL, 0);
    CHECK_OK(elm__st_read(&f, p));
    elm__st_free(&f);
}

/* ---- whole models ---- */

static elm_config small_config(void) {
    elm_config c;
    elm_config_default(&c, 4, 2, 3);
    return c;
}

/* A valid small model file; returns its bytes. */
static char *valid_model(const char *name, const elm_config *c, size_t *len) {
    elm_model *m = NULL;
    elm_status st = elm_model_create(&m, c, ELM_F32, 7);
    if (st == ELM_OK)
        st = elm_model_save(m, tpath(name));
    elm_model_free(m);
    if (st != ELM_OK) {
        fprintf(stderr, "cannot make a model: %s\n", elm_last_error());
        exit(1);
    }
    return read_bytes(tpath(name), len);
}

/* The parsed JSON header of a safetensors image (its length, little-endian u64 first, in *n). */
static cJSON *st_header(const char *img, uint64_t *n) {
    *n = 0;
    for (int i = 7; i >= 0; i--)
        *n = (*n << 8) | (unsigned char)img[i];
    char *h = malloc(*n + 1);
    memcpy(h, img + 8, *n);
    h[*n] = 0;
    cJSON *root = cJSON_Parse(h);
    free(h);
    return root;
}

/*
 * Rewrites a safetensors image: `edit` changes the parsed header (cJSON), the data section is
 * kept (or replaced by `data`/`dlen` when data is not NULL). Writes it to `name`.
 */
typedef void (*header_edit)(cJSON *root, void *user);
static const char *rewrite(const char *name, const char *img, size_t len, header_edit edit,
                           void *user, const void *data, size_t dlen) {
    uint64_t n;
    cJSON *root = st_header(img, &n);
    if (edit)
        edit(root, user);
    char *js = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    const void *d = data ? data : img + 8 + n;
    size_t dl = data ? dlen : len - 8 - n;
    const char *p = st_image(name, js, d, dl);
    free(js);
    return p;
}

/* Offset (into the data section) and byte length of tensor `name`. */
static size_t tensor_at(const char *img, const char *name, size_t *bytes) {
    uint64_t n;
    cJSON *root = st_header(img, &n);
    cJSON *off = cJSON_GetObjectItem(cJSON_GetObjectItem(root, name), "data_offsets");
    size_t b = (size_t)cJSON_GetArrayItem(off, 0)->valuedouble;
    *bytes = (size_t)cJSON_GetArrayItem(off, 1)->valuedouble - b;
    cJSON_Delete(root);
    return 8 + (size_t)n + b;
}

static void drop_tensor(cJSON *root, void *name) {
    cJSON_DeleteItemFromObject(root, name);
}
static void swap_shape(cJSON *root, void *name) {
    cJSON *sh = cJSON_GetObjectItem(cJSON_GetObjectItem(root, name), "shape");
    double a = cJSON_GetArrayItem(sh, 0)->valuedouble, b = cJSON_GetArrayItem(sh, 1)->valuedouble;
    cJSON_SetNumberValue(cJSON_GetArrayItem(sh, 0), b);
    cJSON_SetNumberValue(cJSON_GetArrayItem(sh, 1), a);
}
static void set_dtype(cJSON *root, void *spec) {
    char name[64];
    snprintf(name, sizeof name, "%s", (const char *)spec);
    char *colon = strchr(name, ':');
    *colon = 0;
    cJSON *t = cJSON_GetObjectItem(root, name);
    cJSON_ReplaceItemInObject(t, "dtype", cJSON_CreateString(colon + 1));
}
static void add_tensor_alias(cJSON *root, void *name) {
    /* A zero-size extra tensor: legal in the file, unknown to the model. */
    cJSON *t = cJSON_AddObjectToObject(root, name);
    cJSON_AddStringToObject(t, "dtype", "F32");
    cJSON *sh = cJSON_AddArrayToObject(t, "shape");
    cJSON_AddItemToArray(sh, cJSON_CreateNumber(0));
    cJSON *of = cJSON_AddArrayToObject(t, "data_offsets");
    cJSON_AddItemToArray(of, cJSON_CreateNumber(0));
    cJSON_AddItemToArray(of, cJSON_CreateNumber(0));
}
/* Sets metadata entries "key=value[,key=value...]". */
static void set_meta(cJSON *root, void *kv) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", (const char *)kv);
    cJSON *md = cJSON_GetObjectItem(root, "__metadata__");
    for (char *key = strtok(buf, ","); key; key = strtok(NULL, ",")) {
        char *eq = strchr(key, '=');
        *eq = 0;
        cJSON_DeleteItemFromObject(md, key);
        cJSON_AddStringToObject(md, key, eq + 1);
    }
}
static void drop_meta(cJSON *root, void *unused) {
    cJSON_DeleteItemFromObject(root, "__metadata__");
}

/* Writes `img` with the float32 element `k` of tensor `name` set to v. */
static const char *poke_f32(const char *fname, const char *img, size_t len, const char *name,
                            size_t k, float v) {
    char *copy = malloc(len);
    memcpy(copy, img, len);
    size_t bytes, at = tensor_at(img, name, &bytes);
    memcpy(copy + at + 4 * k, &v, 4);
    const char *p = tpath(fname);
    write_bytes(p, copy, len);
    free(copy);
    return p;
}

static void test_models(void) {
    elm_config c = small_config();
    size_t len;
    char *img = valid_model("good.safetensors", &c, &len);
    elm_model *m = NULL;
    CHECK_OK(elm_model_load(&m, tpath("good.safetensors"), ELM_F32));
    elm_model_free(m);

    /* Truncated anywhere: a clean error each time (every byte of the header and the first data
     * bytes, then a stride through the data). */
    for (size_t cut = 0; cut < len; cut += cut < 600 ? 1 : 13) {
        write_bytes(tpath("cut.safetensors"), img, cut);
        m = NULL;
        elm_status st = elm_model_load(&m, tpath("cut.safetensors"), ELM_F32);
        CHECK(st != ELM_OK && m == NULL && strstr(elm_last_error(), "cut.safetensors"),
              "truncated at %zu of %zu: status %s, '%s'", cut, len, elm_status_str(st),
              elm_last_error());
    }

    const char *p;
    p = rewrite("missing.safetensors", img, len, drop_tensor, "w_y.bias", NULL, 0);
    EXPECT("missing tensor", elm_model_load(&m, p, ELM_F32), ELM_ERR_FORMAT, "missing.safetensors",
           "missing tensor 'w_y.bias'");
    p = rewrite("shape.safetensors", img, len, swap_shape, "w_y.weight", NULL, 0);
    EXPECT("shape mismatch", elm_model_load(&m, p, ELM_F32), ELM_ERR_SHAPE, "shape.safetensors",
           "tensor 'w_y.weight' is [3,2], expected [2,3]");
    p = rewrite("dtype.safetensors", img, len, set_dtype, "w_y.weight:I32", NULL, 0);
    EXPECT("integer weights", elm_model_load(&m, p, ELM_F32), ELM_ERR_FORMAT, "dtype.safetensors",
           "is I32, expected a float type");
    p = rewrite("dtype2.safetensors", img, len, set_dtype, "w_y.weight:F64", NULL, 0);
    EXPECT("dtype lying about size", elm_model_load(&m, p, ELM_F32), ELM_ERR_FORMAT,
           "dtype2.safetensors", "shape and dtype need");
    p = rewrite("extra.safetensors", img, len, add_tensor_alias, "w_z.weight", NULL, 0);
    EXPECT("unexpected tensor", elm_model_load(&m, p, ELM_F32), ELM_ERR_FORMAT, "extra.safetensors",
           "unexpected tensor 'w_z.weight'");
    p = poke_f32("nan.safetensors", img, len, "mlp.network.0.weight", 5, NAN);
    EXPECT("NaN weight", elm_model_load(&m, p, ELM_F32), ELM_ERR_NUMERIC, "nan.safetensors",
           "'mlp.network.0.weight' holds a non-finite value at 5");
    p = poke_f32("inf.safetensors", img, len, "w_y.bias", 1, -INFINITY);
    EXPECT("infinite bias", elm_model_load(&m, p, ELM_F64), ELM_ERR_NUMERIC, "inf.safetensors",
           "'w_y.bias' holds a non-finite value at 1");
    /* tau_s <= 0 is no error: kappa = exp(-dt / max(tau, 1e-6)) clamps it, as the reference
     * does, so -5 and 0 act exactly like 1e-6 (issue 14's audit). Infinity stays refused. */
    {
        const float taus[3] = {-5.0f, 0.0f, 1e-6f};
        double *y[3] = {NULL, NULL, NULL};
        int ni = 0, no = 0;
        for (int i = 0; i < 3; i++) {
            char nm[32];
            snprintf(nm, sizeof nm, "tau%d.safetensors", i);
            p = poke_f32(nm, img, len, "tau_s", 2, taus[i]);
            elm_model *mt = NULL;
            CHECK_OK(elm_model_load(&mt, p, ELM_F64));
            if (!mt)
                continue;
            ni = elm_model_config(mt)->num_input, no = elm_model_config(mt)->num_output;
            double *x = calloc((size_t)ni * 7, sizeof *x);
            y[i] = calloc((size_t)no * 7, sizeof *y[i]);
            for (int k = 0; k < ni * 7; k++)
                x[k] = (k * 7 % 5) * 0.3;
            CHECK_OK(elm_model_forward_f64(mt, x, y[i], 1, 7));
            free(x);
            elm_model_free(mt);
        }
        for (int i = 0; i < 2; i++)
            CHECK(y[i] && y[2] && !memcmp(y[i], y[2], sizeof(double) * (size_t)no * 7),
                  "tau_s %g does not act as 1e-6", (double)taus[i]);
        for (int i = 0; i < 3; i++)
            free(y[i]);
    }
    p = poke_f32("tauinf.safetensors", img, len, "tau_s", 2, INFINITY);
    EXPECT("infinite tau_s", elm_model_load(&m, p, ELM_F32), ELM_ERR_NUMERIC,
           "tauinf.safetensors", "'tau_s' holds a non-finite value at 2");

    /* Configuration problems. */
    p = rewrite("nocfg.safetensors", img, len, drop_meta, NULL, NULL, 0);
    EXPECT("no configuration", elm_model_load(&m, p, ELM_F32), ELM_ERR_FORMAT, "nocfg.safetensors",
           "no model configuration");
    p = rewrite("badcfg.safetensors", img, len, set_meta, "num_memory=three", NULL, 0);
    EXPECT("bad metadata value", elm_model_load(&m, p, ELM_F32), ELM_ERR_CONFIG,
           "badcfg.safetensors", "'num_memory' expects a number");
    p = rewrite("sizes.safetensors", img, len, set_meta, "num_memory=2", NULL, 0);
    EXPECT("metadata disagreeing with tensors", elm_model_load(&m, p, ELM_F32), ELM_ERR_SHAPE,
           "sizes.safetensors", "expected");
    /* A tiny file claiming a huge model: refused from the count alone (no gigabytes allocated;
     * the fuzzer runs with a 2 GB malloc limit, which this used to exceed). */
    p = rewrite("huge.safetensors", img, len, set_meta, "num_memory=20000,mlp_hidden_size=40000",
                NULL, 0);
    EXPECT("huge configuration, tiny file", elm_model_load(&m, p, ELM_F32), ELM_ERR_FORMAT,
           "huge.safetensors", "the configuration needs");
    p = rewrite("huge2.safetensors", img, len, set_meta, "mlp_hidden_size=99999", NULL, 0);
    EXPECT("huge hidden layer, tiny file", elm_model_load(&m, p, ELM_F32), ELM_ERR_FORMAT,
           "parameter values but the file holds only", NULL);
    p = rewrite("layers.safetensors", img, len, set_meta, "mlp_num_layers=1000", NULL, 0);
    EXPECT("too many layers", elm_model_load(&m, p, ELM_F32), ELM_ERR_CONFIG, "layers.safetensors",
           "mlp_num_layers");

    /* A folder: model_config.json with an unknown key or broken JSON. */
    char dir[512];
    snprintf(dir, sizeof dir, "%s/folder", tmpdir);
    CHECK_OK(elm__mkdir_p(dir));
    p = rewrite("folder/model.safetensors", img, len, drop_meta, NULL, NULL, 0);
    write_bytes(tpath("folder/model_config.json"),
                "{\"num_input\": 4, \"num_output\": 2, \"num_memory\": 3}", 50);
    CHECK_OK(elm_model_load(&m, dir, ELM_F32));
    elm_model_free(m);
    const char *unk = "{\"num_input\": 4, \"num_output\": 2, \"num_memory\": 3, \"num_memroy\": 3}";
    write_bytes(tpath("folder/model_config.json"), unk, strlen(unk));
    EXPECT("unknown config key", elm_model_load(&m, dir, ELM_F32), ELM_ERR_CONFIG,
           "model_config.json", "unknown option 'num_memroy'");
    write_bytes(tpath("folder/model_config.json"), "{\"num_input\": 4,", 16);
    EXPECT("config not JSON", elm_model_load(&m, dir, ELM_F32), ELM_ERR_CONFIG, "model_config.json",
           "not valid JSON");
    write_bytes(tpath("folder/model_config.json"), "{\"num_input\": [4]}", 18);
    EXPECT("config value an array", elm_model_load(&m, dir, ELM_F32), ELM_ERR_CONFIG,
           "model_config.json", "'num_input' must be a number");
    free(img);

    /* Routing tensors. */
    elm_config r = small_config();
    r.num_branch = 2;
    r.num_synapse_per_branch = 3;
    r.input_to_synapse_routing = ELM_ROUTE_RANDOM;
    img = valid_model("routed.safetensors", &r, &len);
    CHECK_OK(elm_model_load(&m, tpath("routed.safetensors"), ELM_F32));
    elm_model_free(m);
    size_t bytes, at = tensor_at(img, "input_to_synapse_indices", &bytes);
    CHECK(bytes == 6 * 8, "routing indices are %zu bytes, want 48", bytes);
    int64_t bad_idx[3] = {4, -1, INT64_MAX};
    const char *want[3] = {"= 4 is outside 0..3", "= -1 is outside", "is outside 0..3"};
    for (int i = 0; i < 3; i++) {
        char *copy = malloc(len);
        memcpy(copy, img, len);
        memcpy(copy + at + 8 * 2, &bad_idx[i], 8);
        write_bytes(tpath("route.safetensors"), copy, len);
        free(copy);
        /* INT64_MAX used to go through a double and back: undefined behaviour (UBSan). */
        EXPECT("routing index out of range",
               elm_model_load(&m, tpath("route.safetensors"), ELM_F32), ELM_ERR_FORMAT,
               "input_to_synapse_indices[2]", want[i]);
    }
    p = rewrite("routef.safetensors", img, len, set_dtype, "input_to_synapse_indices:F64", NULL, 0);
    EXPECT("float routing indices", elm_model_load(&m, p, ELM_F32), ELM_ERR_FORMAT,
           "routef.safetensors", "must be an integer tensor");
    p = rewrite("routemiss.safetensors", img, len, drop_tensor, "valid_indices_mask", NULL, 0);
    EXPECT("routing mask missing", elm_model_load(&m, p, ELM_F32), ELM_ERR_FORMAT,
           "routemiss.safetensors", "needs input_to_synapse_indices and valid_indices_mask");
    free(img);
}

static long max_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

/* One LSTM tensor entry of a hand-made header: F16, shape [r] or [r, c], at data offset *at. */
static void lstm_entry(char *h, size_t n, const char *name, long r, long c, size_t *at) {
    size_t bytes = 2 * (size_t)r * (size_t)(c ? c : 1);
    char shape[64];
    if (c)
        snprintf(shape, sizeof shape, "[%ld, %ld]", r, c);
    else
        snprintf(shape, sizeof shape, "[%ld]", r);
    snprintf(h + strlen(h), n - strlen(h),
             "%s\"%s\": {\"dtype\": \"F16\", \"shape\": %s, \"data_offsets\": [%zu, %zu]}",
             *at ? ", " : "{", name, shape, *at, *at + bytes);
    *at += bytes;
}

/* An LSTM file with weight_ih [4H, I], weight_hh [4 hh, hh], biases [4H], readout [O, H] and
 * [O], F16 zeros; returns its path. */
static const char *lstm_file(const char *name, long H, long I, long hh, long O) {
    char h[1024] = "";
    size_t at = 0;
    lstm_entry(h, sizeof h, "lstm.weight_ih_l0", 4 * H, I, &at);
    lstm_entry(h, sizeof h, "lstm.weight_hh_l0", 4 * hh, hh, &at);
    lstm_entry(h, sizeof h, "lstm.bias_ih_l0", 4 * H, 0, &at);
    lstm_entry(h, sizeof h, "lstm.bias_hh_l0", 4 * H, 0, &at);
    lstm_entry(h, sizeof h, "readout.weight", O, H, &at);
    lstm_entry(h, sizeof h, "readout.bias", O, 0, &at);
    strcat(h, "}");
    char *zeros = calloc(1, at);
    const char *p = st_image(name, h, zeros, at);
    free(zeros);
    return p;
}

/* Issue 15: D4 (LSTM sizes), D18 (safetensors header first), D20 (metadata vs model_config.json),
 * D23 (the LSTM's out-of-memory message names the file). */
static void test_issue15_loaders(void) {
    elm_model *m = NULL;
    elm__st_file f;
    /* D4: weight_ih_l0 [16384, 1] (hidden 4096) with a weight_hh_l0 of hidden 1: 32 KB that the
     * old loader built into 2 x 67 M parameters (537 MB, zeroed) before checking a shape. */
    long rss0 = max_rss_mb();
    const char *p = lstm_file("lstm_big.safetensors", 4096, 1, 1, 1);
    EXPECT("LSTM sized by weight_ih alone", elm_model_load(&m, p, ELM_F32), ELM_ERR_SHAPE,
           "lstm_big.safetensors", "'lstm.weight_hh_l0' is [4, 1], expected [16384, 4096]");
    CHECK(max_rss_mb() - rss0 < 128, "a 32 KB LSTM file took %ld MB resident",
          max_rss_mb() - rss0);
    p = lstm_file("lstm_ok.safetensors", 3, 2, 3, 1);
    CHECK_OK(elm_model_load(&m, p, ELM_F32));
    elm_model_free(m);
    m = NULL;
#ifndef __SANITIZE_ADDRESS__ /* ASan reserves address space: RLIMIT_AS cannot work */
    /* D23: the LSTM's out-of-memory message names the file. A child process whose address
     * space has no room for the parameters (1 MB of F16 values: 2 x 4 MB as float64). */
    p = lstm_file("lstm_oom.safetensors", 256, 256, 256, 1);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *sm = fopen("/proc/self/statm", "r");
        long pages = 0;
        if (!sm || fscanf(sm, "%ld", &pages) != 1)
            _exit(3);
        fclose(sm);
        struct rlimit rl;
        rl.rlim_cur = rl.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (6 << 20);
        if (setrlimit(RLIMIT_AS, &rl) != 0)
            _exit(3);
        elm_status st = elm_model_load(&m, p, ELM_F64);
        const char *e = elm_last_error();
        _exit(st == ELM_ERR_NOMEM && strstr(e, "lstm_oom.safetensors: out of memory") ? 0
              : st == ELM_OK                                                         ? 2
                                                                                     : 1);
    }
    int ws = 0;
    CHECK(pid > 0 && waitpid(pid, &ws, 0) == pid, "fork failed");
    CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) != 1,
          "LSTM out of memory: the message does not name the file (child status %d)", ws);
    if (WIFEXITED(ws) && WEXITSTATUS(ws) > 1)
        fprintf(stderr, "note: the LSTM out-of-memory check could not limit memory (%d)\n",
                WEXITSTATUS(ws));
#endif

    /* D18: only the header and the bytes its tensors span are read. A valid header with a
     * 1 GiB sparse tail, and a garbage header with the same tail: the old reader read the
     * whole file (1 GiB resident) first. */
    rss0 = max_rss_mb();
    p = st_image("tail.safetensors",
                             "{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}",
                             "\0\0\200?\0\0\0@", 8);
    int fd = open(p, O_WRONLY);
    CHECK(fd >= 0 && ftruncate(fd, (off_t)1 << 30) == 0, "cannot extend %s", p);
    close(fd);
    CHECK_OK(elm__st_read(&f, p));
    float w1 = 0; /* the tensor's data follows an odd-length header: not float-aligned */
    if (f.n == 1)
        memcpy(&w1, (const char *)f.t[0].data + sizeof w1, sizeof w1);
    CHECK(f.n == 1 && f.len < 200 && w1 == 2.0f,
          "tail file: %d tensors, %zu bytes read (want 1 tensor, header + 8 bytes)", f.n, f.len);
    elm__st_free(&f);
    p = st_image("garbage_tail.safetensors", "{\"w\": garbage", NULL, 0);
    fd = open(p, O_WRONLY);
    CHECK(fd >= 0 && ftruncate(fd, (off_t)1 << 30) == 0, "cannot extend %s", p);
    close(fd);
    EXPECT("garbage header, 1 GiB file", elm__st_read(&f, p), ELM_ERR_FORMAT,
           "garbage_tail.safetensors", "not a JSON object");
    CHECK(max_rss_mb() - rss0 < 256, "reading two 1 GiB files' headers took %ld MB resident",
          max_rss_mb() - rss0);
    unlink(tpath("tail.safetensors"));
    unlink(tpath("garbage_tail.safetensors"));

    /* D20: a folder whose model_config.json disagrees with the metadata is refused (it was read
     * with the JSON's configuration, while the file named directly was read with its own). */
    elm_config c = small_config();
    CHECK_OK(elm_model_create(&m, &c, ELM_F32, 3));
    char dir[600];
    snprintf(dir, sizeof dir, "%s/", tpath("d20"));
    CHECK_OK(elm_model_save(m, dir));
    elm_model_free(m);
    m = NULL;
    CHECK_OK(elm_model_load(&m, tpath("d20"), ELM_F32)); /* they agree */
    elm_model_free(m);
    m = NULL;
    size_t jl;
    char *js = read_bytes(tpath("d20/model_config.json"), &jl);
    cJSON *cj = cJSON_Parse(js);
    free(js);
    cJSON_ReplaceItemInObject(cj, "num_memory", cJSON_CreateNumber(5));
    js = cJSON_Print(cj);
    cJSON_Delete(cj);
    write_bytes(tpath("d20/model_config.json"), js, strlen(js));
    free(js);
    EXPECT("metadata vs model_config.json, folder", elm_model_load(&m, tpath("d20"), ELM_F32),
           ELM_ERR_CONFIG, "model.safetensors: its metadata say num_memory = 3 but ",
           "model_config.json says 5");
    /* The file itself describes itself: read as it says. */
    CHECK_OK(elm_model_load(&m, tpath("d20/model.safetensors"), ELM_F32));
    CHECK(m && elm_model_config(m)->num_memory == 3, "the file named directly: num_memory %d",
          m ? elm_model_config(m)->num_memory : -1);
    elm_model_free(m);
}

/* Regression (fuzz_config): reals must survive elm_config_to_json exactly, and print readably. */
static void test_config_roundtrip(void) {
    const double vals[] = {8198552921648689602.0, 0.1, 1.0 / 3.0, 150.0, 1e-7, 5e-324, 123456.789};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        elm_config c = small_config(), r = small_config();
        c.memory_tau_min = 0;
        c.memory_tau_max = vals[i];
        c.lambda_value = vals[i];
        char *js = elm_config_to_json(&c);
        CHECK(js != NULL, "to_json failed");
        if (!js)
            continue;
        CHECK_OK(elm_config_from_json(&r, js, "roundtrip"));
        CHECK(r.memory_tau_max == vals[i] && r.lambda_value == vals[i],
              "%.17g came back as %.17g through:\n%s", vals[i], r.memory_tau_max, js);
        free(js);
    }
    elm_config c = small_config();
    c.memory_tau_max = 150.0;
    char *js = elm_config_to_json(&c);
    /* A JSON real, as the reference's constructor needs (issue 14). */
    CHECK(js && strstr(js, "\"memory_tau_max\":\t150.0,"), "150 not written as 150.0:\n%s",
          js ? js : "");
    free(js);
    /* The metadata spells reals as Python's repr does ("150.0"), like the reference's files. */
    elm_model *m = NULL;
    c.memory_tau_max = 150.0;
    CHECK_OK(elm_model_create(&m, &c, ELM_F32, 1));
    CHECK_OK(elm_model_save(m, tpath("repr.safetensors")));
    elm_model_free(m);
    elm__st_file f;
    CHECK_OK(elm__st_read(&f, tpath("repr.safetensors")));
    cJSON *v = cJSON_GetObjectItem((cJSON *)f.meta, "memory_tau_max");
    CHECK(cJSON_IsString(v) && !strcmp(v->valuestring, "150.0"), "metadata memory_tau_max '%s'",
          cJSON_IsString(v) ? v->valuestring : "?");
    v = cJSON_GetObjectItem((cJSON *)f.meta, "delta_t");
    CHECK(cJSON_IsString(v) && !strcmp(v->valuestring, "1.0"), "metadata delta_t '%s'",
          cJSON_IsString(v) ? v->valuestring : "?");
    elm__st_free(&f);
}

static void cfg_bad(const char *label, const char *json, elm_status want, const char *phrase) {
    elm_config c = small_config();
    elm_status st = elm_config_from_json(&c, json, "bad.json");
    if (st == ELM_OK)
        st = elm_config_resolve(&c);
    EXPECT(label, st, want, want == ELM_OK ? NULL : phrase, NULL);
}

static void test_config(void) {
    cfg_bad("not JSON", "{\"num_input\": ", ELM_ERR_CONFIG, "bad.json: not valid JSON");
    cfg_bad("empty text", "", ELM_ERR_CONFIG, "bad.json: not valid JSON");
    cfg_bad("an array", "[1]", ELM_ERR_CONFIG, "bad.json: expected a JSON object");
    cfg_bad("unknown key", "{\"num_inputs\": 3}", ELM_ERR_CONFIG,
            "bad.json: unknown option 'num_inputs'");
    cfg_bad("nested value", "{\"num_input\": {\"a\": 1}}", ELM_ERR_CONFIG,
            "'num_input' must be a number");
    cfg_bad("fractional integer", "{\"num_memory\": 1.5}", ELM_ERR_CONFIG,
            "'num_memory' expects an integer");
    cfg_bad("integer out of range", "{\"num_memory\": 1e20}", ELM_ERR_CONFIG,
            "'num_memory' expects an integer");
    cfg_bad("number as text", "{\"lambda_value\": \"abc\"}", ELM_ERR_CONFIG,
            "'lambda_value' expects a number");
    cfg_bad("NaN as text", "{\"lambda_value\": \"nan\"}", ELM_ERR_CONFIG,
            "'lambda_value' expects a number");
    cfg_bad("infinity as text", "{\"delta_t\": \"inf\"}", ELM_ERR_CONFIG,
            "'delta_t' expects a number");
    cfg_bad("overflowing number", "{\"delta_t\": 1e999}", ELM_ERR_CONFIG, "'delta_t'");
    cfg_bad("activation", "{\"mlp_activation\": \"tanh\"}", ELM_ERR_CONFIG, "mlp_activation");
    cfg_bad("routing", "{\"input_to_synapse_routing\": \"all\"}", ELM_ERR_CONFIG,
            "input_to_synapse_routing");
    cfg_bad("version", "{\"elm_version\": \"v3\"}", ELM_ERR_CONFIG, "elm_version");
    cfg_bad("bool", "{\"learn_memory_tau\": \"maybe\"}", ELM_ERR_CONFIG, "true or false");
    cfg_bad("zero inputs", "{\"num_input\": 0}", ELM_ERR_CONFIG, "must be >= 1");
    cfg_bad("negative memory", "{\"num_memory\": -3}", ELM_ERR_CONFIG, "must be >= 1");
    cfg_bad("huge inputs", "{\"num_input\": 2000000000}", ELM_ERR_CONFIG, "implausibly large");
    cfg_bad("zero tau_s", "{\"tau_s_value\": 0}", ELM_ERR_CONFIG, "tau_s_value must be > 0");
    cfg_bad("tau order", "{\"memory_tau_min\": 10, \"memory_tau_max\": 5}", ELM_ERR_CONFIG,
            "below memory_tau_min");
    cfg_bad("layers", "{\"mlp_num_layers\": 29}", ELM_ERR_CONFIG, "mlp_num_layers");
    cfg_bad("branches", "{\"num_branch\": 3}", ELM_ERR_CONFIG, "must equal num_input");
    cfg_bad("branch product",
            "{\"num_branch\": 100000, \"num_synapse_per_branch\": 100000,"
            "\"input_to_synapse_routing\": \"random_routing\"}",
            ELM_ERR_CONFIG, "too large");
    cfg_bad("valid", "{\"num_branch\": null, \"mlp_hidden_size\": null, \"delta_t\": 2}", ELM_OK,
            NULL);
    elm_config c = small_config();
    EXPECT("set: unknown key", elm_config_set(&c, "lamda_value", "5", "--set"), ELM_ERR_CONFIG,
           "--set: unknown option 'lamda_value'", NULL);
    EXPECT("set: empty number", elm_config_set(&c, "lambda_value", "", "--set"), ELM_ERR_CONFIG,
           "expects a number", NULL);
}

/* ---- .npy ---- */

/* A .npy image: the 10-byte prefix (version 1), the header text padded, then `data`. */
static const char *npy_image(const char *name, const char *dict, const void *data, size_t dlen) {
    size_t n = strlen(dict), hl = n + 1;
    hl += (64 - (10 + hl) % 64) % 64;
    unsigned char *b = malloc(10 + hl + dlen);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (unsigned char)(hl & 0xff);
    b[9] = (unsigned char)(hl >> 8);
    memset(b + 10, ' ', hl);
    memcpy(b + 10, dict, n);
    b[10 + hl - 1] = '\n';
    if (dlen)
        memcpy(b + 10 + hl, data, dlen);
    const char *p = tpath(name);
    write_bytes(p, b, 10 + hl + dlen);
    free(b);
    return p;
}

static void npy_bad(const char *label, const char *dict, size_t dlen, const char *phrase) {
    static const char zeros[64];
    elm__array a;
    const char *p = npy_image("bad.npy", dict, zeros, dlen);
    EXPECT(label, elm__npy_load(p, &a), ELM_ERR_FORMAT, "bad.npy", phrase);
    CHECK(a.data == NULL, "%s: data left behind", label);
}

static void test_npy(void) {
    elm__array a;
    const float vals[6] = {1, 2, 3, 4, NAN, -INFINITY};
    const int64_t shape[2] = {2, 3};
    CHECK_OK(elm__npy_save(tpath("good.npy"), ELM_DT_F32, 2, shape, vals));
    CHECK_OK(elm__npy_load(tpath("good.npy"), &a));
    CHECK(a.numel == 6 && a.ndim == 2 && isnan(elm__array_get(&a, 4)),
          "valid .npy misread (NaN is data to a .npy, not an error)");
    elm__array_free(&a);
    size_t len;
    char *img = read_bytes(tpath("good.npy"), &len);
    for (size_t cut = 0; cut < len; cut++) {
        write_bytes(tpath("cut.npy"), img, cut);
        elm_status st = elm__npy_load(tpath("cut.npy"), &a);
        CHECK(st == ELM_ERR_FORMAT && strstr(elm_last_error(), "cut.npy") && !a.data,
              "truncated .npy at %zu: %s: %s", cut, elm_status_str(st), elm_last_error());
    }
    /* One byte too many is as wrong as one too few. */
    char *longer = malloc(len + 1);
    memcpy(longer, img, len);
    longer[len] = 0;
    write_bytes(tpath("long.npy"), longer, len + 1);
    EXPECT("trailing byte", elm__npy_load(tpath("long.npy"), &a), ELM_ERR_FORMAT, "long.npy",
           "promises 24 bytes of data but the file holds 25");
    free(longer);
    /* Bad magic, version, header length. */
    char *copy = malloc(len);
    memcpy(copy, img, len);
    copy[1] = 'X';
    write_bytes(tpath("magic.npy"), copy, len);
    EXPECT("bad magic", elm__npy_load(tpath("magic.npy"), &a), ELM_ERR_FORMAT, "magic.npy",
           "bad magic");
    memcpy(copy, img, len);
    copy[6] = 9;
    write_bytes(tpath("version.npy"), copy, len);
    EXPECT("version 9", elm__npy_load(tpath("version.npy"), &a), ELM_ERR_FORMAT, "version.npy",
           "unsupported .npy version 9");
    unsigned char v2[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0xff, 0xff, 0xff, 0xff};
    write_bytes(tpath("hlen.npy"), v2, 12);
    EXPECT("header length 4 GiB", elm__npy_load(tpath("hlen.npy"), &a), ELM_ERR_FORMAT, "hlen.npy",
           "implausibly large");
    memcpy(copy, img, len);
    copy[8] = (char)0xff;
    copy[9] = (char)0x7f;
    write_bytes(tpath("hlen2.npy"), copy, len);
    EXPECT("header past the end", elm__npy_load(tpath("hlen2.npy"), &a), ELM_ERR_FORMAT,
           "hlen2.npy", "truncated header");
    free(copy);
    free(img);

    npy_bad("no descr", "{'fortran_order': False, 'shape': (2,), }", 8, "no 'descr'");
    npy_bad("big-endian", "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8,
            "unsupported dtype '>f4'");
    npy_bad("complex", "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", 8,
            "unsupported dtype '<c8'");
    npy_bad("object", "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", 8,
            "unsupported dtype");
    npy_bad("descr unterminated", "{'descr': '<f4", 4, "unsupported dtype");
    npy_bad("fortran", "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 8,
            "Fortran-ordered");
    npy_bad("no fortran_order", "{'descr': '<f4', 'shape': (2,), }", 8,
            "no 'fortran_order'");
    npy_bad("no shape", "{'descr': '<f4', 'fortran_order': False, }", 8, "no 'shape'");
    npy_bad("shape a list", "{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", 8,
            "'shape' is not a tuple");
    /* D14: the header is a dict literal, parsed as one (numpy's literal_eval), not searched. A
     * decoy key inside a string value, or an extra key, made the old reader read another array
     * (numpy refuses both); dimensions without commas were accepted. */
    npy_bad("decoy key in a string",
            "{'note': \"'shape': (2,)\", 'descr': '<f4', 'fortran_order': False, "
            "'shape': (1,), }",
            8, "header has the key 'note'");
    npy_bad("decoy descr in a string",
            "{'descr': \"x', 'descr': '<f4\", 'fortran_order': False, 'shape': (2,), }", 8,
            "unsupported dtype 'x', 'descr': '");
    npy_bad("extra key", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8,
            "header has the key 'x'");
    npy_bad("no commas", "{'descr': '<f4', 'fortran_order': False, 'shape': (1 2 1), }", 8,
            "separated by commas");
    npy_bad("int, not a tuple", "{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", 8,
            "written (n,)");
    npy_bad("text after the dict", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x",
            8, "text after the dict");
    npy_bad("key not a string", "{descr: '<f4', 'fortran_order': False, 'shape': (2,), }", 8,
            "quoted string");
    npy_bad("fortran_order a number", "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", 8,
            "not True or False");
    /* What numpy accepts, elm accepts: double quotes, no trailing comma, a repeated key (the
     * last wins, as in Python), newlines inside the dict. */
    {
        static const float two[2] = {1.5f, -2.0f};
        const char *ok[] = {
            "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1)}",
            "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), 'descr': '<f4'}",
            "{'descr': '<f4',\n 'fortran_order': False,\n 'shape': (2 ,) ,\n}",
        };
        for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
            const char *p = npy_image("ok.npy", ok[i], two, 8);
            elm__array ga;
            CHECK_OK(elm__npy_load(p, &ga));
            CHECK(ga.dtype == ELM_DT_F32 && ga.numel == 2 && elm__array_get(&ga, 1) == -2.0,
                  "numpy-valid header %zu misread", i);
            elm__array_free(&ga);
        }
    }
    npy_bad("negative dimension", "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", 8,
            "malformed shape");
    npy_bad("word in shape", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", 8,
            "malformed shape");
    npy_bad("unterminated shape", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, ", 8,
            "malformed shape");
    npy_bad("nine dimensions",
            "{'descr': '|u1', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 1,
            "more than 8 dimensions");
    npy_bad("dimension overflowing",
            "{'descr': '<f4', 'fortran_order': False, "
            "'shape': (99999999999999999999,), }",
            8, "malformed shape");
    /* Huge shapes are refused from the header: nothing the size of the claim is allocated. */
    npy_bad("absurd shape",
            "{'descr': '<f8', 'fortran_order': False, "
            "'shape': (4294967296, 4294967296), }",
            8, "absurdly large");
    npy_bad("too large",
            "{'descr': '<f8', 'fortran_order': False, "
            "'shape': (2147483648, 2147483648), }",
            8, "absurdly large");
    npy_bad("8 GB claimed, 8 bytes held",
            "{'descr': '<f8', 'fortran_order': False, "
            "'shape': (1000000000,), }",
            8,
            "promises 8000000000 bytes of data but the file "
            "holds 8");
    npy_bad("shape/data mismatch", "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }", 8,
            "promises 12 bytes");
    EXPECT("missing file", elm__npy_load(tpath("absent.npy"), &a), ELM_ERR_IO, "absent.npy", NULL);
    /* A folder is not a file; neither is a FIFO, which must not block the reader (D17). */
    EXPECT("folder", elm__npy_load(tmpdir, &a), ELM_ERR_IO, tmpdir, "not a regular file");
    if (mkfifo(tpath("fifo.npy"), 0600) == 0) {
        EXPECT("fifo", elm__npy_load(tpath("fifo.npy"), &a), ELM_ERR_IO, "fifo.npy",
               "not a regular file");
        unlink(tpath("fifo.npy"));
    }
}

int main(void) {
    tmpdir_make("elm-malformed");
    test_safetensors_raw();
    test_models();
    test_issue15_loaders();
    test_config();
    test_config_roundtrip();
    test_npy();
    tmpdir_remove();
    return test_end();
}
