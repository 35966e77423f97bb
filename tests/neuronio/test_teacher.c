/*
 * test_teacher.c - the built-in teacher neuron: determinism, physiology sanity, the NMDA block,
 * and output statistics under the default NeuronIO-style inputs.
 */
#include "neuronio/teacher.h"
#include "test.h"

#include <math.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

/* Mean soma voltage of a sample from step `from` on. */
static double mean_soma(const elm_nio_sim *s, int from) {
    double m = 0;
    for (int t = from; t < s->T; t++)
        m += (double)s->soma[t];
    return m / (s->T - from);
}

static int all_finite(const elm_nio_sim *s) {
    for (int t = 0; t < s->T; t++)
        if (!isfinite(s->soma[t]))
            return 0;
    for (int k = 0; k < s->n_out_spikes; k++)
        if (!isfinite(s->out_spike_times[k]))
            return 0;
    return 1;
}

static void test_nmda_block(void) {
    /* 1 / (1 + [Mg]/3.57 exp(-0.062 V)), values by hand: at 0 mV and 1 mM, 1 / (1 + 1/3.57). */
    double b0 = elm_teacher_nmda_block(0.0, 1.0);
    CHECK(fabs(b0 - 1.0 / (1.0 + 1.0 / 3.57)) < 1e-15, "block(0 mV) = %.17g", b0);
    /* At -70 mV: exp(4.34) = 76.7075..., so 1 / (1 + 21.4867...) = 0.044471... */
    double b70 = elm_teacher_nmda_block(-70.0, 1.0);
    double want = 1.0 / (1.0 + exp(0.062 * 70.0) / 3.57);
    CHECK(fabs(b70 - want) < 1e-15 && fabs(b70 - 0.04447) < 1e-4, "block(-70 mV) = %.6f", b70);
    CHECK(elm_teacher_nmda_block(-70.0, 0.0) == 1.0, "no magnesium, no block");
    /* Monotone in voltage, towards 1 when depolarised. */
    double prev = 0;
    for (int v = -100; v <= 40; v += 5) {
        double b = elm_teacher_nmda_block(v, 1.0);
        CHECK(b > prev && b < 1.0, "block not increasing at %d mV", v);
        prev = b;
    }
    CHECK(elm_teacher_nmda_block(40.0, 1.0) > 0.9, "block at +40 mV");
}

static void test_segments(void) {
    int counts[ELM_TEACHER_NUM_COMP] = {0};
    for (int s = 0; s < ELM_TEACHER_NUM_SEGMENTS; s++) {
        int c = elm_teacher_segment_compartment(s);
        CHECK(c >= 1 && c < ELM_TEACHER_NUM_COMP, "segment %d on compartment %d", s, c);
        if (c >= 1 && c < ELM_TEACHER_NUM_COMP)
            counts[c]++;
        /* Basal segments on basal compartments (1..6), apical ones on 7..10. */
        CHECK((s < ELM_TEACHER_NUM_BASAL) == (c <= 6), "segment %d on compartment %d", s, c);
    }
    for (int c = 1; c < ELM_TEACHER_NUM_COMP; c++)
        CHECK(counts[c] > 0, "compartment %d has no synapses", c);
    CHECK(elm_teacher_segment_compartment(-1) == -1 && elm_teacher_segment_compartment(639) == -1,
          "out-of-range segments");
}

static void test_determinism(void) {
    elm_teacher_params p;
    elm_teacher_input_params ip;
    elm_teacher_params_default(&p);
    elm_teacher_input_params_default(&ip);
    elm_nio_sim a, b, c;
    CHECK_OK(elm_teacher_run(&a, &p, &ip, 2000, 7));
    CHECK_OK(elm_teacher_run(&b, &p, &ip, 2000, 7));
    CHECK_OK(elm_teacher_run(&c, &p, &ip, 2000, 8));
    if (!a.soma || !b.soma || !c.soma)
        return;
    CHECK(a.T == 2000 && a.n_in == ELM_TEACHER_NUM_INPUTS, "shape %d x %d", a.T, a.n_in);
    CHECK(!memcmp(a.spike_ptr, b.spike_ptr, sizeof(int64_t) * 2001) &&
              !memcmp(a.spike_idx, b.spike_idx, sizeof(uint16_t) * (size_t)a.spike_ptr[2000]),
          "same seed, different inputs");
    CHECK(!memcmp(a.soma, b.soma, sizeof(float) * 2000), "same seed, different soma");
    CHECK(a.n_out_spikes == b.n_out_spikes &&
              !memcmp(a.out_spike_times, b.out_spike_times, sizeof(float) * a.n_out_spikes),
          "same seed, different spikes");
    CHECK(a.spike_ptr[2000] != c.spike_ptr[2000] ||
              memcmp(a.spike_idx, c.spike_idx, sizeof(uint16_t) * (size_t)a.spike_ptr[2000]),
          "different seeds, same inputs");
    CHECK(memcmp(a.soma, c.soma, sizeof(float) * 2000), "different seeds, same soma");
    /* CSR invariants: pointers non-decreasing, ids ascending within a step and < 1278. */
    int ok = 1;
    for (int t = 0; t < a.T; t++) {
        ok &= a.spike_ptr[t + 1] >= a.spike_ptr[t];
        for (int64_t q = a.spike_ptr[t]; q < a.spike_ptr[t + 1]; q++) {
            ok &= a.spike_idx[q] < ELM_TEACHER_NUM_INPUTS;
            if (q > a.spike_ptr[t])
                ok &= a.spike_idx[q] > a.spike_idx[q - 1];
        }
    }
    CHECK(ok && a.spike_ptr[0] == 0, "CSR layout broken");
    elm_nio_sim_clear(&a);
    elm_nio_sim_clear(&b);
    elm_nio_sim_clear(&c);
}

static void test_rest(void) {
    elm_teacher_params p;
    elm_teacher_params_default(&p);
    elm_nio_sim s;
    memset(&s, 0, sizeof s);
    CHECK_OK(elm_teacher_inputs_constant(&s, 1000, 0.0, 0.0, 1));
    if (!s.spike_ptr)
        return;
    CHECK(s.spike_ptr[1000] == 0, "zero rates gave %lld input spikes",
          (long long)s.spike_ptr[1000]);
    CHECK_OK(elm_teacher_simulate(&s, &p));
    if (!s.soma)
        return;
    /* Without input only the leak and the small resting potassium currents act (the soma settles
     * at -78.18 mV, E_leak -78), so it sits within 1 mV of the leak reversal. */
    double v_end = (double)s.soma[999];
    CHECK(fabs(v_end - p.e_leak) < 1.0, "rest %.3f mV, leak reversal %.1f mV", v_end, p.e_leak);
    CHECK(s.n_out_spikes == 0, "spikes without input: %d", s.n_out_spikes);
    /* And it stays there: the trace is flat over the last half. */
    CHECK(fabs((double)s.soma[500] - v_end) < 0.05, "not at rest: %.3f vs %.3f",
          (double)s.soma[500], v_end);
    elm_nio_sim_clear(&s);
}

/* Output spikes over T ms with homogeneous Poisson inputs at ex_hz / inh_hz per synapse. */
static int spikes_const(const elm_teacher_params *p, double ex_hz, double inh_hz, double *vmax) {
    elm_nio_sim s;
    memset(&s, 0, sizeof s);
    int n = -1;
    if (elm_teacher_inputs_constant(&s, 3000, ex_hz, inh_hz, 11) == ELM_OK &&
        elm_teacher_simulate(&s, p) == ELM_OK) {
        n = s.n_out_spikes;
        *vmax = -1e9;
        for (int t = 0; t < s.T; t++)
            *vmax = fmax(*vmax, (double)s.soma[t]);
        CHECK(all_finite(&s), "NaN in a constant-input run");
    }
    elm_nio_sim_clear(&s);
    return n;
}

static void test_drive(void) {
    elm_teacher_params p;
    elm_teacher_params_default(&p);
    double vmax = 0;
    /* 20 Hz on every excitatory synapse (12.8 input spikes per ms) with no inhibition must make
     * the cell fire, with spikes that overshoot (NeuronIO's peak at +14..+30 mV). */
    int n_ex = spikes_const(&p, 20.0, 0.0, &vmax);
    CHECK(n_ex >= 10, "excitation alone gave %d spikes in 3 s", n_ex);
    CHECK(vmax > 10.0 && vmax < 50.0, "spike peak %.1f mV (1 ms samples)", vmax);
    /* The same excitation with inhibition at 20 Hz on every inhibitory synapse: fewer spikes.
     * The inputs of both runs come from one seed, so the excitatory trains are identical. */
    int n_both = spikes_const(&p, 20.0, 20.0, &vmax);
    CHECK(n_both >= 0 && n_both < n_ex, "inhibition did not reduce the rate: %d vs %d", n_both,
          n_ex);
    /* NMDA matters: without it the same drive gives fewer spikes. */
    elm_teacher_params q = p;
    q.g_nmda_nS = 0;
    int n_no_nmda = spikes_const(&q, 20.0, 0.0, &vmax);
    CHECK(n_no_nmda >= 0 && n_no_nmda < n_ex, "NMDA off: %d spikes vs %d", n_no_nmda, n_ex);
}

static void test_statistics(void) {
    elm_teacher_params p;
    elm_teacher_input_params ip;
    elm_teacher_params_default(&p);
    elm_teacher_input_params_default(&ip);
    /*
     * 16 default samples of 6 s (about 0.6 s of CPU). Over 256 seeds the defaults give 1.04 Hz
     * output, a mean soma of -66.3 mV and 95 % of samples with 0..24 spikes (docs/TEACHER.md);
     * NeuronIO's dev file: 1.17 Hz, -67.2 mV, 87.5 %. The bounds below are wide enough for 16
     * samples yet fail if the cell goes silent, bursts wildly or sits depolarised.
     */
    int n = 16, total = 0, kept = 0, nonzero = 0, finite = 1;
    double vsum = 0, in_rate = 0;
    for (int k = 0; k < n; k++) {
        elm_nio_sim s;
        CHECK_OK(elm_teacher_run(&s, &p, &ip, 6000, 1000 + (uint64_t)k));
        if (!s.soma)
            return;
        finite &= all_finite(&s);
        total += s.n_out_spikes;
        kept += s.n_out_spikes <= 24;
        nonzero += s.n_out_spikes > 0;
        vsum += mean_soma(&s, 500);
        in_rate += (double)s.spike_ptr[s.T] / s.T;
        for (int j = 1; j < s.n_out_spikes; j++)
            CHECK(s.out_spike_times[j] > s.out_spike_times[j - 1], "spike times not ascending");
        if (s.n_out_spikes)
            /* A spike is stamped at the end of its substep, so 6000 ms itself is possible. */
            CHECK(s.out_spike_times[0] > 0 && s.out_spike_times[s.n_out_spikes - 1] <= 6000,
                  "spike times outside the simulation");
        elm_nio_sim_clear(&s);
    }
    double rate = total / (6.0 * n), vmean = vsum / n;
    in_rate /= n;
    printf("teacher: %d samples, %.3f Hz, mean soma %.2f mV, %d/%d with 0..24 spikes, %.2f input "
           "spikes per ms\n",
           n, rate, vmean, kept, n, in_rate);
    CHECK(finite, "non-finite soma or spike time");
    CHECK(rate > 0.2 && rate < 4.0, "output rate %.3f Hz", rate);
    CHECK(kept >= n / 2, "only %d/%d samples with 0..24 spikes", kept, n);
    CHECK(nonzero >= 3, "only %d/%d samples spiked", nonzero, n);
    CHECK(vmean > -72.0 && vmean < -62.0, "mean soma %.2f mV", vmean);
    /* NeuronIO's dev file has 12.9..15.7 input spikes per ms; the recipe's expectation is 14. */
    CHECK(in_rate > 11.0 && in_rate < 17.0, "input rate %.2f per ms", in_rate);
}

static void test_errors(void) {
    elm_teacher_params p;
    elm_teacher_params_default(&p);
    elm_nio_sim s;
    memset(&s, 0, sizeof s);
    CHECK(elm_teacher_inputs_constant(&s, 0, 1, 1, 1) == ELM_ERR_ARG, "T = 0 accepted");
    CHECK(elm_teacher_inputs_constant(&s, 10, NAN, 1, 1) == ELM_ERR_ARG, "NaN rate accepted");
    CHECK_OK(elm_teacher_inputs_constant(&s, 10, 1, 1, 1));
    elm_teacher_params q = p;
    q.dt_ms = 0.3;
    CHECK(elm_teacher_simulate(&s, &q) == ELM_ERR_ARG, "dt 0.3 ms accepted");
    q = p;
    q.tau_nmda_rise = 100;
    CHECK(elm_teacher_simulate(&s, &q) == ELM_ERR_ARG, "rise > decay accepted");
    q = p;
    q.c_soma_pF = NAN;
    CHECK(elm_teacher_simulate(&s, &q) == ELM_ERR_ARG, "NaN capacitance accepted");
    s.n_in = 5;
    CHECK(elm_teacher_simulate(&s, &p) == ELM_ERR_ARG, "wrong input count accepted");
    s.n_in = ELM_TEACHER_NUM_INPUTS;
    if (s.spike_ptr[10] > 0) {
        s.spike_idx[0] = 5000;
        CHECK(elm_teacher_simulate(&s, &p) == ELM_ERR_ARG, "input id 5000 accepted");
    }
    elm_nio_sim_clear(&s);
}

static void test_convergence(void) {
    elm_teacher_params p, q;
    elm_teacher_params_default(&p);
    q = p;
    q.dt_ms = 0.025;
    elm_nio_sim a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    /* Subthreshold drive (5 Hz excitation, 5 Hz inhibition): no spikes, so the traces can be
     * compared point by point. Backward Euler is first order: at 0.125 ms the error against
     * 0.025 ms stays well below 0.5 mV (measured 0.11 mV). */
    CHECK_OK(elm_teacher_inputs_constant(&a, 1000, 5.0, 5.0, 3));
    CHECK_OK(elm_teacher_inputs_constant(&b, 1000, 5.0, 5.0, 3));
    CHECK_OK(elm_teacher_simulate(&a, &p));
    CHECK_OK(elm_teacher_simulate(&b, &q));
    if (a.soma && b.soma) {
        double worst = 0;
        for (int t = 0; t < 1000; t++)
            worst = fmax(worst, fabs((double)a.soma[t] - (double)b.soma[t]));
        CHECK(a.n_out_spikes == 0 && b.n_out_spikes == 0, "spikes in the subthreshold run");
        CHECK(worst < 0.5, "dt 0.125 vs 0.025 ms: %.3f mV apart", worst);
        printf("teacher: dt 0.125 vs 0.025 ms, subthreshold, max |dV| %.4f mV\n", worst);
    }
    elm_nio_sim_clear(&a);
    elm_nio_sim_clear(&b);
}

/* Bitwise equality of a cached simulation with one in memory. */
static int same_sim(const elm_nio_view *v, const elm_nio_sim *s) {
    if (v->T != s->T || v->n_in != s->n_in || v->n_out_spikes != s->n_out_spikes)
        return 0;
    int64_t nnz = s->spike_ptr[s->T];
    if (memcmp(v->spike_ptr, s->spike_ptr, sizeof(int64_t) * ((size_t)s->T + 1)) ||
        memcmp(v->spike_idx, s->spike_idx, sizeof(uint16_t) * (size_t)nnz) ||
        memcmp(v->out_spike_times, s->out_spike_times, sizeof(float) * s->n_out_spikes))
        return 0;
    for (int t = 0; t < s->T; t++)
        if (elm_nio_view_soma(v, t) != s->soma[t])
            return 0;
    return 1;
}

/*
 * The cache written through elm_nio_writer holds exactly the simulations of
 * elm_teacher_run(seed = elm_teacher_sim_seed(S, k)), and `elm gen neuronio-teacher` writes the
 * same bytes whatever the thread count.
 */
static void test_cache_and_cli(void) {
    char dir[] = "/tmp/elm-test-teacher-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp failed");
        return;
    }
    elm_teacher_params p;
    elm_teacher_input_params ip;
    elm_teacher_params_default(&p);
    elm_teacher_input_params_default(&ip);
    elm_nio_sim sims[2];
    memset(sims, 0, sizeof sims);
    elm_nio_writer *w = NULL;
    CHECK_OK(elm_nio_writer_open(&w, dir, "lib"));
    for (int k = 0; k < 2; k++) {
        CHECK_OK(elm_teacher_run(&sims[k], &p, &ip, 1500, elm_teacher_sim_seed(5, (uint64_t)k)));
        if (w && sims[k].soma)
            CHECK_OK(elm_nio_writer_add(w, &sims[k]));
    }
    if (w)
        CHECK_OK(elm_nio_writer_close(w));
    char path[512];
    snprintf(path, sizeof path, "%s/lib.nioc", dir);
    elm_nio_cache *c = NULL;
    CHECK_OK(elm_nio_cache_open(&c, path));
    if (c) {
        CHECK_OK(elm_nio_cache_verify(c));
        CHECK(elm_nio_cache_num_sims(c) == 2, "%d simulations cached", elm_nio_cache_num_sims(c));
        for (int k = 0; k < 2 && k < elm_nio_cache_num_sims(c); k++) {
            elm_nio_view v;
            CHECK_OK(elm_nio_cache_sim(c, k, &v));
            CHECK(sims[k].soma && same_sim(&v, &sims[k]), "cached simulation %d differs", k);
        }
        elm_nio_cache_close(c);
    }

    const char *cli = getenv("ELM_CLI");
    if (cli && access(cli, X_OK) == 0) {
        char cmd[4096], f1[600], f2[600];
        for (int th = 1; th <= 2; th++) {
            snprintf(cmd, sizeof cmd,
                     "'%s' gen neuronio-teacher --sims 2 --seed 5 --duration-ms 1500 --threads %d "
                     "--out '%s' --name cli%d > /dev/null",
                     cli, th, dir, th);
            CHECK(system(cmd) == 0, "failed: %s", cmd);
        }
        snprintf(f1, sizeof f1, "%s/cli1.nioc", dir);
        snprintf(f2, sizeof f2, "%s/cli2.nioc", dir);
        snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s' && cmp -s '%s' '%s'", f1, f2, f1, path);
        CHECK(system(cmd) == 0, "the CLI's caches differ across threads or from the library's");
        /* The plot of a teacher sample with a released model: needs ../shared and matplotlib. */
        const char *shared = getenv("ELM_SHARED");
        char model[600];
        snprintf(model, sizeof model, "%s/models/neuronio/num_memory_15",
                 shared ? shared : "/nonexistent");
        if (shared && access(model, R_OK) == 0 && access("/usr/bin/python3", X_OK) == 0) {
            snprintf(cmd, sizeof cmd,
                     "'%s' plot neuronio --model '%s' --data '%s/cli1.nioc' --sim 1 --t0 200 "
                     "--t1 1400 --out '%s/fig.png' > /dev/null",
                     cli, model, dir, dir);
            CHECK(system(cmd) == 0, "failed: %s", cmd);
            char png[700];
            snprintf(png, sizeof png, "%s/fig.png", dir);
            FILE *f = fopen(png, "rb");
            unsigned char sig[8] = {0};
            size_t got = f ? fread(sig, 1, 8, f) : 0;
            long size = 0;
            if (f && fseek(f, 0, SEEK_END) == 0)
                size = ftell(f);
            if (f)
                fclose(f);
            CHECK(got == 8 && !memcmp(sig, "\x89PNG\r\n\x1a\n", 8) && size > 20000,
                  "%s: not a PNG of a real figure (%ld bytes)", png, size);
            /* A simulation that does not exist is a runtime error naming the data. */
            snprintf(cmd, sizeof cmd,
                     "'%s' plot neuronio --model '%s' --data '%s/cli1.nioc' --sim 2 "
                     "--out '%s/no.png' 2>/dev/null",
                     cli, model, dir, dir);
            int rc = system(cmd);
            CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 1, "--sim 2 of 2: exit %d", rc);
        } else {
            test_skip_part("no ../shared models or no /usr/bin/python3; plot not checked");
            if (!shared || access(model, R_OK) != 0)
                (void)test_shared_opt(); /* a failure under ELM_REQUIRE_SHARED=1 */
        }
        /* Usage errors exit 2. */
        snprintf(cmd, sizeof cmd, "'%s' gen neuronio-teacher --sims 0 --out '%s' 2>/dev/null", cli,
                 dir);
        int rc = system(cmd);
        CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 2, "--sims 0: exit %d", rc);
    } else {
        test_skip_part("$ELM_CLI (%s) is not an executable; CLI checks not run",
                       cli ? cli : "unset");
    }
    elm_nio_sim_clear(&sims[0]);
    elm_nio_sim_clear(&sims[1]);
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    CHECK(system(path) == 0, "cleanup");
}

/*
 * `elm plot pathfinder` with a fresh (untrained) 1-input, 2-output model on the shared 32x32
 * Pathfinder images: the command runs, draws a PNG, and refuses a model of the wrong shape.
 * Kept here, beside the NeuronIO plot check, because plot.c serves both.
 */
static void test_plot_pathfinder(void) {
    const char *cli = getenv("ELM_CLI"), *shared = getenv("ELM_SHARED");
    char data[600];
    snprintf(data, sizeof data, "%s/data/pathfinder/pathfinder32", shared ? shared : "/none");
    if (!cli || access(cli, X_OK) != 0 || access(data, R_OK) != 0 ||
        access("/usr/bin/python3", X_OK) != 0) {
        test_skip_part("no CLI, no ../shared Pathfinder images or no python3");
        if (access(data, R_OK) != 0)
            (void)test_shared_opt(); /* a failure under ELM_REQUIRE_SHARED=1 */
        return;
    }
    char dir[] = "/tmp/elm-test-plotpf-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp failed");
        return;
    }
    elm_config c;
    elm_config_default(&c, 1, 2, 5);
    elm_model *m = NULL;
    char model[600], cmd[4096];
    snprintf(model, sizeof model, "%s/pf.safetensors", dir);
    CHECK_OK(elm_config_resolve(&c));
    CHECK_OK(elm_model_create(&m, &c, ELM_F32, 3));
    if (m)
        CHECK_OK(elm_model_save(m, model));
    elm_model_free(m);
    snprintf(cmd, sizeof cmd,
             "'%s' plot pathfinder --model '%s' --data '%s' --index 2 --out '%s/pf.png' "
             "> /dev/null",
             cli, model, data, dir);
    CHECK(system(cmd) == 0, "failed: %s", cmd);
    snprintf(cmd, sizeof cmd, "%s/pf.png", dir);
    FILE *f = fopen(cmd, "rb");
    unsigned char sig[8] = {0};
    CHECK(f && fread(sig, 1, 8, f) == 8 && !memcmp(sig, "\x89PNG\r\n\x1a\n", 8), "%s is not a PNG",
          cmd);
    if (f)
        fclose(f);
    /* A NeuronIO-shaped model is refused with a runtime error. */
    snprintf(cmd, sizeof cmd,
             "'%s' plot pathfinder --model '%s/models/neuronio/num_memory_1' --data '%s' "
             "--index 0 --out '%s/no.png' 2>/dev/null",
             cli, shared, data, dir);
    int rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 1, "wrong-shape model: exit %d", rc);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

int main(void) {
    test_nmda_block();
    test_segments();
    test_determinism();
    test_rest();
    test_drive();
    test_statistics();
    test_errors();
    test_convergence();
    test_cache_and_cli();
    test_plot_pathfinder();
    return test_end();
}
