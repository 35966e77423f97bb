/*
 * test_pf_stamps.c - the generator's dash stamps equal Pillow's drawing + Lanczos resize.
 *
 * tests/fixtures/pathfinder_stamps.txt was written by scripts/make_pf_stamp_fixture.py with
 * Pillow 9.4 (ImageDraw.line on a 2x image, Image.resize(LANCZOS), as the original generator
 * does through scipy.misc.imresize). Every value must match exactly: both sides round the same
 * 8-bit passes, so any difference is a drawing or resampling bug, not float noise.
 */
#include "pathfinder/pf_gen.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static int read_hex_row(FILE *f, int S, unsigned char *out) {
    char buf[512];
    if (!fgets(buf, sizeof buf, f) || (int)strlen(buf) < 2 * S)
        return 0;
    for (int j = 0; j < S; j++) {
        unsigned v;
        if (sscanf(buf + 2 * j, "%2x", &v) != 1)
            return 0;
        out[j] = (unsigned char)v;
    }
    return 1;
}

int main(void) {
    /* The fixture is in the repository: its absence is a failure, never a skip. */
    char path[4096];
    test_fixture(path, "pathfinder_stamps.txt");
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "FAIL: the in-repository fixture %s is missing\n", path);
        return 1;
    }
    elm_pf_gen *gens[129] = {0};
    char line[256];
    int records = 0, worst = 0;
    if (!fgets(line, sizeof line, f)) /* comment line */
        line[0] = 0;
    while (fgets(line, sizeof line, f)) {
        int size, mi, margin, oy, ox, S;
        if (sscanf(line, "%d %d %d %d %d %d", &size, &mi, &margin, &oy, &ox, &S) != 6 ||
            (size != 32 && size != 64 && size != 128)) {
            CHECK(0, "bad fixture record: %s", line);
            break;
        }
        if (!gens[size]) {
            elm_pf_gen_params p;
            CHECK_OK(elm_pf_gen_preset(&p, size, 14));
            CHECK_OK(elm_pf_gen_create(&gens[size], &p));
            if (!gens[size])
                break;
        }
        const elm_pf_gen_params *p = elm_pf_gen_get_params(gens[size]);
        CHECK(mi < p->num_margins && p->margins[mi] == margin, "size %d margin %d: preset %d", size,
              mi, p->margins[mi]);
        int S2 = 0;
        CHECK_OK(elm_pf_gen_stamp(gens[size], mi, oy, ox, NULL, NULL, &S2));
        if (S2 != S || S > 64) {
            CHECK(0, "size %d margin %d: stamp size %d, fixture %d", size, margin, S2, S);
            break;
        }
        float lv[64 * 64], mv[64 * 64];
        CHECK_OK(elm_pf_gen_stamp(gens[size], mi, oy, ox, lv, mv, &S2));
        unsigned char want[64];
        int bad = 0, wi = -1, got_v = 0, want_v = 0;
        for (int which = 0; which < 2; which++)
            for (int i = 0; i < S; i++) {
                if (!read_hex_row(f, S, want)) {
                    CHECK(0, "truncated fixture record %d", records);
                    goto out;
                }
                const float *v = which ? mv : lv;
                for (int j = 0; j < S; j++) {
                    int g = (int)lroundf(v[i * S + j] * 255.0f);
                    int d = abs(g - want[j]);
                    if (d > 0) {
                        bad++;
                        if (d > worst) {
                            worst = d;
                            wi = i * S + j;
                            got_v = g;
                            want_v = want[j];
                        }
                    }
                }
            }
        CHECK(bad == 0,
              "size %d margin %d head (%d,%d): %d values differ from Pillow (worst at "
              "%d: %d vs %d)",
              size, margin, oy, ox, bad, wi, got_v, want_v);
        records++;
    }
out:
    fclose(f);
    CHECK(records >= 80, "only %d stamp records checked", records);
    printf("%d stamps compared with Pillow, largest difference %d\n", records, worst);
    for (int s = 0; s <= 128; s++)
        elm_pf_gen_free(gens[s]);
    return test_end();
}
