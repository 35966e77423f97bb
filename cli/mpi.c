/*
 * mpi.c - `mpirun -np N elm train ...` and `mpirun -np N elm sweep ...`: the CLI's side of
 * data-parallel training over Open MPI (docs/CLUSTERS.md).
 *
 * The training library never calls MPI: it takes an elm_train_dist (elm_train.h) whose calls
 * are filled here with MPI_Allreduce (MPI_MAX on int32, MPI_SUM on int64: the exact gradient
 * sum) and MPI_Allgatherv (per-sample losses, evaluation outputs). MPI starts only when the
 * launcher's environment says this process is one of several (Open MPI's OMPI_COMM_WORLD_SIZE,
 * or PMI_SIZE as srun and other PMI launchers set it); a plain `elm train` never touches MPI.
 *
 * Faults: MPI errors are returned (MPI_ERRORS_RETURN), reported naming this rank, and end the
 * job with MPI_Abort, as does any failure of a rank's own (data it cannot read, a bad setting):
 * the other ranks would otherwise wait for it in the next collective. A rank killed outright is
 * noticed by mpirun, which ends the others and names the rank and its signal. Process 0 alone
 * writes the run folder, checkpoints atomically (state.json last), so a job ended at any moment
 * resumes from the last complete checkpoint, with any number of ranks.
 *
 * Built without MPI (no Open MPI found by CMake), the same calls report that under a launcher.
 */
#include "cli.h"
#include "elm_train.h"
#include "internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#ifdef ELM_MPI
#include <mpi.h>
#endif

int cli_mpi_rank, cli_mpi_size = 1;
#ifdef ELM_MPI
static int mpi_started;
#endif
static double stat_secs, stat_bytes;
static long stat_calls;

/* The number of processes a launcher says this job has, or 1 (the variable in *var). */
int cli_mpi_env_size(const char **var) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && atoi(v) > 0) {
            if (var)
                *var = vars[i];
            return atoi(v);
        }
    }
    return 1;
}

#ifdef ELM_MPI
/* An MPI call's error as an elm_status, with the call and this rank in the message. */
static elm_status mpi_check(int rc, const char *call) {
    if (rc == MPI_SUCCESS)
        return ELM_OK;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return elm__fail(ELM_ERR_IO, "%s failed on rank %d of %d: %s (a rank died or the network "
                                 "failed)",
                     call, cli_mpi_rank, cli_mpi_size, msg);
}

/* One in-place allreduce, timed and counted for the closing statistics (width: bytes a value). */
static elm_status allreduce(void *v, size_t n, MPI_Datatype type, MPI_Op op, double width,
                            const char *call) {
    if (n > INT_MAX)
        return elm__fail(ELM_ERR_ARG, "MPI: %zu values in one call", n);
    const double t0 = elm__now_s();
    int rc = MPI_Allreduce(MPI_IN_PLACE, v, (int)n, type, op, MPI_COMM_WORLD);
    stat_secs += elm__now_s() - t0;
    stat_bytes += width * (double)n;
    stat_calls++;
    return mpi_check(rc, call);
}

static elm_status d_max_i32(void *user, int32_t *v, size_t n) {
    (void)user;
    return allreduce(v, n, MPI_INT32_T, MPI_MAX, 4.0, "MPI_Allreduce (max)");
}

static elm_status d_sum_i64(void *user, int64_t *v, size_t n) {
    (void)user;
    return allreduce(v, n, MPI_INT64_T, MPI_SUM, 8.0, "MPI_Allreduce (sum)");
}

static elm_status d_allgather(void *user, void *buf, const int *counts, size_t item_bytes) {
    (void)user;
    int *bc = malloc(sizeof(int) * 2 * (size_t)cli_mpi_size);
    if (!bc)
        return elm__fail(ELM_ERR_NOMEM, "out of memory");
    int *disp = bc + cli_mpi_size;
    double off = 0;
    for (int r = 0; r < cli_mpi_size; r++) {
        double b = (double)counts[r] * (double)item_bytes;
        if (off + b > INT_MAX) {
            free(bc);
            return elm__fail(ELM_ERR_ARG, "MPI: a gather of %.0f bytes is too large", off + b);
        }
        bc[r] = (int)b;
        disp[r] = (int)off;
        off += b;
    }
    int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, bc, disp, MPI_BYTE,
                            MPI_COMM_WORLD);
    free(bc);
    return mpi_check(rc, "MPI_Allgatherv");
}
#endif

int cli_mpi_built(void) {
#ifdef ELM_MPI
    return 1;
#else
    return 0;
#endif
}

int cli_mpi_start(const char *cmd, int *argc, char ***argv) {
    const char *var = NULL;
    const int n = cli_mpi_env_size(&var);
    if (n <= 1)
        return 0;
#ifdef ELM_MPI
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "elm: error: %s: MPI_Init failed (started under an MPI launcher: %s=%d)\n",
                cmd, var, n);
        return 1;
    }
    mpi_started = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &cli_mpi_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &cli_mpi_size);
    /* Only the main thread calls MPI while OpenMP threads compute (FUNNELED). A library that
     * grants less promises nothing once other threads exist: one thread per rank is safe. */
    if (provided < MPI_THREAD_FUNNELED && cli_mpi_rank == 0)
        fprintf(stderr, "elm: warning: %s: this MPI library gives thread support level %d, below "
                        "MPI_THREAD_FUNNELED; run with --threads 1 under mpirun\n",
                cmd, provided);
    return 0;
#else
    (void)argc;
    (void)argv;
    /* Once for the job, not once per process. */
    const char *r = getenv("OMPI_COMM_WORLD_RANK") ? getenv("OMPI_COMM_WORLD_RANK")
                                                    : getenv("PMI_RANK");
    if (r && atoi(r) != 0)
        return 2;
    fprintf(stderr,
            "elm: error: %s: this elm is not an MPI build, but it was started under an MPI "
            "launcher (%s=%d): each of the %d processes would run the whole job alone, into the "
            "same folder. Rebuild elm with Open MPI installed (libopenmpi-dev; CMake finds it), "
            "or start one process without mpirun.\n",
            cmd, var, n, n);
    return 2;
#endif
}

void cli_mpi_train_dist(elm_train_dist *d) {
    memset(d, 0, sizeof *d);
    d->rank = cli_mpi_rank;
    d->size = cli_mpi_size;
#ifdef ELM_MPI
    d->max_i32 = d_max_i32;
    d->sum_i64 = d_sum_i64;
    d->allgather = d_allgather;
#endif
}

void cli_mpi_stats(double *secs, double *bytes, long *calls) {
    *secs = stat_secs;
    *bytes = stat_bytes;
    *calls = stat_calls;
}

void cli_mpi_stats_reset(void) {
    stat_secs = stat_bytes = 0;
    stat_calls = 0;
}

int cli_mpi_max_ints(int *v, int n, int *sum) {
#ifdef ELM_MPI
    if (mpi_started) {
        int s = *sum;
        if (MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS ||
            MPI_Allreduce(&s, sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS)
            return cli_error("MPI_Allreduce failed on rank %d of %d", cli_mpi_rank, cli_mpi_size);
    }
#else
    (void)v;
    (void)n;
    (void)sum;
#endif
    return 0;
}

int cli_mpi_finish(int rc) {
#ifdef ELM_MPI
    if (mpi_started)
        MPI_Finalize();
    mpi_started = 0;
#endif
    return rc;
}

int cli_mpi_end(int rc) {
#ifdef ELM_MPI
    if (!mpi_started)
        return rc;
    if (rc != 0 && rc != 130) { /* 130: every rank stopped together on a signal */
        /* The other ranks may wait in a collective for this one: end the whole job. */
        fprintf(stderr, "elm: rank %d of %d: ending the MPI job (exit %d)\n", cli_mpi_rank,
                cli_mpi_size, rc);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, rc);
    }
    MPI_Finalize();
    mpi_started = 0;
#endif
    return rc;
}
