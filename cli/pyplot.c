/*
 * pyplot.c - finding and running the Python plotting scripts (`elm plot`, `elm sweep`).
 *
 * Only drawing is done in Python (matplotlib); every number comes from elm. Two things must be
 * found:
 *   the interpreter  $ELM_PYTHON when set (and then only it), else the first of `python3` on
 *                    PATH and /usr/bin/python3 that imports numpy and matplotlib, so a conda or
 *                    pyenv interpreter on PATH is used when it has them, and Debian's otherwise;
 *   the scripts      $ELM_SCRIPTS when set (and then only it), else share/elm beside the
 *                    executable's folder (an installed elm: PREFIX/bin/elm, PREFIX/share/elm),
 *                    the install folder compiled in (ELM_DATADIR), and the scripts/ folder of
 *                    the source tree elm was built from (ELM_SOURCE_DIR).
 * When nothing fits, the message says what was tried and how to fix it.
 */
#include "cli.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef ELM_SOURCE_DIR
#define ELM_SOURCE_DIR "."
#endif
#ifndef ELM_DATADIR
#define ELM_DATADIR "/usr/local/share/elm"
#endif

#define DEBIAN_PYTHON "/usr/bin/python3"

/* Runs args (args[0] a path, no shell) and returns its exit status, or -1 if it did not exit
 * normally, or 127 if it could not be started. quiet: stdout and stderr to /dev/null. */
static int run_wait(char *const *args, int quiet) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return 127;
    if (pid == 0) {
        if (quiet) {
            int fd = open("/dev/null", O_WRONLY);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
                close(fd);
            }
        }
        execv(args[0], args);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Which of numpy and matplotlib `py` lacks: 0 none, else a static phrase. */
static const char *python_lacks(const char *py) {
    static const char probe[] = "import sys\n"
                                "try:\n import numpy\nexcept Exception:\n sys.exit(3)\n"
                                "try:\n import matplotlib\nexcept Exception:\n sys.exit(4)\n";
    if (access(py, X_OK) != 0)
        return "not found";
    char *args[] = {(char *)py, "-c", (char *)probe, NULL};
    switch (run_wait(args, 1)) {
    case 0:
        return NULL;
    case 3:
        return "no numpy";
    case 4:
        return "no matplotlib";
    default:
        return "does not run";
    }
}

/* `name` looked up in PATH into buf; 0 if not there. */
static int in_path(const char *name, char *buf, size_t n) {
    const char *path = getenv("PATH");
    while (path && *path) {
        const char *end = strchr(path, ':');
        size_t len = end ? (size_t)(end - path) : strlen(path);
        if (len > 0 && snprintf(buf, n, "%.*s/%s", (int)len, path, name) < (int)n &&
            access(buf, X_OK) == 0)
            return 1;
        path = end ? end + 1 : NULL;
    }
    return 0;
}

/* A message about plotting: an error, or (note) a note for commands whose plot is an extra. */
static void say(int note, const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "elm: %s: ", note ? "note: no plot" : "error");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
}

const char *cli_python(int note) {
    static char found[PATH_MAX];
    const char *env = getenv("ELM_PYTHON");
    if (env && *env) {
        const char *why = python_lacks(env);
        if (!why)
            return env;
        say(note, "ELM_PYTHON=%s: %s; plots need Python 3 with numpy and matplotlib", env, why);
        fprintf(stderr, "hint: point ELM_PYTHON at an interpreter that has both, or unset it\n");
        return NULL;
    }
    char cand[2][PATH_MAX];
    int nc = 0;
    if (in_path("python3", cand[0], sizeof cand[0]))
        nc++;
    /* Debian's interpreter too, unless the one on PATH is the same file. */
    struct stat a, b;
    if (!(nc == 1 && stat(cand[0], &a) == 0 && stat(DEBIAN_PYTHON, &b) == 0 &&
          a.st_dev == b.st_dev && a.st_ino == b.st_ino))
        snprintf(cand[nc++], sizeof cand[0], "%s", DEBIAN_PYTHON);
    char tried[2 * PATH_MAX + 128] = "";
    for (int k = 0; k < nc; k++) {
        const char *why = python_lacks(cand[k]);
        if (!why) {
            memcpy(found, cand[k], sizeof found); /* both PATH_MAX, NUL-terminated */
            return found;
        }
        size_t len = strlen(tried);
        snprintf(tried + len, sizeof tried - len, "%s%s (%s)", k ? ", " : "", cand[k], why);
    }
    say(note, "no Python interpreter with numpy and matplotlib, which plots need (tried %s)%s",
        tried, "");
    fprintf(stderr, "hint: install them (Debian: apt-get install python3-matplotlib) or set "
                    "ELM_PYTHON to an interpreter that has them\n");
    return NULL;
}

/* The folder of the running executable (/proc/self/exe), into buf; 0 if unknown. */
static int exe_dir(char *buf, size_t n) {
    ssize_t len = readlink("/proc/self/exe", buf, n - 1);
    if (len <= 0)
        return 0;
    buf[len] = 0;
    char *slash = strrchr(buf, '/');
    if (!slash)
        return 0;
    *slash = 0;
    return 1;
}

/* Candidate script folders in search order; returns their number. */
static int script_dirs(char dirs[][PATH_MAX], int max) {
    int n = 0;
    const char *env = getenv("ELM_SCRIPTS");
    if (env && *env) {
        snprintf(dirs[n++], PATH_MAX, "%s", env);
        return n;
    }
    char exe[PATH_MAX];
    if (exe_dir(exe, sizeof exe) && n < max &&
        snprintf(dirs[n], PATH_MAX, "%s/../share/elm", exe) < PATH_MAX)
        n++;
    if (n < max)
        snprintf(dirs[n++], PATH_MAX, "%s", ELM_DATADIR);
    if (n < max)
        snprintf(dirs[n++], PATH_MAX, "%s/scripts", ELM_SOURCE_DIR);
    return n;
}

char *cli_script(const char *name, int note) {
    char dirs[3][PATH_MAX];
    int n = script_dirs(dirs, 3);
    char tried[3 * PATH_MAX + 16] = "";
    for (int k = 0; k < n; k++) {
        char *p = elm__path_join(dirs[k], name);
        if (!p) {
            cli_error("out of memory");
            return NULL;
        }
        if (access(p, R_OK) == 0)
            return p;
        free(p);
        size_t len = strlen(tried);
        snprintf(tried + len, sizeof tried - len, "%s%s", k ? ", " : "", dirs[k]);
    }
    say(note, "cannot find the plotting script %s (looked in %s)", name, tried);
    fprintf(stderr, "hint: install elm (make install) or set ELM_SCRIPTS to the folder that "
                    "holds %s (scripts/ in the elm sources)\n",
            name);
    return NULL;
}

int cli_run_python(const char *python, char *const *args) {
    int rc = run_wait(args, 0);
    if (rc == 0)
        return 0;
    if (rc == 127)
        return cli_error("cannot run %s", python);
    return cli_error("the plotting script %s failed (exit %d)", args[1], rc);
}
