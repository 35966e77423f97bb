/*
 * pf_gen.c - Pathfinder image generator (an independent C implementation of the procedure of
 * Linsley et al. 2018, drewlinsley/pathfinder snakes2.py, with the LRA settings).
 *
 * Geometry (all integer pixel coordinates, (row, col)): a path keeps a pivot and a direction.
 * The next pivot lies paddle_length + 2*margin ahead; candidate dash ends lie on a circle of
 * radius paddle_length + margin around it; one is drawn with weight
 * cos(min(continuity * turn, pi/2))^2 * (1 - occupancy nearby); the dash is drawn from that end
 * back towards the pivot. A dash is rejected when its exclusion mask overlaps what is already
 * committed (mask sum >= 1.8). A dash's own mask is committed only when the next dash of its
 * path is placed, so consecutive dashes may touch.
 *
 * Rendering: a dash is a line of width round(thickness * aa) drawn into a binary image aa times
 * finer, and resized with PIL's Lanczos-3 coefficients (8-bit passes, horizontal then vertical);
 * its exclusion mask is the same line dilated by a disk of radius margin * aa, resized the same
 * way. Dash images depend only on the integer head offset, so they are precomputed ("stamps").
 *
 * Invariant: an image is a pure function of (parameters, seed, label).
 */
#include "pf_gen.h"

#include "internal.h"
#include "pathfinder.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* Target pairs tried before giving up on an image. The reference retries forever; means are
 * ~300 (32 px, 14 dashes), ~350 (128 px) and ~4000 at 64 px with 14 dashes (21158 the most in
 * 300 images): a restart costs microseconds, so the cap only stops a hopeless configuration. */
#define PF_MAX_RESTARTS 1000000
/* Uniform draws tried before enumerating the free pixels exactly. */
#define PF_REJECTION_TRIES 64

typedef struct offs {
    int8_t dy, dx;
} offs;

/* One dash, drawn from the stamp centre to a head offset: image, exclusion mask, footprint. */
typedef struct stamp {
    float *line; /* (S, S) brightness in [0, 1] before contrast */
    float *mask; /* (S, S) exclusion mask in [0, 1] */
    offs *core;  /* pixels whose mask is exactly 1, as seed footprint offsets */
    int ncore;
    int all_quadrants; /* the footprint has an offset in each closed quadrant (see seed_path) */
} stamp;

typedef struct margin_tab {
    int margin;
    int half; /* stamp half-size: paddle_length + ceil(thickness) + margin */
    int S;    /* 2 * half + 1 */
    int R;    /* head offsets (blown-up pixels) range over [-R, R] */
    stamp *stamps;
    /*
     * Candidate dash ends relative to the pivot: the reference samples the circle of radius
     * L + margin once per pixel of arc and truncates to int; for a pivot at integer (py, px)
     * that is (py + floor(r sin a), px + floor(r cos a)) and out of the image exactly when
     * that pixel is, so the de-duplicated offsets (sorted as np.unique sorts) and their
     * directions are computed once.
     */
    int nring;
    int ring_dy[512], ring_dx[512];
    double ring_ori[512];
} margin_tab;

struct elm_pf_gen {
    elm_pf_gen_params p;
    margin_tab tabs[4];
    float *marker; /* (MS, MS) marker stamp in [0, 1] */
    int marker_half;
};

/* ---- PIL-style Lanczos resampling ---------------------------------------------------------- */

static double sinc(double x) {
    if (x == 0.0)
        return 1.0;
    x *= M_PI;
    return sin(x) / x;
}

static double lanczos3(double x) {
    return (x >= -3.0 && x < 3.0) ? sinc(x) * sinc(x / 3.0) : 0.0;
}

/*
 * Coefficients of a resize from `in` to `out` samples, as Pillow's precompute_coeffs: output
 * sample i takes inputs [first[i], first[i] + count[i]) with weights w[i * ksize + k].
 */
typedef struct coeffs {
    int ksize;
    int *first, *count;
    double *w;
} coeffs;

static void coeffs_free(coeffs *c) {
    free(c->first);
    free(c->count);
    free(c->w);
}

static int coeffs_make(coeffs *c, int in, int out) {
    double scale = (double)in / out;
    double fscale = scale < 1.0 ? 1.0 : scale;
    double support = 3.0 * fscale;
    c->ksize = (int)ceil(support) * 2 + 1;
    c->first = malloc((size_t)out * sizeof(int));
    c->count = malloc((size_t)out * sizeof(int));
    c->w = calloc((size_t)out * c->ksize, sizeof(double));
    if (!c->first || !c->count || !c->w) {
        coeffs_free(c);
        return 0;
    }
    for (int i = 0; i < out; i++) {
        double center = (i + 0.5) * scale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0)
            xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in)
            xmax = in;
        xmax -= xmin;
        double *k = c->w + (size_t)i * c->ksize;
        double ww = 0;
        for (int x = 0; x < xmax; x++) {
            k[x] = lanczos3((x + xmin - center + 0.5) / fscale);
            ww += k[x];
        }
        for (int x = 0; x < xmax; x++)
            if (ww != 0.0)
                k[x] /= ww;
        c->first[i] = xmin;
        c->count[i] = xmax;
    }
    return 1;
}

static uint8_t clip8(double v) {
    /* Pillow rounds half up in fixed point and clips to 0..255. */
    double r = floor(v + 0.5);
    return (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
}

/* Resizes an (in, in) 8-bit image to (out, out) floats in [0, 1] (value / 255). */
static int lanczos_resize(float *dst, const uint8_t *src, int in, int out) {
    coeffs c;
    if (!coeffs_make(&c, in, out))
        return 0;
    uint8_t *tmp = malloc((size_t)in * out); /* (in rows, out cols) after the horizontal pass */
    if (!tmp) {
        coeffs_free(&c);
        return 0;
    }
    for (int y = 0; y < in; y++)
        for (int i = 0; i < out; i++) {
            const double *k = c.w + (size_t)i * c.ksize;
            double s = 0;
            for (int x = 0; x < c.count[i]; x++)
                s += k[x] * src[(size_t)y * in + c.first[i] + x];
            tmp[(size_t)y * out + i] = clip8(s);
        }
    for (int j = 0; j < out; j++)
        for (int i = 0; i < out; i++) {
            const double *k = c.w + (size_t)j * c.ksize;
            double s = 0;
            for (int y = 0; y < c.count[j]; y++)
                s += k[y] * tmp[(size_t)(c.first[j] + y) * out + i];
            dst[(size_t)j * out + i] = (float)clip8(s) / 255.0f;
        }
    free(tmp);
    coeffs_free(&c);
    return 1;
}

/* ---- Stamps ---------------------------------------------------------------------------------- */

/* ceil() of a translated coordinate, as the reference's translate_coord. */
static int tr(int c, double dist, double s) {
    return (int)ceil(c + dist * s);
}

static int round_up(double f) {
    return (int)(f >= 0.0 ? floor(f + 0.5) : -floor(fabs(f) + 0.5));
}

static int round_down(double f) {
    return (int)(f >= 0.0 ? ceil(f - 0.5) : -ceil(fabs(f) - 0.5));
}

/* Draws a line of integer `width` from (x0, y0) to (x1, y1) into img (n, n), value 255. */
static void draw_line(uint8_t *img, int n, int x0, int y0, int x1, int y1, int width) {
    if (width <= 1) {
        /* Bresenham, both ends included (PIL's one-pixel line). */
        int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
        int err = dx + dy;
        for (;;) {
            if (x0 >= 0 && x0 < n && y0 >= 0 && y0 < n)
                img[(size_t)y0 * n + x0] = 255;
            if (x0 == x1 && y0 == y1)
                break;
            int e2 = 2 * err;
            if (e2 >= dy) {
                err += dy;
                x0 += sx;
            }
            if (e2 <= dx) {
                err += dx;
                y0 += sy;
            }
        }
        return;
    }
    /* A wide line is PIL's filled quadrilateral with rounded offsets (ImagingDrawWideLine). */
    int dx = x1 - x0, dy = y1 - y0;
    if (dx == 0 && dy == 0) {
        if (x0 >= 0 && x0 < n && y0 >= 0 && y0 < n)
            img[(size_t)y0 * n + x0] = 255;
        return;
    }
    double big = hypot(dx, dy), small = (width - 1) / 2.0;
    double rmax = round_up(small) / big, rmin = round_down(small) / big;
    int dxmin = round_down(rmin * dy), dxmax = round_down(rmax * dy);
    int dymin = round_down(rmin * dx), dymax = round_down(rmax * dx);
    const double v[4][2] = {{x0 - dxmin, y0 + dymax},
                            {x1 - dxmin, y1 + dymax},
                            {x1 + dxmax, y1 - dymin},
                            {x0 + dxmax, y0 - dymin}};
    /*
     * Scanline fill as Pillow's polygon_generic: on each row, the span between the edge
     * crossings, from ROUND_UP(left) to ROUND_DOWN(right) (half-way pixels included).
     */
    double yl = v[0][1], yh = v[0][1];
    for (int i = 1; i < 4; i++) {
        yl = fmin(yl, v[i][1]);
        yh = fmax(yh, v[i][1]);
    }
    for (int y = (int)ceil(yl); y <= (int)floor(yh); y++) {
        double lo = 1e300, hi = -1e300;
        for (int i = 0; i < 4; i++) {
            const double *a = v[i], *b = v[(i + 1) % 4];
            double ya = fmin(a[1], b[1]), yb = fmax(a[1], b[1]);
            if (y < ya || y > yb)
                continue;
            if (a[1] == b[1]) {
                lo = fmin(lo, fmin(a[0], b[0]));
                hi = fmax(hi, fmax(a[0], b[0]));
            } else {
                double x = a[0] + (y - a[1]) * (b[0] - a[0]) / (b[1] - a[1]);
                lo = fmin(lo, x);
                hi = fmax(hi, x);
            }
        }
        if (lo > hi || y < 0 || y >= n)
            continue;
        for (int x = round_up(lo); x <= round_down(hi); x++)
            if (x >= 0 && x < n)
                img[(size_t)y * n + x] = 255;
    }
}

static void stamp_free(stamp *s) {
    free(s->line);
    free(s->mask);
    free(s->core);
    memset(s, 0, sizeof *s);
}

/* Renders the dash whose head lies (oy, ox) blown-up pixels from the stamp centre. */
static int stamp_make(stamp *s, const elm_pf_gen_params *p, int margin, int half, int oy, int ox) {
    int aa = p->antialias_scale;
    int S = 2 * half + 1, Sb = 2 * half * aa + 1, cb = half * aa;
    int w = (int)lround(p->paddle_thickness * aa);
    int r = margin * aa;
    memset(s, 0, sizeof *s);
    uint8_t *blown = calloc((size_t)Sb * Sb, 1), *dil = calloc((size_t)Sb * Sb, 1);
    s->line = malloc((size_t)S * S * sizeof(float));
    s->mask = malloc((size_t)S * S * sizeof(float));
    s->core = malloc((size_t)S * S * sizeof(offs));
    int ok = blown && dil && s->line && s->mask && s->core;
    if (ok) {
        draw_line(blown, Sb, cb, cb, cb + ox, cb + oy, w);
        /* Binary dilation by a disk of radius margin * aa (the exclusion zone). */
        for (int y = 0; y < Sb; y++)
            for (int x = 0; x < Sb; x++) {
                if (!blown[(size_t)y * Sb + x])
                    continue;
                for (int v = -r; v <= r; v++)
                    for (int u = -r; u <= r; u++)
                        if (u * u + v * v <= r * r && y + v >= 0 && y + v < Sb && x + u >= 0 &&
                            x + u < Sb)
                            dil[(size_t)(y + v) * Sb + x + u] = 255;
            }
        ok = lanczos_resize(s->line, blown, Sb, S) && lanczos_resize(s->mask, dil, Sb, S);
    }
    if (ok) {
        /* Seed footprint: the reference dilates with the stamp's mask == 1 pixels, anchored one
         * pixel off its centre, inside a (2 (L + margin) + 1)^2 kernel. */
        int lim = p->paddle_length + margin;
        for (int i = 0; i < S; i++)
            for (int j = 0; j < S; j++) {
                int dy = i - half + 1, dx = j - half + 1;
                if (s->mask[(size_t)i * S + j] == 1.0f && abs(dy) <= lim && abs(dx) <= lim)
                    s->core[s->ncore++] = (offs){(int8_t)dy, (int8_t)dx};
            }
        int q[4] = {0, 0, 0, 0};
        for (int k = 0; k < s->ncore; k++) {
            int dy = s->core[k].dy, dx = s->core[k].dx;
            q[0] |= dy >= 0 && dx >= 0;
            q[1] |= dy >= 0 && dx <= 0;
            q[2] |= dy <= 0 && dx >= 0;
            q[3] |= dy <= 0 && dx <= 0;
        }
        s->all_quadrants = q[0] && q[1] && q[2] && q[3];
    }
    free(blown);
    free(dil);
    if (!ok)
        stamp_free(s);
    return ok;
}

static void gen_free_tables(elm_pf_gen *g) {
    for (int t = 0; t < 4; t++) {
        margin_tab *mt = &g->tabs[t];
        if (!mt->stamps)
            continue;
        int n = (2 * mt->R + 1) * (2 * mt->R + 1);
        for (int i = 0; i < n; i++)
            stamp_free(&mt->stamps[i]);
        free(mt->stamps);
        mt->stamps = NULL;
    }
    free(g->marker);
    g->marker = NULL;
}

void elm_pf_gen_free(elm_pf_gen *g) {
    if (!g)
        return;
    gen_free_tables(g);
    free(g);
}

const elm_pf_gen_params *elm_pf_gen_get_params(const elm_pf_gen *g) {
    return &g->p;
}

/*
 * The marker: a disk of radius marker_radius * aa around the centre of blown-up pixel (c*aa,
 * c*aa), resized by exactly 1/aa with Lanczos-3, as the reference's draw_circle. Computed once
 * on a patch; near image borders the patch is simply clipped (Pillow would renormalise the
 * truncated kernel there, a difference below one grey level for all but the outermost pixel).
 */
static int marker_make(elm_pf_gen *g) {
    const elm_pf_gen_params *p = &g->p;
    int aa = p->antialias_scale;
    int K = (int)ceil(p->marker_radius) + 4; /* output half-size */
    int pad = K + 4;                         /* input half-size in 1x pixels */
    int n = 2 * pad + 1;                     /* 1x pixels of the patch */
    int nb = n * aa;
    uint8_t *b = calloc((size_t)nb * nb, 1);
    float *full = malloc((size_t)n * n * sizeof(float));
    g->marker = malloc((size_t)(2 * K + 1) * (2 * K + 1) * sizeof(float));
    if (!b || !full || !g->marker) {
        free(b);
        free(full);
        return 0;
    }
    double rr = p->marker_radius * aa;
    for (int Y = 0; Y < nb; Y++)
        for (int X = 0; X < nb; X++) {
            double y = Y - pad * aa, x = X - pad * aa;
            b[(size_t)Y * nb + X] = (x * x + y * y <= rr * rr) ? 255 : 0;
        }
    int ok = lanczos_resize(full, b, nb, n);
    if (ok)
        for (int i = 0; i < 2 * K + 1; i++)
            for (int j = 0; j < 2 * K + 1; j++)
                g->marker[(size_t)i * (2 * K + 1) + j] =
                    full[(size_t)(i - K + pad) * n + (j - K + pad)];
    g->marker_half = K;
    free(b);
    free(full);
    return ok;
}

typedef struct cand {
    int y, x;
} cand;

static int cmp_cand(const void *a, const void *b) {
    const cand *u = a, *v = b;
    if (u->y != v->y)
        return u->y < v->y ? -1 : 1;
    return (u->x > v->x) - (u->x < v->x);
}

elm_status elm_pf_gen_preset(elm_pf_gen_params *p, int size, int contour_length) {
    memset(p, 0, sizeof *p);
    if (contour_length < 3 || contour_length > 30)
        return elm__fail(ELM_ERR_ARG,
                         "pathfinder: contour length %d out of range (3..30; LRA "
                         "uses 6, 9, 14)",
                         contour_length);
    p->size = size;
    p->contour_length = contour_length;
    p->distractor_length = contour_length / 3;
    p->padding = 1;
    p->antialias_scale = 2;
    p->max_distractor_retry = 4;
    p->max_paddle_retry = 2;
    p->border_quirk = 1;
    p->num_margins = 1;
    /*
     * Settings of google-research/long-range-arena lra_benchmarks/data/pathfinder.py. The
     * distractor counts follow the authentic LRA sets (10 paths at 32 px, 17 at 128 px for
     * contour length 14; docs/PATHFINDER.md), which are twice the docstring's 20 // d and
     * 35 // d; 64 and 256 px are doubled the same way.
     */
    int k;
    switch (size) {
    case 32:
        p->seed_distance = 7;
        p->marker_radius = 1.5;
        p->paddle_length = 2;
        p->paddle_thickness = 0.5;
        p->margins[0] = 1;
        p->continuity = 1.0;
        p->target_contrast = 2.0 * 0.75; /* snake contrast 2 x paddle contrast 0.75 */
        p->distractor_contrast = 2.0;    /* distractors use the snake contrast alone */
        k = 40;
        break;
    case 64:
        p->seed_distance = 12;
        p->marker_radius = 2.5;
        p->paddle_length = 5;
        p->paddle_thickness = 1.0;
        p->margins[0] = 1;
        p->continuity = 1.8;
        p->target_contrast = 0.8;
        p->distractor_contrast = 0.8;
        k = 44;
        break;
    case 128:
        p->seed_distance = 20;
        p->marker_radius = 3.0;
        p->paddle_length = 5;
        p->paddle_thickness = 1.5;
        p->margins[0] = 2;
        p->margins[1] = 3;
        p->num_margins = 2;
        p->continuity = 1.8;
        p->target_contrast = 0.9;
        p->distractor_contrast = 0.9;
        k = 70;
        break;
    case 256:
        p->padding = 22;
        p->seed_distance = 27;
        p->marker_radius = 5.0;
        p->paddle_length = 5;
        p->paddle_thickness = 2.0;
        p->margins[0] = 3;
        p->continuity = 1.8;
        p->target_contrast = 1.0;
        p->distractor_contrast = 1.0;
        k = 60;
        break;
    default:
        return elm__fail(ELM_ERR_ARG, "pathfinder: no preset for size %d (32, 64, 128, 256)", size);
    }
    p->num_distractors = k / (p->distractor_length > 0 ? p->distractor_length : 1);
    return ELM_OK;
}

void elm_pf_gen_difficulty(int contour_length, char *buf, size_t len) {
    if (contour_length == 6)
        snprintf(buf, len, "curv_baseline");
    else
        snprintf(buf, len, "curv_contour_length_%d", contour_length);
}

elm_status elm_pf_gen_create(elm_pf_gen **out, const elm_pf_gen_params *p) {
    *out = NULL;
    if (p->size < 8 || p->size > 1024 || p->contour_length < 1 || p->distractor_length < 1 ||
        p->num_distractors < 0 || p->padding < 0 || p->antialias_scale < 1 ||
        p->antialias_scale > 8 || p->seed_distance < 1 || !(p->marker_radius > 0) ||
        p->paddle_length < 1 || !(p->paddle_thickness > 0) || p->num_margins < 1 ||
        p->num_margins > 4 || !(p->continuity > 0) || !(p->target_contrast > 0) ||
        !(p->distractor_contrast > 0) || p->max_distractor_retry < 0 || p->max_paddle_retry < 0 ||
        4 * p->seed_distance >= p->size)
        return elm__fail(ELM_ERR_ARG, "pathfinder generator: invalid parameters");
    for (int i = 0; i < p->num_margins; i++)
        if (p->margins[i] < 0 || p->margins[i] > 20)
            return elm__fail(ELM_ERR_ARG, "pathfinder generator: margin %d out of range",
                             p->margins[i]);
    if (p->paddle_length + p->margins[0] + 4 > 60)
        return elm__fail(ELM_ERR_ARG, "pathfinder generator: paddle length too large");
    elm_pf_gen *g = calloc(1, sizeof *g);
    if (!g)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    g->p = *p;
    int aa = p->antialias_scale;
    double rl = (double)p->paddle_length * aa;
    for (int t = 0; t < p->num_margins; t++) {
        margin_tab *mt = &g->tabs[t];
        mt->margin = p->margins[t];
        mt->half = p->paddle_length + (int)ceil(p->paddle_thickness) + mt->margin;
        mt->S = 2 * mt->half + 1;
        mt->R = p->paddle_length * aa + 1;
        int w = 2 * mt->R + 1;
        mt->stamps = calloc((size_t)w * w, sizeof(stamp));
        if (!mt->stamps)
            goto nomem;
        {
            double step = p->paddle_length + mt->margin, dpp = 360.0 / (2.0 * step * M_PI);
            cand cs[512];
            int nc = 0;
            for (int k = 0; nc < 512; k++) {
                double a = k * dpp;
                if (a >= 360.0)
                    break;
                double rad = a * M_PI / 180.0;
                cs[nc++] = (cand){(int)floor(step * sin(rad)), (int)floor(step * cos(rad))};
            }
            qsort(cs, (size_t)nc, sizeof *cs, cmp_cand);
            mt->nring = 0;
            for (int i = 0; i < nc; i++)
                if (mt->nring == 0 || cmp_cand(&cs[i], &cs[i - 1]) != 0) {
                    mt->ring_dy[mt->nring] = cs[i].y;
                    mt->ring_dx[mt->nring] = cs[i].x;
                    mt->ring_ori[mt->nring] = atan2((double)cs[i].y, (double)cs[i].x);
                    mt->nring++;
                }
        }
        /* Only heads on the ring of radius L * aa (give or take the ceil()) ever occur. */
        for (int oy = -mt->R; oy <= mt->R; oy++)
            for (int ox = -mt->R; ox <= mt->R; ox++) {
                if (fabs(hypot(oy, ox) - rl) > 1.5)
                    continue;
                if (!stamp_make(&mt->stamps[(oy + mt->R) * w + ox + mt->R], p, mt->margin, mt->half,
                                oy, ox))
                    goto nomem;
            }
    }
    if (!marker_make(g))
        goto nomem;
    *out = g;
    return ELM_OK;
nomem:
    elm_pf_gen_free(g);
    return elm__fail(ELM_ERR_NOMEM, "out of memory building Pathfinder stamps");
}

/* ---- Drawing state ----------------------------------------------------------------------------
 */

typedef struct journal_entry {
    float *where;
    float old;
} journal_entry;

typedef struct canvas {
    int W;
    float *img;       /* (W, W) brightness */
    float *occ;       /* (W, W) committed exclusion mask */
    uint8_t *scratch; /* (W, W) for the exact free-pixel enumeration */
    int *freelist;
    journal_entry *log; /* undo log of a distractor attempt */
    size_t nlog, caplog;
    int logging;
    int oom;
} canvas;

static void set_max(canvas *c, float *where, float v) {
    if (v <= *where)
        return;
    if (c->logging) {
        if (c->nlog == c->caplog) {
            size_t cap = c->caplog ? 2 * c->caplog : 1024;
            journal_entry *l = realloc(c->log, cap * sizeof *l);
            if (!l) {
                c->oom = 1;
                return;
            }
            c->log = l;
            c->caplog = cap;
        }
        c->log[c->nlog++] = (journal_entry){where, *where};
    }
    *where = v;
}

static void undo(canvas *c) {
    while (c->nlog > 0) {
        c->nlog--;
        *c->log[c->nlog].where = c->log[c->nlog].old;
    }
}

/* Max-composites `src` (S, S), times `gain`, centred at (y, x) into `dst` (W, W). */
static void paste_max(canvas *c, float *dst, const float *src, int S, int y, int x, float gain) {
    int half = S / 2, W = c->W;
    for (int i = 0; i < S; i++) {
        int yy = y + i - half;
        if (yy < 0 || yy >= W)
            continue;
        for (int j = 0; j < S; j++) {
            int xx = x + j - half;
            if (xx < 0 || xx >= W)
                continue;
            float v = src[(size_t)i * S + j] * gain;
            if (v > 0)
                set_max(c, &dst[(size_t)yy * W + xx], v);
        }
    }
}

typedef struct placed {
    const stamp *st;
    int y, x;
} placed;

typedef struct path {
    int pivot[2];
    double theta;
    placed last; /* its newest dash, whose mask is not committed yet */
    int origin[2], tip[2];
} path;

static const stamp *stamp_for(const elm_pf_gen *g, const margin_tab *mt, double theta, stamp *tmp,
                              int *is_tmp) {
    int aa = g->p.antialias_scale, cb = mt->half * aa;
    int oy = tr(cb, g->p.paddle_length * aa, sin(theta)) - cb;
    int ox = tr(cb, g->p.paddle_length * aa, cos(theta)) - cb;
    *is_tmp = 0;
    if (abs(oy) <= mt->R && abs(ox) <= mt->R) {
        const stamp *s = &mt->stamps[(oy + mt->R) * (2 * mt->R + 1) + ox + mt->R];
        if (s->line)
            return s;
    }
    /* Not precomputed (cannot happen with the ring rule above, kept for safety). */
    if (!stamp_make(tmp, &g->p, mt->margin, mt->half, oy, ox))
        return NULL;
    *is_tmp = 1;
    return tmp;
}

static void commit_mask(canvas *c, const margin_tab *mt, const placed *pl) {
    if (pl->st)
        paste_max(c, c->occ, pl->st->mask, mt->S, pl->y, pl->x, 1.0f);
}

static double flip_pi(double t) {
    return t < 0 ? t + M_PI : t - M_PI;
}

/*
 * Picks a dash start uniformly among the pixels where the footprint `fp` of the dash covers no
 * pixel of `lined` above 0.3 (the reference's dilation + np.nonzero + randint). Returns 0 when
 * there is none.
 */
static int sample_free(canvas *c, const float *lined, const stamp *fp, elm__rng *rng, int *ty,
                       int *tx) {
    int W = c->W;
    for (int t = 0; t < PF_REJECTION_TRIES; t++) {
        int y = (int)elm__rng_below(rng, (uint64_t)W), x = (int)elm__rng_below(rng, (uint64_t)W);
        int ok = 1;
        for (int k = 0; k < fp->ncore && ok; k++) {
            int yy = y + fp->core[k].dy, xx = x + fp->core[k].dx;
            if (yy >= 0 && yy < W && xx >= 0 && xx < W && lined[(size_t)yy * W + xx] > 0.3f)
                ok = 0;
        }
        if (ok) {
            *ty = y;
            *tx = x;
            return 1;
        }
    }
    /* Crowded image: enumerate the free pixels exactly (same distribution as above). */
    memset(c->scratch, 0, (size_t)W * W);
    for (int yy = 0; yy < W; yy++)
        for (int xx = 0; xx < W; xx++) {
            if (!(lined[(size_t)yy * W + xx] > 0.3f))
                continue;
            for (int k = 0; k < fp->ncore; k++) {
                int y = yy - fp->core[k].dy, x = xx - fp->core[k].dx;
                if (y >= 0 && y < W && x >= 0 && x < W)
                    c->scratch[(size_t)y * W + x] = 1;
            }
        }
    int n = 0;
    for (int i = 0; i < W * W; i++)
        if (!c->scratch[i])
            c->freelist[n++] = i;
    if (n == 0)
        return 0;
    int pick = c->freelist[elm__rng_below(rng, (uint64_t)n)];
    *ty = pick / W;
    *tx = pick % W;
    return 1;
}

static int oob(int W, int y, int x) {
    return y < 0 || y >= W || x < 0 || x >= W;
}

/*
 * Starts a path: direction uniform in whole degrees, start pixel uniform among the free ones of
 * `lined`, head and pivot inside the image (else retry). Draws the first dash.
 */
static int seed_path(const elm_pf_gen *g, const margin_tab *mt, canvas *c, const float *lined,
                     float contrast, elm__rng *rng, path *ph, int *dashes) {
    const elm_pf_gen_params *p = &g->p;
    int W = c->W, L = p->paddle_length, m = mt->margin;
    for (int trial = 0; trial <= p->max_paddle_retry; trial++) {
        double th = ((double)elm__rng_below(rng, 360) - 180.0) * M_PI / 180.0;
        stamp tmp;
        int is_tmp;
        const stamp *st = stamp_for(g, mt, th, &tmp, &is_tmp);
        if (!st) {
            c->oom = 1;
            return 0;
        }
        /*
         * The reference finds free pixels with cv2.dilate, whose constant border is -FLT_MAX:
         * when the footprint misses a quadrant, an image corner sees only border, the dilated
         * mask goes negative there, find_available_coordinates() then reports no free pixel
         * at all, and the seed fails. At 32 px only 30 of 360 directions pass, which is why
         * authentic 32 px images hold few distractors; reproduced unless turned off.
         */
        if (p->border_quirk && !st->all_quadrants) {
            if (is_tmp)
                stamp_free(&tmp);
            return 0;
        }
        int ty, tx;
        int found = sample_free(c, lined, st, rng, &ty, &tx);
        if (is_tmp)
            stamp_free(&tmp);
        if (!found)
            return 0;
        int hy = tr(ty, L, sin(th)), hx = tr(tx, L, cos(th));
        double rev = flip_pi(th);
        int py = tr(hy, L + m, sin(rev)), px = tr(hx, L + m, cos(rev));
        if (oob(W, hy, hx) || oob(W, py, px))
            continue;
        st = stamp_for(g, mt, th, &tmp, &is_tmp);
        if (!st || is_tmp) {
            if (st)
                stamp_free(&tmp);
            c->oom = 1;
            return 0;
        }
        paste_max(c, c->img, st->line, mt->S, ty, tx, contrast);
        ph->pivot[0] = py;
        ph->pivot[1] = px;
        ph->theta = th;
        ph->last = (placed){st, ty, tx};
        ph->origin[0] = ph->tip[0] = ty;
        ph->origin[1] = ph->tip[1] = tx;
        (*dashes)++;
        return 1;
    }
    return 0;
}

/* Adds one dash to a path (the reference's extend_snake). */
static int extend_path(const elm_pf_gen *g, const margin_tab *mt, canvas *c, float contrast,
                       elm__rng *rng, path *ph, int *dashes) {
    const elm_pf_gen_params *p = &g->p;
    int W = c->W, L = p->paddle_length, m = mt->margin;
    int py = tr(ph->pivot[0], L + 2 * m, sin(ph->theta));
    int px = tr(ph->pivot[1], L + 2 * m, cos(ph->theta));
    /* Candidate ends: the precomputed ring around the new pivot, inside the image. */
    cand cs[512];
    double cmf[512], ori[512], total = 0;
    int nu = 0;
    for (int i = 0; i < mt->nring; i++) {
        int cy = py + mt->ring_dy[i], cx = px + mt->ring_dx[i];
        if (oob(W, cy, cx))
            continue;
        double o = mt->ring_ori[i];
        double d = fabs(o - ph->theta);
        double delta = d < 2 * M_PI - d ? d : 2 * M_PI - d;
        delta *= p->continuity;
        double cw = delta < 0.5 * M_PI ? cos(delta) : 0.0;
        /* Occupancy near the candidate: the mask dilated by a disk of radius margin. */
        float occ = 0;
        if (cw > 0)
            for (int v = -m; v <= m; v++)
                for (int u = -m; u <= m; u++) {
                    int yy = cy + v, xx = cx + u;
                    if (u * u + v * v <= m * m && !oob(W, yy, xx) &&
                        c->occ[(size_t)yy * W + xx] > occ)
                        occ = c->occ[(size_t)yy * W + xx];
                }
        total += (1.0 - (double)occ) * cw * cw;
        cs[nu] = (cand){cy, cx};
        cmf[nu] = total;
        ori[nu] = o;
        nu++;
    }
    if (nu == 0)
        return 0;
    if (total < 1e-4)
        return 0;
    for (int trial = 0; trial <= p->max_paddle_retry; trial++) {
        double r = elm__rng_uniform(rng) * total;
        int pick = nu - 1;
        for (int i = 0; i < nu; i++)
            if (cmf[i] > r) {
                pick = i;
                break;
            }
        double th = ori[pick];
        stamp tmp;
        int is_tmp;
        const stamp *st = stamp_for(g, mt, flip_pi(th), &tmp, &is_tmp);
        if (!st) {
            c->oom = 1;
            return 0;
        }
        int hy = cs[pick].y, hx = cs[pick].x, S = mt->S, half = mt->half, clash = 0;
        for (int i = 0; i < S && !clash; i++) {
            int yy = hy + i - half;
            if (yy < 0 || yy >= W)
                continue;
            for (int j = 0; j < S; j++) {
                int xx = hx + j - half;
                if (xx >= 0 && xx < W &&
                    !(c->occ[(size_t)yy * W + xx] + st->mask[(size_t)i * S + j] < 1.8f)) {
                    clash = 1;
                    break;
                }
            }
        }
        if (clash) {
            if (is_tmp)
                stamp_free(&tmp);
            continue;
        }
        if (is_tmp) { /* a stamp must outlive this call: never expected, treat as failure */
            stamp_free(&tmp);
            c->oom = 1;
            return 0;
        }
        paste_max(c, c->img, st->line, S, hy, hx, contrast);
        commit_mask(c, mt, &ph->last);
        ph->last = (placed){st, hy, hx};
        ph->pivot[0] = py;
        ph->pivot[1] = px;
        ph->theta = th;
        ph->tip[0] = hy;
        ph->tip[1] = hx;
        (*dashes)++;
        return 1;
    }
    return 0;
}

elm_status elm_pf_gen_stamp(const elm_pf_gen *g, int margin_index, int oy, int ox, float *line,
                            float *mask, int *S) {
    if (margin_index < 0 || margin_index >= g->p.num_margins || abs(oy) > 100 || abs(ox) > 100)
        return elm__fail(ELM_ERR_ARG, "elm_pf_gen_stamp: bad margin index or offset");
    const margin_tab *mt = &g->tabs[margin_index];
    *S = mt->S;
    if (!line || !mask)
        return ELM_OK;
    stamp st;
    if (!stamp_make(&st, &g->p, mt->margin, mt->half, oy, ox))
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    memcpy(line, st.line, (size_t)mt->S * mt->S * sizeof(float));
    memcpy(mask, st.mask, (size_t)mt->S * mt->S * sizeof(float));
    stamp_free(&st);
    return ELM_OK;
}

uint64_t elm_pf_gen_image_seed(uint64_t seed, long index) {
    /* splitmix64's finaliser on seed and index, so neighbouring images get unrelated streams */
    uint64_t z = seed ^ (0x9e3779b97f4a7c15ULL * ((uint64_t)index + 1));
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int canvas_init(canvas *c, int W) {
    memset(c, 0, sizeof *c);
    c->W = W;
    size_t n = (size_t)W * W;
    c->img = malloc(n * sizeof(float));
    c->occ = malloc(n * sizeof(float));
    c->scratch = malloc(n);
    c->freelist = malloc(n * sizeof(int));
    return c->img && c->occ && c->scratch && c->freelist;
}

static void canvas_free(canvas *c) {
    free(c->img);
    free(c->occ);
    free(c->scratch);
    free(c->freelist);
    free(c->log);
}

/*
 * Two target paths grown in lockstep from seeds seed_distance apart (two_snakes). The canvas
 * must hold only the padding ring; `lined` is that ring plus a band of 2 * seed_distance along
 * every border, which the first seed avoids. On failure the caller undoes the journal.
 */
static int target_pair(const elm_pf_gen *g, const margin_tab *mt, canvas *c, const float *lined,
                       elm__rng *rng, path ph[2], int *dashes) {
    const elm_pf_gen_params *p = &g->p;
    int W = c->W, L = p->paddle_length;
    int m = mt->margin;
    *dashes = 0;
    if (!seed_path(g, mt, c, lined, (float)p->target_contrast, rng, &ph[0], dashes))
        return 0;
    /* The second seed: seed_distance away in a uniform whole-degree direction, no other test. */
    int placed2 = 0;
    for (int trial = 0; trial <= p->max_paddle_retry && !placed2; trial++) {
        double th = ((double)elm__rng_below(rng, 360) - 180.0) * M_PI / 180.0;
        double a = (double)elm__rng_below(rng, 360) * M_PI / 180.0;
        int ty = (int)nearbyint(ph[0].origin[0] + p->seed_distance * sin(a));
        int tx = (int)nearbyint(ph[0].origin[1] + p->seed_distance * cos(a));
        int hy = tr(ty, L, sin(th)), hx = tr(tx, L, cos(th));
        double rev = flip_pi(th);
        int py = tr(hy, L + m, sin(rev)), px = tr(hx, L + m, cos(rev));
        if (oob(W, hy, hx) || oob(W, py, px) || oob(W, ty, tx))
            continue;
        stamp tmp;
        int is_tmp;
        const stamp *st = stamp_for(g, mt, th, &tmp, &is_tmp);
        if (!st || is_tmp) {
            if (st)
                stamp_free(&tmp);
            c->oom = 1;
            return 0;
        }
        paste_max(c, c->img, st->line, mt->S, ty, tx, (float)p->target_contrast);
        ph[1].pivot[0] = py;
        ph[1].pivot[1] = px;
        ph[1].theta = th;
        ph[1].last = (placed){st, ty, tx};
        ph[1].origin[0] = ph[1].tip[0] = ty;
        ph[1].origin[1] = ph[1].tip[1] = tx;
        (*dashes)++;
        placed2 = 1;
    }
    if (!placed2)
        return 0;
    for (int s = 1; s < p->contour_length; s++)
        for (int k = 0; k < 2; k++)
            if (!extend_path(g, mt, c, (float)p->target_contrast, rng, &ph[k], dashes))
                return 0;
    /* Both newest masks are committed, so no distractor touches either path's far end. */
    commit_mask(c, mt, &ph[0].last);
    commit_mask(c, mt, &ph[1].last);
    return 1;
}

/* One distractor path (make_snake); on failure the canvas is restored. */
static int distractor(const elm_pf_gen *g, const margin_tab *mt, canvas *c, float *lined,
                      elm__rng *rng, int *dashes) {
    const elm_pf_gen_params *p = &g->p;
    int W = c->W;
    size_t n = (size_t)W * W;
    /* Give up when under 1 % of the image is free (stop_with_availability = 0.01). */
    size_t free_px = 0;
    for (size_t i = 0; i < n; i++)
        free_px += !(c->occ[i] > 0.3f);
    if ((double)free_px / (double)n < 0.01)
        return 0;
    memcpy(lined, c->occ, n * sizeof(float));
    for (int i = 0; i < W; i++) {
        lined[i] = lined[(size_t)(W - 1) * W + i] = 1.0f;
        lined[(size_t)i * W] = lined[(size_t)i * W + W - 1] = 1.0f;
    }
    c->nlog = 0;
    c->logging = 1;
    int d0 = *dashes, ok;
    path ph;
    memset(&ph, 0, sizeof ph);
    ok = seed_path(g, mt, c, lined, (float)p->distractor_contrast, rng, &ph, dashes);
    for (int s = 1; ok && s < p->distractor_length; s++)
        ok = extend_path(g, mt, c, (float)p->distractor_contrast, rng, &ph, dashes);
    if (ok)
        commit_mask(c, mt, &ph.last);
    else {
        undo(c);
        *dashes = d0;
    }
    c->logging = 0;
    c->nlog = 0;
    return ok;
}

elm_status elm_pf_gen_image(const elm_pf_gen *g, uint64_t seed, int label, uint8_t *pixels,
                            elm_pf_gen_sample *info) {
    const elm_pf_gen_params *p = &g->p;
    if (label != 0 && label != 1)
        return elm__fail(ELM_ERR_ARG, "pathfinder generator: label %d is not 0 or 1", label);
    int W = p->size;
    size_t n = (size_t)W * W;
    canvas c;
    float *lined = malloc(n * sizeof(float));
    if (!canvas_init(&c, W) || !lined) {
        canvas_free(&c);
        free(lined);
        return elm__fail(ELM_ERR_NOMEM, "out of memory drawing a Pathfinder image");
    }
    elm__rng rng;
    elm__rng_seed(&rng, seed);
    int mi = p->num_margins > 1 ? (int)elm__rng_below(&rng, (uint64_t)p->num_margins) : 0;
    const margin_tab *mt = &g->tabs[mi];
    path ph[2];
    int dashes = 0, restarts = 0;
    memset(ph, 0, sizeof ph);
    /* Empty canvas: the padding ring is occupied; the first seed also avoids a wide band. */
    int pad = p->padding, band = 2 * p->seed_distance;
    memset(c.img, 0, n * sizeof(float));
    for (int y = 0; y < W; y++)
        for (int x = 0; x < W; x++) {
            int ring = y < pad || y >= W - pad || x < pad || x >= W - pad;
            int wide = y < band || y >= W - band || x < band || x >= W - band;
            c.occ[(size_t)y * W + x] = ring ? 1.0f : 0.0f;
            lined[(size_t)y * W + x] = (ring || wide) ? 1.0f : 0.0f;
        }
    /* A failed pair is undone through the journal, much cheaper than clearing the canvas. */
    for (;;) {
        c.nlog = 0;
        c.logging = 1;
        if (target_pair(g, mt, &c, lined, &rng, ph, &dashes))
            break;
        undo(&c);
        if (c.oom || ++restarts > PF_MAX_RESTARTS) {
            canvas_free(&c);
            free(lined);
            return c.oom ? elm__fail(ELM_ERR_NOMEM, "out of memory drawing a Pathfinder image")
                         : elm__fail(ELM_ERR_ARG,
                                     "pathfinder generator: no pair of %d-dash paths fits a "
                                     "%dx%d image after %d tries",
                                     p->contour_length, W, W, PF_MAX_RESTARTS);
        }
    }
    c.logging = 0;
    c.nlog = 0;
    int paths = 2;
    for (int d = 0; d < p->num_distractors; d++)
        for (int a = 0; a <= p->max_distractor_retry; a++)
            if (distractor(g, mt, &c, lined, &rng, &dashes)) {
                paths++;
                break;
            }
    /* Markers: on the start of one target path and the end of the same one (label 1) or the
     * other one (label 0). */
    int om = (int)elm__rng_below(&rng, 2), tm = label ? om : 1 - om;
    const int *mk[2] = {ph[om].origin, ph[tm].tip};
    int K = g->marker_half, MS = 2 * K + 1;
    c.logging = 0;
    for (int k = 0; k < 2; k++)
        paste_max(&c, c.img, g->marker, MS, mk[k][0], mk[k][1], 1.0f);
    /* Final 8-bit scaling as scipy's bytescale: min -> 0, max -> 255, +0.5 then truncate. */
    float lo = c.img[0], hi = c.img[0];
    for (size_t i = 1; i < n; i++) {
        lo = fminf(lo, c.img[i]);
        hi = fmaxf(hi, c.img[i]);
    }
    double scale = hi > lo ? 255.0 / ((double)hi - (double)lo) : 1.0;
    for (size_t i = 0; i < n; i++) {
        double v = ((double)c.img[i] - (double)lo) * scale;
        v = v < 0 ? 0 : v > 255 ? 255 : v;
        pixels[i] = (uint8_t)(v + 0.5);
    }
    if (info) {
        info->label = label;
        info->margin = mt->margin;
        info->paths = paths;
        info->dashes = dashes;
        for (int k = 0; k < 2; k++) {
            info->markers[k][0] = mk[k][0];
            info->markers[k][1] = mk[k][1];
            for (int r = 0; r < 2; r++) {
                info->ends[k][0][r] = ph[k].origin[r];
                info->ends[k][1][r] = ph[k].tip[r];
            }
        }
        info->restarts = restarts;
    }
    int oom = c.oom;
    canvas_free(&c);
    free(lined);
    if (oom)
        return elm__fail(ELM_ERR_NOMEM, "out of memory drawing a Pathfinder image");
    return ELM_OK;
}

/* ---- Writing a data set -----------------------------------------------------------------------
 */

/* Python's str() of a float for the metadata fields (1.0, 0.5, 1.8). */
static void pyfloat(char *buf, size_t len, double v) {
    snprintf(buf, len, "%.15g", v);
    if (!strpbrk(buf, ".eEn"))
        strncat(buf, ".0", len - strlen(buf) - 1);
}

typedef struct gen_err {
    long first;
    elm_status st;
    char msg[512];
} gen_err;

/* DIR/imgs/0 .. nb - 1 and DIR/metadata; a folder that holds a set already needs force. */
static elm_status make_folders(const char *dir, const char *mdir, long nb, int force) {
    if (!force && elm__is_dir(mdir))
        return elm__fail(ELM_ERR_ARG,
                         "%s already holds a Pathfinder set (metadata/ exists); "
                         "choose another --out or pass --force",
                         dir);
    elm_status st = ELM_OK;
    for (long b = 0; b < nb && st == ELM_OK; b++) {
        char rel[64];
        snprintf(rel, sizeof rel, "imgs/%ld", b);
        char *bd = elm__path_join(dir, rel);
        st = bd ? elm__mkdir_p(bd) : elm__fail(ELM_ERR_NOMEM, "out of memory");
        free(bd);
    }
    return st == ELM_OK ? elm__mkdir_p(mdir) : st;
}

/* Balanced labels: n/2 of each (odd n: the seed picks the extra one), shuffled. */
static void draw_labels(int *labels, long n, uint64_t seed) {
    elm__rng rng;
    elm__rng_seed(&rng, seed ^ 0x5bd1e9955bd1e995ULL);
    for (long i = 0; i < n; i++)
        labels[i] = i < n / 2 ? 0 : 1;
    if (n % 2)
        labels[n - 1] = (int)elm__rng_below(&rng, 2);
    for (long i = n - 1; i > 0; i--) {
        long j = (long)elm__rng_below(&rng, (uint64_t)i + 1);
        int t = labels[i];
        labels[i] = labels[j];
        labels[j] = t;
    }
}

/* The n images as DIR/imgs/BATCH/sample_K.png, in parallel; margins[i] gets image i's margin.
 * A failure names the first image that failed. */
static elm_status draw_images(const elm_pf_gen *g, const char *dir, long n, uint64_t seed,
                              int batch_size, int threads, const int *labels, int *margins) {
    const elm_pf_gen_params *p = &g->p;
    gen_err err = {.first = -1, .st = ELM_OK};
    int nt = threads > 0 ? threads : 0;
#pragma omp parallel num_threads(nt > 0 ? nt : omp_get_max_threads())
    {
        uint8_t *px = malloc((size_t)p->size * p->size);
        char *fpath = malloc(strlen(dir) + 96);
#pragma omp for schedule(dynamic, 16)
        for (long i = 0; i < n; i++) {
            elm_status s;
            elm_pf_gen_sample info;
            if (!px || !fpath) {
                s = elm__fail(ELM_ERR_NOMEM, "out of memory");
            } else {
                s = elm_pf_gen_image(g, elm_pf_gen_image_seed(seed, i), labels[i], px, &info);
                if (s == ELM_OK) {
                    margins[i] = info.margin;
                    sprintf(fpath, "%s/imgs/%ld/sample_%ld.png", dir, i / batch_size,
                            i % batch_size);
                    s = elm_pf_png_write(fpath, px, p->size, p->size);
                }
            }
            if (s != ELM_OK) {
                /* Unnamed: a named critical is a global symbol that libelm.so would export. */
#pragma omp critical
                {
                    if (err.first < 0 || i < err.first) {
                        err.first = i;
                        err.st = s;
                        snprintf(err.msg, sizeof err.msg, "%s", elm_last_error());
                    }
                }
            }
        }
        free(px);
        free(fpath);
    }
    if (err.first >= 0)
        return elm__fail(err.st, "image %ld: %s", err.first, err.msg);
    return ELM_OK;
}

/* Metadata last, one file per batch (MDIR/BATCH.npy, LRA's text lines), each written
 * atomically. */
static elm_status write_metadata(const elm_pf_gen_params *p, const char *mdir, long n,
                                 int batch_size, const int *labels, const int *margins) {
    char cont[32], thick[32];
    pyfloat(cont, sizeof cont, p->continuity);
    pyfloat(thick, sizeof thick, p->paddle_thickness);
    size_t cap = (size_t)batch_size * 160 + 64;
    char *text = malloc(cap);
    if (!text)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    elm_status st = ELM_OK;
    const long nb = (n + batch_size - 1) / batch_size;
    for (long b = 0; b < nb && st == ELM_OK; b++) {
        size_t len = 0;
        for (long i = b * batch_size; i < n && i < (b + 1) * batch_size; i++) {
            int w = snprintf(text + len, cap - len,
                             "imgs/%ld sample_%ld.png %ld %d %s %d %d %d %s %d 1\n", b,
                             i % batch_size, i % batch_size, labels[i], cont, p->contour_length,
                             p->distractor_length, p->paddle_length, thick, margins[i]);
            if (w < 0 || (size_t)w >= cap - len) {
                st = elm__fail(ELM_ERR_ARG, "metadata line too long");
                break;
            }
            len += (size_t)w;
        }
        if (st != ELM_OK)
            break;
        char name[64];
        snprintf(name, sizeof name, "%ld.npy", b);
        char *mp = elm__path_join(mdir, name);
        st = mp ? elm__write_file_atomic(mp, text, len) : elm__fail(ELM_ERR_NOMEM, "out of memory");
        free(mp);
    }
    free(text);
    return st;
}

elm_status elm_pf_gen_write(const elm_pf_gen *g, const char *root, long n, uint64_t seed,
                            int batch_size, int threads, int force) {
    const elm_pf_gen_params *p = &g->p;
    if (!root || n < 1 || batch_size < 1)
        return elm__fail(ELM_ERR_ARG, "pathfinder generator: need n >= 1 and batch size >= 1");
    char diff[64], sub[96];
    elm_pf_gen_difficulty(p->contour_length, diff, sizeof diff);
    snprintf(sub, sizeof sub, "pathfinder%d/%s", p->size, diff);
    char *dir = elm__path_join(root, sub);
    char *mdir = dir ? elm__path_join(dir, "metadata") : NULL;
    int *labels = malloc((size_t)n * sizeof(int));
    int *margins = malloc((size_t)n * sizeof(int));
    elm_status st = ELM_OK;
    if (!dir || !mdir || !labels || !margins)
        st = elm__fail(ELM_ERR_NOMEM, "out of memory");
    if (st == ELM_OK)
        st = make_folders(dir, mdir, (n + batch_size - 1) / batch_size, force);
    if (st == ELM_OK) {
        draw_labels(labels, n, seed);
        st = draw_images(g, dir, n, seed, batch_size, threads, labels, margins);
    }
    if (st == ELM_OK)
        st = write_metadata(p, mdir, n, batch_size, labels, margins);
    free(labels);
    free(margins);
    free(mdir);
    free(dir);
    return st;
}
