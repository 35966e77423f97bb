/*
 * fuzz_shd_raw.c - libFuzzer driver for the SHD reader on raw bytes: the input is the HDF5 file
 * itself, corrupt structure and all (elm_shd_load through libhdf5, then elm's own checks).
 *
 * HDF5 is a system library, not instrumented: coverage guides the fuzzer through shd.c, and a
 * crash inside libhdf5 still shows up as a signal. libhdf5 1.10 does not survive this (it hangs
 * or allocates gigabytes on some corrupt heaps: tests/fuzz/known/shd_raw, docs/RELIABILITY.md),
 * so CI replays this target's findings but fuzzes SHD through fuzz_shd (valid HDF5 structure,
 * hostile contents). Loads use a small read chunk (3 samples) so chunk boundaries are crossed;
 * every accepted sample is binned into frames and into an SHD-Adding pair, as training does.
 */
// fuzz-areas: shd
#include "fuzz_util.h"
#include "shd/shd.h"

#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

/*
 * Every HDF5 object elm opens must be closed again, on every path: no file, dataset, group,
 * named type or attribute may be left open after a call. (Dataspaces and transient types are not
 * counted by HDF5; one left open shows up as a leak through elm's frames instead.)
 */
static void check_hdf5_closed(void) {
    ssize_t n = H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL);
    FUZZ_ASSERT(n == 0, "%zd HDF5 objects left open (%zd files, %zd datasets)", n,
                H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_FILE),
                H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_DATASET));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
    char path[600];
    fuzz_path(path, sizeof path, "fuzz.h5");
    fuzz_write(path, data, len);
    (void)elm_shd_probe(path);
    check_hdf5_closed();
    elm_shd_opts o;
    elm_shd_opts_default(&o);
    o.read_chunk = 3;
    elm_shd *d = NULL;
    elm_status st = elm_shd_load(&d, path, &o);
    if (st != ELM_OK) {
        fuzz_note("shd", st, elm_last_error());
        FUZZ_ASSERT(d == NULL, "failed load returned data");
        check_hdf5_closed();
        FUZZ_ASSERT(strstr(elm_last_error(), "fuzz.h5") != NULL,
                    "error message does not name the file: %s", elm_last_error());
        return 0;
    }
    fuzz_note("shd", 0, "ok");
    check_hdf5_closed();
    FUZZ_ASSERT(d->n >= 0 && d->num_bins == 100 && d->num_channels == 700, "bad geometry");
    size_t frame = (size_t)d->num_bins * (size_t)d->num_channels;
    float *x = malloc(2 * frame * sizeof *x);
    FUZZ_ASSERT(x != NULL, "oom");
    for (int i = 0; i < d->n && i < 64; i++) {
        FUZZ_ASSERT(d->labels[i] >= 0 && d->labels[i] < d->num_classes, "label %d", d->labels[i]);
        FUZZ_ASSERT(elm_shd_count(d, i) >= 0, "negative spike count");
        for (int64_t j = d->ptr[i]; j < d->ptr[i + 1]; j++)
            FUZZ_ASSERT(d->bin[j] < d->num_bins && d->chan[j] < d->num_channels,
                        "stored spike outside the frame");
        elm_shd_fill(d, i, x);
        int l = elm_shd_adding_fill(d, i, d->n - 1 - i, x);
        FUZZ_ASSERT(l >= 0 && l < ELM_SHD_ADD_CLASSES, "adding label %d", l);
    }
    free(x);
    elm_shd_free(d);
    return 0;
}
