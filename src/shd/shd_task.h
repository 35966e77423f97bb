/*
 * shd_task.h - the SHD / SHD-Adding training task's state (src/shd/task.c), shared with its
 * tests, which check the fixed splits and evaluation pairs. Never installed.
 */
#ifndef ELM_SHD_TASK_H
#define ELM_SHD_TASK_H

#include "shd/shd.h"
#include "train/task.h"

typedef struct {
    const elm_shd *src; /* file the indices refer to */
    int n;
    int *a; /* (n) sample index, or the first of a pair */
    int *b; /* (n) second of a pair (adding), else NULL */
} shd_set;

typedef struct {
    int adding;
    elm_shd *train, *test, *valid_file;
    int *train_pool; /* indices into train */
    int ntrain;
    shd_set valid, test_set;
    double dropout;
    int test_is_train; /* DATA/shd_test.h5 is the training file: test metrics carry a note */
    long eval_samples;
    int eval_batch;
    elm__spike_lists train_lists; /* of the last training batch */
} shd_ctx;

#endif
