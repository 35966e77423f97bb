/*
 * sweep.h - grids of training runs and their result tables (src/train/sweep.c), shared by the
 * `elm sweep` command and any other front end. Never installed.
 */
#ifndef ELM_TRAIN_SWEEP_H
#define ELM_TRAIN_SWEEP_H

#include "elm_train.h"
#include "internal.h"

#include <cjson/cJSON.h>

#define ELM__SWEEP_MAX_POINTS 4096
#define ELM__SWEEP_MAX_KEYS   32

/* Where a point stands. */
enum {
    ELM__PT_TODO,    /* never started */
    ELM__PT_RESUME,  /* has a checkpoint */
    ELM__PT_RUNNING,
    ELM__PT_DONE,    /* has test_metrics.json */
    ELM__PT_FAILED,
    ELM__PT_SKIPPED, /* refused: its point.json differs from the grid */
    ELM__PT_STOPPED, /* stopped with a checkpoint */
};
/* "pending", "pending", "running", "done", "failed", "refused", "stopped". */
extern const char *const elm__sweep_state_names[];

typedef struct {
    char name[200];     /* unique, safe as a folder name */
    cJSON *cfg;         /* flat object: base merged with the point's values */
    const char *factor; /* factors mode: the key this point varies ("" for the base point) */
    char *dir;          /* OUT/runs/<name>, set by elm__sweep_scan */
    int state;          /* ELM__PT_* */
    long job;           /* for the front end (a process id) */
    double t0;
    int exit_code;
} elm__sweep_point;

typedef struct {
    const char *mode; /* "vary", "factors" or "points" */
    char keys[ELM__SWEEP_MAX_KEYS][64];
    int nkeys;
    elm__sweep_point *p;
    int np;
    const char *metric; /* the grid's "metric", or NULL (borrowed from the JSON) */
} elm__sweep_grid;

/* Parses a grid (root: the parsed file, which must outlive g; path names it in messages). */
elm_status elm__sweep_grid_load(elm__sweep_grid *g, const cJSON *root, const char *path);
void elm__sweep_grid_free(elm__sweep_grid *g);
/*
 * Sets each point's folder (OUT/runs/<name>) and state from what is there: done, to resume, to
 * run, or refused (its point.json differs from the grid). Counts into the three outputs.
 */
elm_status elm__sweep_scan(elm__sweep_grid *g, const char *out, int *finished, int *todo,
                           int *refused);
/*
 * A point's effective arguments, as OUT/runs/<point>/sweep_args.json records them: the task, its
 * data (data, valid, test, init as given), the resolved training knobs ("train") and model
 * options ("model"), and the pass-through command line as given ("args", for reading only).
 * Knobs that cannot change the trained model are left out: threads, time_limit,
 * checkpoint_every and ckpt_stride.
 */
cJSON *elm__sweep_args_json(const elm_train_spec *s, char *const *args, int nargs);
/*
 * How two records of elm__sweep_args_json differ: each differing entry as "NAME OLD (now NEW)",
 * "; "-separated, into buf; returns how many differ ("args" and the left-out knobs are not
 * compared).
 */
int elm__sweep_args_diff(const cJSON *old, const cJSON *now, char *buf, size_t n);
/* Adds `secs` to the point's sweep_wall.json. */
elm_status elm__sweep_wall_add(const char *dir, double secs);
/* Writes OUT/results.json and OUT/results.csv from the run folders; *rows gets their count. */
elm_status elm__sweep_write_results(const elm__sweep_grid *g, const char *out, const char *task,
                                    const char *metric, int *rows);

#endif
