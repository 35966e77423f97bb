/*
 * helpers.c - small helpers every area and the CLI share, so that each exists once: a monotonic
 * clock and CPU-time clocks, a suffix test, a regular-file test, JSON files read and written whole
 * (atomically), and
 * the first difference between two JSON objects.
 */
#include "internal.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double elm__now_s(void) {
    return clock_s(CLOCK_MONOTONIC);
}

double elm__cpu_s(int thread) {
    return clock_s(thread ? CLOCK_THREAD_CPUTIME_ID : CLOCK_PROCESS_CPUTIME_ID);
}

int elm__ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

int elm__is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

int elm__same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return a && b && stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

elm_status elm__json_read(const char *path, size_t max_bytes, struct cJSON **out) {
    *out = NULL;
    char *js;
    size_t len;
    elm_status st = elm__read_file(path, max_bytes, &js, &len);
    if (st)
        return st;
    const char *end = NULL;
    *out = cJSON_ParseWithOpts(js, &end, 1);
    size_t at = end ? (size_t)(end - js) : 0;
    free(js);
    if (!*out)
        return elm__fail(ELM_ERR_FORMAT, "%s: invalid JSON near byte %zu", path, at);
    return ELM_OK;
}

elm_status elm__json_write(const char *path, const struct cJSON *j) {
    char *s = cJSON_Print(j);
    if (!s)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    elm_status st = elm__json_write_text(path, s);
    free(s);
    return st;
}

elm_status elm__json_write_text(const char *path, char *js) {
    size_t n = strlen(js);
    js[n] = '\n'; /* in place of the NUL: the text and a newline in one write */
    elm_status st = elm__write_file_atomic(path, js, n + 1);
    js[n] = 0;
    return st;
}

const cJSON *elm__json_first_difference(const cJSON *a, const cJSON *b, int (*skip)(const char *),
                                        char **va, char **vb) {
    *va = *vb = NULL;
    for (const cJSON *x = a ? a->child : NULL; x; x = x->next) {
        const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, x->string);
        if (!y || (skip && skip(x->string)))
            continue;
        char *px = cJSON_PrintUnformatted(x), *py = cJSON_PrintUnformatted(y);
        if (px && py && strcmp(px, py)) {
            *va = px;
            *vb = py;
            return x;
        }
        free(px);
        free(py);
    }
    return NULL;
}
