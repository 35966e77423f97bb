/*
 * fuzz_pf_meta.c - libFuzzer driver for opening a Pathfinder data set (elm_pf_open), which parses
 * the metadata text files line by line. The input is the text of metadata/0.npy in a scratch
 * difficulty folder whose imgs/0/ holds sample_0.png .. sample_3.png (valid 8x8 images written
 * once) and imgs/0/bad.png (not a PNG), so lines can name images that exist, that are broken, or
 * that are missing.
 *
 * An opened set must be consistent: splits add up, labels are 0/1, every image loads or fails
 * with a message, and the split permutation is a permutation.
 */
// fuzz-areas: pathfinder
#include "fuzz_util.h"
#include "internal.h"
#include "pathfinder/pathfinder.h"

#include <stdlib.h>
#include <string.h>

static char diff_dir[600];

static void setup(void) {
    char p[700];
    snprintf(diff_dir, sizeof diff_dir, "%s/lra/curv_contour_length_14", fuzz_dir());
    snprintf(p, sizeof p, "%s/imgs/0", diff_dir);
    if (elm__mkdir_p(p) != ELM_OK)
        abort();
    snprintf(p, sizeof p, "%s/metadata", diff_dir);
    if (elm__mkdir_p(p) != ELM_OK)
        abort();
    uint8_t img[64];
    for (int k = 0; k < 4; k++) {
        for (int i = 0; i < 64; i++)
            img[i] = (uint8_t)(i * (k + 1));
        snprintf(p, sizeof p, "%s/imgs/0/sample_%d.png", diff_dir, k);
        if (elm_pf_png_write(p, img, 8, 8) != ELM_OK)
            abort();
    }
    snprintf(p, sizeof p, "%s/imgs/0/bad.png", diff_dir);
    fuzz_write(p, "not a png", 9);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
    if (!diff_dir[0])
        setup();
    char meta[700];
    snprintf(meta, sizeof meta, "%s/metadata/0.npy", diff_dir);
    fuzz_write(meta, data, len);
    elm_pf *p = NULL;
    elm_status st = elm_pf_open(&p, diff_dir, NULL, 0, 1);
    if (st != ELM_OK) {
        fuzz_note("pf_meta", st, elm_last_error());
        FUZZ_ASSERT(p == NULL, "failed open returned a set");
        return 0;
    }
    fuzz_note("pf_meta", 0, "ok");
    const elm_pf_info *in = elm_pf_get_info(p);
    long n = elm_pf_len(p, ELM_PF_ALL);
    FUZZ_ASSERT(n == in->samples && n >= 1, "samples %ld / %ld", n, in->samples);
    FUZZ_ASSERT(in->labels[0] + in->labels[1] == n, "label counts do not add up");
    FUZZ_ASSERT(in->split_len[0] + in->split_len[1] + in->split_len[2] == n, "splits");
    FUZZ_ASSERT(in->image_size == 8, "image size %d", in->image_size);
    char *seen = calloc((size_t)n, 1);
    uint8_t px[64];
    float x[64];
    for (int s = ELM_PF_TRAIN; s <= ELM_PF_TEST; s++)
        for (long k = 0; k < elm_pf_len(p, (elm_pf_split)s); k++) {
            long i = elm_pf_index(p, (elm_pf_split)s, k);
            FUZZ_ASSERT(i >= 0 && i < n && !seen[i], "index %ld repeated or out of range", i);
            seen[i] = 1;
            int label = -1;
            if (k < 16 && elm_pf_load_u8(p, (elm_pf_split)s, k, px, &label) == ELM_OK)
                FUZZ_ASSERT(label == 0 || label == 1, "label %d", label);
            if (k < 4)
                (void)elm_pf_load(p, (elm_pf_split)s, k, x, NULL);
        }
    FUZZ_ASSERT(elm_pf_label(p, ELM_PF_ALL, n) == -1 &&
                    elm_pf_image_path(p, ELM_PF_ALL, -1) == NULL,
                "out-of-range access not refused");
    free(seen);
    elm_pf_free(p);
    return 0;
}
