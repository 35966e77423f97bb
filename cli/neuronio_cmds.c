/*
 * neuronio_cmds.c - `elm data convert neuronio SRC... --out DIR` (pickles -> elm's cache) and
 * `elm data info PATH` for NeuronIO caches and pickles.
 *
 * The dispatcher tries each format in turn: cmd_data_info_neuronio() answers -1 unless PATH is a
 * .nioc file, a folder holding .nioc files, a file named like NeuronIO pickles (*sim__*) or a
 * folder holding such files.
 */
#include "cli.h"
#include "neuronio/nio_data.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Declared in dispatch.c's tables. */
int cmd_data_convert_neuronio(int argc, char **argv);
int cmd_data_info_neuronio(int argc, char **argv);

static const char convert_usage[] =
    "usage: elm data convert neuronio SRC... --out DIR\n\n"
    "Reads NeuronIO pickles (each SRC a pickle file, or a folder whose files matching *sim__*\n"
    "are read) and writes DIR/<name>.nioc per source file plus DIR/index.json: elm's compact,\n"
    "memory-mapped cache (layout in docs/DATA.md). Both the Python 3 files and the released\n"
    "Python 2 files (protocol 0 or 2) are read; the reader never executes pickle code.\n";

static const char info_usage[] =
    "usage: elm data info PATH [--json]\n\n"
    "Describes NeuronIO data: a cache folder or .nioc file (every checksum and index verified)\n"
    "or pickles (a file, or a folder of *sim__* files): simulations, inputs, duration, input and\n"
    "output spike counts, the share of simulations the evaluation keeps (0..24 output spikes),\n"
    "and the soma voltage range.\n";

/* The cache name of a pickle: its file name without a .p / .pkl / .pickle extension. */
static char *cache_name(const char *path) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    char *n = elm__strdup(b);
    if (!n)
        return NULL;
    const char *exts[] = {".p", ".pkl", ".pickle"};
    for (size_t i = 0; i < 3; i++)
        if (elm__ends_with(n, exts[i]) && strlen(n) > strlen(exts[i])) {
            n[strlen(n) - strlen(exts[i])] = 0;
            break;
        }
    return n;
}

static long long file_bytes(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 ? (long long)sb.st_size : -1;
}

/* The SRC arguments of `data convert neuronio`, in order (argc slots). */
typedef struct src_list {
    const char **v;
    int n;
} src_list;

static int add_src(void *ctx, const char *flag, const char *value) {
    src_list *l = ctx;
    l->v[l->n++] = value;
    return 0;
}

/*
 * Every pickle file of the sources, and the name of its cache, in order; checks that no two
 * caches would have one name. Returns how many (*files and *names hold them, the caller frees
 * both, even on failure); *rc is 0, or the exit status after printing why not.
 */
static int find_sources(const char **srcs, int n_src, const char *out, char ***files_out,
                        char ***names_out, int *rc_out) {
    char **files = NULL, **names = NULL;
    int n_files = 0, rc = 0;
    for (int s = 0; s < n_src && rc == 0; s++) {
        char **f = NULL;
        int n = 0;
        elm_status st = elm_nio_find_pickles(srcs[s], &f, &n);
        if (st != ELM_OK) {
            rc = cli_fail(st, "SRC is a NeuronIO pickle or a folder of them (*sim__*)");
            break;
        }
        char **nf = realloc(files, (size_t)(n_files + n) * sizeof *nf);
        char **nn = nf ? realloc(names, (size_t)(n_files + n) * sizeof *nn) : NULL;
        if (nf)
            files = nf;
        if (nn)
            names = nn;
        if (!nf || !nn) {
            elm_nio_free_paths(f, n);
            rc = cli_error("out of memory");
            break;
        }
        for (int i = 0; i < n; i++) {
            files[n_files] = f[i];
            names[n_files] = cache_name(f[i]);
            for (int j = 0; j < n_files && rc == 0; j++)
                if (names[n_files] && !strcmp(names[j], names[n_files]))
                    rc = cli_error("%s and %s would both be written to %s/%s.nioc", files[j],
                                   files[n_files], out, names[n_files]);
            n_files++;
        }
        free(f);
    }
    *files_out = files;
    *names_out = names;
    *rc_out = rc;
    return n_files;
}

int cmd_data_convert_neuronio(int argc, char **argv) {
    const char *out = NULL;
    src_list src = {calloc((size_t)argc + 1, sizeof *src.v), 0};
    if (!src.v)
        return cli_error("out of memory");
    const cli_call add = {add_src, &src};
    const cli_flag flags[] = {
        {"--out", CLI_STR, &out, 0, 0, 0},
        {NULL, CLI_CALL, (void *)&add, 0, 0, 0},
    };
    int prc = cli_parse_flags(argc, argv, 1, flags, (int)(sizeof flags / sizeof flags[0]),
                              convert_usage, "convert neuronio");
    if (prc < 0 && (!out || src.n == 0))
        prc = cli_usage_error(convert_usage, "convert neuronio: needs SRC... and --out DIR");
    if (prc >= 0) {
        free(src.v);
        return prc;
    }
    int rc = 0;
    char **files = NULL, **names = NULL;
    int n_files = find_sources(src.v, src.n, out, &files, &names, &rc);
    free(src.v);
    long total = 0;
    for (int i = 0; i < n_files && rc == 0; i++) {
        elm_nio_sim *sims = NULL;
        int n = 0;
        elm_nio_writer *w = NULL;
        elm_status st = elm_nio_pickle_read(files[i], &sims, &n);
        if (st == ELM_OK)
            st = elm_nio_writer_open(&w, out, names[i]);
        for (int k = 0; k < n && st == ELM_OK; k++)
            st = elm_nio_writer_add(w, &sims[k]);
        if (st == ELM_OK) {
            st = elm_nio_writer_close(w);
        } else {
            elm_nio_writer_abort(w);
        }
        if (st != ELM_OK) {
            rc = cli_fail(st, NULL);
        } else {
            char *p = malloc(strlen(out) + strlen(names[i]) + 8);
            if (p)
                sprintf(p, "%s/%s.nioc", out, names[i]);
            fprintf(stderr, "elm: %s: %d simulations of %d ms -> %s (%lld bytes, from %lld)\n",
                    files[i], n, sims[0].T, p ? p : names[i], p ? file_bytes(p) : -1LL,
                    file_bytes(files[i]));
            free(p);
            total += n;
        }
        elm_nio_sims_free(sims, n);
    }
    if (rc == 0)
        fprintf(stderr, "elm: converted %d file%s, %ld simulation%s, into %s\n", n_files,
                CLI_S(n_files), total, CLI_S(total), out);
    for (int i = 0; i < n_files; i++) {
        free(files[i]);
        free(names[i]);
    }
    free(files);
    free(names);
    return rc;
}

/* ---- info ---------------------------------------------------------------------------------- */

/* 1 if the folder holds a file matching `pattern`. */
static int dir_has(const char *dir, const char *pattern) {
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d)) != NULL)
        found = e->d_name[0] != '.' && fnmatch(pattern, e->d_name, 0) == 0;
    closedir(d);
    return found;
}

/* Verifies every .nioc file of the data set (checksums, row pointers, ids, finite soma). */
static elm_status verify_caches(const elm_nio_data *d, int *n_caches) {
    *n_caches = 0;
    for (int f = 0; f < elm_nio_data_num_files(d); f++) {
        const char *p = elm_nio_data_file_path(d, f);
        if (!elm__ends_with(p, ".nioc"))
            continue;
        elm_nio_cache *c = NULL;
        elm_status st = elm_nio_cache_open(&c, p);
        if (st == ELM_OK)
            st = elm_nio_cache_verify(c);
        elm_nio_cache_close(c);
        if (st != ELM_OK)
            return st;
        (*n_caches)++;
    }
    return ELM_OK;
}

/* What `elm data info` says of NeuronIO data, over all its simulations. */
typedef struct nio_stats {
    int N;                            /* simulations */
    long long in_spikes, out_spikes;  /* output spikes as distinct 1 ms bins */
    int tmin, tmax, omin, omax, kept; /* steps, output spikes per simulation; kept: <= 24 */
    double vmin, vmax;                /* soma, mV */
} nio_stats;

static elm_status nio_scan(const elm_nio_data *d, nio_stats *ns) {
    const int N = elm_nio_data_num_sims(d);
    long long in_spikes = 0, out_spikes = 0;
    int tmin = 0, tmax = 0, omin = 0, omax = 0, kept = 0;
    double vmin = 1e300, vmax = -1e300;
    elm_status st;
    for (int k = 0; k < N; k++) {
        elm_nio_view v;
        if ((st = elm_nio_data_sim(d, k, &v)) != ELM_OK)
            return st;
        in_spikes += v.spike_ptr[v.T];
        /* Output spikes as the evaluation counts them: distinct 1 ms bins. */
        int bins = 0, last = -1;
        for (int i = 0; i < v.n_out_spikes; i++) {
            int bin = elm_nio_spike_bin((double)v.out_spike_times[i]);
            bins += bin != last;
            last = bin;
        }
        out_spikes += bins;
        kept += bins <= 24;
        if (k == 0 || v.T < tmin)
            tmin = v.T;
        if (k == 0 || v.T > tmax)
            tmax = v.T;
        if (k == 0 || bins < omin)
            omin = bins;
        if (k == 0 || bins > omax)
            omax = bins;
        for (int t = 0; t < v.T; t++) {
            double s = (double)elm_nio_view_soma(&v, t);
            vmin = s < vmin ? s : vmin;
            vmax = s > vmax ? s : vmax;
        }
    }
    *ns = (nio_stats){N, in_spikes, out_spikes, tmin, tmax, omin, omax, kept, vmin, vmax};
    return ELM_OK;
}

int cmd_data_info_neuronio(int argc, char **argv) {
    const char *path = NULL;
    int json = 0;
    const cli_one_arg take_path = {&path, info_usage, "data info"};
    const cli_call path_arg = {cli_take_one_arg, (void *)&take_path};
    const cli_flag flags[] = {
        {"--json", CLI_SWITCH, &json, 0, 0, 0},
        {NULL, CLI_CALL, (void *)&path_arg, 0, 0, 0},
    };
    const int nflags = (int)(sizeof flags / sizeof flags[0]);
    /* Judge the flags only once PATH is known to be NeuronIO data (see cmd_data_info_shd). */
    const char *first = cli_first_arg(argc, argv, 1, flags, nflags);
    struct stat sb;
    if (!first || stat(first, &sb) != 0)
        return -1;
    const char *b = strrchr(first, '/');
    b = b ? b + 1 : first;
    int is_cache = 0;
    if (S_ISDIR(sb.st_mode)) {
        is_cache = dir_has(first, "*.nioc");
        if (!is_cache && !dir_has(first, "*sim__*"))
            return -1;
    } else if (elm__ends_with(first, ".nioc")) {
        is_cache = 1;
    } else if (fnmatch("*sim__*", b, 0) != 0) {
        return -1;
    }
    int prc = cli_parse_flags(argc, argv, 1, flags, nflags, info_usage, "data info");
    if (prc >= 0)
        return prc;
    elm_nio_data *d = NULL;
    elm_status st = elm_nio_data_open(&d, &path, 1);
    if (st != ELM_OK)
        return cli_fail(st, NULL);
    int n_caches = 0;
    st = verify_caches(d, &n_caches);
    if (st != ELM_OK) {
        elm_nio_data_free(d);
        return cli_fail(st, "the cache is damaged: convert the pickles again");
    }
    nio_stats ns;
    if ((st = nio_scan(d, &ns)) != ELM_OK) {
        elm_nio_data_free(d);
        return cli_fail(st, NULL);
    }
    const int N = ns.N, tmin = ns.tmin, tmax = ns.tmax, omin = ns.omin, omax = ns.omax;
    const int kept = ns.kept;
    const long long in_spikes = ns.in_spikes, out_spikes = ns.out_spikes;
    const double vmin = ns.vmin, vmax = ns.vmax;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "format", is_cache ? "neuronio-cache" : "neuronio-pickle");
        cJSON_AddStringToObject(o, "path", path);
        cJSON_AddNumberToObject(o, "files", elm_nio_data_num_files(d));
        cJSON_AddNumberToObject(o, "num_simulations", N);
        cJSON_AddNumberToObject(o, "num_inputs", elm_nio_data_n_in(d));
        cJSON_AddNumberToObject(o, "steps_min", tmin);
        cJSON_AddNumberToObject(o, "steps_max", tmax);
        cJSON_AddNumberToObject(o, "input_spikes", (double)in_spikes);
        cJSON_AddNumberToObject(o, "output_spikes", (double)out_spikes);
        cJSON_AddNumberToObject(o, "output_spikes_min", omin);
        cJSON_AddNumberToObject(o, "output_spikes_max", omax);
        cJSON_AddNumberToObject(o, "simulations_kept_by_eval_filter", kept);
        cJSON_AddNumberToObject(o, "soma_min_mV", vmin);
        cJSON_AddNumberToObject(o, "soma_max_mV", vmax);
        cJSON_AddNumberToObject(o, "caches_verified", n_caches);
        char *s = cJSON_Print(o);
        cJSON_Delete(o);
        if (s)
            puts(s);
        free(s);
    } else {
        printf("NeuronIO %s %s\n", is_cache ? "cache" : "pickles", path);
        printf("  files          %d%s\n", elm_nio_data_num_files(d),
               n_caches ? " (every cache checksum verified)" : "");
        printf("  simulations    %d of %d..%d ms, %d inputs\n", N, tmin, tmax,
               elm_nio_data_n_in(d));
        printf("  input spikes   %lld (%.0f per simulation)\n", in_spikes,
               N ? (double)in_spikes / N : 0.0);
        printf("  output spikes  %lld (%d..%d per simulation); %d of %d simulations have 0..24 "
               "(kept by the evaluation)\n",
               out_spikes, omin, omax, kept, N);
        printf("  soma           %.2f .. %.2f mV\n", vmin, vmax);
    }
    elm_nio_data_free(d);
    return 0;
}
