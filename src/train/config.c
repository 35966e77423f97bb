/*
 * config.c - the training knobs (elm_train_config): each task's defaults, one validating string
 * setter shared by flags, --set and config files, and the knobs as JSON for config.json.
 *
 * A knob is a row of one table (name, kind, place in the struct, accepted range, help), so the
 * setter, the JSON writer, the --help text and the suggestions for a misspelt name all read the
 * same list.
 */
#include "train/train_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum { K_INT, K_DBL, K_OPTIM, K_DTYPE } knob_kind;

typedef struct {
    const char *key;
    knob_kind kind;
    size_t off;
    double lo, hi; /* K_INT, K_DBL: accepted range */
    int open;      /* OPEN_HI: hi excluded; OPEN_LO: lo excluded */
    const char *help;
} knob;

#define BIG 9e15 /* integers travel through doubles in JSON: exact below 2^53 */
#define OPEN_HI 1
#define OPEN_LO 2
static const knob knobs[] = {
#define KNOB(name, k, lo, hi, open, help) {#name, k, offsetof(elm_train_config, name), lo, hi, open, help}
    KNOB(epochs, K_INT, 1, BIG, 0, "passes over batches_per_epoch batches"),
    KNOB(batches_per_epoch, K_INT, 0, BIG, 0, "training batches per epoch (task default)"),
    KNOB(batch_size, K_INT, 1, 1 << 30, 0, "samples per batch"),
    /* Learning rates above 1 make no sense for these optimisers (a step moves each weight by
     * about lr): they only make a run diverge, so they are refused up front. */
    KNOB(lr, K_DBL, 0, 1, 0, "initial learning rate (0: a no-learning baseline)"),
    KNOB(lr_min, K_DBL, 0, 1, 0, "learning rate at the end of the cosine schedule (<= lr)"),
    KNOB(optimizer, K_OPTIM, 0, 0, 0, "adam, adamw or adamax"),
    KNOB(weight_decay, K_DBL, 0, 1, 0,
         "L2 (adam, adamax) or decoupled (adamw) weight decay"),
    KNOB(grad_clip, K_DBL, 0, HUGE_VAL, 0, "clip the gradient norm to this (0 = off)"),
    KNOB(seed, K_INT, 0, BIG, 0, "seed of initialisation, batches and dropout"),
    KNOB(threads, K_INT, 0, 1 << 16, 0, "OpenMP threads (0 = all cores)"),
    KNOB(input_dropout, K_DBL, 0, 1, OPEN_HI, "dropout on inputs during training (SHD)"),
    /* 0 stands for "none" (tasks without bins; their config.json records 0). The SHD task
     * refuses bins under 1 ms: spike times are float16 seconds, 0.5 ms apart near 1 s. */
    KNOB(bin_ms, K_DBL, 0, 1000, 0,
         "SHD: input time bin in ms (10); delta_t follows it unless set apart"),
    KNOB(seq_len, K_INT, 0, 1 << 30, 0, "training window length in steps (task default)"),
    KNOB(eval_samples, K_INT, 0, BIG, 0,
         "evaluation set size where the task draws it (task default)"),
    KNOB(eval_batch, K_INT, 0, 1 << 30, 0, "batch size of evaluation (0: task default)"),
    KNOB(checkpoint_every, K_INT, 1, BIG, 0, "write a checkpoint every this many batches"),
    KNOB(time_limit, K_DBL, 0, HUGE_VAL, 0, "stop (with a checkpoint) after this many seconds"),
    KNOB(ckpt_stride, K_INT, 0, 1 << 30, 0,
         "BPTT memory checkpointing stride in steps (0 = auto)"),
    KNOB(dtype, K_DTYPE, 0, 0, 0, "float32 or float64: the trained model's precision"),
    KNOB(grad_group, K_INT, 0, 8, 0,
         "samples per gradient group, summed exactly: the model is the same for any threads or "
         "MPI ranks (0 = min(8, ceil(batch_size / 2)))"),
    KNOB(fma, K_INT, 0, 1, 0,
         "1: float32 products with fused multiply-adds (elm_model_set_fma): about 1.3x faster "
         "training, as accurate, not bitwise the results of 0 (the default); scores always "
         "come from the exact path"),
    KNOB(pixel_levels, K_INT, 0, 256, 0,
         "Pathfinder: 0 = the pixel as one input; L (2-256) = one-hot over L grey levels, the "
         "paper's LRA encoding (16; Path-X 8)"),
#undef KNOB
};
#define NKNOBS ((int)(sizeof knobs / sizeof knobs[0]))

static const char *const optim_names[] = {"adam", "adamw", "adamax"};
static const char *const dtype_names[] = {"float32", "float64"};

const char *elm__optim_name(elm_optim_kind k) {
    return k >= 0 && k <= ELM_OPT_ADAMAX ? optim_names[k] : "?";
}

const char *elm__dtype_word(elm_dtype d) {
    return d == ELM_F64 ? dtype_names[1] : dtype_names[0];
}

int elm_train_knobs(const char *const **names, const char *const **help) {
    static const char *n[NKNOBS], *h[NKNOBS];
    for (int i = 0; i < NKNOBS; i++) {
        n[i] = knobs[i].key;
        h[i] = knobs[i].help;
    }
    if (names)
        *names = n;
    if (help)
        *help = h;
    return NKNOBS;
}

elm_status elm_train_config_default(elm_train_config *o, elm_config *c, const char *task) {
    memset(o, 0, sizeof *o);
    o->epochs = 35;
    o->batch_size = 8;
    o->lr = 5e-4;
    o->optimizer = ELM_OPT_ADAM;
    o->seed = 1;
    o->eval_batch = 32;
    o->checkpoint_every = 500;
    o->dtype = ELM_F32;
    elm_config_default(c, 1, 1, 15);
    if (!task)
        return elm__fail(ELM_ERR_ARG, "no task name");
    if (!strcmp(task, "neuronio")) {
        /* The authors' NeuronIO Branch-ELM: 45 branches x 100 synapses, tau_m up to 150 ms. */
        c->num_branch = 45;
        c->num_synapse_per_branch = 100;
        c->input_to_synapse_routing = ELM_ROUTE_NEURONIO;
        c->memory_tau_max = 150;
    } else if (!strcmp(task, "shd") || !strcmp(task, "shd-adding")) {
        o->epochs = 10;
        o->lr = 5e-3;
        o->optimizer = ELM_OPT_ADAMAX;
        o->input_dropout = 0.5;
        o->bin_ms = 10;
        c->num_memory = 100;
        c->memory_tau_max = 500;
        c->delta_t = 10; /* 10 ms bins (docs/TASKS.md section 2) */
    } else if (!strcmp(task, "pathfinder")) {
        o->epochs = 20;
        o->lr = 1e-3;
        o->batch_size = 16;
        c->num_memory = 100;
        c->memory_tau_max = 1000;
    } else {
        const char *const *names;
        int n = elm_task_names(&names);
        return elm__fail(ELM_ERR_ARG, "unknown task '%s'%s (neuronio, shd, shd-adding, "
                                      "pathfinder)",
                         task, elm__suggest(task, names, n));
    }
    return ELM_OK;
}

/* A choice among names; its index into *out. */
static elm_status set_choice(int *out, const char *const *names, int n, const char *key,
                             const char *v, const char *origin) {
    for (int i = 0; i < n; i++)
        if (!strcmp(v, names[i])) {
            *out = i;
            return ELM_OK;
        }
    return elm__fail(ELM_ERR_CONFIG, "%s: '%s' must be one of %s, %s%s%s, got '%s'%s", origin,
                     key, names[0], names[1], n > 2 ? " or " : "", n > 2 ? names[2] : "", v,
                     elm__suggest(v, names, n));
}

static elm_status knob_value(elm_train_config *o, const knob *k, const char *v,
                             const char *origin) {
    char *p = (char *)o + k->off;
    if (k->kind == K_OPTIM) {
        int i = 0;
        elm_status st = set_choice(&i, optim_names, 3, k->key, v, origin);
        if (!st)
            *(elm_optim_kind *)p = (elm_optim_kind)i;
        return st;
    }
    if (k->kind == K_DTYPE) {
        int i = 0;
        elm_status st = set_choice(&i, dtype_names, 2, k->key, v, origin);
        if (!st)
            *(elm_dtype *)p = i ? ELM_F64 : ELM_F32;
        return st;
    }
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (k->kind == K_INT && (!*v || *end || errno || d != floor(d) || fabs(d) > BIG))
        return elm__fail(ELM_ERR_CONFIG, "%s: '%s' expects an integer, got '%s'", origin, k->key,
                         v);
    if (k->kind == K_DBL && (!*v || *end || errno || !isfinite(d)))
        return elm__fail(ELM_ERR_CONFIG, "%s: '%s' expects a number, got '%s'", origin, k->key, v);
    if (d < k->lo || d > k->hi || (k->open & OPEN_HI && d >= k->hi) ||
        (k->open & OPEN_LO && d <= k->lo)) {
        if (k->hi == HUGE_VAL || k->hi == BIG)
            return elm__fail(ELM_ERR_CONFIG, "%s: '%s' must be %s %g, got '%s'", origin, k->key,
                             k->open & OPEN_LO ? "above" : "at least", k->lo, v);
        return elm__fail(ELM_ERR_CONFIG, "%s: '%s' must be in %s%g, %g%s, got '%s'", origin,
                         k->key, k->open & OPEN_LO ? "(" : "[", k->lo, k->hi,
                         k->open & OPEN_HI ? ")" : "]", v);
    }
    if (k->kind == K_INT)
        *(long *)p = (long)d;
    else
        *(double *)p = d;
    return ELM_OK;
}

/* The knob `key`, or NULL. */
static const knob *find_knob(const char *key) {
    for (int i = 0; i < NKNOBS; i++)
        if (!strcmp(knobs[i].key, key))
            return &knobs[i];
    return NULL;
}

elm_status elm_train_config_set(elm_train_config *o, elm_config *c, const char *key,
                                const char *v, const char *origin) {
    if (!key || !v)
        return elm__fail(ELM_ERR_ARG, "elm_train_config_set: no key or value");
    if (!origin)
        origin = "config";
    const knob *k = o ? find_knob(key) : NULL;
    if (k) {
        const double old_bin = o->bin_ms;
        elm_status st = knob_value(o, k, v, origin);
        if (!st && !strcmp(key, "bin_ms") && o->bin_ms > 0 && o->bin_ms < 1) {
            o->bin_ms = old_bin;
            return elm__fail(ELM_ERR_CONFIG,
                             "%s: 'bin_ms' must be 0 (no bins) or in [1, 1000] ms (spike times "
                             "are float16 seconds, 0.5 ms apart near 1 s), got '%s'",
                             origin, v);
        }
        /* A model step is one bin: delta_t (ms per step) follows the bin width unless it was
         * set to something else, whichever order the two are given in. */
        if (!st && c && !strcmp(key, "bin_ms") && old_bin > 0 && c->delta_t == old_bin &&
            o->bin_ms > 0)
            c->delta_t = o->bin_ms;
        return st;
    }
    if (c) {
        elm_status st = elm_config_set(c, key, v, origin);
        if (st != ELM_ERR_CONFIG || !strstr(elm_last_error(), "unknown option"))
            return st;
    }
    /* The suggestion looks at knobs and model options together. */
    const char *names[NKNOBS + 64];
    int n = 0;
    for (int i = 0; o && i < NKNOBS; i++)
        names[n++] = knobs[i].key;
    const char *const *mk;
    const int nm = c ? elm__config_keys(&mk) : 0;
    for (int i = 0; i < nm && i < 64; i++)
        names[n++] = mk[i];
    if (o && c)
        return elm__fail(ELM_ERR_CONFIG,
                         "%s: unknown option '%s'%s (neither a training knob nor a model "
                         "option)",
                         origin, key, elm__suggest(key, names, n));
    return elm__fail(ELM_ERR_CONFIG, "%s: unknown option '%s'%s", origin, key,
                     elm__suggest(key, names, n));
}

/* One JSON value of a config file as the string the setter takes. */
static elm_status json_value_str(const cJSON *it, char *buf, size_t n, const char **v,
                                 const char *path) {
    *v = buf;
    if (cJSON_IsString(it))
        *v = it->valuestring;
    else if (cJSON_IsNumber(it))
        snprintf(buf, n, "%.17g", it->valuedouble);
    else if (cJSON_IsBool(it))
        *v = cJSON_IsTrue(it) ? "true" : "false";
    else if (cJSON_IsNull(it))
        *v = "null";
    else
        return elm__fail(ELM_ERR_CONFIG, "%s: option '%s' has an unsupported value", path,
                         it->string);
    return ELM_OK;
}

elm_status elm_train_config_load(elm_train_config *o, elm_config *c, const char *path) {
    cJSON *root = NULL;
    elm_status st = elm__json_read(path, 1 << 20, &root);
    if (st)
        return st;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return elm__fail(ELM_ERR_CONFIG, "%s: not a JSON object", path);
    }
    /* The top level, then its "model" and "train" sections. JSON allows a key twice; a second
     * section is refused (D1, issue 15: it once overflowed this array), so none is lost. */
    cJSON *stack[3] = {root, NULL, NULL};
    int ns = 1;
    for (int s = 0; s < ns && !st; s++)
        for (cJSON *it = stack[s]->child; it && !st; it = it->next) {
            if (s == 0 && cJSON_IsObject(it) &&
                (!strcmp(it->string, "model") || !strcmp(it->string, "train"))) {
                for (int j = 1; j < ns; j++)
                    if (!strcmp(stack[j]->string, it->string))
                        st = elm__fail(ELM_ERR_CONFIG, "%s: the section '%s' appears twice",
                                       path, it->string);
                if (!st)
                    stack[ns++] = it;
                continue;
            }
            /* Keys the run folder's config.json records but that are not knobs. */
            if (s == 0 && (!strcmp(it->string, "task") || !strcmp(it->string, "data") ||
                           !strcmp(it->string, "valid") || !strcmp(it->string, "test") ||
                           !strcmp(it->string, "elm")))
                continue;
            char buf[64];
            const char *v;
            st = json_value_str(it, buf, sizeof buf, &v, path);
            if (!st)
                st = elm_train_config_set(o, c, it->string, v, path);
        }
    cJSON_Delete(root);
    return st;
}

cJSON *elm__train_config_json(const elm_train_config *o) {
    cJSON *j = cJSON_CreateObject();
    for (int i = 0; i < NKNOBS; i++) {
        const char *p = (const char *)o + knobs[i].off;
        if (knobs[i].kind == K_INT)
            cJSON_AddNumberToObject(j, knobs[i].key, (double)*(const long *)p);
        else if (knobs[i].kind == K_DBL)
            cJSON_AddNumberToObject(j, knobs[i].key, *(const double *)p);
        else if (knobs[i].kind == K_OPTIM)
            cJSON_AddStringToObject(j, knobs[i].key, elm__optim_name(*(const elm_optim_kind *)p));
        else
            cJSON_AddStringToObject(j, knobs[i].key, elm__dtype_word(*(const elm_dtype *)p));
    }
    return j;
}

elm_status elm_train_spec_default(elm_train_spec *s, const char *task) {
    memset(s, 0, sizeof *s);
    s->task = task;
    return elm_train_config_default(&s->train, &s->model, task);
}
