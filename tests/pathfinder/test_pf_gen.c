/*
 * test_pf_gen.c - the Pathfinder generator: determinism, labels, written layout, presets.
 */
#include "pathfinder/pathfinder.h"
#include "pathfinder/pf_gen.h"
#include "test.h"
#include "tmpfiles.h"

#include "internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Draws images of one size and checks what every image must satisfy. */
static void test_images(int size, int contour_length, int n) {
    elm_pf_gen_params prm;
    elm_pf_gen *g = NULL;
    CHECK_OK(elm_pf_gen_preset(&prm, size, contour_length));
    CHECK_OK(elm_pf_gen_create(&g, &prm));
    if (!g)
        return;
    size_t T = (size_t)size * size;
    uint8_t *a = malloc(T), *b = malloc(T);
    int differ = 0;
    for (int i = 0; i < n; i++) {
        elm_pf_gen_sample sa, sb;
        uint64_t seed = elm_pf_gen_image_seed(42, i);
        CHECK_OK(elm_pf_gen_image(g, seed, i & 1, a, &sa));
        CHECK_OK(elm_pf_gen_image(g, seed, i & 1, b, &sb));
        CHECK(!memcmp(a, b, T), "size %d image %d: same seed, different bytes", size, i);
        /* Brightest pixel scaled to 255, background 0. */
        int hi = 0, lo = 255;
        size_t ink = 0;
        for (size_t k = 0; k < T; k++) {
            hi = a[k] > hi ? a[k] : hi;
            lo = a[k] < lo ? a[k] : lo;
            ink += a[k] >= 32;
        }
        CHECK(hi == 255 && lo == 0, "size %d image %d: range %d..%d", size, i, lo, hi);
        /* Two target paths of contour_length dashes are always there (more with distractors). */
        CHECK(sa.paths >= 2 && sa.dashes >= 2 * contour_length,
              "size %d image %d: %d paths, %d "
              "dashes",
              size, i, sa.paths, sa.dashes);
        CHECK(sa.label == (i & 1), "label echoed");
        /* Label 1: the markers are the start and the end of one target path; label 0: the
         * start of one and the end of the other. */
        int same = -1, other = -1;
        for (int k = 0; k < 2; k++) {
            const int *s0 = sa.ends[k][0], *e0 = sa.ends[k][1], *e1 = sa.ends[1 - k][1];
            if (!memcmp(sa.markers[0], s0, sizeof(int) * 2)) {
                same = !memcmp(sa.markers[1], e0, sizeof(int) * 2);
                other = !memcmp(sa.markers[1], e1, sizeof(int) * 2);
            }
        }
        CHECK((i & 1) ? same == 1 : other == 1,
              "size %d image %d (label %d): markers not on the right path ends", size, i, i & 1);
        /* (The two paths' ends may coincide, in about 0.3 % of images, as in the original
         * generator: the newest dash of each path is not yet in the mask the other checks.) */
        CHECK(memcmp(sa.ends[0][0], sa.ends[0][1], sizeof(int) * 2) != 0 &&
                  memcmp(sa.ends[1][0], sa.ends[1][1], sizeof(int) * 2) != 0,
              "size %d image %d: a path ends where it starts", size, i);
        /* The markers are distinct and sit inside the image on bright pixels. */
        int m0 = sa.markers[0][0] * size + sa.markers[0][1];
        int m1 = sa.markers[1][0] * size + sa.markers[1][1];
        CHECK(m0 != m1 && m0 >= 0 && m1 >= 0 && (size_t)m0 < T && (size_t)m1 < T,
              "size %d image %d: markers %d %d", size, i, m0, m1);
        if (m0 >= 0 && m1 >= 0 && (size_t)m0 < T && (size_t)m1 < T)
            CHECK(a[m0] >= 100 && a[m1] >= 100, "size %d image %d: marker pixels %d %d", size, i,
                  a[m0], a[m1]);
        /* Sanity of the amount of ink (authentic: 16 % at 32 px, 8 % at 128 px; see
         * docs/results/pathfinder_gen.md). Bounds are wide: they catch blank or flooded
         * images, not small drifts. */
        double f = (double)ink / (double)T;
        CHECK(f > 0.02 && f < 0.4, "size %d image %d: ink fraction %.3f", size, i, f);
        CHECK_OK(elm_pf_gen_image(g, elm_pf_gen_image_seed(43, i), i & 1, b, NULL));
        differ |= memcmp(a, b, T) != 0;
    }
    CHECK(differ, "size %d: other seeds must give other images", size);
    CHECK(elm_pf_gen_image(g, 1, 2, a, NULL) == ELM_ERR_ARG, "label 2 accepted");
    free(a);
    free(b);
    elm_pf_gen_free(g);
}

/* Reads every PNG of a written set into one buffer (metadata order). */
static uint8_t *read_all(const char *root, long *n_out, int *size_out) {
    elm_pf *p = NULL;
    CHECK_OK(elm_pf_open(&p, root, NULL, 0, 1));
    if (!p)
        return NULL;
    const elm_pf_info *in = elm_pf_get_info(p);
    size_t T = (size_t)in->image_size * in->image_size;
    uint8_t *all = malloc((size_t)in->samples * T);
    for (long i = 0; i < in->samples; i++)
        CHECK_OK(elm_pf_load_u8(p, ELM_PF_ALL, i, all + i * T, NULL));
    *n_out = in->samples;
    *size_out = in->image_size;
    elm_pf_free(p);
    return all;
}

static void test_write(void) {
    elm_pf_gen_params prm;
    elm_pf_gen *g = NULL;
    CHECK_OK(elm_pf_gen_preset(&prm, 32, 14));
    CHECK_OK(elm_pf_gen_create(&g, &prm));
    if (!g)
        return;
    char *r1 = elm__path_join(tmpdir, "one"), *r2 = elm__path_join(tmpdir, "two");
    /* 41 images in batches of 16: 3 batches (16, 16, 9), labels 20/21 or 21/20. */
    CHECK_OK(elm_pf_gen_write(g, r1, 41, 7, 16, 1, 0));
    CHECK_OK(elm_pf_gen_write(g, r2, 41, 7, 16, 2, 0));
    elm_pf *p = NULL;
    CHECK_OK(elm_pf_open(&p, r1, NULL, 0, 1));
    if (p) {
        const elm_pf_info *in = elm_pf_get_info(p);
        CHECK(in->samples == 41 && in->batches == 3, "%ld samples in %d batches", in->samples,
              in->batches);
        CHECK(in->image_size == 32 && in->contour_length == 14, "size %d, contour %d",
              in->image_size, in->contour_length);
        CHECK(!strcmp(in->difficulty, "curv_contour_length_14"), "difficulty %s", in->difficulty);
        CHECK(labs(in->labels[0] - in->labels[1]) == 1, "labels %ld/%ld", in->labels[0],
              in->labels[1]);
        const char *last = elm_pf_image_path(p, ELM_PF_ALL, 40);
        CHECK(last && strstr(last, "pathfinder32/curv_contour_length_14/imgs/2/sample_8.png"),
              "last image %s", last ? last : "(null)");
    }
    elm_pf_free(p);
    /* The metadata lines have the LRA format (11 fields, Python float spelling). */
    char mp[600];
    snprintf(mp, sizeof mp, "%s/pathfinder32/curv_contour_length_14/metadata/0.npy", r1);
    char *text = NULL;
    size_t len = 0;
    CHECK_OK(elm__read_file(mp, 1 << 20, &text, &len));
    if (text) {
        char want[128];
        int lab = -1;
        CHECK(sscanf(text, "imgs/0 sample_0.png 0 %d", &lab) == 1 && (lab == 0 || lab == 1),
              "first metadata line: %.60s", text);
        snprintf(want, sizeof want, "imgs/0 sample_0.png 0 %d 1.0 14 4 2 0.5 1 1\n", lab);
        CHECK(!strncmp(text, want, strlen(want)), "first metadata line: %.60s", text);
        free(text);
    }
    /* One thread or two: the same bytes. */
    long n1 = 0, n2 = 0;
    int s1 = 0, s2 = 0;
    uint8_t *a = read_all(r1, &n1, &s1), *b = read_all(r2, &n2, &s2);
    CHECK(a && b && n1 == n2 && s1 == s2 && !memcmp(a, b, (size_t)n1 * s1 * s1),
          "output depends on the thread count");
    free(a);
    free(b);
    /* An existing set is not overwritten without force. */
    CHECK(elm_pf_gen_write(g, r1, 4, 7, 16, 1, 0) == ELM_ERR_ARG, "overwrote without force");
    CHECK(strstr(elm_last_error(), "--force") != NULL, "message: %s", elm_last_error());
    CHECK_OK(elm_pf_gen_write(g, r1, 41, 7, 16, 1, 1));

    /* Even n: exactly balanced. */
    char *r3 = elm__path_join(tmpdir, "three");
    CHECK_OK(elm_pf_gen_write(g, r3, 40, 9, 1000, 2, 0));
    CHECK_OK(elm_pf_open(&p, r3, NULL, 0, 1));
    if (p)
        CHECK(elm_pf_get_info(p)->labels[0] == 20 && elm_pf_get_info(p)->labels[1] == 20,
              "40 images must be 20/20");
    elm_pf_free(p);
    free(r1);
    free(r2);
    free(r3);
    elm_pf_gen_free(g);
}

static void test_presets(void) {
    elm_pf_gen_params p;
    char name[64];
    CHECK(elm_pf_gen_preset(&p, 48, 14) == ELM_ERR_ARG, "size 48 accepted");
    CHECK(elm_pf_gen_preset(&p, 32, 1) == ELM_ERR_ARG, "contour length 1 accepted");
    CHECK_OK(elm_pf_gen_preset(&p, 32, 6));
    CHECK(p.distractor_length == 2 && p.num_distractors == 20, "32/6: %d x %d", p.num_distractors,
          p.distractor_length);
    CHECK_OK(elm_pf_gen_preset(&p, 128, 14));
    CHECK(p.num_distractors == 17 && p.num_margins == 2, "128/14: %d distractors",
          p.num_distractors);
    elm_pf_gen_difficulty(6, name, sizeof name);
    CHECK(!strcmp(name, "curv_baseline"), "%s", name);
    elm_pf_gen_difficulty(9, name, sizeof name);
    CHECK(!strcmp(name, "curv_contour_length_9"), "%s", name);
    p.size = 4;
    elm_pf_gen *g = NULL;
    CHECK(elm_pf_gen_create(&g, &p) == ELM_ERR_ARG && !g, "size 4 accepted");
}

int main(void) {
    tmpdir_make("elm_pf_gen");
    atexit(tmpdir_remove);
    test_presets();
    test_images(32, 14, 40);
    test_images(32, 6, 10);
    test_images(64, 9, 6);
    test_images(128, 14, 3);
    test_write();
    return test_end();
}
