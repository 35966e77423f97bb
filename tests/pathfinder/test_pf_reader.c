/*
 * test_pf_reader.c - the Pathfinder reader on the authentic LRA folders in ../shared.
 *
 * Checksums of authentic images were computed independently with Pillow:
 *     a = np.array(Image.open(p)); a.sum(), (a * arange(a.size).reshape(a.shape)).sum() % 1000003
 * so they test the libpng decoder and the row-major order, not just self-consistency.
 */
#include "pathfinder/pathfinder.h"
#include "test.h"

#include "internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void checksums(const uint8_t *px, size_t n, long *sum, long *weighted) {
    long s = 0;
    long long w = 0;
    for (size_t i = 0; i < n; i++) {
        s += px[i];
        w = (w + (long long)px[i] * (long long)i) % 1000003;
    }
    *sum = s;
    *weighted = (long)w;
}

static int contains(const char *hay, const char *needle) {
    return hay && strstr(hay, needle) != NULL;
}

static void test_authentic(const char *shared) {
    char base[1024];
    snprintf(base, sizeof base, "%s/data/pathfinder", shared);
    char d32[1100], d128[1100], nn32[1100];
    snprintf(d32, sizeof d32, "%s/pathfinder32/curv_contour_length_14", base);
    snprintf(d128, sizeof d128, "%s/pathfinder128/curv_contour_length_14", base);
    snprintf(nn32, sizeof nn32, "%s/pathfinder32", base);

    /* 32 px: 200 images in 3 batches (100 + 97 + 3), labels 100 / 100 (README). */
    elm_pf *p = NULL;
    CHECK_OK(elm_pf_open(&p, d32, NULL, 0, ELM_PF_SPLIT_SEED));
    if (!p)
        return;
    const elm_pf_info *in = elm_pf_get_info(p);
    CHECK(in->samples == 200, "samples %ld", in->samples);
    CHECK(in->labels[0] == 100 && in->labels[1] == 100, "labels %ld/%ld", in->labels[0],
          in->labels[1]);
    CHECK(in->image_size == 32, "size %d", in->image_size);
    CHECK(in->batches == 3, "batches %d", in->batches);
    CHECK(in->contour_length == 14, "contour length %d", in->contour_length);
    CHECK(!strcmp(in->difficulty, "curv_contour_length_14"), "difficulty %s", in->difficulty);
    CHECK(in->split_len[0] == 160 && in->split_len[1] == 20 && in->split_len[2] == 20,
          "splits %ld/%ld/%ld", in->split_len[0], in->split_len[1], in->split_len[2]);

    /* Metadata order: batch 0 first, and the last line is imgs/2/sample_3.png (sample_2 is
     * absent from batch 2: the reader must go by the metadata). */
    const char *first = elm_pf_image_path(p, ELM_PF_ALL, 0);
    const char *last = elm_pf_image_path(p, ELM_PF_ALL, 199);
    CHECK(contains(first, "imgs/0/sample_0.png"), "first %s", first ? first : "(null)");
    CHECK(contains(last, "imgs/2/sample_3.png"), "last %s", last ? last : "(null)");
    CHECK(elm_pf_image_path(p, ELM_PF_ALL, 200) == NULL, "index 200 must be out of range");

    uint8_t px[128 * 128];
    int label = -1;
    long sum, w;
    CHECK_OK(elm_pf_load_u8(p, ELM_PF_ALL, 0, px, &label));
    checksums(px, 32 * 32, &sum, &w);
    CHECK(sum == 27177 && w == 710531, "sample_0 checksums %ld %ld (want 27177 710531)", sum, w);
    CHECK(px[16 * 32 + 16] == 48, "pixel (16,16) = %d, want 48", px[16 * 32 + 16]);
    CHECK(label == 0, "label of imgs/0/sample_0 = %d (metadata says 0)", label);
    CHECK_OK(elm_pf_load_u8(p, ELM_PF_ALL, 199, px, &label));
    checksums(px, 32 * 32, &sum, &w);
    CHECK(sum == 21722 && w == 792413, "imgs/2/sample_3 checksums %ld %ld", sum, w);

    /* Normalisation: x = (p / 255 - 0.5) / 0.5, exactly the float32 computation. */
    float x[32 * 32];
    CHECK_OK(elm_pf_load_u8(p, ELM_PF_ALL, 0, px, NULL));
    CHECK_OK(elm_pf_load(p, ELM_PF_ALL, 0, x, &label));
    int bad = 0;
    float lo = 2, hi = -2;
    for (int i = 0; i < 32 * 32; i++) {
        float want = ((float)px[i] / 255.0f - 0.5f) / 0.5f;
        bad += x[i] != want;
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
    }
    CHECK(bad == 0, "%d pixels not normalised as (p/255-0.5)/0.5", bad);
    CHECK(lo == -1.0f && hi == 1.0f, "range [%g, %g], want [-1, 1] (background 0, max 255)",
          (double)lo, (double)hi);

    /* Splits: disjoint, covering, deterministic, label counts consistent. */
    int *seen = calloc(200, sizeof(int));
    long lab1 = 0;
    for (int s = 0; s < 3; s++)
        for (long k = 0; k < elm_pf_len(p, (elm_pf_split)s); k++) {
            long i = elm_pf_index(p, (elm_pf_split)s, k);
            if (i >= 0 && i < 200)
                seen[i]++;
            lab1 += elm_pf_label(p, (elm_pf_split)s, k) == 1;
        }
    int once = 0;
    for (int i = 0; i < 200; i++)
        once += seen[i] == 1;
    CHECK(once == 200, "%d of 200 samples in exactly one split", once);
    CHECK(lab1 == 100, "label-1 count over splits %ld", lab1);
    free(seen);

    elm_pf *q = NULL, *r = NULL;
    CHECK_OK(elm_pf_open(&q, nn32, NULL, 0, ELM_PF_SPLIT_SEED)); /* the pathfinderNN folder */
    CHECK_OK(elm_pf_open(&r, d32, NULL, 0, ELM_PF_SPLIT_SEED + 1));
    if (q && r) {
        CHECK(!strcmp(elm_pf_get_info(q)->dir, d32), "pathfinder32 resolved to %s",
              elm_pf_get_info(q)->dir);
        int same = 1, differ = 0;
        for (int s = 0; s < 3; s++)
            for (long k = 0; k < elm_pf_len(p, (elm_pf_split)s); k++) {
                same &= elm_pf_index(p, (elm_pf_split)s, k) == elm_pf_index(q, (elm_pf_split)s, k);
                differ |=
                    elm_pf_index(p, (elm_pf_split)s, k) != elm_pf_index(r, (elm_pf_split)s, k);
            }
        CHECK(same, "the same folder and seed must give the same splits");
        CHECK(differ, "another split seed must give other splits");
    }
    elm_pf_free(q);
    elm_pf_free(r);

    /* Batch fill (parallel) equals one-by-one loads; the cache serves the same bytes. */
    long idx[5] = {0, 7, 19, 3, 11};
    float *xb = malloc(5 * 1024 * sizeof(float)), tgt[5];
    CHECK_OK(elm_pf_fill(p, ELM_PF_VALID, idx, 5, xb, tgt, 2, 0));
    int mism = 0;
    for (int b = 0; b < 5; b++) {
        CHECK_OK(elm_pf_load(p, ELM_PF_VALID, idx[b], x, &label));
        mism += memcmp(x, xb + b * 1024, sizeof x) != 0 || tgt[b] != (float)label;
    }
    CHECK(mism == 0, "%d batch rows differ from single loads", mism);
    int cached = 0;
    CHECK_OK(elm_pf_cache(p, 1000, 2, &cached));
    CHECK(cached == 0, "a 1000-byte limit must not cache 200 KB");
    CHECK_OK(elm_pf_cache(p, (size_t)1 << 30, 2, &cached));
    CHECK(cached == 1, "200 images of 1 KB must be cached");
    float *xc = malloc(5 * 1024 * sizeof(float)), tc[5];
    CHECK_OK(elm_pf_fill(p, ELM_PF_VALID, idx, 5, xc, tc, 2, 0));
    CHECK(!memcmp(xb, xc, 5 * 1024 * sizeof(float)) && !memcmp(tgt, tc, sizeof tc),
          "cached batch differs from decoded batch");
    long badidx = 20;
    CHECK(elm_pf_fill(p, ELM_PF_VALID, &badidx, 1, xc, tc, 1, 0) == ELM_ERR_ARG,
          "index 20 of a 20-sample split must be refused");

    /* One-hot grey levels: bin floor(p * L / 256), exactly one 1 a step; a filled batch is the
     * encoding of the decoded bytes; levels 0 is the normalised pixel. */
    {
        const uint8_t grey[6] = {0, 15, 16, 127, 128, 255};
        const int want16[6] = {0, 0, 1, 7, 8, 15}, want2[6] = {0, 0, 0, 0, 1, 1};
        float oh[6 * 16], nz[6], plain[6];
        elm_pf_encode(oh, grey, 6, 16);
        int badbin = 0;
        for (int i = 0; i < 6; i++)
            for (int l = 0; l < 16; l++)
                badbin += oh[i * 16 + l] != (l == want16[i] ? 1.0f : 0.0f);
        CHECK(badbin == 0, "%d one-hot values of 16 levels are wrong", badbin);
        elm_pf_encode(oh, grey, 6, 2);
        for (int i = 0; i < 6; i++)
            badbin += oh[i * 2 + want2[i]] != 1.0f || oh[i * 2 + 1 - want2[i]] != 0.0f;
        CHECK(badbin == 0, "2 levels: bins split at 128");
        elm_pf_encode(nz, grey, 6, 0);
        elm_pf_normalise(plain, grey, 6);
        CHECK(!memcmp(nz, plain, sizeof nz) && plain[0] == -1.0f && plain[5] == 1.0f,
              "levels 0 must be the normalised pixel");
        CHECK(elm_pf_num_input(0) == 1 && elm_pf_num_input(16) == 16, "inputs per step");

        float *xo = malloc(5 * 1024 * 16 * sizeof(float)), *xe = malloc(1024 * 16 * sizeof(float));
        uint8_t *u8 = malloc(1024);
        CHECK_OK(elm_pf_fill(p, ELM_PF_VALID, idx, 5, xo, tc, 2, 16));
        int rowbad = 0;
        for (int b = 0; b < 5; b++) {
            CHECK_OK(elm_pf_load_u8(p, ELM_PF_VALID, idx[b], u8, &label));
            elm_pf_encode(xe, u8, 1024, 16);
            rowbad += memcmp(xe, xo + (size_t)b * 1024 * 16, 1024 * 16 * sizeof(float)) != 0 ||
                      tc[b] != (float)label;
        }
        CHECK(rowbad == 0, "%d one-hot batch rows differ from the encoded bytes", rowbad);
        CHECK(elm_pf_fill(p, ELM_PF_VALID, idx, 1, xo, tc, 1, 1) == ELM_ERR_ARG &&
                  elm_pf_fill(p, ELM_PF_VALID, idx, 1, xo, tc, 1, 257) == ELM_ERR_ARG,
              "1 or 257 levels must be refused");
        free(xo);
        free(xe);
        free(u8);
    }
    free(xb);
    free(xc);
    elm_pf_free(p);

    /* 128 grey (Path-X): 40 images, 20 / 20, splits 32 / 4 / 4. */
    CHECK_OK(elm_pf_open(&p, d128, NULL, 0, ELM_PF_SPLIT_SEED));
    if (p) {
        in = elm_pf_get_info(p);
        CHECK(in->samples == 40 && in->labels[0] == 20 && in->labels[1] == 20,
              "128: %ld samples, %ld/%ld", in->samples, in->labels[0], in->labels[1]);
        CHECK(in->image_size == 128, "128: size %d", in->image_size);
        CHECK(in->split_len[0] == 32 && in->split_len[1] == 4 && in->split_len[2] == 4,
              "128 splits %ld/%ld/%ld", in->split_len[0], in->split_len[1], in->split_len[2]);
        CHECK_OK(elm_pf_load_u8(p, ELM_PF_ALL, 0, px, NULL));
        checksums(px, 128 * 128, &sum, &w);
        CHECK(sum == 166522 && w == 977392, "128 sample_0 checksums %ld %ld", sum, w);
    }
    elm_pf_free(p);

    /* The root holds two sizes: ambiguous unless a size is given. */
    p = NULL;
    CHECK(elm_pf_open(&p, base, NULL, 0, 1) == ELM_ERR_ARG, "root with 2 sets must be refused");
    CHECK(contains(elm_last_error(), "pathfinder32") && contains(elm_last_error(), "pathfinder128"),
          "message should list both: %s", elm_last_error());
    CHECK_OK(elm_pf_open(&p, base, NULL, 128, 1));
    CHECK(p && elm_pf_get_info(p)->samples == 40, "root + size 128 must open Path-X");
    elm_pf_free(p);
    p = NULL;
    CHECK_OK(elm_pf_open(&p, base, "curv_contour_length_14", 32, 1));
    CHECK(p && elm_pf_get_info(p)->samples == 200, "root + size 32 + difficulty");
    elm_pf_free(p);
    p = NULL;
    CHECK(elm_pf_open(&p, base, "curv_baseline", 0, 1) != ELM_OK, "absent difficulty");
    CHECK(elm_pf_probe(base) && elm_pf_probe(d32) && elm_pf_probe(nn32), "probe");
}

int main(void) {
    test_authentic(test_shared());
    return test_end();
}
