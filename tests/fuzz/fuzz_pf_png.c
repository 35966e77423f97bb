/*
 * fuzz_pf_png.c - libFuzzer driver for the Pathfinder image decoder (elm_pf_png_read: libpng,
 * 8-bit grayscale only). The input is the PNG file.
 *
 * libpng is a system library (not instrumented); what is fuzzed is elm's use of it: the setjmp
 * error path, the type and size checks, and that an accepted image fills exactly width x height
 * bytes (all read back here, so ASan sees a short buffer).
 */
// fuzz-areas: pathfinder
#include "fuzz_util.h"
#include "pathfinder/pathfinder.h"

#include <stdlib.h>
#include <string.h>

static volatile unsigned sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
    char path[600];
    fuzz_path(path, sizeof path, "fuzz.png");
    fuzz_write(path, data, len);
    uint8_t *px = NULL;
    int w = 0, h = 0;
    elm_status st = elm_pf_png_read(path, &px, &w, &h);
    if (st != ELM_OK) {
        fuzz_note("png", st, elm_last_error());
        FUZZ_ASSERT(px == NULL, "failed decode returned pixels");
        FUZZ_ASSERT(strstr(elm_last_error(), "fuzz.png") != NULL,
                    "error message does not name the file: %s", elm_last_error());
        return 0;
    }
    fuzz_note("png", 0, "ok");
    FUZZ_ASSERT(px && w >= 1 && h >= 1, "decoded %dx%d", w, h);
    unsigned s = 0;
    for (size_t i = 0; i < (size_t)w * (size_t)h; i++)
        s += px[i];
    sink = s;
    free(px);
    return 0;
}
