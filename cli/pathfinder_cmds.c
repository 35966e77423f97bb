/*
 * pathfinder_cmds.c - `elm gen pathfinder` and `elm data info` for Pathfinder folders.
 *
 * The generator (src/pathfinder/pf_gen.h) draws images with LRA's settings and writes them in
 * the LRA release layout, which the reader (src/pathfinder/pathfinder.h), training and
 * `elm data info` read back. cmd_data_info_pathfinder() answers -1 for anything that is not a
 * Pathfinder folder so the dispatcher can try the other formats.
 */
#include "cli.h"
#include "internal.h"
#include "pathfinder/pathfinder.h"
#include "pathfinder/pf_gen.h"

#include <cjson/cJSON.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Declared in dispatch.c, the caller; repeated for -Wmissing-prototypes. */
int cmd_gen_pathfinder(int argc, char **argv);
int cmd_data_info_pathfinder(int argc, char **argv);

static const char gen_usage[] =
    "usage: elm gen pathfinder --n N --out DIR [--size 32|64|128|256] [--contour-length L]\n"
    "                          [--seed S] [--batch-size N] [--threads N] [--force]\n"
    "                          [--no-border-quirk]\n\n"
    "Draws Pathfinder images (two circles on one dashed path: label 1, on two paths: label 0)\n"
    "with the Long Range Arena settings and writes them in the LRA layout:\n"
    "  DIR/pathfinder<size>/<difficulty>/imgs/<batch>/sample_<i>.png   (8-bit gray)\n"
    "  DIR/pathfinder<size>/<difficulty>/metadata/<batch>.npy           (text, 11 fields)\n"
    "where <difficulty> is curv_baseline (L = 6) or curv_contour_length_<L>.\n\n"
    "  --n N               images to draw, half of each label (required)\n"
    "  --out DIR           root folder, created if needed (required)\n"
    "  --size PX           32 (Pathfinder, default), 64, 128 (Path-X) or 256\n"
    "  --contour-length L  dashes per target path: 6, 9 or 14 (default 14, LRA's 'hard')\n"
    "  --seed S            data set seed (default 1); image k depends only on (S, k)\n"
    "  --batch-size N      images per imgs/<batch> folder (default 1000)\n"
    "  --threads N         parallel drawing (default: all cores); never changes the output\n"
    "  --force             write into a folder that already holds a set\n"
    "  --no-border-quirk   do not reproduce the reference generator's OpenCV border quirk,\n"
    "                      which keeps distractors sparse at 32/64 px (docs/PATHFINDER.md)\n";

int cmd_gen_pathfinder(int argc, char **argv) {
    long n = -1, size = 32, cl = 14, batch = 1000, threads = 0;
    unsigned long long seed = 1;
    const char *out = NULL;
    int force = 0, no_quirk = 0;
    const cli_flag flags[] = {
        {"--n", CLI_INT, &n, 1, 100000000, 0},
        {"--size", CLI_INT, &size, 32, 256, 0},
        {"--contour-length", CLI_INT, &cl, 3, 30, 0},
        {"--batch-size", CLI_INT, &batch, 1, 10000000, 0},
        {"--threads", CLI_INT, &threads, 0, 4096, 0},
        {"--seed", CLI_U64, &seed, 0, 0, 0},
        {"--out", CLI_STR, &out, 0, 0, 0},
        {"--force", CLI_SWITCH, &force, 0, 0, 0},
        {"--no-border-quirk", CLI_SWITCH, &no_quirk, 0, 0, 0},
    };
    int rc = cli_parse_flags(argc, argv, 1, flags, (int)(sizeof flags / sizeof flags[0]),
                             gen_usage, "gen pathfinder");
    if (rc >= 0)
        return rc;
    const int quirk = !no_quirk;
    if (n < 0)
        return cli_usage_error(gen_usage, "--n N is required");
    if (!out)
        return cli_usage_error(gen_usage, "--out DIR is required");
    if (size != 32 && size != 64 && size != 128 && size != 256)
        return cli_usage_error(gen_usage, "--size must be 32, 64, 128 or 256 (got %ld)", size);

    elm_pf_gen_params p;
    elm_pf_gen *g = NULL;
    elm_status st = elm_pf_gen_preset(&p, (int)size, (int)cl);
    if (st == ELM_OK) {
        p.border_quirk = quirk;
        st = elm_pf_gen_create(&g, &p);
    }
    if (st != ELM_OK)
        return cli_fail(st, NULL);
    double t0 = elm__now_s();
    clock_t c0 = clock();
    st = elm_pf_gen_write(g, out, n, (uint64_t)seed, (int)batch, (int)threads, force);
    double wall = elm__now_s() - t0, cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
    elm_pf_gen_free(g);
    if (st != ELM_OK)
        return cli_fail(st, force ? NULL : "pass --force to write over an existing set");
    char diff[64];
    elm_pf_gen_difficulty((int)cl, diff, sizeof diff);
    printf("wrote %ld images of %ldx%ld px to %s/pathfinder%ld/%s in %.2f s (%.0f images/s, "
           "%.0f per CPU-second, %d threads)\n",
           n, size, size, out, size, diff, wall, wall > 0 ? (double)n / wall : 0.0,
           cpu > 0 ? (double)n / cpu : 0.0, threads > 0 ? (int)threads : omp_get_max_threads());
    return 0;
}

/* ---- elm data info ----------------------------------------------------------------------------
 */

static const char info_usage[] =
    "usage: elm data info DIR [--json] [--size PX] [--difficulty NAME] [--check]\n\n"
    "Describes a Pathfinder / Path-X folder in the LRA layout. DIR may be a difficulty folder\n"
    "(it holds metadata/), a pathfinderNN folder or a folder of pathfinderNN folders; --size and\n"
    "--difficulty choose when it holds several. Reads every metadata line and checks that every\n"
    "image exists; --check also decodes every image (size, 8-bit grayscale).\n";

/* Decodes every image; returns the first failure. */
static elm_status check_all(const elm_pf *p, double *mean) {
    const elm_pf_info *in = elm_pf_get_info(p);
    size_t T = (size_t)in->image_size * in->image_size;
    long n = elm_pf_len(p, ELM_PF_ALL);
    long first = -1;
    elm_status fst = ELM_OK;
    char msg[512] = "";
    double total = 0;
#pragma omp parallel reduction(+ : total)
    {
        uint8_t *px = malloc(T);
#pragma omp for schedule(dynamic, 64)
        for (long k = 0; k < n; k++) {
            elm_status st = px ? elm_pf_load_u8(p, ELM_PF_ALL, k, px, NULL) : ELM_ERR_NOMEM;
            if (st != ELM_OK) {
#pragma omp critical(pf_check)
                if (first < 0 || k < first) {
                    first = k;
                    fst = st;
                    snprintf(msg, sizeof msg, "%s", px ? elm_last_error() : "out of memory");
                }
                continue;
            }
            long s = 0;
            for (size_t i = 0; i < T; i++)
                s += px[i];
            total += (double)s / (double)T;
        }
        free(px);
    }
    if (first >= 0)
        return elm__fail(fst, "%s", msg);
    *mean = n ? total / (double)n : 0;
    return ELM_OK;
}

int cmd_data_info_pathfinder(int argc, char **argv) {
    const char *path = NULL, *difficulty = NULL;
    int json = 0, check = 0;
    long size = 0;
    const cli_one_arg take_path = {&path, info_usage, "data info"};
    const cli_call path_arg = {cli_take_one_arg, (void *)&take_path};
    const cli_flag flags[] = {
        {"--json", CLI_SWITCH, &json, 0, 0, 0},
        {"--check", CLI_SWITCH, &check, 0, 0, 0},
        {"--size", CLI_INT, &size, 0, 65536, 0},
        {"--difficulty", CLI_STR, &difficulty, 0, 0, 0},
        {NULL, CLI_CALL, (void *)&path_arg, 0, 0, 0},
    };
    const int nflags = (int)(sizeof flags / sizeof flags[0]);
    /* Judge the flags only once the folder is known to be ours: another format's handler may
     * take flags this one does not. */
    const char *first = cli_first_arg(argc, argv, 1, flags, nflags);
    if (!first || !elm_pf_probe(first))
        return -1;
    int prc = cli_parse_flags(argc, argv, 1, flags, nflags, info_usage, "data info");
    if (prc >= 0)
        return prc;

    elm_pf *p = NULL;
    elm_status st = elm_pf_open(&p, path, difficulty, (int)size, ELM_PF_SPLIT_SEED);
    if (st != ELM_OK)
        return cli_fail(st, st == ELM_ERR_ARG ? "name one difficulty folder, or pass --size and "
                                                "--difficulty"
                                              : NULL);
    const elm_pf_info *in = elm_pf_get_info(p);
    double mean = -1;
    if (check && (st = check_all(p, &mean)) != ELM_OK) {
        elm_pf_free(p);
        return cli_fail(st, NULL);
    }
    int rc = 0;
    long T = (long)in->image_size * in->image_size;
    double share1 = in->samples ? (double)in->labels[1] / (double)in->samples : 0;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "format", "pathfinder");
        cJSON_AddStringToObject(o, "path", in->dir);
        cJSON_AddStringToObject(o, "difficulty", in->difficulty);
        if (in->contour_length > 0)
            cJSON_AddNumberToObject(o, "contour_length", in->contour_length);
        else
            cJSON_AddNullToObject(o, "contour_length");
        cJSON_AddNumberToObject(o, "samples", (double)in->samples);
        cJSON_AddNumberToObject(o, "classes", 2);
        cJSON_AddNumberToObject(o, "image_size", in->image_size);
        cJSON_AddNumberToObject(o, "seq_len", (double)T);
        cJSON *lc = cJSON_AddArrayToObject(o, "label_counts");
        cJSON_AddItemToArray(lc, cJSON_CreateNumber((double)in->labels[0]));
        cJSON_AddItemToArray(lc, cJSON_CreateNumber((double)in->labels[1]));
        cJSON_AddNumberToObject(o, "label_balance", share1);
        cJSON_AddNumberToObject(o, "batches", in->batches);
        cJSON *sp = cJSON_AddObjectToObject(o, "splits");
        cJSON_AddNumberToObject(sp, "train", (double)in->split_len[0]);
        cJSON_AddNumberToObject(sp, "valid", (double)in->split_len[1]);
        cJSON_AddNumberToObject(sp, "test", (double)in->split_len[2]);
        cJSON_AddNumberToObject(o, "split_seed", ELM_PF_SPLIT_SEED);
        if (check)
            cJSON_AddNumberToObject(o, "mean_pixel", mean);
        char *s = cJSON_Print(o);
        cJSON_Delete(o);
        if (s) {
            puts(s);
            free(s);
        } else {
            rc = cli_error("out of memory");
        }
    } else {
        printf("Pathfinder set %s\n", in->dir);
        printf("  difficulty   %s", in->difficulty);
        if (in->contour_length > 0)
            printf(" (contour length %d)", in->contour_length);
        printf("\n  images       %ld of %dx%d px, 8-bit gray (sequences of %ld steps)\n",
               in->samples, in->image_size, in->image_size, T);
        printf("  labels       0: %ld, 1: %ld (%.1f %% label 1)\n", in->labels[0], in->labels[1],
               100.0 * share1);
        printf("  batches      %d metadata files\n", in->batches);
        printf("  splits       train %ld, valid %ld, test %ld (seeded shuffle, seed %u)\n",
               in->split_len[0], in->split_len[1], in->split_len[2], ELM_PF_SPLIT_SEED);
        if (check)
            printf("  check        every image decoded; mean pixel %.2f\n", mean);
    }
    elm_pf_free(p);
    return rc;
}
