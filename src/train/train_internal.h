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

#endif
