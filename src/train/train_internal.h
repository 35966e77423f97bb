/*
 * train_internal.h - what the training library's files share; never installed.
 */
#ifndef ELM_TRAIN_INTERNAL_H
#define ELM_TRAIN_INTERNAL_H

#include "train/task.h"

/* "adam", "adamw", "adamax". */
const char *elm__optim_name(elm_optim_kind k);
/* "float32", "float64". */
const char *elm__dtype_word(elm_dtype d);
/* The knobs as a JSON object (config.json's "train"). */
cJSON *elm__train_config_json(const elm_train_config *o);
/* A score in a run's JSON (metrics.json, state.json, test_metrics.json): a number, or null,
 * which is how those files write NaN. metrics.csv and a sweep's results.csv give it a column
 * and write null as `nan`. */
static inline int elm__json_is_score(const cJSON *v) {
    return cJSON_IsNumber(v) || cJSON_IsNull(v);
}

#endif
