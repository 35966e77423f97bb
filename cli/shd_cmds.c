/*
 * shd_cmds.c - `elm data info FILE.h5|DIR [--json]` for Spiking Heidelberg Digits files, and for
 * the folder `elm train shd --data DIR` takes (shd_train.h5 and shd_test.h5 in it).
 *
 * The dispatcher tries each format in turn: cmd_data_info_shd() answers -1 for anything that is
 * not an HDF5 file with SHD's `spikes` group or `labels`, and otherwise reads the whole file
 * (every check of elm_shd_load) and describes it.
 */
#include "cli.h"
#include "internal.h"
#include "shd/shd.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char info_usage[] =
    "usage: elm data info FILE.h5|DIR [--json] [--bin-ms MS] [--duration-ms MS] [--channels N]\n"
    "                                [--classes N]\n\n"
    "Reads and checks a Spiking Heidelberg Digits file (SHD's HDF5 layout) and prints samples,\n"
    "classes, channels, spike counts and the range of sample durations (time of the last\n"
    "spike). DIR is the folder `elm train shd --data` takes: its shd_train.h5 and shd_test.h5\n"
    "are described in turn (JSON: {\"format\": \"shd-folder\", \"path\", \"train\", \"test\"}).\n"
    "The binning flags set what counts as inside the window (default 10 ms bins over\n"
    "[0, 1000) ms, 700 channels, 20 classes).\n";

/* The released file names, gunzipped, as the SHD tasks read them from --data DIR. */
static const char *const folder_files[2][2] = {{"train", "shd_train.h5"},
                                               {"test", "shd_test.h5"}};

/* Distinct labels present, and the count of each label (num_classes entries, malloc'd). */
static int label_counts(const elm_shd *d, long **counts) {
    *counts = calloc((size_t)d->num_classes, sizeof **counts);
    int distinct = 0;
    if (!*counts)
        return -1;
    for (int i = 0; i < d->n; i++)
        distinct += (*counts)[d->labels[i]]++ == 0;
    return distinct;
}

static cJSON *to_json(const elm_shd *d, const long *counts, int distinct) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "format", "shd");
    cJSON_AddStringToObject(o, "path", d->path);
    cJSON_AddNumberToObject(o, "samples", d->n);
    cJSON_AddNumberToObject(o, "classes", distinct);
    cJSON_AddNumberToObject(o, "label_min", d->label_min);
    cJSON_AddNumberToObject(o, "label_max", d->label_max);
    cJSON *lc = cJSON_AddArrayToObject(o, "label_counts");
    for (int c = 0; c < d->num_classes; c++)
        cJSON_AddItemToArray(lc, cJSON_CreateNumber((double)counts[c]));
    cJSON_AddNumberToObject(o, "channels", d->num_channels);
    cJSON_AddNumberToObject(o, "max_channel", d->max_channel);
    cJSON_AddNumberToObject(o, "spikes", (double)d->total_spikes);
    cJSON_AddNumberToObject(o, "spikes_in_window", (double)d->kept_spikes);
    cJSON_AddNumberToObject(o, "empty_samples", d->empty_samples);
    cJSON_AddNumberToObject(o, "duration_min_s", d->last_min_s);
    cJSON_AddNumberToObject(o, "duration_max_s", d->last_max_s);
    cJSON_AddNumberToObject(o, "bin_ms", d->bin_ms);
    cJSON_AddNumberToObject(o, "window_ms", d->duration_ms);
    cJSON_AddNumberToObject(o, "steps", d->num_bins);
    cJSON_AddNumberToObject(o, "speakers", d->num_speakers);
    cJSON *keys = cJSON_AddArrayToObject(o, "keys");
    for (int k = 0; k < d->num_keys; k++)
        cJSON_AddItemToArray(keys, cJSON_CreateString(d->keys[k]));
    cJSON_AddBoolToObject(o, "meta_info", d->has_meta_info);
    return o;
}

static int print_json(cJSON *o) {
    char *s = o ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    if (!s)
        return cli_error("out of memory");
    puts(s);
    free(s);
    return 0;
}

static void print_text(const elm_shd *d, const long *counts, int distinct) {
    printf("SHD file %s\n", d->path);
    printf("  samples      %d\n", d->n);
    printf("  classes      %d distinct labels (%d..%d):", distinct, d->label_min, d->label_max);
    for (int c = 0; c < d->num_classes; c++)
        if (counts[c])
            printf(" %d:%ld", c, counts[c]);
    printf("\n");
    printf("  channels     %d (largest id seen: %d)\n", d->num_channels, d->max_channel);
    printf("  spikes       %lld (%lld before %g ms, %lld at or after it and dropped by binning)\n",
           (long long)d->total_spikes, (long long)d->kept_spikes, d->duration_ms,
           (long long)(d->total_spikes - d->kept_spikes));
    printf("  durations    %.4g .. %.4g s (time of the last spike; empty samples: %d)\n",
           d->last_min_s, d->last_max_s, d->empty_samples);
    printf("  binned as    %d steps of %g ms x %d channels\n", d->num_bins, d->bin_ms,
           d->num_channels);
    if (d->speakers)
        printf("  speakers     %d\n", d->num_speakers);
    if (d->num_keys) {
        printf("  keys        ");
        for (int k = 0; k < d->num_keys; k++)
            printf(" %s", d->keys[k]);
        printf("\n");
    }
    if (d->has_meta_info)
        printf("  meta_info    present (extra/meta_info)\n");
}

/* Reads and describes one file: as text, or (json != NULL) into *json. Returns an exit status. */
static int describe(const char *path, const elm_shd_opts *o, cJSON **json) {
    elm_shd *d = NULL;
    elm_status st = elm_shd_load(&d, path, o);
    if (st != ELM_OK)
        return cli_fail(st, "SHD files hold spikes/times, spikes/units (ragged) and labels; "
                            "see docs/DATA.md (SHD)");
    long *counts = NULL;
    int distinct = label_counts(d, &counts);
    int rc = 0;
    if (distinct < 0)
        rc = cli_error("out of memory");
    else if (json)
        *json = to_json(d, counts, distinct);
    else
        print_text(d, counts, distinct);
    free(counts);
    elm_shd_free(d);
    return rc;
}

/* DIR/name, or DIR/name.gz when only that is there (set *gz); NULL when neither is. */
static char *folder_file(const char *dir, const char *name, int *gz) {
    char *p = elm__path_join(dir, name);
    struct stat sb;
    *gz = 0;
    if (!p || stat(p, &sb) == 0)
        return p;
    size_t n = strlen(p);
    char *z = realloc(p, n + 4);
    if (!z) {
        free(p);
        return NULL;
    }
    memcpy(z + n, ".gz", 4);
    if (stat(z, &sb) == 0) {
        *gz = 1;
        return z;
    }
    free(z);
    return NULL;
}

/* Whether DIR holds an SHD file under a released name (gunzipped or not). */
static int is_shd_folder(const char *dir) {
    for (int k = 0; k < 2; k++) {
        int gz;
        char *p = folder_file(dir, folder_files[k][1], &gz);
        free(p);
        if (p)
            return 1;
    }
    return 0;
}

/* Both files of an SHD folder, as the tasks read them; a missing or compressed one is an error
 * naming it, after the other has been described. */
static int describe_folder(const char *dir, const elm_shd_opts *o, int json) {
    cJSON *all = json ? cJSON_CreateObject() : NULL;
    if (json) {
        cJSON_AddStringToObject(all, "format", "shd-folder");
        cJSON_AddStringToObject(all, "path", dir);
    }
    int rc = 0;
    for (int k = 0; k < 2; k++) {
        int gz = 0;
        char *p = folder_file(dir, folder_files[k][1], &gz);
        int r;
        if (!p) {
            r = cli_error("%s/%s: no such file (the SHD tasks read %s and %s from --data DIR)",
                          dir, folder_files[k][1], folder_files[0][1], folder_files[1][1]);
        } else if (gz) {
            r = cli_error("%s: a gzip-compressed file; elm reads SHD files uncompressed\n"
                          "hint: gunzip %s",
                          p, p);
        } else {
            cJSON *one = NULL;
            if (!json && k)
                printf("\n");
            r = describe(p, o, json ? &one : NULL);
            if (json && one)
                cJSON_AddItemToObject(all, folder_files[k][0], one);
        }
        free(p);
        rc = rc ? rc : r;
    }
    if (json) {
        int r = print_json(all);
        rc = rc ? rc : r;
    }
    return rc;
}

/* Declared in dispatch.c, the caller; repeated for -Wmissing-prototypes. */
int cmd_data_info_shd(int argc, char **argv);

int cmd_data_info_shd(int argc, char **argv) {
    const char *path = NULL;
    int json = 0;
    elm_shd_opts o;
    elm_shd_opts_default(&o);
    long channels = o.num_channels, classes = o.num_classes;
    /* Values out of range are elm_shd_load's to refuse (its messages name the file). */
    const cli_one_arg take_path = {&path, info_usage, "data info"};
    const cli_call path_arg = {cli_take_one_arg, (void *)&take_path};
    const cli_flag flags[] = {
        {"--json", CLI_SWITCH, &json, 0, 0, 0},
        {"--bin-ms", CLI_REAL, &o.bin_ms, -HUGE_VAL, HUGE_VAL, 0},
        {"--duration-ms", CLI_REAL, &o.duration_ms, -HUGE_VAL, HUGE_VAL, 0},
        {"--channels", CLI_INT, &channels, -HUGE_VAL, HUGE_VAL, 0},
        {"--classes", CLI_INT, &classes, -HUGE_VAL, HUGE_VAL, 0},
        {NULL, CLI_CALL, (void *)&path_arg, 0, 0, 0},
    };
    const int nflags = (int)(sizeof flags / sizeof flags[0]);
    /* Judge the flags only once PATH is known to be SHD: another format's handler may take
     * flags this one does not. */
    const char *first = cli_first_arg(argc, argv, 1, flags, nflags);
    if (!first)
        return -1;
    const int is_dir = elm__is_dir(first) && is_shd_folder(first);
    const int broken = !is_dir && !elm_shd_probe(first);
    if (broken) {
        /* Named like an SHD file but not readable as one: say why here, rather than let the
         * dispatcher answer "unknown format". Anything else: let it try the other formats. */
        if (!elm__is_file(first))
            return -1;
        if (elm__ends_with(first, ".h5.gz") || elm__ends_with(first, ".hdf5.gz"))
            return cli_error("%s: a gzip-compressed file; elm reads SHD files uncompressed\n"
                             "hint: gunzip %s",
                             first, first);
        if (!elm__ends_with(first, ".h5") && !elm__ends_with(first, ".hdf5"))
            return -1;
    }
    int prc = cli_parse_flags(argc, argv, 1, flags, nflags, info_usage, "data info");
    if (prc >= 0)
        return prc;
    o.num_channels = (int)(channels > 65536 || channels < 0 ? -1 : channels);
    o.num_classes = (int)(classes > 1000000 || classes < 0 ? -1 : classes);
    if (broken) {
        elm_shd *d = NULL;
        elm_status st = elm_shd_load(&d, path, &o);
        if (st == ELM_OK) { /* cannot happen: the probe said it is not SHD */
            elm_shd_free(d);
            return cli_error("%s: not an SHD file (no spikes group, no labels)", path);
        }
        return cli_fail(st, NULL);
    }
    cJSON *jout = NULL;
    if (is_dir)
        return describe_folder(path, &o, json);
    return describe(path, &o, json ? &jout : NULL) || (json && print_json(jout));
}
