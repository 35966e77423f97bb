/*
 * fuzz_util.h - helpers shared by the libFuzzer drivers: a private scratch folder per process
 * (parsers that take a path get the input written there) and a check that aborts, so that a
 * broken invariant shows up as a crash libFuzzer records with its input.
 */
#ifndef ELM_FUZZ_UTIL_H
#define ELM_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Aborts (a libFuzzer crash) with a message when an invariant of the code under test breaks. */
#define FUZZ_ASSERT(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FUZZ_ASSERT %s:%d: %s: ", __FILE__, __LINE__, #cond);                 \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* With FUZZ_VERBOSE=1 in the environment, drivers print why each input was refused. */
static inline void fuzz_note(const char *what, int status, const char *detail) {
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("FUZZ_VERBOSE") != NULL;
    if (verbose)
        fprintf(stderr, "[%s] status %d: %s\n", what, status, detail);
}

/*
 * The process's scratch folder, made once under $TMPDIR (default /dev/shm when present, as
 * memory-backed files keep the file-based parsers fast) and removed at exit with its files.
 */
static char fuzz_dir_buf[512];
static void fuzz_cleanup(void) {
    char cmd[600];
    if (fuzz_dir_buf[0]) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir_buf);
        if (system(cmd) != 0)
            fprintf(stderr, "fuzz: could not remove %s\n", fuzz_dir_buf);
    }
}
static inline const char *fuzz_dir(void) {
    if (!fuzz_dir_buf[0]) {
        const char *base = getenv("TMPDIR");
        if (!base)
            base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(fuzz_dir_buf, sizeof fuzz_dir_buf, "%s/elm-fuzz-XXXXXX", base);
        if (!mkdtemp(fuzz_dir_buf)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(fuzz_cleanup);
    }
    return fuzz_dir_buf;
}

/* "<scratch>/<name>" in a static buffer per call site's `buf`. */
static inline const char *fuzz_path(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", fuzz_dir(), name);
    return buf;
}

/* Writes `len` bytes to `path` (replacing it); aborts on an I/O error of the harness itself. */
static inline void fuzz_write(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

/* Finds `sep` (of seplen bytes) in data; returns its offset or len when absent. */
static inline size_t fuzz_split(const uint8_t *data, size_t len, const char *sep, size_t seplen) {
    if (len >= seplen)
        for (size_t i = 0; i + seplen <= len; i++)
            if (!memcmp(data + i, sep, seplen))
                return i;
    return len;
}

#endif
