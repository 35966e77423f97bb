/*
 * config.c - the model configuration: reference defaults, validation, and JSON / string I/O.
 *
 * Key names are the reference constructor's (docs/MODEL.md section 4). An unknown key is an error,
 * so a misspelt option can never be silently ignored.
 */
#include "internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void elm_config_default(elm_config *c, int num_input, int num_output, int num_memory) {
    memset(c, 0, sizeof *c);
    c->version = ELM_V1;
    c->num_input = num_input;
    c->num_output = num_output;
    c->num_memory = num_memory;
    c->lambda_value = 5.0;
    c->mlp_num_layers = 1;
    c->mlp_hidden_size = 0;
    c->mlp_activation = ELM_ACT_RELU;
    c->tau_s_value = 5.0;
    c->memory_tau_min = 1.0;
    c->memory_tau_max = 1000.0;
    c->learn_memory_tau = 0;
    c->w_s_value = 0.5;
    c->num_branch = 0;
    c->num_synapse_per_branch = 1;
    c->input_to_synapse_routing = ELM_ROUTE_NONE;
    c->delta_t = 1.0;
    c->model_type = ELM_MODEL_ELM;
    c->lstm_hidden_size = 64;
}

int elm_config_num_synapse(const elm_config *c) {
    return c->num_branch * c->num_synapse_per_branch;
}

elm_status elm_config_resolve(elm_config *c) {
    if (c->model_type == ELM_MODEL_LSTM) {
        if (c->num_input < 1 || c->num_output < 1 || c->lstm_hidden_size < 1 ||
            c->lstm_hidden_size > 100000)
            return elm__fail(ELM_ERR_CONFIG, "an LSTM needs num_input, num_output and "
                                             "lstm_hidden_size >= 1");
        return ELM_OK;
    }
    if (c->version != ELM_V1 && c->version != ELM_V2)
        return elm__fail(ELM_ERR_CONFIG, "elm_version must be v1 or v2");
    if (c->num_input < 1 || c->num_output < 1 || c->num_memory < 1)
        return elm__fail(ELM_ERR_CONFIG,
                         "num_input, num_output and num_memory must be >= 1 (got %d, %d, %d)",
                         c->num_input, c->num_output, c->num_memory);
    if (c->num_input > 1000000 || c->num_output > 100000 || c->num_memory > 100000)
        return elm__fail(ELM_ERR_CONFIG, "num_input/num_output/num_memory implausibly large");
    if (c->mlp_num_layers < 0 || c->mlp_num_layers > 28)
        return elm__fail(ELM_ERR_CONFIG, "mlp_num_layers must be in 0..28 (got %d)",
                         c->mlp_num_layers);
    if (c->mlp_hidden_size == 0)
        c->mlp_hidden_size = 2 * c->num_memory;
    if (c->mlp_hidden_size < 1 || c->mlp_hidden_size > 100000)
        return elm__fail(ELM_ERR_CONFIG, "mlp_hidden_size must be >= 1 (got %d)",
                         c->mlp_hidden_size);
    if (c->num_branch == 0)
        c->num_branch = c->num_input;
    if (c->num_branch < 1 || c->num_synapse_per_branch < 1)
        return elm__fail(ELM_ERR_CONFIG, "num_branch and num_synapse_per_branch must be >= 1");
    if ((long long)c->num_branch * c->num_synapse_per_branch > 10000000)
        return elm__fail(ELM_ERR_CONFIG, "num_branch * num_synapse_per_branch is too large");
    int S = c->num_branch * c->num_synapse_per_branch;
    if (c->input_to_synapse_routing == ELM_ROUTE_NONE && S != c->num_input)
        return elm__fail(ELM_ERR_CONFIG,
                         "without routing num_branch * num_synapse_per_branch (%d * %d = %d) must "
                         "equal num_input (%d)",
                         c->num_branch, c->num_synapse_per_branch, S, c->num_input);
    if (c->input_to_synapse_routing == ELM_ROUTE_NEURONIO) {
        int stride = (c->num_input + c->num_branch - 1) / c->num_branch;
        if (stride > c->num_synapse_per_branch)
            return elm__fail(ELM_ERR_CONFIG,
                             "neuronio_routing needs num_synapse_per_branch >= ceil(num_input / "
                             "num_branch) = %d (got %d)",
                             stride, c->num_synapse_per_branch);
    }
    if (!isfinite(c->lambda_value) || !isfinite(c->w_s_value))
        return elm__fail(ELM_ERR_CONFIG, "lambda_value and w_s_value must be finite");
    if (!(c->tau_s_value > 0) || !isfinite(c->tau_s_value))
        return elm__fail(ELM_ERR_CONFIG, "tau_s_value must be > 0 (got %g)", c->tau_s_value);
    if (!(c->delta_t > 0) || !isfinite(c->delta_t))
        return elm__fail(ELM_ERR_CONFIG, "delta_t must be > 0 (got %g)", c->delta_t);
    if (!(c->memory_tau_min >= 0) || !isfinite(c->memory_tau_max))
        return elm__fail(ELM_ERR_CONFIG, "memory_tau_min must be >= 0 and memory_tau_max finite");
    /* v2 lifts tau_max as the reference's constructor does. */
    if (c->version == ELM_V2 && c->memory_tau_max < c->memory_tau_min + 3e-6)
        c->memory_tau_max = c->memory_tau_min + 3e-6;
    if (c->memory_tau_max < c->memory_tau_min)
        return elm__fail(ELM_ERR_CONFIG, "memory_tau_max (%g) is below memory_tau_min (%g)",
                         c->memory_tau_max, c->memory_tau_min);
    return ELM_OK;
}

static elm_status parse_num(const char *key, const char *v, const char *origin, double *out) {
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    /* ERANGE with a finite result is an underflow (a subnormal such as 5e-324, or 1e-400 read
     * as 0, as Python reads it): a legal value, and one elm_config_to_json may write. */
    if (!*v || *end || (errno && errno != ERANGE) || !isfinite(d))
        return elm__fail(ELM_ERR_CONFIG, "%s: option '%s' expects a number, got '%s'", origin, key,
                         v);
    *out = d;
    return ELM_OK;
}

static elm_status parse_int(const char *key, const char *v, const char *origin, int allow_null,
                            int *out) {
    if (allow_null && (!strcmp(v, "null") || !strcmp(v, "None"))) {
        *out = 0;
        return ELM_OK;
    }
    double d = 0;
    elm_status st = parse_num(key, v, origin, &d);
    if (st)
        return st;
    if (d != floor(d) || d < -2147483647.0 || d > 2147483647.0)
        return elm__fail(ELM_ERR_CONFIG, "%s: option '%s' expects an integer, got '%s'", origin,
                         key, v);
    *out = (int)d;
    return ELM_OK;
}

static elm_status parse_bool(const char *key, const char *v, const char *origin, int *out) {
    if (!strcasecmp(v, "true") || !strcmp(v, "1")) {
        *out = 1;
        return ELM_OK;
    }
    if (!strcasecmp(v, "false") || !strcmp(v, "0")) {
        *out = 0;
        return ELM_OK;
    }
    return elm__fail(ELM_ERR_CONFIG, "%s: option '%s' expects true or false, got '%s'", origin,
                     key, v);
}

/* Every key elm_config_set() accepts (tests/core checks each is accepted), for "did you mean". */
static const char *const config_keys[] = {
    "num_input",       "num_output",       "num_memory",       "lambda_value",
    "mlp_num_layers",  "mlp_hidden_size",  "mlp_activation",   "tau_s_value",
    "tau_b_value",     "memory_tau_min",   "memory_tau_max",   "learn_memory_tau",
    "w_s_value",       "num_branch",       "num_synapse_per_branch",
    "input_to_synapse_routing",            "delta_t",          "lstm_hidden_size",
    "model_type",      "elm_version",      "num_synapse",      "num_mlp_input",
};
#define N_CONFIG_KEYS (sizeof config_keys / sizeof config_keys[0])

elm_status elm_config_set(elm_config *c, const char *key, const char *v, const char *origin) {
    if (!origin)
        origin = "config";
    if (!strcmp(key, "num_input"))
        return parse_int(key, v, origin, 0, &c->num_input);
    if (!strcmp(key, "num_output"))
        return parse_int(key, v, origin, 0, &c->num_output);
    if (!strcmp(key, "num_memory"))
        return parse_int(key, v, origin, 0, &c->num_memory);
    if (!strcmp(key, "lambda_value"))
        return parse_num(key, v, origin, &c->lambda_value);
    if (!strcmp(key, "mlp_num_layers"))
        return parse_int(key, v, origin, 0, &c->mlp_num_layers);
    if (!strcmp(key, "mlp_hidden_size"))
        return parse_int(key, v, origin, 1, &c->mlp_hidden_size);
    if (!strcmp(key, "mlp_activation")) {
        if (!strcmp(v, "relu"))
            c->mlp_activation = ELM_ACT_RELU;
        else if (!strcmp(v, "silu"))
            c->mlp_activation = ELM_ACT_SILU;
        else
            return elm__fail(ELM_ERR_CONFIG,
                             "%s: mlp_activation must be \"relu\" or \"silu\", got '%s'", origin,
                             v);
        return ELM_OK;
    }
    if (!strcmp(key, "tau_s_value") || !strcmp(key, "tau_b_value"))
        return parse_num(key, v, origin, &c->tau_s_value);
    if (!strcmp(key, "memory_tau_min"))
        return parse_num(key, v, origin, &c->memory_tau_min);
    if (!strcmp(key, "memory_tau_max"))
        return parse_num(key, v, origin, &c->memory_tau_max);
    if (!strcmp(key, "learn_memory_tau"))
        return parse_bool(key, v, origin, &c->learn_memory_tau);
    if (!strcmp(key, "w_s_value"))
        return parse_num(key, v, origin, &c->w_s_value);
    if (!strcmp(key, "num_branch"))
        return parse_int(key, v, origin, 1, &c->num_branch);
    if (!strcmp(key, "num_synapse_per_branch"))
        return parse_int(key, v, origin, 0, &c->num_synapse_per_branch);
    if (!strcmp(key, "input_to_synapse_routing")) {
        if (!strcmp(v, "null") || !strcmp(v, "None") || !strcmp(v, "none") || !*v)
            c->input_to_synapse_routing = ELM_ROUTE_NONE;
        else if (!strcmp(v, "neuronio_routing"))
            c->input_to_synapse_routing = ELM_ROUTE_NEURONIO;
        else if (!strcmp(v, "random_routing"))
            c->input_to_synapse_routing = ELM_ROUTE_RANDOM;
        else
            return elm__fail(ELM_ERR_CONFIG,
                             "%s: input_to_synapse_routing must be null, \"neuronio_routing\" or "
                             "\"random_routing\", got '%s'",
                             origin, v);
        return ELM_OK;
    }
    if (!strcmp(key, "delta_t"))
        return parse_num(key, v, origin, &c->delta_t);
    if (!strcmp(key, "lstm_hidden_size"))
        return parse_int(key, v, origin, 0, &c->lstm_hidden_size);
    if (!strcmp(key, "model_type")) {
        if (!strcmp(v, "elm"))
            c->model_type = ELM_MODEL_ELM;
        else if (!strcmp(v, "lstm"))
            c->model_type = ELM_MODEL_LSTM;
        else
            return elm__fail(ELM_ERR_CONFIG, "%s: model_type must be \"elm\" or \"lstm\", got '%s'",
                             origin, v);
        return ELM_OK;
    }
    if (!strcmp(key, "elm_version")) {
        if (!strcmp(v, "v1") || !strcmp(v, "1"))
            c->version = ELM_V1;
        else if (!strcmp(v, "v2") || !strcmp(v, "2"))
            c->version = ELM_V2;
        else
            return elm__fail(ELM_ERR_CONFIG, "%s: elm_version must be \"v1\" or \"v2\", got '%s'",
                             origin, v);
        return ELM_OK;
    }
    /* Quantities the reference derives (present in its resolved configs): recomputed by us. */
    if (!strcmp(key, "num_synapse") || !strcmp(key, "num_mlp_input"))
        return ELM_OK;
    return elm__fail(ELM_ERR_CONFIG, "%s: unknown option '%s'%s", origin, key,
                     elm__suggest(key, config_keys, (int)N_CONFIG_KEYS));
}

int elm__config_keys(const char *const **keys) {
    *keys = config_keys;
    return (int)N_CONFIG_KEYS;
}

elm_status elm_config_from_json(elm_config *c, const char *json, const char *origin) {
    if (!origin)
        origin = "config";
    cJSON *root = cJSON_Parse(json);
    if (!root)
        return elm__fail(ELM_ERR_CONFIG, "%s: not valid JSON (near '%.20s')", origin,
                         cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() : "?");
    elm_status st = ELM_OK;
    if (!cJSON_IsObject(root)) {
        st = elm__fail(ELM_ERR_CONFIG, "%s: expected a JSON object of options", origin);
        goto done;
    }
    for (cJSON *it = root->child; it && !st; it = it->next) {
        char buf[64];
        const char *v;
        if (cJSON_IsString(it))
            v = it->valuestring;
        else if (cJSON_IsNumber(it)) {
            snprintf(buf, sizeof buf, "%.17g", it->valuedouble);
            v = buf;
        } else if (cJSON_IsBool(it))
            v = cJSON_IsTrue(it) ? "true" : "false";
        else if (cJSON_IsNull(it))
            v = "null";
        else {
            st = elm__fail(ELM_ERR_CONFIG, "%s: option '%s' must be a number, boolean, string or "
                                           "null",
                           origin, it->string);
            break;
        }
        st = elm_config_set(c, it->string, v, origin);
    }
done:
    cJSON_Delete(root);
    return st;
}

/*
 * Adds a real as the shortest decimal that reads back to the same double. cJSON's own printer
 * tries "%1.15g" and keeps it when it reads back within a relative DBL_EPSILON, so it can drop the
 * last bit (found by fuzzing: memory_tau_min 8198552921648689602 came back 1 ulp off), and a
 * model_config.json must give back exactly the configuration it was written from.
 */
static void add_real(cJSON *o, const char *key, double v) {
    char buf[40];
    if (!isfinite(v)) {
        cJSON_AddNullToObject(o, key); /* JSON has no NaN/Inf; resolve() never lets one through */
        return;
    }
    /* Fewest significant digits that read back exactly, written as Python's repr does: fixed
     * notation for exponents -4..15 ("150.0", not "1.5e+02"), scientific otherwise. Always a
     * JSON real: the reference's TorchScript constructor refuses an int where it wants a float
     * (ELM(**json.load(f)) fails on "memory_tau_max": 150). */
    int p = 1;
    for (; p < 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    snprintf(buf, sizeof buf, "%.*e", p - 1, v);
    int e = atoi(strchr(buf, 'e') + 1);
    if (e >= -4 && e < 16) {
        snprintf(buf, sizeof buf, "%.*f", p - 1 - e > 0 ? p - 1 - e : 0, v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, sizeof buf, "%.17g", v);
    }
    if (!strpbrk(buf, ".e"))
        strncat(buf, ".0", sizeof buf - strlen(buf) - 1);
    cJSON_AddRawToObject(o, key, buf);
}

char *elm_config_to_json(const elm_config *c) {
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    if (c->model_type == ELM_MODEL_LSTM) {
        cJSON_AddStringToObject(o, "model_type", "lstm");
        cJSON_AddNumberToObject(o, "num_input", c->num_input);
        cJSON_AddNumberToObject(o, "num_output", c->num_output);
        cJSON_AddNumberToObject(o, "lstm_hidden_size", c->lstm_hidden_size);
        char *s = cJSON_Print(o);
        cJSON_Delete(o);
        return s;
    }
    cJSON_AddNumberToObject(o, "num_input", c->num_input);
    cJSON_AddNumberToObject(o, "num_output", c->num_output);
    cJSON_AddNumberToObject(o, "num_memory", c->num_memory);
    add_real(o, "lambda_value", c->lambda_value);
    cJSON_AddNumberToObject(o, "mlp_num_layers", c->mlp_num_layers);
    cJSON_AddNumberToObject(o, "mlp_hidden_size", c->mlp_hidden_size);
    cJSON_AddStringToObject(o, "mlp_activation",
                            c->mlp_activation == ELM_ACT_SILU ? "silu" : "relu");
    add_real(o, c->version == ELM_V2 ? "tau_b_value" : "tau_s_value", c->tau_s_value);
    add_real(o, "memory_tau_min", c->memory_tau_min);
    add_real(o, "memory_tau_max", c->memory_tau_max);
    cJSON_AddBoolToObject(o, "learn_memory_tau", c->learn_memory_tau);
    add_real(o, "w_s_value", c->w_s_value);
    cJSON_AddNumberToObject(o, "num_branch", c->num_branch);
    cJSON_AddNumberToObject(o, "num_synapse_per_branch", c->num_synapse_per_branch);
    if (c->input_to_synapse_routing == ELM_ROUTE_NONE)
        cJSON_AddNullToObject(o, "input_to_synapse_routing");
    else
        cJSON_AddStringToObject(o, "input_to_synapse_routing",
                                c->input_to_synapse_routing == ELM_ROUTE_NEURONIO
                                    ? "neuronio_routing"
                                    : "random_routing");
    add_real(o, "delta_t", c->delta_t);
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}
