/*
 * pf_gen.h - a fast generator of Pathfinder images (after Linsley et al. 2018, LRA settings).
 *
 * Each image holds two "target" paths grown from seeds a fixed distance apart, plus distractor
 * paths. A path is a chain of short dashes (paddles): each dash starts a gap of 2*margin beyond
 * the last one, and its direction is drawn from a circle of candidates weighted by
 * cos(min(continuity * turn, pi/2))^2 and by how free the pixel is, so paths bend smoothly and
 * do not cross. Dashes and the two circular markers are drawn at antialias_scale times the
 * resolution and brought down with a Lanczos-3 filter (as PIL does); the image is finally scaled
 * so its brightest pixel is 255. Label 1: the markers sit at the two ends of one target path;
 * label 0: at the start of one and the end of the other.
 *
 * Every image is drawn from its own random stream, derived from (seed, image index), so output
 * is identical for any thread count. Ownership: elm_pf_gen_create returns a generator the caller
 * frees with elm_pf_gen_free; it is read-only afterwards and may be shared between threads.
 */
#ifndef ELM_PF_GEN_H
#define ELM_PF_GEN_H

#include "elm.h"

#include <stdint.h>

typedef struct elm_pf_gen_params {
    int size;                /* image side, px */
    int contour_length;      /* dashes per target path (6, 9, 14 in LRA) */
    int distractor_length;   /* dashes per distractor path (contour_length / 3) */
    int num_distractors;     /* distractor paths attempted */
    int padding;             /* border kept free, px */
    int antialias_scale;     /* supersampling factor of the drawing */
    int seed_distance;       /* px between the two target seeds */
    double marker_radius;    /* px */
    int paddle_length;       /* dash length, px */
    double paddle_thickness; /* px */
    int margins[4];          /* gap margins, one drawn per image */
    int num_margins;
    double continuity;          /* larger: straighter paths */
    double target_contrast;     /* dash brightness of target paths, before final scaling */
    double distractor_contrast; /* dash brightness of distractors */
    int max_distractor_retry;   /* attempts per distractor path */
    int max_paddle_retry;       /* attempts per dash */
    /*
     * 1: reproduce a quirk of the reference (OpenCV's dilation border, see pf_gen.c) that makes
     * a path seed fail for most dash directions at 32 and 64 px, so distractors are sparse
     * there (as in the released LRA data) and the first target seed points up-left. 0: clean.
     */
    int border_quirk;
} elm_pf_gen_params;

/*
 * The LRA settings for a size (32, 64, 128 or 256) and contour length (6, 9 or 14; any length
 * from 3 to 30 is allowed). ELM_ERR_ARG for other sizes.
 */
elm_status elm_pf_gen_preset(elm_pf_gen_params *p, int size, int contour_length);

/* LRA's difficulty folder name: 6 -> "curv_baseline", n -> "curv_contour_length_<n>". */
void elm_pf_gen_difficulty(int contour_length, char *buf, size_t len);

typedef struct elm_pf_gen elm_pf_gen;

/* Checks the parameters and precomputes the dash and marker stamps. */
elm_status elm_pf_gen_create(elm_pf_gen **out, const elm_pf_gen_params *p);
void elm_pf_gen_free(elm_pf_gen *g);
const elm_pf_gen_params *elm_pf_gen_get_params(const elm_pf_gen *g);

/* What one image ended up holding. */
typedef struct elm_pf_gen_sample {
    int label;
    int margin;        /* the gap margin drawn for this image */
    int paths;         /* 2 target paths + distractors actually placed */
    int dashes;        /* dashes drawn */
    int markers[2][2]; /* (row, col) of the two marker centres */
    int ends[2][2][2]; /* [target path][0: start, 1: end][row, col] */
    int restarts;      /* target pairs abandoned before one fitted */
} elm_pf_gen_sample;

/*
 * Draws one image with the given label (0/1) from the random stream `seed`: `pixels` receives
 * size*size bytes, row-major; `info` (may be NULL) what was drawn.
 */
elm_status elm_pf_gen_image(const elm_pf_gen *g, uint64_t seed, int label, uint8_t *pixels,
                            elm_pf_gen_sample *info);

/*
 * The dash stamp whose head lies (oy, ox) blown-up pixels from its centre, for the margin
 * params.margins[margin_index]: line and mask receive S x S values in [0, 1] (value / 255 of the
 * Lanczos-resized 8-bit images), S = 2 * (paddle_length + ceil(thickness) + margin) + 1, which
 * *S receives (call with line = mask = NULL to learn S). For tests against Pillow.
 */
elm_status elm_pf_gen_stamp(const elm_pf_gen *g, int margin_index, int oy, int ox, float *line,
                            float *mask, int *S);

/* The random stream of image `index` of a set generated with `seed`. */
uint64_t elm_pf_gen_image_seed(uint64_t seed, long index);

/*
 * Generates n images with balanced labels (n/2 of each; when n is odd the seed decides the
 * extra one) and writes them in the LRA layout under
 *     root/pathfinder<size>/<difficulty>/imgs/<batch>/sample_<i>.png
 *     root/pathfinder<size>/<difficulty>/metadata/<batch>.npy      (text, 11 fields per line)
 * with batch_size images per batch (i counts within a batch). A batch's metadata file is written
 * (atomically) after its images, so a reader never sees a half-written batch. Fails if the
 * difficulty folder already holds metadata, unless `force`. `threads` 0 = OpenMP default.
 */
elm_status elm_pf_gen_write(const elm_pf_gen *g, const char *root, long n, uint64_t seed,
                            int batch_size, int threads, int force);

#endif
