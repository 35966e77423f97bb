/*
 * pf_task.h - the Pathfinder training task's state (src/pathfinder/task.c), shared with its
 * tests, which check the epoch shuffle. Never installed.
 */
#ifndef ELM_PF_TASK_H
#define ELM_PF_TASK_H

#include "pathfinder/pathfinder.h"
#include "train/task.h"

typedef struct {
    elm_pf *data;
    elm_pf *valid; /* the separate validation folder, or NULL */
    elm_pf *test;  /* the separate test folder (all of it is the test split), or NULL */
    long ntrain;
    long *order;      /* (ntrain) the shuffle of epoch order_epoch */
    long order_epoch; /* -1 before the first shuffle */
    long *idx;        /* (batch) scratch */
    int idx_cap;
    long eval_samples;
    int eval_batch;
    int threads;
    int levels; /* pixel encoding: 0 = the normalised pixel, L = one-hot over L grey levels */
} pf_ctx;

#endif
