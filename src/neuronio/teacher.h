/*
 * teacher.h - the built-in "teacher neuron": a small biophysical cell that stands in for the
 * Hay et al. layer-5 pyramidal cell of NeuronIO, so that NeuronIO-style training data can be made
 * on any machine in seconds (`elm gen neuronio-teacher`).
 *
 * The cell: a Hodgkin-Huxley soma (Traub-Miles Na and K-dr channels, a slow M-type K current
 * and a spike-triggered afterhyperpolarisation) and 10 passive dendritic compartments (3 basal
 * branches of 2 compartments each, an apical trunk, oblique region, nexus and tuft), solved
 * implicitly on the tree (Hines order). Synapses: 639 excitatory (AMPA + NMDA with the Jahr-Stevens
 * Mg block) and 639 inhibitory (GABA_A), all conductance based with double-exponential kinetics;
 * input k < 639 is the excitatory synapse of segment k, input 639 + k the inhibitory one, and
 * segment k lives on a fixed compartment (segments 0..261 basal, 262..638 apical, as in the L5PC).
 * Inputs follow NeuronIO's recipe: per-interval random rates per tree and per segment, smoothed in
 * time, sampled as Bernoulli spikes in 1 ms bins. docs/TEACHER.md gives the equations and
 * parameters.
 *
 * Everything is deterministic: a simulation depends only on (parameters, seed, duration).
 * Simulations filled here are freed with elm_nio_sim_clear() (neuronio.h).
 */
#ifndef ELM_NIO_TEACHER_H
#define ELM_NIO_TEACHER_H

#include "neuronio.h"

#define ELM_TEACHER_NUM_SEGMENTS 639
#define ELM_TEACHER_NUM_INPUTS   (2 * ELM_TEACHER_NUM_SEGMENTS)
/* Segments below this index are basal, the rest apical (same split as the Hay L5PC's 262/377). */
#define ELM_TEACHER_NUM_BASAL 262
#define ELM_TEACHER_NUM_COMP  11

/* Physiology: units mV, ms, nS, pF, mM. */
typedef struct elm_teacher_params {
    double dt_ms;     /* integration substep; must divide 1 ms (0.125 = NeuronIO's 8 per ms) */
    double e_leak;    /* leak reversal, mV */
    double e_na, e_k; /* sodium / potassium reversal, mV */
    double e_ampa, e_nmda, e_gaba;
    double mg_mM; /* extracellular magnesium for the NMDA block */
    double c_soma_pF, g_leak_soma_nS;
    double c_dend_pF, g_leak_dend_nS; /* per dendritic compartment */
    double axial_scale;               /* multiplies the fixed table of coupling conductances */
    double g_na_nS, g_kdr_nS, g_m_nS; /* somatic channel densities times soma area */
    double v_t;                       /* Traub-Miles threshold offset V_T, mV */
    double tau_m_max_ms;              /* slow K (M-current) time constant scale */
    double g_ahp_nS;   /* spike-triggered K conductance (AHP): added at each output spike... */
    double tau_ahp_ms; /* ...and decaying with this time constant */
    double g_ampa_nS, g_nmda_nS, g_gaba_nS; /* peak conductance of one synapse, one spike */
    double tau_ampa_rise, tau_ampa_decay;
    double tau_nmda_rise, tau_nmda_decay;
    double tau_gaba_rise, tau_gaba_decay;
    double spike_threshold_mV; /* an output spike is an upward crossing of this */
} elm_teacher_params;

/* Input statistics (NeuronIO's recipe, rates in spikes per 100 ms per tree). */
typedef struct elm_teacher_input_params {
    double ex_per_100ms_min, ex_per_100ms_max; /* per tree (basal, apical), per interval */
    double ex_inh_diff_min, ex_inh_diff_max;   /* inhibitory = excitatory + U(diff range) */
    double rate_scale;                         /* multiplies every rate (1 = default) */
} elm_teacher_input_params;

void elm_teacher_params_default(elm_teacher_params *p);
void elm_teacher_input_params_default(elm_teacher_input_params *p);

/* Jahr-Stevens (1990) magnesium block of NMDA receptors: 1 / (1 + [Mg]/3.57 * exp(-0.062 V)). */
double elm_teacher_nmda_block(double v_mV, double mg_mM);

/* The compartment (0 = soma, 1..10 dendrites) that segment `seg` (0..638) sits on. */
int elm_teacher_segment_compartment(int seg);

/*
 * Draws NeuronIO-style input spike trains: T bins of 1 ms, 1278 inputs, into sim->T, n_in,
 * spike_ptr and spike_idx (malloc'd; other fields untouched). Deterministic in `seed`.
 */
elm_status elm_teacher_inputs(elm_nio_sim *sim, const elm_teacher_input_params *ip, int T,
                              uint64_t seed);

/*
 * Homogeneous Poisson inputs (for tests and f-I curves): every excitatory synapse fires at
 * ex_hz and every inhibitory one at inh_hz, Bernoulli per 1 ms bin.
 */
elm_status elm_teacher_inputs_constant(elm_nio_sim *sim, int T, double ex_hz, double inh_hz,
                                       uint64_t seed);

/*
 * Simulates the cell driven by sim's inputs (sim->T, n_in = 1278, spike_ptr, spike_idx) and
 * fills sim->soma (T, the somatic voltage at t = 0, 1, ... ms; inputs of bin k arrive at t = k)
 * and the output spike times (ms, upward crossings of spike_threshold_mV, at the first substep
 * above it). Replaces soma / out_spike_times if already set. ELM_ERR_NUMERIC if the state ever
 * becomes non-finite.
 */
elm_status elm_teacher_simulate(elm_nio_sim *sim, const elm_teacher_params *p);

/* Inputs from `seed` then the simulation: one whole teacher sample. *sim is overwritten (it
 * must not hold arrays), and left empty on failure. */
elm_status elm_teacher_run(elm_nio_sim *sim, const elm_teacher_params *p,
                           const elm_teacher_input_params *ip, int T, uint64_t seed);

/*
 * The seed of simulation k of a data set generated from `seed` (`elm gen neuronio-teacher`):
 * each sample depends only on (seed, k), whatever the number of threads or samples.
 */
uint64_t elm_teacher_sim_seed(uint64_t seed, uint64_t k);

#endif
