/*
 * test_helpers.c - the small helpers every area and the CLI share (src/core/helpers.c, issue 12
 * item 5): the clocks, the suffix and regular-file tests, and JSON files written and read whole.
 */
#include "elm.h"
#include "internal.h"
#include "test.h"
#include "tmpfiles.h"

#include <cjson/cJSON.h>
#include <sys/stat.h>

static volatile double sink;

int main(void) {
    tmpdir_make("elm-helpers");

    /* Clocks: monotonic wall time; CPU time of the process and of this thread grows with work
     * (a busy loop of ~20 ms), and this thread's never exceeds the process's. */
    const double w0 = elm__now_s(), p0 = elm__cpu_s(0), t0 = elm__cpu_s(1);
    double x = 0;
    while (elm__cpu_s(1) - t0 < 0.02)
        for (int i = 0; i < 100000; i++)
            x += 1e-9 * i;
    sink = x;
    const double w1 = elm__now_s(), p1 = elm__cpu_s(0), t1 = elm__cpu_s(1);
    CHECK(w1 - w0 >= 0.015, "wall clock moved %g s over 20 ms of CPU", w1 - w0);
    CHECK(p1 - p0 >= 0.02 && t1 - t0 >= 0.02, "CPU clocks moved %g (process), %g (thread)", p1 - p0,
          t1 - t0);
    CHECK(t1 <= p1 + 1e-3, "thread CPU %g s above process CPU %g s", t1, p1);

    CHECK(elm__ends_with("model.safetensors", ".safetensors"), "suffix");
    CHECK(!elm__ends_with("st", ".safetensors") && elm__ends_with("x", ""), "short or empty");

    /* Regular files: a file is one; a folder, a missing path and a FIFO are not; the open
     * check names why. */
    write_bytes(tpath("f.txt"), "x", 1);
    CHECK(elm__is_file(tpath("f.txt")) && !elm__is_file(tmpdir) && !elm__is_file(tpath("no")),
          "elm__is_file");
    CHECK(mkfifo(tpath("fifo"), 0600) == 0, "mkfifo");
    CHECK(!elm__is_file(tpath("fifo")), "a FIFO counted as a file");
    EXPECT("fifo", elm__check_regular(tpath("fifo")), ELM_ERR_IO, "not a regular file", NULL);
    EXPECT("folder", elm__check_regular(tmpdir), ELM_ERR_IO, "not a regular file", NULL);
    EXPECT("missing", elm__check_regular(tpath("no")), ELM_ERR_IO, "cannot open", "No such file");

    /* JSON text written with one newline, the caller's text unchanged; elm__json_write writes
     * cJSON_Print's text the same way, and elm__json_read reads it back. */
    char text[] = "{\"a\": 1}";
    CHECK_OK(elm__json_write_text(tpath("t.json"), text));
    size_t len;
    char *got = read_bytes(tpath("t.json"), &len);
    CHECK(len == 9 && !memcmp(got, "{\"a\": 1}\n", 9), "wrote %zu bytes: %s", len, got);
    CHECK(!strcmp(text, "{\"a\": 1}"), "the text was changed: %s", text);
    free(got);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "lr", 0.001);
    cJSON_AddStringToObject(j, "task", "shd");
    CHECK_OK(elm__json_write(tpath("j.json"), j));
    char *want = cJSON_Print(j);
    got = read_bytes(tpath("j.json"), &len);
    CHECK(len == strlen(want) + 1 && !memcmp(got, want, len - 1) && got[len - 1] == '\n',
          "elm__json_write: %s", got);
    cJSON *back = NULL;
    CHECK_OK(elm__json_read(tpath("j.json"), 1 << 20, &back));
    CHECK(back && cJSON_Compare(back, j, 1), "read back differs");
    cJSON_Delete(back);
    write_bytes(tpath("bad.json"), "{\"a\": }", 7);
    EXPECT("bad json", elm__json_read(tpath("bad.json"), 1 << 20, &back), ELM_ERR_FORMAT,
           "bad.json: invalid JSON near byte", NULL);
    free(got);
    free(want);
    cJSON_Delete(j);
    tmpdir_remove();
    return test_end();
}
