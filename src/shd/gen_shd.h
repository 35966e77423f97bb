/*
 * gen_shd.h - `elm gen shd`: Spiking-Heidelberg-Digits-like data made on this machine.
 *
 * espeak-ng (run as a subprocess, argv array, no shell) speaks the digits 0-9 in English and
 * German for N synthetic speakers; the artificial cochlea (gen_cochlea.h) turns each utterance into
 * 700 channels of spikes; the writer stores them as shd_train.h5 / shd_test.h5 in SHD's exact HDF5
 * layout (docs/SHD-GENERATOR.md):
 *
 *   spikes/times   (S,) vlen float16, seconds, ascending within a sample
 *   spikes/units   (S,) vlen uint16, channel ids 0..699
 *   labels         (S,) uint8, 0..9 English "zero".."nine", 10..19 German "null".."neun"
 *   extra/speaker  (S,) uint8 speaker id (index into the extra/meta_info arrays)
 *   extra/keys     (20,) fixed-length strings, the label names (ASCII: "fuenf")
 *   extra/meta_info/gender (P,) strings "female"/"male", age (P,) uint8, body_height (P,) float32
 *
 * The last ceil(test_fraction * N) speakers are test speakers only, the others training only.
 */
#ifndef ELM_SHD_GEN_SHD_H
#define ELM_SHD_GEN_SHD_H

#include "gen_cochlea.h"

/* ---- Audio ---- */

typedef struct elm_audio {
    float *x; /* (n) samples in [-1, 1) */
    size_t n;
    double fs; /* Hz */
} elm_audio;
void elm_audio_clear(elm_audio *a);

/*
 * Parses a RIFF/WAVE file held in memory: PCM, 16-bit, mono (what espeak-ng writes). A data chunk
 * whose declared size runs past the buffer (espeak-ng --stdout writes 0x7ffff000) is clamped to the
 * bytes present. `name` labels error messages.
 */
elm_status elm_wav_parse(const uint8_t *buf, size_t len, const char *name, elm_audio *out);

/* One espeak-ng utterance setting. */
typedef struct elm_espeak_voice {
    char voice[64]; /* -v, e.g. "de+f2" */
    int speed;      /* -s, words per minute (80..450) */
    int pitch;      /* -p, 0..99 */
} elm_espeak_voice;

/*
 * Runs `espeak_bin -b 1 -v VOICE -s SPEED -p PITCH --stdout TEXT` (posix_spawnp, so espeak_bin
 * may be a bare name looked up on PATH) and parses its WAV output. ELM_ERR_IO with a hint to
 * install the Debian package espeak-ng when the program cannot be started.
 */
elm_status elm_espeak_say(const char *espeak_bin, const elm_espeak_voice *v, const char *text,
                          elm_audio *out);

/* ---- Writing SHD files ---- */

typedef struct elm_shd_speaker_meta {
    int female;         /* 1 female, 0 male */
    int age;            /* years */
    double body_height; /* cm */
} elm_shd_speaker_meta;

/*
 * Writes one SHD-layout HDF5 file (atomically: a temporary name, then rename) with S samples:
 * trains[i] (times ascending), labels[i] (0..19), speakers[i] (index into meta, < P <= 256).
 */
elm_status elm_shd_write(const char *path, size_t S, const elm_spike_train *trains,
                         const uint8_t *labels, const uint8_t *speakers,
                         const elm_shd_speaker_meta *meta, int P);

/* The 20 label names (ASCII): "zero".."nine", "null".."neun" with "fuenf" for "fünf". */
extern const char *const elm_shd_label_names[20];

/* ---- The generator ---- */

typedef struct elm_shd_gen_opts {
    const char *out_dir;
    const char *espeak; /* program name or path; default "espeak-ng" */
    uint64_t seed;
    int speakers;         /* N >= 2 (one training and one test speaker at least) */
    int repeats;          /* utterances of each digit per speaker and language */
    double test_fraction; /* share of speakers held out for the test file */
    double max_seconds;   /* utterances are cut to this length (SHD's longest are ~1.4 s) */
    elm_cochlea_params cochlea;
    /* Called after each sample (may be NULL): done of total. */
    void (*progress)(void *user, int done, int total);
    void *user;
} elm_shd_gen_opts;

void elm_shd_gen_defaults(elm_shd_gen_opts *o);

typedef struct elm_shd_gen_stats {
    int n_train, n_test;
    int speakers_train, speakers_test;
    double spikes_mean, spikes_min, spikes_max; /* per sample, both files together */
    double dur_mean, dur_max;                   /* last spike time, seconds */
    double audio_mean;                          /* utterance length, seconds */
    double seconds;                             /* wall time */
} elm_shd_gen_stats;

/* One line describing speaker `index` of a set made with `seed` (gender, age, height, voices,
 * pitch, speed, loudness); returns what snprintf returns. */
int elm_shd_gen_describe_speaker(uint64_t seed, int index, char *buf, size_t len);

/* Generates out_dir/shd_train.h5 and out_dir/shd_test.h5 (creating out_dir). */
elm_status elm_shd_generate(const elm_shd_gen_opts *o, elm_shd_gen_stats *stats);

#endif
