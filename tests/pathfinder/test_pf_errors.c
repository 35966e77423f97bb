/*
 * test_pf_errors.c - the Pathfinder reader on small folders made here, most of them broken:
 * every bad input must fail with a message naming the file and the problem.
 */
#include "pathfinder/pathfinder.h"
#include "test.h"
#include "tmpfiles.h"

#include "internal.h"

#include <png.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int contains(const char *hay, const char *needle) {
    return hay && strstr(hay, needle) != NULL;
}

/* A difficulty folder `name` under tmpdir with `n` 32x32 images and the given metadata. */
static char *make_set(const char *name, int n, const char *metadata) {
    char *dir = elm__path_join(tmpdir, name);
    char sub[512];
    snprintf(sub, sizeof sub, "%s/imgs/0", dir);
    CHECK_OK(elm__mkdir_p(sub));
    snprintf(sub, sizeof sub, "%s/metadata", dir);
    CHECK_OK(elm__mkdir_p(sub));
    uint8_t px[32 * 32];
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < 32 * 32; k++)
            px[k] = (uint8_t)((k * 7 + i * 13) & 255);
        snprintf(sub, sizeof sub, "%s/imgs/0/sample_%d.png", dir, i);
        CHECK_OK(elm_pf_png_write(sub, px, 32, 32));
    }
    snprintf(sub, sizeof sub, "%s/metadata/0.npy", dir);
    write_bytes(sub, metadata, strlen(metadata));
    return dir;
}

static void test_bad_inputs(void) {
    elm_pf *p = NULL;
    const char *good = "imgs/0 sample_0.png 0 1 1.0 14 4 2 0.5 1 1\n"
                       "imgs/0 sample_1.png 1 0 1.0 14 4 2 0.5 1 1\n";
    char *dir = make_set("good", 2, good);
    CHECK_OK(elm_pf_open(&p, dir, NULL, 0, 1));
    CHECK(p && elm_pf_get_info(p)->image_size == 32, "size from the first image");
    elm_pf_free(p);
    free(dir);

    /* A line naming an image that is not there. */
    dir = make_set("missing", 1, good);
    p = NULL;
    CHECK(elm_pf_open(&p, dir, NULL, 0, 1) == ELM_ERR_IO && !p, "missing image must fail");
    CHECK(contains(elm_last_error(), "sample_1.png") && contains(elm_last_error(), "missing"),
          "message: %s", elm_last_error());
    free(dir);

    /* Wrong field count, non-integer label, label 2, binary .npy, path escaping the folder. */
    struct {
        const char *name, *meta, *needle;
    } cases[] = {
        {"fields", "imgs/0 sample_0.png 0 1 1.0 14 4 2 0.5 1\n", ":1: 10 fields, expected 11"},
        {"labeltext", "imgs/0 sample_0.png 0 x 1.0 14 4 2 0.5 1 1\n", "'x' is not an integer"},
        {"label2",
         "imgs/0 sample_0.png 0 1 1.0 14 4 2 0.5 1 1\n"
         "imgs/0 sample_1.png 1 2 1.0 14 4 2 0.5 1 1\n",
         ":2: label (field 3) is 2, expected 0 or 1"},
        {"npy", "\x93NUMPY\x01\x00 binary", "binary .npy"},
        {"escape", "imgs/0 ../../etc/passwd 0 1 1.0 14 4 2 0.5 1 1\n", "leaves the data folder"},
        {"empty", "\n\n", "list no images"}, /* names the metadata folder */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dir = make_set(cases[i].name, 2, cases[i].meta);
        p = NULL;
        elm_status st = elm_pf_open(&p, dir, NULL, 0, 1);
        CHECK(st == ELM_ERR_FORMAT && !p, "%s: status %s", cases[i].name, elm_status_str(st));
        CHECK(contains(elm_last_error(), cases[i].needle) &&
                  contains(elm_last_error(),
                           i + 1 < sizeof cases / sizeof cases[0] ? "metadata/0.npy" : "/metadata"),
              "%s: message '%s' lacks '%s' or the file name", cases[i].name, elm_last_error(),
              cases[i].needle);
        free(dir);
    }

    /* A PNG of the wrong size: a 16x16 image inside pathfinder32/. */
    dir = make_set("pathfinder32/curv_baseline", 2, good);
    char path[600];
    uint8_t small[16 * 16] = {0};
    snprintf(path, sizeof path, "%s/imgs/0/sample_1.png", dir);
    CHECK_OK(elm_pf_png_write(path, small, 16, 16));
    p = NULL;
    CHECK_OK(elm_pf_open(&p, dir, NULL, 0, 1));
    uint8_t px[32 * 32];
    if (p) {
        CHECK(elm_pf_get_info(p)->image_size == 32, "size from the folder name");
        CHECK_OK(elm_pf_load_u8(p, ELM_PF_ALL, 0, px, NULL));
        CHECK(elm_pf_load_u8(p, ELM_PF_ALL, 1, px, NULL) == ELM_ERR_SHAPE, "16x16 accepted");
        CHECK(contains(elm_last_error(), "16x16, expected 32x32") &&
                  contains(elm_last_error(), "sample_1.png"),
              "message: %s", elm_last_error());
        int cached = 1;
        CHECK(elm_pf_cache(p, (size_t)1 << 20, 2, &cached) == ELM_ERR_SHAPE && !cached,
              "caching must report the bad image");
        CHECK(contains(elm_last_error(), "sample_1.png"), "cache message: %s", elm_last_error());
    }
    elm_pf_free(p);

    /* An RGB PNG and a truncated PNG. */
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = 32;
    im.height = 32;
    im.format = PNG_FORMAT_RGB;
    uint8_t rgb[32 * 32 * 3] = {0};
    CHECK(png_image_write_to_file(&im, path, 0, rgb, 0, NULL) != 0, "writing an RGB PNG");
    p = NULL;
    CHECK_OK(elm_pf_open(&p, dir, NULL, 0, 1));
    if (p) {
        CHECK(elm_pf_load_u8(p, ELM_PF_ALL, 1, px, NULL) == ELM_ERR_FORMAT, "RGB accepted");
        CHECK(contains(elm_last_error(), "8-bit RGB") &&
                  contains(elm_last_error(), "8-bit grayscale"),
              "message: %s", elm_last_error());
        FILE *f = fopen(path, "r+b");
        CHECK(f && ftruncate(fileno(f), 40) == 0, "truncating");
        if (f)
            fclose(f);
        CHECK(elm_pf_load_u8(p, ELM_PF_ALL, 1, px, NULL) == ELM_ERR_FORMAT, "truncated accepted");
        CHECK(contains(elm_last_error(), "sample_1.png"), "message: %s", elm_last_error());
        write_bytes(path, "not a png at all", strlen("not a png at all"));
        CHECK(elm_pf_load_u8(p, ELM_PF_ALL, 1, px, NULL) == ELM_ERR_FORMAT, "text accepted");
        CHECK(contains(elm_last_error(), "not a PNG"), "message: %s", elm_last_error());
    }
    elm_pf_free(p);
    free(dir);

    /* Not a Pathfinder folder at all. */
    p = NULL;
    CHECK(!elm_pf_probe(tmpdir) || 1, "probe must not crash");
    char *empty = elm__path_join(tmpdir, "nothing");
    CHECK_OK(elm__mkdir_p(empty));
    CHECK(!elm_pf_probe(empty), "an empty folder is not Pathfinder");
    CHECK(elm_pf_open(&p, empty, NULL, 0, 1) == ELM_ERR_FORMAT, "empty folder accepted");
    CHECK(contains(elm_last_error(), "not a Pathfinder folder"), "message: %s", elm_last_error());
    free(empty);
}

int main(void) {
    tmpdir_make("elm_pf_errors");
    atexit(tmpdir_remove);
    test_bad_inputs();
    return test_end();
}
