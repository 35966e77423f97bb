/*
 * gen_cochlea.h - an artificial cochlea that turns audio into 700 channels of spikes, modelled on
 * the pipeline that made the Spiking Heidelberg Digits (Cramer et al. 2020, "Lauscher"):
 *
 *   audio -> RMS normalisation -> Hann fade -> gammatone filter bank (basilar membrane, 700
 *   channels on the ERB-rate scale) -> Meddis inner hair cell (transmitter release probability)
 *   -> F auditory-nerve fibres per channel (Poisson counts) -> one leaky integrate-and-fire
 *   bushy cell per channel with refractoriness -> spike times (s) and channel ids.
 *
 * Channel 0 has the lowest centre frequency. Each channel runs the whole chain in one pass with
 * its own random stream derived from (seed, channel), so the output does not depend on the number
 * of OpenMP threads. docs/SHD-GENERATOR.md gives the equations and the parameter table.
 */
#ifndef ELM_SHD_GEN_COCHLEA_H
#define ELM_SHD_GEN_COCHLEA_H

#include "internal.h"

typedef struct elm_cochlea_params {
    int num_channels;     /* bushy cells = filter channels (700 as in SHD) */
    double f_lo, f_hi;    /* Hz, lowest and highest centre frequency; f_hi is capped at 0.45 fs */
    double level;         /* RMS of the normalised audio, in Meddis stimulus units */
    double fade_ms;       /* length of the half-Hann ramp at each end of the audio */
    double bw_factor;     /* gammatone bandwidth b = bw_factor * ERB(fc); 1.019 (Patterson) */
    int fibres;           /* auditory-nerve fibres converging on each bushy cell (40 in SHD) */
    double tau_m_ms;      /* bushy cell membrane time constant */
    double weight;        /* membrane jump per fibre spike, in units of the threshold (= 1) */
    double refractory_ms; /* absolute refractory period of the bushy cell */
    uint64_t seed;        /* fibre noise */
} elm_cochlea_params;

/* Fills the defaults documented in docs/SHD-GENERATOR.md. */
void elm_cochlea_defaults(elm_cochlea_params *p);

/* Checks the parameters against the sample rate fs (Hz); ELM_ERR_ARG naming the bad one. */
elm_status elm_cochlea_check(const elm_cochlea_params *p, double fs);

/* Centre frequencies (Hz) of the p->num_channels channels for sample rate fs, ascending. */
elm_status elm_cochlea_centre_freqs(const elm_cochlea_params *p, double fs, double *cf);

/* Spikes of one sample, sorted by time, then by unit. Arrays are malloc'd; free with _clear. */
typedef struct elm_spike_train {
    size_t n;
    float *times;    /* (n) seconds from the start of the audio */
    uint16_t *units; /* (n) channel ids 0 .. num_channels-1 */
} elm_spike_train;
void elm_spike_train_clear(elm_spike_train *s);

/*
 * Runs the cochlea over `audio` (n samples at fs Hz, any scale: it is RMS-normalised first; an
 * all-zero input stays silent). Fills *out, which the caller clears. Uses OpenMP over channels.
 */
elm_status elm_cochlea_run(const elm_cochlea_params *p, const float *audio, size_t n, double fs,
                           elm_spike_train *out);

/*
 * Diagnostics for tests and docs: per channel, the RMS of the basilar-membrane (filter) output
 * and, if not NULL, the mean transmitter release probability per second of one fibre (the Meddis
 * hair cell's rate), for the same preprocessing as elm_cochlea_run. bm_rms: (num_channels).
 */
elm_status elm_cochlea_probe(const elm_cochlea_params *p, const float *audio, size_t n, double fs,
                             double *bm_rms, double *ihc_rate);

#endif
