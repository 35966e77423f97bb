/*
 * convert.c - `elm convert MODEL --out FILE`: a model written in another file format, picked by
 * FILE's extension (.safetensors, or .pt in the layout torch.load reads, with model_config.json
 * beside it). The spelling is a contract (issue 14): keep it.
 */
#include "cli.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static const char convert_usage[] =
    "usage: elm convert MODEL --out FILE [--f64]\n\n"
    "Writes MODEL in the format that FILE's extension names:\n"
    "  .safetensors  the reference's tensor names, the configuration in __metadata__\n"
    "  .pt           a PyTorch state dict in the layout torch.load reads, with\n"
    "                model_config.json written beside it (replacing one there); the\n"
    "                reference loads it with ELM(**json.load(open(\"model_config.json\")))\n"
    "                and load_state_dict(torch.load(FILE)), nothing else installed\n\n"
    "MODEL is any form elm reads: a .safetensors or .pt file (model_config.json beside it),\n"
    "or a folder holding model.safetensors, or neuronio_best_model_state.pt (or one other\n"
    ".pt) and model_config.json, as the authors' released models are.\n\n"
    "Values are kept exactly: the tensors are float32 unless a value needs float64 (or --f64\n"
    "asks for float64).\n";

/* 1 when every parameter of a float64 model is exactly a float32. */
static int fits_f32(const elm_model *m) {
    for (int i = 0; i < elm_model_num_tensors(m); i++) {
        elm_tensor t;
        elm_model_tensor(m, i, &t);
        for (size_t k = 0; k < t.numel; k++) {
            double v = ((const double *)t.data)[k];
            if (v == v && (double)(float)v != v)
                return 0;
        }
    }
    return 1;
}

int cmd_convert(int argc, char **argv) {
    const char *model = NULL, *out = NULL;
    int f64 = 0;
    const cli_one_arg take_model = {&model, convert_usage, "convert"};
    const cli_call model_arg = {cli_take_one_arg, (void *)&take_model};
    const cli_flag flags[] = {
        {"--out", CLI_STR, &out, 0, 0, 0},
        {"--f64", CLI_SWITCH, &f64, 0, 0, 0},
        {NULL, CLI_CALL, (void *)&model_arg, 0, 0, 0},
    };
    int prc = cli_parse_flags(argc, argv, 1, flags, (int)(sizeof flags / sizeof flags[0]),
                              convert_usage, "convert");
    if (prc >= 0)
        return prc;
    if (!model)
        return cli_usage_error(convert_usage, "convert: MODEL is required");
    if (!out)
        return cli_usage_error(convert_usage, "convert: --out FILE is required");
    if (!elm__ends_with(out, ".safetensors") && !elm__ends_with(out, ".pt"))
        return cli_usage_error(convert_usage,
                               "convert: --out %s: the name must end in .safetensors or .pt", out);
    /* Loaded as float64, which holds float16, float32 and float64 files exactly. */
    elm_model *m = NULL;
    elm_status st = elm_model_load(&m, model, ELM_F64);
    if (st)
        return cli_fail(st, NULL);
    if (!f64 && fits_f32(m)) {
        elm_model *m32 = NULL;
        st = elm_model_clone(&m32, m, ELM_F32);
        elm_model_free(m);
        if (st)
            return cli_fail(st, NULL);
        m = m32;
    }
    st = elm_model_save(m, out);
    elm_model_free(m);
    if (st)
        return cli_fail(st, NULL);
    return 0;
}
