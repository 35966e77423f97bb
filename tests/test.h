/*
 * test.h - the tiny harness every test executable uses (run by CTest, one executable per area).
 *
 * CHECK() records a failure and goes on; main() ends with `return test_end();`, which prints
 * "N passed, N failed" and exits non-zero on any failure. A test that needs ../shared calls
 * test_shared(), which exits 77 (CTest: skipped) with a message when it is absent.
 *
 * Skips are never silent passes: a test that leaves out some of its checks calls test_skip_part()
 * and then ends with 77 (skipped) instead of 0, unless something failed. With ELM_REQUIRE_SHARED=1
 * in the environment (CI sets it: CI always has ../shared) a missing shared folder is a failure.
 */
#ifndef ELM_TEST_H
#define ELM_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_passed, test_failed, test_skipped_parts;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            test_passed++;                                                                         \
        } else {                                                                                   \
            test_failed++;                                                                         \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
        }                                                                                          \
    } while (0)

/* Checks an elm_status is ELM_OK and prints elm_last_error() when not. */
#define CHECK_OK(expr)                                                                             \
    do {                                                                                           \
        elm_status st_ = (expr);                                                                   \
        CHECK(st_ == ELM_OK, "%s -> %s: %s", #expr, elm_status_str(st_), elm_last_error());        \
    } while (0)

/* Some checks were left out (the message says which and why): the test reports skipped. */
#define test_skip_part(...)                                                                        \
    do {                                                                                           \
        test_skipped_parts++;                                                                      \
        printf("SKIP (part): ");                                                                   \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
    } while (0)

static inline int test_end(void) {
    printf("%d passed, %d failed, %d parts skipped\n", test_passed, test_failed,
           test_skipped_parts);
    return test_failed ? 1 : test_skipped_parts ? 77 : 0;
}

/* ELM_REQUIRE_SHARED=1: a missing ../shared is an error, not a reason to skip (CI). */
static inline int test_shared_required(void) {
    const char *r = getenv("ELM_REQUIRE_SHARED");
    return r && !strcmp(r, "1");
}

/* The shared reference folder, or NULL with a message; with ELM_REQUIRE_SHARED=1 a failure. */
static inline const char *test_shared_opt(void) {
    const char *s = getenv("ELM_SHARED");
    static char probe[4096];
    if (s) {
        snprintf(probe, sizeof probe, "%s/docs/ELM-SPEC.md", s);
        FILE *f = fopen(probe, "rb");
        if (f) {
            fclose(f);
            return s;
        }
    }
    if (test_shared_required()) {
        test_failed++;
        fprintf(stderr, "FAIL: ELM_REQUIRE_SHARED=1 but the shared reference folder is absent: %s\n",
                s ? s : "(ELM_SHARED unset)");
    } else {
        printf("the shared reference folder (../shared beside the checkout, or $ELM_SHARED) is "
               "absent: %s\n",
               s ? s : "(unset)");
    }
    return NULL;
}

/* The shared reference folder, or exit 77 (skip) saying why (exit 1 under ELM_REQUIRE_SHARED). */
static inline const char *test_shared(void) {
    const char *s = test_shared_opt();
    if (s)
        return s;
    if (test_shared_required())
        exit(1);
    printf("SKIP: the shared reference folder is needed\n");
    exit(77);
}

/*
 * tests/fixtures/NAME (NAME "": the folder itself) into buf[n]: under $ELM_SOURCE_DIR, which CTest
 * sets, or else beside the test's own source file `here` (its __FILE__, tests/AREA/test_x.c, an
 * absolute path as CMake compiles it), so that a test run by hand finds its fixtures too.
 * test_fixture(buf, name) passes the caller's __FILE__ and sizeof buf (buf must be an array).
 */
static inline const char *test_fixture_at(char *buf, size_t n, const char *here, const char *name) {
    const char *src = getenv("ELM_SOURCE_DIR"), *sep = *name ? "/" : "";
    if (src) {
        snprintf(buf, n, "%s/tests/fixtures%s%s", src, sep, name);
        return buf;
    }
    snprintf(buf, n, "%s", here);
    for (int up = 0; up < 2; up++) { /* tests/AREA/test_x.c -> tests */
        char *slash = strrchr(buf, '/');
        if (slash)
            *slash = 0;
    }
    size_t len = strlen(buf);
    snprintf(buf + len, n - len, "/fixtures%s%s", sep, name);
    return buf;
}
#define test_fixture(buf, name) test_fixture_at(buf, sizeof(buf), __FILE__, name)

/*
 * Compares got against want with allclose semantics per element, |g - w| <= atol + rtol * scale,
 * where scale = max|want| when rel_to_max is set (outputs cross zero, so element-wise relative
 * error alone is meaningless) or |w| otherwise. On failure prints the worst index.
 */
static inline int test_close(const char *name, const double *got, const double *want, size_t n,
                             double atol, double rtol, int rel_to_max, double *worst_out) {
    double maxw = 0;
    for (size_t i = 0; i < n; i++)
        maxw = fmax(maxw, fabs(want[i]));
    double worst = 0;
    size_t wi = 0;
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(got[i] - want[i]);
        double scale = rel_to_max ? maxw : fabs(want[i]);
        if (!(d <= atol + rtol * scale))
            ok = 0;
        double r = d / (maxw > 0 ? maxw : 1);
        if (r > worst || isnan(d)) {
            worst = isnan(d) ? (double)INFINITY : r;
            wi = i;
        }
    }
    if (worst_out)
        *worst_out = worst;
    CHECK(ok, "%s: worst at [%zu]: got %.17g want %.17g (abs %.3g, rel-to-max %.3g)", name, wi,
          n ? got[wi] : 0.0, n ? want[wi] : 0.0, n ? fabs(got[wi] - want[wi]) : 0.0, worst);
    return ok;
}

#endif
