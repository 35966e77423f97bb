/*
 * test_suggest.c - "did you mean" suggestions (elm__suggest) and the list of configuration keys
 * they draw on (elm__config_keys), issue 16 item 10.
 */
#include "elm.h"
#include "internal.h"
#include "test.h"

static void expect(const char *typed, const char *const *names, int n, const char *want) {
    const char *got = elm__suggest(typed, names, n);
    char full[160] = "";
    if (want)
        snprintf(full, sizeof full, " (did you mean '%s'?)", want);
    CHECK(!strcmp(got, full), "'%s': got \"%s\", want \"%s\"", typed, got, full);
}

int main(void) {
    const char *const *keys;
    const int nk = elm__config_keys(&keys);
    CHECK(nk >= 20, "only %d configuration keys", nk);

    /* Every listed key is one elm_config_set knows (a bad value is reported, not the key). */
    for (int k = 0; k < nk; k++) {
        elm_config c;
        elm_config_default(&c, 4, 2, 3);
        elm_status st = elm_config_set(&c, keys[k], "not-a-value", "test");
        CHECK(st == ELM_OK || !strstr(elm_last_error(), "unknown option"), "key '%s' unknown: %s",
              keys[k], elm_last_error());
    }
    /* An unknown key is named with its suggestion. */
    elm_config c;
    elm_config_default(&c, 4, 2, 3);
    CHECK(elm_config_set(&c, "num_memroy", "3", "--set") == ELM_ERR_CONFIG, "num_memroy accepted");
    CHECK(!strcmp(elm_last_error(), "--set: unknown option 'num_memroy' (did you mean "
                                    "'num_memory'?)"),
          "message: %s", elm_last_error());
    CHECK(elm_config_set(&c, "zzz", "3", "--set") == ELM_ERR_CONFIG, "zzz accepted");
    CHECK(!strcmp(elm_last_error(), "--set: unknown option 'zzz'"), "message: %s",
          elm_last_error());

    /* Typos: substitution, deletion, insertion, swap of neighbours, abbreviation. */
    expect("memory_tau_mx", keys, nk, "memory_tau_max");
    expect("num_branh", keys, nk, "num_branch");
    expect("delta_tt", keys, nk, "delta_t");
    expect("lambda_vlaue", keys, nk, "lambda_value");
    expect("input_to_syn", keys, nk, "input_to_synapse_routing");
    /* Far from everything, or equally near two names: no suggestion. */
    expect("batch_size", keys, nk, NULL);
    expect("memory_tau_mi", keys, nk, "memory_tau_min");
    expect("memory_tau_m", keys, nk, NULL); /* _min and _max: a tie */
    static const char *const flags[] = {"--out", "--lr", "--data", "--valid", "--epochs"};
    expect("--epoch", flags, 5, "--epochs");
    expect("--lx", flags, 5, "--lr");
    expect("--x", flags, 5, NULL);
    expect("--dta", flags, 5, "--data");
    expect("", flags, 5, NULL);
    return test_end();
}
