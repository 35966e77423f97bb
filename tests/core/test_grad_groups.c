/*
 * test_grad_groups.c - grouped gradients (elm_model_set_grad_groups): the batch gradient is
 * bitwise the same for every thread count and for every split of the batch over "processes"
 * (here threads of this test, joined by a reducer built on a barrier, as MPI_Allreduce joins
 * ranks), including uneven splits; it stays within float rounding of the ungrouped gradient;
 * non-finite values propagate; bad settings are refused.
 */
#include "elm.h"
#include "internal.h"
#include "test.h"
#include "test_models.h"

#include <pthread.h>
#include <stdint.h>

/* Grouped vs ungrouped float32 gradients: both are float sums of the same per-sample terms in
 * different groupings (the grouped one is exact after its groups); a float32 sum of n terms is
 * within n * 6e-8 of the largest, here n ~ B T = 240; 1e-4 of the tensor's max allows 7x. */
#define TOL_GROUPED 1e-4

enum { B = 8, T = 30 };
static float *X, *DY;
static size_t NP;

static void fill(const elm_model *m) {
    const elm_config *c = elm_model_config(m);
    size_t nx = (size_t)B * T * (size_t)c->num_input, ny = (size_t)B * T * (size_t)c->num_output;
    free(X);
    free(DY);
    X = malloc(sizeof(float) * nx);
    DY = malloc(sizeof(float) * ny);
    elm__rng r;
    elm__rng_seed(&r, 11);
    for (size_t i = 0; i < nx; i++)
        X[i] = elm__rng_uniform(&r) < 0.05 ? 1.0f : 0.0f;
    for (size_t i = 0; i < ny; i++)
        DY[i] = (float)(elm__rng_uniform(&r) - 0.5) / (float)(B * T);
}

/* Gradient of samples [b0, b1) into out (NP floats). */
static elm_status grad(elm_model *m, int b0, int b1, float *out) {
    const elm_config *c = elm_model_config(m);
    const int n = b1 - b0;
    float *y = malloc(sizeof(float) * (size_t)n * T * (size_t)c->num_output);
    elm_model_zero_grad(m);
    elm_status st = elm_model_forward_train(m, X + (size_t)b0 * T * (size_t)c->num_input, y, n, T);
    if (!st)
        st = elm_model_backward(m, DY + (size_t)b0 * T * (size_t)c->num_output);
    free(y);
    memcpy(out, elm_model_grads(m, NULL), sizeof(float) * NP);
    return st;
}

/* ---- A reducer over NPROC threads of this test (the stand-in for MPI_Allreduce). ---- */
#define NPROC 3
typedef struct {
    pthread_barrier_t bar;
    int32_t *e[NPROC];
    int64_t *a[NPROC];
    int nproc;
} group_t;
typedef struct {
    group_t *g;
    int rank, b0, b1, gsize;
    elm_model *m;
    float *out;
    elm_status st;
} proc_t;

static elm_status red_max(void *user, int32_t *v, size_t n) {
    proc_t *p = user;
    group_t *g = p->g;
    g->e[p->rank] = v;
    pthread_barrier_wait(&g->bar);
    int32_t *mx = malloc(sizeof(int32_t) * n);
    for (size_t i = 0; i < n; i++) {
        mx[i] = g->e[0][i];
        for (int r = 1; r < g->nproc; r++)
            mx[i] = g->e[r][i] > mx[i] ? g->e[r][i] : mx[i];
    }
    pthread_barrier_wait(&g->bar);
    memcpy(v, mx, sizeof(int32_t) * n);
    free(mx);
    return ELM_OK;
}

static elm_status red_sum(void *user, int64_t *v, size_t n) {
    proc_t *p = user;
    group_t *g = p->g;
    g->a[p->rank] = v;
    pthread_barrier_wait(&g->bar);
    int64_t *s = malloc(sizeof(int64_t) * n);
    for (size_t i = 0; i < n; i++) { /* each process adds in its own order: any order gives it */
        s[i] = 0;
        for (int k = 0; k < g->nproc; k++)
            s[i] += g->a[(p->rank + k) % g->nproc][i];
    }
    pthread_barrier_wait(&g->bar);
    memcpy(v, s, sizeof(int64_t) * n);
    free(s);
    return ELM_OK;
}

static void *proc_main(void *arg) {
    proc_t *p = arg;
    elm_grad_reducer r = {.user = p,
                          .total_groups = (B + p->gsize - 1) / p->gsize,
                          .max_i32 = red_max,
                          .sum_i64 = red_sum};
    p->st = elm_model_set_grad_groups(p->m, p->gsize, &r);
    if (!p->st)
        p->st = grad(p->m, p->b0, p->b1, p->out);
    return NULL;
}

/* The gradient of the whole batch over nproc "processes" holding ngr[k] groups each. */
static void split_grad(int kind, int gsize, int nproc, const int *ngr, float *out) {
    group_t g = {.nproc = nproc};
    pthread_barrier_init(&g.bar, NULL, (unsigned)nproc);
    proc_t p[NPROC];
    pthread_t th[NPROC];
    int b = 0;
    for (int k = 0; k < nproc; k++) {
        int e = b + ngr[k] * gsize;
        p[k] = (proc_t){.g = &g,
                        .rank = k,
                        .b0 = b,
                        .b1 = e < B ? e : B,
                        .gsize = gsize,
                        .m = test_model_make(kind, ELM_F32),
                        .out = malloc(sizeof(float) * NP)};
        elm_model_set_threads(p[k].m, 1);
        b = p[k].b1;
    }
    for (int k = 0; k < nproc; k++)
        pthread_create(&th[k], NULL, proc_main, &p[k]);
    for (int k = 0; k < nproc; k++)
        pthread_join(th[k], NULL);
    for (int k = 0; k < nproc; k++) {
        CHECK(p[k].st == ELM_OK, "process %d: %s", k, elm_last_error());
        CHECK(!memcmp(p[k].out, p[0].out, sizeof(float) * NP), "process %d differs from 0", k);
    }
    memcpy(out, p[0].out, sizeof(float) * NP);
    for (int k = 0; k < nproc; k++) {
        free(p[k].out);
        elm_model_free(p[k].m);
    }
    pthread_barrier_destroy(&g.bar);
}

static int first_diff(const float *a, const float *b) {
    for (size_t i = 0; i < NP; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)))
            return (int)i;
    return -1;
}

static void run(int kind) {
    const char *name = test_model_name[kind];
    elm_model *m = test_model_make(kind, ELM_F32);
    NP = elm_model_num_params(m);
    fill(m);
    float *ref = malloc(sizeof(float) * NP), *g = malloc(sizeof(float) * NP),
          *plain = malloc(sizeof(float) * NP);
    /* Ungrouped (the default), two threads. */
    elm_model_set_threads(m, 2);
    CHECK_OK(grad(m, 0, B, plain));
    for (int gsize = 1; gsize <= 8; gsize *= 2) {
        CHECK_OK(elm_model_set_grad_groups(m, gsize, NULL));
        elm_model_set_threads(m, 1);
        CHECK_OK(grad(m, 0, B, ref));
        for (int nt = 2; nt <= 3; nt++) {
            elm_model_set_threads(m, nt);
            CHECK_OK(grad(m, 0, B, g));
            int d = first_diff(ref, g);
            CHECK(d < 0, "%s group %d: %d threads differ from 1 at %d", name, gsize, nt, d);
        }
        /* Split over processes: evenly, and unevenly (4 groups as 2 + 1 + 1, ...). */
        const int ng = (B + gsize - 1) / gsize;
        if (ng >= 2) {
            int two[2] = {ng / 2, ng - ng / 2};
            split_grad(kind, gsize, 2, two, g);
            int d = first_diff(ref, g);
            CHECK(d < 0, "%s group %d: 2 processes differ from 1 at %d", name, gsize, d);
        }
        if (ng >= 3) {
            int three[3] = {ng - 2 * (ng / 3), ng / 3, ng / 3};
            split_grad(kind, gsize, 3, three, g);
            int d = first_diff(ref, g);
            CHECK(d < 0, "%s group %d: 3 processes (%d+%d+%d groups) differ from 1 at %d", name,
                  gsize, three[0], three[1], three[2], d);
        }
        /* Close to the ungrouped float sum. */
        double mx = 0, err = 0;
        for (size_t i = 0; i < NP; i++) {
            mx = fmax(mx, fabs((double)plain[i]));
            err = fmax(err, fabs((double)plain[i] - (double)ref[i]));
        }
        CHECK(mx > 0 && err <= TOL_GROUPED * mx, "%s group %d: grouped vs plain %g of max %g",
              name, gsize, err, mx);
    }
    /* A non-finite dL/dy reaches the gradient as non-finite (the trainer's check sees it). */
    CHECK_OK(elm_model_set_grad_groups(m, 2, NULL));
    DY[3] = NAN;
    CHECK_OK(grad(m, 0, B, g));
    int bad = 0;
    for (size_t i = 0; i < NP; i++)
        bad |= !isfinite(g[i]);
    CHECK(bad, "%s: a NaN dL/dy gave a finite grouped gradient", name);
    free(ref);
    free(g);
    free(plain);
    elm_model_free(m);
}

int main(void) {
    run(K_NIO);
    run(K_SHD);
    elm_model *m = test_model_make(K_NIO, ELM_F32);
    CHECK(elm_model_set_grad_groups(m, 9, NULL) == ELM_ERR_ARG, "group 9 accepted");
    CHECK(elm_model_set_grad_groups(m, -1, NULL) == ELM_ERR_ARG, "group -1 accepted");
    elm_grad_reducer r = {.total_groups = 2};
    CHECK(elm_model_set_grad_groups(m, 2, &r) == ELM_ERR_ARG, "a reducer without calls accepted");
    elm_model_free(m);
    elm_config c;
    elm_config_default(&c, 3, 2, 4);
    c.model_type = ELM_MODEL_LSTM;
    elm_model *l = NULL;
    if (elm_model_create(&l, &c, ELM_F32, 1) == ELM_OK) {
        CHECK(elm_model_set_grad_groups(l, 2, NULL) == ELM_ERR_ARG, "LSTM accepted groups");
        CHECK_OK(elm_model_set_grad_groups(l, 0, NULL));
        elm_model_free(l);
    }
    free(X);
    free(DY);
    return test_end();
}
