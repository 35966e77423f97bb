/*
 * tmpfiles.h - what the tests that make files share: a private temporary folder (tmpdir), paths
 * in it (tpath), whole files written and read, and EXPECT: a status, and phrases its message
 * must hold. Include after test.h; the test's main calls tmpdir_make first and tmpdir_remove at
 * the end.
 */
#ifndef ELM_TEST_TMPFILES_H
#define ELM_TEST_TMPFILES_H

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char tmpdir[256];

/* A fresh folder $TMPDIR/<prefix>-XXXXXX (/tmp without TMPDIR); exits on failure. */
static inline void tmpdir_make(const char *prefix) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/%s-XXXXXX", base ? base : "/tmp", prefix);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        exit(1);
    }
}

static inline void tmpdir_remove(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
}

/* tmpdir/name; eight results stay valid at a time. */
static inline const char *tpath(const char *name) {
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static inline void write_bytes(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static inline char *read_bytes(const char *path, size_t *len) {
    char *d;
    if (elm__read_file(path, (size_t)1 << 30, &d, len) != ELM_OK) {
        fprintf(stderr, "cannot read %s: %s\n", path, elm_last_error());
        exit(1);
    }
    return d;
}

/* 1 when `phrase` is NULL or occurs in `msg`. */
static inline int has(const char *msg, const char *phrase) {
    return !phrase || strstr(msg, phrase) != NULL;
}

/* Checks that `st` is `want` and that the message holds each of the (up to two) phrases. */
#define EXPECT(label, st, want, phrase1, phrase2)                                                  \
    do {                                                                                           \
        elm_status s_ = (st);                                                                      \
        const char *e_ = elm_last_error();                                                         \
        CHECK(s_ == (want), "%s: got status %s (%s), want %s", label, elm_status_str(s_), e_,      \
              elm_status_str(want));                                                               \
        CHECK(s_ == ELM_OK || (has(e_, phrase1) && has(e_, phrase2)),                              \
              "%s: message '%s' lacks '%s' or '%s'", label, e_, has("", phrase1) ? "" : phrase1,   \
              has("", phrase2) ? "" : phrase2);                                                    \
    } while (0)

#endif
