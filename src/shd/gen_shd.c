/*
 * gen_shd.c - `elm gen shd`: speech from espeak-ng, spikes from the cochlea (gen_cochlea.c), files
 * in SHD's HDF5 layout (see gen_shd.h for the layout, docs/SHD-GENERATOR.md for the design).
 *
 * Invariant: everything random is drawn from streams keyed by (seed, speaker, label, repeat), so a
 * sample does not depend on the order samples are made in, nor on the number of threads.
 */
#include "gen_shd.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

const char *const elm_shd_label_names[20] = {
    "zero", "one",  "two",  "three", "four", "five",  "six",   "seven",  "eight", "nine",
    "null", "eins", "zwei", "drei",  "vier", "fuenf", "sechs", "sieben", "acht",  "neun"};

/* What espeak-ng is asked to say for each label (UTF-8): the names, with the umlaut. */
static const char *const spoken[20] = {"zero",  "one",   "two",   "three",  "four", "five", "six",
                                       "seven", "eight", "nine",  "null",   "eins", "zwei", "drei",
                                       "vier",  "fünf",  "sechs", "sieben", "acht", "neun"};

/* ---- WAV ---------------------------------------------------------------------------------- */

void elm_audio_clear(elm_audio *a) {
    if (!a)
        return;
    free(a->x);
    memset(a, 0, sizeof *a);
}

static uint32_t rd_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint16_t rd_u16(const uint8_t *p) {
    return (uint16_t)(p[0] | p[1] << 8);
}

elm_status elm_wav_parse(const uint8_t *buf, size_t len, const char *name, elm_audio *out) {
    memset(out, 0, sizeof *out);
    if (len < 12 || memcmp(buf, "RIFF", 4) || memcmp(buf + 8, "WAVE", 4))
        return elm__fail(ELM_ERR_FORMAT, "%s: not a RIFF/WAVE file (%zu bytes)", name, len);
    size_t pos = 12;
    int have_fmt = 0;
    double fs = 0.0;
    while (pos + 8 <= len) {
        const uint8_t *ck = buf + pos;
        uint32_t ck_len = rd_u32(ck + 4);
        size_t body = pos + 8;
        if (!memcmp(ck, "fmt ", 4)) {
            if (ck_len < 16 || body + 16 > len)
                return elm__fail(ELM_ERR_FORMAT, "%s: truncated 'fmt ' chunk", name);
            uint16_t format = rd_u16(buf + body), channels = rd_u16(buf + body + 2);
            uint32_t rate = rd_u32(buf + body + 4);
            uint16_t bits = rd_u16(buf + body + 14);
            if (format != 1 || channels != 1 || bits != 16)
                return elm__fail(ELM_ERR_FORMAT,
                                 "%s: WAV is format %u, %u channels, %u bits; expected PCM (1), "
                                 "mono, 16-bit",
                                 name, format, channels, bits);
            if (rate < 1000 || rate > 1000000)
                return elm__fail(ELM_ERR_FORMAT, "%s: WAV sample rate %u Hz is implausible", name,
                                 rate);
            fs = rate;
            have_fmt = 1;
        } else if (!memcmp(ck, "data", 4)) {
            if (!have_fmt)
                return elm__fail(ELM_ERR_FORMAT, "%s: 'data' chunk before 'fmt ' chunk", name);
            /* Streamed WAVs declare a huge size: take what is there. */
            size_t avail = len - body;
            size_t nbytes = ck_len < avail ? ck_len : avail;
            size_t n = nbytes / 2;
            out->x = malloc((n ? n : 1) * sizeof *out->x);
            if (!out->x)
                return elm__fail(ELM_ERR_NOMEM, "%s: out of memory for %zu samples", name, n);
            for (size_t i = 0; i < n; i++)
                out->x[i] = (float)(int16_t)rd_u16(buf + body + 2 * i) / 32768.0f;
            out->n = n;
            out->fs = fs;
            return ELM_OK;
        }
        /* Chunks are padded to even length. */
        size_t next = body + (size_t)ck_len + (ck_len & 1u);
        if (next <= pos)
            break;
        pos = next;
    }
    return elm__fail(ELM_ERR_FORMAT, "%s: no 'data' chunk", name);
}

/* ---- espeak-ng ------------------------------------------------------------------------------ */

#define ESPEAK_MAX_BYTES ((size_t)16 << 20) /* 6 minutes of 22 kHz audio: far beyond one word */

elm_status elm_espeak_say(const char *espeak_bin, const elm_espeak_voice *v, const char *text,
                          elm_audio *out) {
    memset(out, 0, sizeof *out);
    char speed[16], pitch[16];
    snprintf(speed, sizeof speed, "%d", v->speed);
    snprintf(pitch, sizeof pitch, "%d", v->pitch);
    /* -b 1: the text is UTF-8 ("fünf"). The text is one argv entry, never parsed by a shell. */
    char *argv[] = {
        (char *)espeak_bin, "-b",         "1", "-v", (char *)v->voice, "-s", speed, "-p", pitch,
        "--stdout",         (char *)text, NULL};
    int fds[2];
    if (pipe(fds) != 0)
        return elm__fail(ELM_ERR_IO, "espeak-ng: pipe: %s", strerror(errno));
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, espeak_bin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return elm__fail(ELM_ERR_IO,
                         "cannot run '%s' (%s): install the Debian package espeak-ng "
                         "(apt-get install espeak-ng) or pass --espeak PATH",
                         espeak_bin, strerror(rc));
    }
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    elm_status st = buf ? ELM_OK : elm__fail(ELM_ERR_NOMEM, "espeak-ng: out of memory");
    while (st == ELM_OK) {
        if (len == cap) {
            if (cap >= ESPEAK_MAX_BYTES) {
                st = elm__fail(ELM_ERR_IO, "espeak-ng: more than %zu bytes of audio for '%s'",
                               ESPEAK_MAX_BYTES, text);
                break;
            }
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                st = elm__fail(ELM_ERR_NOMEM, "espeak-ng: out of memory");
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fds[0], buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            st = elm__fail(ELM_ERR_IO, "espeak-ng: read: %s", strerror(errno));
            break;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (st == ELM_OK && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
            st = elm__fail(ELM_ERR_IO,
                           "cannot run '%s': install the Debian package espeak-ng or pass "
                           "--espeak PATH",
                           espeak_bin);
        else
            st = elm__fail(ELM_ERR_IO, "'%s -v %s %s' failed (exit status %d)", espeak_bin,
                           v->voice, text, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    if (st == ELM_OK) {
        char name[128];
        snprintf(name, sizeof name, "espeak-ng output for '%s' (voice %s)", text, v->voice);
        st = elm_wav_parse(buf, len, name, out);
        if (st == ELM_OK && out->n == 0) {
            elm_audio_clear(out);
            st = elm__fail(ELM_ERR_FORMAT, "%s: no audio", name);
        }
    }
    free(buf);
    return st;
}

/* ---- HDF5 writer ---------------------------------------------------------------------------- */

/* IEEE binary16, built as h5py builds its '<f2' type (which HDF5 < 1.14.4 does not predefine). */
static hid_t half_type(void) {
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    if (t < 0)
        return t;
    if (H5Tset_fields(t, 15, 10, 5, 0, 10) < 0 || H5Tset_size(t, 2) < 0 ||
        H5Tset_precision(t, 16) < 0 || H5Tset_ebias(t, 15) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

/* Writes a 1-D dataset of n elements of `type` from `data` under `loc`. */
static int write_1d(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, size_t n,
                    const void *data) {
    hsize_t dims[1] = {(hsize_t)n};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    if (sp < 0)
        return 0;
    hid_t ds = H5Dcreate2(loc, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int ok =
        ds >= 0 && (n == 0 || H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    if (ds >= 0)
        H5Dclose(ds);
    H5Sclose(sp);
    return ok;
}

/* n fixed-length ASCII strings (space for the longest), NUL-padded: h5py reads them as bytes. */
static int write_strings(hid_t loc, const char *name, const char *const *s, size_t n) {
    size_t w = 1;
    for (size_t i = 0; i < n; i++)
        w = strlen(s[i]) > w ? strlen(s[i]) : w;
    char *buf = calloc(n ? n : 1, w);
    if (!buf)
        return 0;
    for (size_t i = 0; i < n; i++)
        memcpy(buf + i * w, s[i], strlen(s[i]));
    hid_t t = H5Tcopy(H5T_C_S1);
    int ok = t >= 0 && H5Tset_size(t, w) >= 0 && H5Tset_strpad(t, H5T_STR_NULLPAD) >= 0 &&
             H5Tset_cset(t, H5T_CSET_ASCII) >= 0 && write_1d(loc, name, t, t, n, buf);
    if (t >= 0)
        H5Tclose(t);
    free(buf);
    return ok;
}

/* The samples are what an SHD file can hold: 1..256 speakers, labels 0..19, ascending times. */
static elm_status check_samples(const char *path, size_t S, const elm_spike_train *trains,
                                const uint8_t *labels, const uint8_t *speakers, int P) {
    if (P < 1 || P > 256)
        return elm__fail(ELM_ERR_ARG, "%s: %d speakers; SHD files hold 1..256", path, P);
    for (size_t i = 0; i < S; i++) {
        if (labels[i] >= 20 || speakers[i] >= P)
            return elm__fail(ELM_ERR_ARG, "%s: sample %zu has label %u / speaker %u out of range",
                             path, i, labels[i], speakers[i]);
        for (size_t j = 1; j < trains[i].n; j++)
            if (!(trains[i].times[j] >= trains[i].times[j - 1]))
                return elm__fail(ELM_ERR_ARG, "%s: sample %zu: spike times are not ascending", path,
                                 i);
    }
    return ELM_OK;
}

/* SHD's groups and datasets in file f (times of file type vth, units of vu16: ragged rows vt
 * and vu); 1, or 0 when HDF5 failed. */
static int write_datasets(hid_t f, hid_t vth, hid_t vu16, size_t S, const hvl_t *vt,
                          const hvl_t *vu, const uint8_t *labels, const uint8_t *speakers, int P,
                          const char **genders, const uint8_t *ages, const float *heights) {
    hid_t g_sp = H5Gcreate2(f, "spikes", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t g_ex = H5Gcreate2(f, "extra", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t g_meta =
        g_ex >= 0 ? H5Gcreate2(g_ex, "meta_info", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
    int ok = g_sp >= 0 && g_ex >= 0 && g_meta >= 0;
    /* Memory types: the half bits are already IEEE binary16; uint16 in native order. */
    hid_t vu16_mem = ok ? H5Tvlen_create(H5T_NATIVE_UINT16) : -1;
    ok = ok && vu16_mem >= 0;
    ok = ok && write_1d(g_sp, "times", vth, vth, S, vt);
    ok = ok && write_1d(g_sp, "units", vu16, vu16_mem, S, vu);
    ok = ok && write_1d(f, "labels", H5T_STD_U8LE, H5T_NATIVE_UINT8, S, labels);
    ok = ok && write_1d(g_ex, "speaker", H5T_STD_U8LE, H5T_NATIVE_UINT8, S, speakers);
    ok = ok && write_strings(g_ex, "keys", elm_shd_label_names, 20);
    ok = ok && write_strings(g_meta, "gender", genders, (size_t)P);
    ok = ok && write_1d(g_meta, "age", H5T_STD_U8LE, H5T_NATIVE_UINT8, (size_t)P, ages);
    ok =
        ok && write_1d(g_meta, "body_height", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, (size_t)P, heights);
    if (vu16_mem >= 0)
        H5Tclose(vu16_mem);
    if (g_meta >= 0)
        H5Gclose(g_meta);
    if (g_ex >= 0)
        H5Gclose(g_ex);
    if (g_sp >= 0)
        H5Gclose(g_sp);
    return ok;
}

elm_status elm_shd_write(const char *path, size_t S, const elm_spike_train *trains,
                         const uint8_t *labels, const uint8_t *speakers,
                         const elm_shd_speaker_meta *meta, int P) {
    elm_status st = check_samples(path, S, trains, labels, speakers, P);
    if (st != ELM_OK)
        return st;
    size_t plen = strlen(path) + 32;
    char *tmp = malloc(plen);
    hvl_t *vt = calloc(S ? S : 1, sizeof *vt), *vu = calloc(S ? S : 1, sizeof *vu);
    uint8_t *ages = malloc((size_t)P);
    float *heights = malloc((size_t)P * sizeof *heights);
    const char **genders = malloc((size_t)P * sizeof *genders);
    if (!tmp || !vt || !vu || !ages || !heights || !genders) {
        free(tmp), free(vt), free(vu), free(ages), free(heights), free(genders);
        return elm__fail(ELM_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(tmp, plen, "%s.tmp.%ld", path, (long)getpid());
    for (size_t i = 0; i < S && st == ELM_OK; i++) {
        size_t n = trains[i].n;
        uint16_t *h = malloc((n ? n : 1) * sizeof *h);
        if (!h) {
            st = elm__fail(ELM_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        for (size_t j = 0; j < n; j++)
            h[j] = elm__float_to_half(trains[i].times[j]);
        vt[i].len = n;
        vt[i].p = h;
        vu[i].len = n;
        vu[i].p = trains[i].units;
    }
    for (int k = 0; k < P; k++) {
        ages[k] = (uint8_t)(meta[k].age < 0 ? 0 : meta[k].age > 255 ? 255 : meta[k].age);
        heights[k] = (float)meta[k].body_height;
        genders[k] = meta[k].female ? "female" : "male";
    }

    /* The library never prints: silence HDF5's error stack printing for these calls. */
    H5E_auto2_t old_fn;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = -1, th = -1, vth = -1, vu16 = -1;
    if (st == ELM_OK) {
        f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        th = half_type();
        vth = th >= 0 ? H5Tvlen_create(th) : -1;
        vu16 = H5Tvlen_create(H5T_STD_U16LE);
        if (f < 0 || th < 0 || vth < 0 || vu16 < 0)
            st = elm__fail(ELM_ERR_IO, "%s: cannot create the HDF5 file", tmp);
    }
    int ok = st == ELM_OK &&
             write_datasets(f, vth, vu16, S, vt, vu, labels, speakers, P, genders, ages, heights);
    if (vu16 >= 0)
        H5Tclose(vu16);
    if (vth >= 0)
        H5Tclose(vth);
    if (th >= 0)
        H5Tclose(th);
    if (f >= 0 && H5Fclose(f) < 0)
        ok = 0;
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    if (st == ELM_OK && !ok)
        st = elm__fail(ELM_ERR_IO, "%s: writing the HDF5 file failed (disk full?)", tmp);
    if (st == ELM_OK && rename(tmp, path) != 0)
        st = elm__fail(ELM_ERR_IO, "%s: cannot rename %s onto it: %s", path, tmp, strerror(errno));
    if (st != ELM_OK)
        remove(tmp);
    for (size_t i = 0; i < S; i++)
        free(vt[i].p);
    free(tmp), free(vt), free(vu), free(ages), free(heights), free(genders);
    return st;
}

/* ---- The generator -------------------------------------------------------------------------- */

void elm_shd_gen_defaults(elm_shd_gen_opts *o) {
    memset(o, 0, sizeof *o);
    o->espeak = "espeak-ng";
    o->seed = 0;
    o->speakers = 24;
    o->repeats = 2;
    o->test_fraction = 0.2;
    o->max_seconds = 1.4;
    elm_cochlea_defaults(&o->cochlea);
}

/* espeak-ng's voice variants (espeak-ng --voices=variant), split by the gender it gives them. */
static const char *const variants_m[] = {"m1",    "m2",    "m3",     "m4",     "m5",   "m6", "m7",
                                         "croak", "klatt", "klatt2", "klatt3", "iven", "rob"};
static const char *const variants_f[] = {"f1", "f2",     "f3",      "f4",
                                         "f5", "Andrea", "belinda", "linda"};
/* English accents; German speakers all use "de". */
static const char *const accents_en[] = {"en",     "en-us",         "en-gb-x-rp", "en-gb-scotland",
                                         "en-029", "en-gb-x-gbclan"};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* A synthetic speaker: fixed voice, pitch, speed and loudness for all of its utterances. */
typedef struct speaker {
    char voice_en[64], voice_de[64];
    int pitch, speed;
    double level_gain; /* multiplies the cochlea level: loud and quiet speakers */
    elm_shd_speaker_meta meta;
} speaker;

static double rng_range(elm__rng *r, double lo, double hi) {
    return lo + (hi - lo) * elm__rng_uniform(r);
}

static void make_speaker(speaker *sp, uint64_t seed, int index) {
    elm__rng r;
    elm__rng_seed(&r, seed ^ (0xA5A5A5A5ULL + 0x9E3779B97F4A7C15ULL * (uint64_t)(index + 1)));
    /* Alternate genders so that even two speakers cover both; the rest is random. */
    int female = (int)((index + (int)(seed & 1)) & 1);
    const char *variant = female ? variants_f[elm__rng_below(&r, NELEM(variants_f))]
                                 : variants_m[elm__rng_below(&r, NELEM(variants_m))];
    const char *accent = accents_en[elm__rng_below(&r, NELEM(accents_en))];
    snprintf(sp->voice_en, sizeof sp->voice_en, "%s+%s", accent, variant);
    snprintf(sp->voice_de, sizeof sp->voice_de, "de+%s", variant);
    sp->pitch = (int)(female ? rng_range(&r, 45, 85) : rng_range(&r, 15, 55));
    sp->speed = (int)rng_range(&r, 85, 145);
    sp->level_gain = exp(0.15 * elm__rng_normal(&r));
    sp->meta.female = female;
    sp->meta.age = (int)rng_range(&r, 18, 70);
    double h = female ? 166.0 + 6.5 * elm__rng_normal(&r) : 179.0 + 7.0 * elm__rng_normal(&r);
    sp->meta.body_height = round(h); /* whole centimetres, as people state them */
}

int elm_shd_gen_describe_speaker(uint64_t seed, int index, char *buf, size_t len) {
    speaker sp;
    make_speaker(&sp, seed, index);
    return snprintf(buf, len,
                    "%-6s age %2d, %3.0f cm, voices %s / %s, pitch %d, speed %d, level x%.2f",
                    sp.meta.female ? "female" : "male", sp.meta.age, sp.meta.body_height,
                    sp.voice_en, sp.voice_de, sp.pitch, sp.speed, sp.level_gain);
}

/* Key of one utterance's random stream. */
static uint64_t utt_key(uint64_t seed, int s, int label, int rep) {
    return seed * 0xD1B54A32D192ED03ULL + (uint64_t)s * 0x9E3779B97F4A7C15ULL +
           (uint64_t)label * 0xBF58476D1CE4E5B9ULL + (uint64_t)rep * 0x94D049BB133111EBULL + 1;
}

/*
 * Speaks one digit and turns it into spikes: perturbed speed and pitch, silence trimmed, a
 * random lead-in, white noise at a random SNR, cut to max_seconds, then the cochlea with a
 * perturbed level and its own noise seed.
 */
static elm_status make_utterance(const elm_shd_gen_opts *o, const speaker *sp, int s, int label,
                                 int rep, elm_spike_train *out, double *audio_s) {
    elm__rng r;
    elm__rng_seed(&r, utt_key(o->seed, s, label, rep));
    elm_espeak_voice v;
    memset(&v, 0, sizeof v);
    snprintf(v.voice, sizeof v.voice, "%s", label < 10 ? sp->voice_en : sp->voice_de);
    double spd = sp->speed * (1.0 + 0.05 * elm__rng_normal(&r));
    double pit = sp->pitch + 4.0 * elm__rng_normal(&r);
    v.speed = (int)fmax(80.0, fmin(400.0, spd));
    v.pitch = (int)fmax(0.0, fmin(99.0, pit));
    elm_audio a;
    elm_status st = elm_espeak_say(o->espeak, &v, spoken[label], &a);
    if (st != ELM_OK)
        return st;
    /* Trim the silence espeak-ng puts around the word (below 2 % of the peak). */
    float peak = 0.0f;
    for (size_t i = 0; i < a.n; i++)
        peak = fmaxf(peak, fabsf(a.x[i]));
    size_t first = 0, last = a.n ? a.n - 1 : 0;
    while (first < a.n && fabsf(a.x[first]) <= 0.02f * peak)
        first++;
    while (last > first && fabsf(a.x[last]) <= 0.02f * peak)
        last--;
    if (peak == 0.0f || first >= a.n) {
        elm_audio_clear(&a);
        return elm__fail(ELM_ERR_FORMAT, "espeak-ng produced silence for '%s' (voice %s)",
                         spoken[label], v.voice);
    }
    size_t pre = (size_t)(0.005 * a.fs), post = (size_t)(0.030 * a.fs);
    first = first > pre ? first - pre : 0;
    last = last + post < a.n ? last + post : a.n - 1;
    size_t lead = (size_t)(rng_range(&r, 0.02, 0.10) * a.fs);
    size_t word = last - first + 1;
    size_t n = lead + word, nmax = (size_t)(o->max_seconds * a.fs);
    if (n > nmax)
        n = nmax;
    float *x = calloc(n ? n : 1, sizeof *x);
    if (!x) {
        elm_audio_clear(&a);
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    }
    double ss = 0.0;
    for (size_t i = lead; i < n; i++) {
        x[i] = a.x[first + i - lead];
        ss += (double)x[i] * (double)x[i];
    }
    double snr_db = rng_range(&r, 20.0, 40.0);
    double sigma = sqrt(ss / (double)(n > lead ? n - lead : 1)) * pow(10.0, -snr_db / 20.0);
    for (size_t i = 0; i < n; i++)
        x[i] += (float)(sigma * elm__rng_normal(&r));
    elm_cochlea_params cp = o->cochlea;
    cp.level *= sp->level_gain * exp(0.1 * elm__rng_normal(&r));
    cp.seed = elm__rng_next(&r);
    st = elm_cochlea_run(&cp, x, n, a.fs, out);
    *audio_s = (double)n / a.fs;
    free(x);
    elm_audio_clear(&a);
    return st;
}

/* Fisher-Yates over the three parallel arrays of a split. */
static void shuffle(elm__rng *r, elm_spike_train *t, uint8_t *lab, uint8_t *spk, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)elm__rng_below(r, i);
        elm_spike_train tt = t[i - 1];
        t[i - 1] = t[j];
        t[j] = tt;
        uint8_t l = lab[i - 1];
        lab[i - 1] = lab[j];
        lab[j] = l;
        uint8_t s = spk[i - 1];
        spk[i - 1] = spk[j];
        spk[j] = s;
    }
}

elm_status elm_shd_generate(const elm_shd_gen_opts *o, elm_shd_gen_stats *stats) {
    memset(stats, 0, sizeof *stats);
    double t0 = elm__now_s();
    if (!o->out_dir || !*o->out_dir)
        return elm__fail(ELM_ERR_ARG, "gen shd: no output folder");
    if (o->speakers < 2 || o->speakers > 256)
        return elm__fail(ELM_ERR_ARG, "gen shd: --speakers %d is outside [2, 256]", o->speakers);
    if (o->repeats < 1 || o->repeats > 1000)
        return elm__fail(ELM_ERR_ARG, "gen shd: --repeats %d is outside [1, 1000]", o->repeats);
    if (!(o->test_fraction > 0.0 && o->test_fraction < 1.0))
        return elm__fail(ELM_ERR_ARG, "gen shd: test fraction %g is outside (0, 1)",
                         o->test_fraction);
    if (!(o->max_seconds >= 0.1 && o->max_seconds <= 10.0))
        return elm__fail(ELM_ERR_ARG, "gen shd: max_seconds %g is outside [0.1, 10]",
                         o->max_seconds);
    elm_status st = elm_cochlea_check(&o->cochlea, 22050.0);
    if (st != ELM_OK)
        return st;
    int P = o->speakers;
    /* The last round(test_fraction * P) speakers (at least one) are test speakers only. */
    int P_test = (int)lround(o->test_fraction * P);
    if (P_test < 1)
        P_test = 1;
    if (P_test > P - 1)
        P_test = P - 1;
    int P_train = P - P_test;
    size_t per = (size_t)20 * (size_t)o->repeats;
    size_t n_train = per * (size_t)P_train, n_test = per * (size_t)P_test, N = n_train + n_test;

    speaker *sp = calloc((size_t)P, sizeof *sp);
    elm_shd_speaker_meta *meta = calloc((size_t)P, sizeof *meta);
    elm_spike_train *tr = calloc(N, sizeof *tr);
    uint8_t *lab = calloc(N, 1), *spk = calloc(N, 1);
    char *p_train = elm__path_join(o->out_dir, "shd_train.h5");
    char *p_test = elm__path_join(o->out_dir, "shd_test.h5");
    if (!sp || !meta || !tr || !lab || !spk || !p_train || !p_test) {
        st = elm__fail(ELM_ERR_NOMEM, "gen shd: out of memory");
        goto done;
    }
    if ((st = elm__mkdir_p(o->out_dir)) != ELM_OK)
        goto done;
    for (int s = 0; s < P; s++) {
        make_speaker(&sp[s], o->seed, s);
        meta[s] = sp[s].meta;
    }
    double spikes_sum = 0.0, dur_sum = 0.0, audio_sum = 0.0;
    stats->spikes_min = INFINITY;
    size_t k = 0;
    for (int s = 0; s < P; s++) {
        for (int label = 0; label < 20; label++) {
            for (int rep = 0; rep < o->repeats; rep++, k++) {
                double audio_s = 0.0;
                st = make_utterance(o, &sp[s], s, label, rep, &tr[k], &audio_s);
                if (st != ELM_OK) {
                    elm__fail_prefix(st, "gen shd");
                    goto done;
                }
                lab[k] = (uint8_t)label;
                spk[k] = (uint8_t)s;
                double ns = (double)tr[k].n;
                double dur = tr[k].n ? (double)tr[k].times[tr[k].n - 1] : 0.0;
                spikes_sum += ns;
                stats->spikes_min = fmin(stats->spikes_min, ns);
                stats->spikes_max = fmax(stats->spikes_max, ns);
                dur_sum += dur;
                stats->dur_max = fmax(stats->dur_max, dur);
                audio_sum += audio_s;
                if (o->progress)
                    o->progress(o->user, (int)(k + 1), (int)N);
            }
        }
    }
    /* Speakers are in order, so the first n_train samples are the training speakers'. */
    elm__rng r;
    elm__rng_seed(&r, o->seed ^ 0x5348445348440000ULL);
    shuffle(&r, tr, lab, spk, n_train);
    shuffle(&r, tr + n_train, lab + n_train, spk + n_train, n_test);
    if ((st = elm_shd_write(p_train, n_train, tr, lab, spk, meta, P)) != ELM_OK)
        goto done;
    if ((st = elm_shd_write(p_test, n_test, tr + n_train, lab + n_train, spk + n_train, meta, P)) !=
        ELM_OK)
        goto done;
    stats->n_train = (int)n_train;
    stats->n_test = (int)n_test;
    stats->speakers_train = P_train;
    stats->speakers_test = P_test;
    stats->spikes_mean = spikes_sum / (double)N;
    stats->dur_mean = dur_sum / (double)N;
    stats->audio_mean = audio_sum / (double)N;
    stats->seconds = elm__now_s() - t0;
done:
    if (tr)
        for (size_t i = 0; i < N; i++)
            elm_spike_train_clear(&tr[i]);
    free(sp), free(meta), free(tr), free(lab), free(spk), free(p_train), free(p_test);
    return st;
}
