/*
 * pathfinder.h - the Long Range Arena Pathfinder / Path-X data sets (images of Linsley et al.).
 *
 * A data set is one "difficulty folder" of the LRA release layout:
 *
 *     pathfinderNN/<difficulty>/imgs/<batch>/sample_<i>.png    8-bit grayscale, NN x NN
 *     pathfinderNN/<difficulty>/metadata/<batch>.npy           text, one line per image
 *
 * A metadata line has 11 fields separated by spaces; fields 0 and 1 form the image path relative
 * to the difficulty folder, field 3 is the label (1: both circles lie on one path). Loaders go
 * by the metadata, never by file names (batches have gaps where surplus images were dropped).
 *
 * Order and splits. Samples are numbered in metadata order: metadata files sorted by batch number
 * (numeric part of the file name, then by name), lines in file order. A split permutation is that
 * order shuffled by Fisher-Yates with elm__rng seeded by `split_seed`; the first floor(0.8 n)
 * samples are "train", the next floor(0.1 n) "valid", the rest "test". The same folder and seed
 * always give the same three disjoint splits, on any machine.
 *
 * Pixels. A sequence is the image in row-major order, one pixel per step, each value
 * (p / 255 - 0.5) / 0.5, i.e. in [-1, 1] (the S4/Mega normalisation).
 *
 * Ownership: elm_pf_open returns a handle the caller frees with elm_pf_free. Every load function
 * writes into caller-owned buffers. A handle is safe to use from several threads at once for
 * loading (it is only read), but elm_pf_cache must not run concurrently with loads.
 */
#ifndef ELM_PATHFINDER_H
#define ELM_PATHFINDER_H

#include "elm.h"

#include <stddef.h>
#include <stdint.h>

typedef struct elm_pf elm_pf;

typedef enum { ELM_PF_TRAIN = 0, ELM_PF_VALID = 1, ELM_PF_TEST = 2, ELM_PF_ALL = 3 } elm_pf_split;

/* The split seed used by the CLI and the training task (so valid/test never change by run). */
#define ELM_PF_SPLIT_SEED 20240101u

typedef struct elm_pf_info {
    const char *dir;        /* the difficulty folder actually opened (borrowed from the handle) */
    const char *difficulty; /* its name, e.g. "curv_contour_length_14" */
    int image_size;         /* pixels per side (32, 64, 128, 256) */
    long samples;           /* metadata lines */
    long labels[2];         /* samples with label 0 and 1 */
    long split_len[3];      /* train, valid, test */
    int batches;            /* metadata files */
    int contour_length;     /* metadata field 5 when every line agrees, else -1 */
} elm_pf_info;

/*
 * Opens a Pathfinder data set. `dir` may be
 *   - a difficulty folder (it holds metadata/),
 *   - a pathfinderNN folder (its difficulty folders are its subfolders holding metadata/),
 *   - or a folder holding pathfinderNN folders.
 * `difficulty` (NULL: any) picks a difficulty folder by name and `size` (0: any) a pathfinderNN
 * folder; when more than one candidate remains the call fails listing them. Every metadata line
 * is parsed and every image it names is checked to exist; the image size is NN when the folder
 * is named pathfinderNN, else the size of the first image. Errors name the file (and line).
 */
elm_status elm_pf_open(elm_pf **out, const char *dir, const char *difficulty, int size,
                       uint64_t split_seed);
void elm_pf_free(elm_pf *p);

/* 1 if `dir` looks like something elm_pf_open accepts (no parsing; for format sniffing). */
int elm_pf_probe(const char *dir);

/* Summary of the opened set; borrowed until elm_pf_free. */
const elm_pf_info *elm_pf_get_info(const elm_pf *p);

/* Number of samples in a split (ELM_PF_ALL: all of them, in metadata order). */
long elm_pf_len(const elm_pf *p, elm_pf_split s);
/* Label (0/1) of sample k of a split; -1 when k is out of range. */
int elm_pf_label(const elm_pf *p, elm_pf_split s, long k);
/* Path of the PNG of sample k of a split (borrowed), or NULL when out of range. */
const char *elm_pf_image_path(const elm_pf *p, elm_pf_split s, long k);
/* Index of sample k of a split in metadata order (ELM_PF_ALL numbering), or -1. */
long elm_pf_index(const elm_pf *p, elm_pf_split s, long k);

/*
 * Decodes image k of a split: `pixels` receives size*size bytes (row-major) and `label` (may be
 * NULL) its label. Served from the cache when elm_pf_cache has filled it. A missing file, a PNG
 * that is not 8-bit grayscale, or one of the wrong size is an error naming the file.
 */
elm_status elm_pf_load_u8(const elm_pf *p, elm_pf_split s, long k, uint8_t *pixels, int *label);

/*
 * Image k of a split as a float sequence: x receives size*size values (T steps, one input each,
 * row-major), normalised (p / 255 - 0.5) / 0.5, and `label` (may be NULL) its label.
 */
elm_status elm_pf_load(const elm_pf *p, elm_pf_split s, long k, float *x, int *label);

/*
 * Fills a batch from a split: for b < B, sample idx[b] of split s goes to x + b * T * I (T =
 * size^2 steps, I = elm_pf_num_input(levels) values a step, encoded by elm_pf_encode) and its
 * label, as a float, to target[b]. Decodes in parallel (OpenMP, `threads`, 0 = default). On
 * failure reports the first failing sample.
 */
elm_status elm_pf_fill(const elm_pf *p, elm_pf_split s, const long *idx, int B, float *x,
                       float *target, int threads, int levels);

/*
 * Decodes every image once into memory (uint8, samples * size^2 bytes) when that is at most
 * `max_bytes`; later loads read the cache. Sets *cached to 1 when it did, 0 when the set is too
 * large (not an error: loads then decode on the fly). Parallel over images (OpenMP).
 */
elm_status elm_pf_cache(elm_pf *p, size_t max_bytes, int threads, int *cached);

/* Normalises bytes to floats: x[i] = (p[i] / 255 - 0.5) / 0.5. */
void elm_pf_normalise(float *x, const uint8_t *pixels, size_t n);

/*
 * The pixel encodings (the training knob pixel_levels). levels 0: one input a step, the
 * normalised pixel (elm_pf_normalise). levels L in [2, 256]: L inputs a step, one-hot over L
 * equal bins of the grey value, bin floor(p * L / 256), as the ELM paper feeds LRA images (16
 * levels for Pathfinder, 8 for Path-X). x receives n * elm_pf_num_input(levels) floats.
 */
#define ELM_PF_MAX_LEVELS 256
int elm_pf_num_input(int levels);
/* 1 when `levels` is an encoding: 0, or 2 to ELM_PF_MAX_LEVELS. */
int elm_pf_levels_valid(int levels);
void elm_pf_encode(float *x, const uint8_t *pixels, size_t n, int levels);

/*
 * Decodes one PNG file (8-bit grayscale only) into a malloc'd buffer of width*height bytes.
 * Exposed for tools and tests; free the buffer with free().
 */
elm_status elm_pf_png_read(const char *path, uint8_t **pixels, int *width, int *height);

/* Writes an 8-bit grayscale PNG (width x height bytes, row-major) with libpng. Not atomic. */
elm_status elm_pf_png_write(const char *path, const uint8_t *pixels, int width, int height);

#endif
