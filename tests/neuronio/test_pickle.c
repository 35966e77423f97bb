/*
 * test_pickle.c - the safe pickle reader and the NeuronIO pickle extraction on the authentic
 * files in ../shared/data/neuronio: the dev file (Python 3, protocol 2) and the two Python 2
 * style files (protocol 2 and protocol 0), which hold the dev file's first simulations and must
 * give identical simulations; then hostile input: truncations, flipped bytes, forbidden globals,
 * absurd sizes, which must give errors, never crashes.
 */
#include "elm.h"
#include "neuronio/nio_data.h"
#include "core/pickle.h"
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEV_NAME                                                                                   \
    "L5PC_sim__Output_spikes_0056__Input_ranges_Exc_[0520,1017]_Inh_[0385,0839]_per100ms__simXsec_" \
    "8x6_randseed_700001.p"
#define PY2_NAME "py2/L5PC_sim__py2style__simXsec_2x6_randseed_700001.p"
#define PY0_NAME "py2/L5PC_sim__py2style_protocol0__simXsec_1x6_randseed_700001.p"

static char *path_of(const char *shared, const char *name) {
    static char buf[3][4096];
    static int k;
    k = (k + 1) % 3;
    snprintf(buf[k], sizeof buf[k], "%s/data/neuronio/%s", shared, name);
    return buf[k];
}

static int sims_equal(const elm_nio_sim *a, const elm_nio_sim *b, int k) {
    int ok = a->T == b->T && a->n_in == b->n_in && a->n_out_spikes == b->n_out_spikes;
    CHECK(ok, "sim %d: sizes differ", k);
    if (!ok)
        return 0;
    int64_t nnz = a->spike_ptr[a->T];
    ok = nnz == b->spike_ptr[b->T] &&
         !memcmp(a->spike_ptr, b->spike_ptr, sizeof(int64_t) * (size_t)(a->T + 1)) &&
         !memcmp(a->spike_idx, b->spike_idx, sizeof(uint16_t) * (size_t)nnz) &&
         !memcmp(a->soma, b->soma, sizeof(float) * (size_t)a->T) &&
         (a->n_out_spikes == 0 ||
          !memcmp(a->out_spike_times, b->out_spike_times, sizeof(float) * (size_t)a->n_out_spikes));
    CHECK(ok, "sim %d: contents differ", k);
    return ok;
}

static elm_status parse_buf(const uint8_t *p, size_t n) {
    elm_pk *pk = NULL;
    elm_status st = elm_pk_parse(&pk, p, n, "test-buffer");
    elm_pk_free(pk);
    return st;
}

static void test_small_pickles(void) {
    /* {'a': [1, 2.5, None, True], 'b': 'x'} at protocol 2, built by hand. */
    static const uint8_t ok[] = {0x80, 2, '}', 'q', 0, '(', 'X', 1, 0, 0, 0, 'a', ']', 'q', 1,
                                 '(', 'K', 1, 'G', 0x40, 0x04, 0, 0, 0, 0, 0, 0, 'N', 0x88,
                                 'e', 'X', 1, 0, 0, 0, 'b', 'U', 1, 'x', 'u', '.'};
    elm_pk *pk = NULL;
    CHECK_OK(elm_pk_parse(&pk, ok, sizeof ok, "small"));
    if (pk) {
        const elm_pk_val *a = elm_pk_dict_get(elm_pk_root(pk), "a");
        size_t n = 0;
        const elm_pk_val *it = elm_pk_seq_items(a, &n);
        CHECK(n == 4 && it[0].type == ELM_PK_INT && it[0].u.i == 1 &&
                  it[1].type == ELM_PK_FLOAT && it[1].u.f == 2.5 && it[2].type == ELM_PK_NONE &&
                  it[3].type == ELM_PK_BOOL && it[3].u.i == 1,
              "list items wrong");
        const elm_pk_val *b = elm_pk_dict_get(elm_pk_root(pk), "b");
        CHECK(b && b->type == ELM_PK_STR && b->u.o->len == 1 && b->u.o->bytes[0] == 'x',
              "dict['b'] wrong");
    }
    elm_pk_free(pk);
    /* Every proper prefix is truncated: an error, never a crash. */
    for (size_t n = 0; n < sizeof ok; n++)
        CHECK(parse_buf(ok, n) != ELM_OK, "prefix of %zu bytes accepted", n);

    /* os.system('echo hi') at protocol 0 and 2: refused at the GLOBAL, naming it. */
    static const char evil0[] = "cos\nsystem\n(S'echo hi'\ntR.";
    CHECK(parse_buf((const uint8_t *)evil0, sizeof evil0 - 1) == ELM_ERR_UNSUPPORTED,
          "os.system accepted");
    CHECK(strstr(elm_last_error(), "os.system") && strstr(elm_last_error(), "GLOBAL") &&
              strstr(elm_last_error(), "offset 0"),
          "message does not name the global/opcode/offset: %s", elm_last_error());
    static const char evil2[] = "\x80\x02" "cposix\nsystem\nq\x00X\x07\x00\x00\x00echo hi\x85R.";
    CHECK(parse_buf((const uint8_t *)evil2, sizeof evil2 - 1) == ELM_ERR_UNSUPPORTED,
          "posix.system accepted");
    /* Other code-running opcodes. */
    static const char inst[] = "(ios\nsystem\nS'x'\no.";
    CHECK(parse_buf((const uint8_t *)inst, sizeof inst - 1) != ELM_OK, "INST accepted");
    static const char newobj[] = "\x80\x02" "cnumpy\nndarray\n)\x81.";
    CHECK(parse_buf((const uint8_t *)newobj, sizeof newobj - 1) != ELM_OK, "NEWOBJ accepted");
    /* A string longer than the file; a huge memo index; GET of an unset memo. */
    static const uint8_t longstr[] = {0x80, 2, 'X', 0xff, 0xff, 0xff, 0x7f, 'a', '.'};
    CHECK(parse_buf(longstr, sizeof longstr) == ELM_ERR_FORMAT, "long string accepted");
    static const uint8_t bigmemo[] = {0x80, 2, 'N', 'r', 0xff, 0xff, 0xff, 0xff, '.'};
    CHECK(parse_buf(bigmemo, sizeof bigmemo) == ELM_ERR_FORMAT, "huge memo index accepted");
    static const uint8_t badget[] = {0x80, 2, 'h', 5, '.'};
    CHECK(parse_buf(badget, sizeof badget) == ELM_ERR_FORMAT, "unset memo GET accepted");
    /* An array claiming 2^30 x 2^30 float64 elements with 8 bytes of data. */
    static const char bigarr[] =
        "\x80\x02" "cnumpy.core.multiarray\n_reconstruct\n" "cnumpy\nndarray\n"
        "K\x00\x85U\x01" "b\x87R(K\x01J\x00\x00\x00\x40J\x00\x00\x00\x40\x86"
        "cnumpy\ndtype\nU\x02" "f8\x89\x88\x87R(K\x03U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xff"
        "K\x00tb\x89U\x08" "abcdefghtb.";
    CHECK(parse_buf((const uint8_t *)bigarr, sizeof bigarr - 1) == ELM_ERR_FORMAT,
          "absurd array accepted: %s", elm_last_error());
    CHECK(strstr(elm_last_error(), "BUILD") != NULL, "array error names no BUILD: %s",
          elm_last_error());
    /* The same array with a consistent size parses. */
    static const char goodarr[] =
        "\x80\x02" "cnumpy.core.multiarray\n_reconstruct\n" "cnumpy\nndarray\n"
        "K\x00\x85U\x01" "b\x87R(K\x01K\x02\x85"
        "cnumpy\ndtype\nU\x02" "f4\x89\x88\x87R(K\x03U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xff"
        "K\x00tb\x89U\x08\x00\x00\x80\x3f\x00\x00\x00\x40tb.";
    CHECK_OK(elm_pk_parse(&pk, (const uint8_t *)goodarr, sizeof goodarr - 1, "goodarr"));
    if (pk) {
        const elm_pk_val *r = elm_pk_root(pk);
        CHECK(r->type == ELM_PK_ARRAY && r->u.o->arr->numel == 2 &&
                  elm_pk_array_get(r->u.o->arr, 0) == 1.0 && elm_pk_array_get(r->u.o->arr, 1) == 2.0,
              "small float32 array wrong");
    }
    elm_pk_free(pk);
    /* Deep nesting: 100000 MARKs are refused (bounded), not a stack overflow. */
    size_t deep = 100000;
    uint8_t *d = malloc(deep + 1);
    memset(d, '(', deep);
    d[deep] = '.';
    CHECK(parse_buf(d, deep + 1) == ELM_ERR_FORMAT, "100000 nested marks accepted");
    /* 100000 nested empty lists appended into each other are fine (no recursion). */
    free(d);
}

int main(void) {
    const char *shared = test_shared();
    test_small_pickles();

    elm_nio_sim *dev = NULL, *py2 = NULL, *py0 = NULL;
    int n_dev = 0, n_py2 = 0, n_py0 = 0;
    CHECK_OK(elm_nio_pickle_read(path_of(shared, DEV_NAME), &dev, &n_dev));
    CHECK_OK(elm_nio_pickle_read(path_of(shared, PY2_NAME), &py2, &n_py2));
    CHECK_OK(elm_nio_pickle_read(path_of(shared, PY0_NAME), &py0, &n_py0));
    CHECK(n_dev == 8 && n_py2 == 2 && n_py0 == 1, "simulation counts %d %d %d", n_dev, n_py2,
          n_py0);
    if (n_dev == 8) {
        /* Facts checked with Python's pickle module on the same file. */
        const int want_out[8] = {1, 0, 35, 0, 0, 19, 1, 0};
        const long want_in[8] = {79901, 78936, 94319, 85800, 75929, 89896, 86551, 78121};
        for (int k = 0; k < 8; k++) {
            CHECK(dev[k].T == 6000 && dev[k].n_in == 1278, "sim %d: T %d n_in %d", k, dev[k].T,
                  dev[k].n_in);
            CHECK(dev[k].n_out_spikes == want_out[k], "sim %d: %d output spikes, want %d", k,
                  dev[k].n_out_spikes, want_out[k]);
            CHECK(dev[k].spike_ptr[6000] == want_in[k], "sim %d: %lld input spikes, want %ld", k,
                  (long long)dev[k].spike_ptr[6000], want_in[k]);
        }
        CHECK(dev[0].out_spike_times[0] == 2496.0f, "sim 0 output spike at %g",
              (double)dev[0].out_spike_times[0]);
    }
    for (int k = 0; k < n_py2 && k < n_dev; k++)
        sims_equal(&dev[k], &py2[k], k);
    for (int k = 0; k < n_py0 && k < n_dev; k++)
        sims_equal(&dev[k], &py0[k], k);

    /* Truncations of the dev file at many points, and flipped bytes: errors, never crashes. */
    elm_pk *pk = NULL;
    CHECK_OK(elm_pk_load_file(&pk, path_of(shared, DEV_NAME)));
    if (pk) {
        FILE *f = fopen(path_of(shared, DEV_NAME), "rb");
        fseek(f, 0, SEEK_END);
        size_t len = (size_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        uint8_t *buf = malloc(len);
        CHECK(fread(buf, 1, len, f) == len, "read dev file");
        fclose(f);
        const double cuts[] = {0, 1e-6, 0.001, 0.0035, 0.01, 0.1, 0.37, 0.5, 0.77, 0.999, 0.9999999};
        for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
            size_t n = (size_t)(cuts[i] * (double)len);
            CHECK(parse_buf(buf, n) != ELM_OK, "dev file cut at %zu bytes accepted", n);
        }
        /* Flip bytes in the header region (opcodes and lengths), each alone. */
        int errors = 0, oks = 0;
        uint64_t seed = 12345;
        for (int i = 0; i < 60; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            size_t at = (size_t)((seed >> 33) % 30000);
            uint8_t old = buf[at];
            buf[at] ^= (uint8_t)(1u << ((seed >> 20) % 8));
            if (parse_buf(buf, len) == ELM_OK)
                oks++;
            else
                errors++;
            buf[at] = old;
        }
        printf("flipped-byte parses: %d errors, %d still valid pickles\n", errors, oks);
        CHECK(errors > 0, "no flipped byte was detected");
        free(buf);
    }
    elm_pk_free(pk);
    elm_nio_sims_free(dev, n_dev);
    elm_nio_sims_free(py2, n_py2);
    elm_nio_sims_free(py0, n_py0);
    return test_end();
}
