/* test_kinds.c - test-only stage kinds registered in build/hx-test: sources, concatenation, slow, failing, out of memory, external files, GPU slots. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "stages/stage.h"
#include "kernels/kernels.h"

/* Every execution appends "<stage> <key>" to $HX_TEST_LOG (when set): tests count executions. */
static void note_execution(const hx_stage_ctx *c)
{
    const char *log = getenv("HX_TEST_LOG");
    if (!log || !*log) return;
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return;
    char *line = xstrfmt("%s %s\n", c->stage_name, c->key);
    ssize_t w = write(fd, line, strlen(line));
    (void)w;
    close(fd);
    free(line);
}

static int write_text(const hx_stage_ctx *c, const char *name, const char *text)
{
    char *p = hx_path_join(c->out_dir, name);
    int rc = hx_write_file(p, text, strlen(text));
    free(p);
    return rc;
}

static char *read_input(const hx_stage_ctx *c, const char *role)
{
    const char *dir = hx_input_dir(c, role);
    if (!dir) return NULL;
    char *p = hx_path_join(dir, "data.txt"), *text = NULL;
    if (hx_read_file(p, &text, NULL) < 0) text = NULL;
    free(p);
    return text;
}

/* ---- t_source: writes data.txt from its parameters ---- */

static int source_run(hx_stage_ctx *c)
{
    note_execution(c);
    long long seed = hx_with_int(c, "seed");
    /* HX_TEST_NONDET=x stands for a stage whose bytes vary between executions (timings, a GPU race). */
    const char *nd = getenv("HX_TEST_NONDET");
    char *text = xstrfmt("%s:%lld:%g%s%s", hx_with_str(c, "text"), seed, hx_with_num(c, "scale"), nd && *nd ? ":" : "",
                         nd && *nd ? nd : "");
    int rc = write_text(c, "data.txt", text);
    json_object_set_new(c->metrics, "bytes", json_integer((json_int_t)strlen(text)));
    free(text);
    return rc;
}

static const hx_field source_fields[] = {
    {"text", HX_T_STR, "\"hello\"", NULL, "the text written to data.txt"},
    {"seed", HX_T_INT, "0", NULL, "a number appended to the text"},
    {"scale", HX_T_NUM, "1.0", NULL, "a real number appended to the text"},
    {"mode", HX_T_STR, "\"plain\"", "plain|fancy", "an enumerated option"},
    {"tags", HX_T_STRLIST, "[]", NULL, "free labels"},
    {0},
};
static const hx_role no_roles[] = {{0}};
const hx_stage_kind hx_kind_t_source = {"t_source", 1, "test: writes data.txt from its parameters", source_fields,
                                        no_roles, 0, source_run, NULL};

/* ---- t_concat: data.txt = a's data.txt, sep, b's data.txt (times repetitions) ---- */

static int concat_run(hx_stage_ctx *c)
{
    note_execution(c);
    char *a = read_input(c, "a"), *b = read_input(c, "b");
    if (!a) {
        free(b);
        return error("t_concat: cannot read input a");
    }
    char *out = xstrdup("");
    for (long long i = 0; i < hx_with_int(c, "times"); i++) {
        char *n = xstrfmt("%s%s%s%s%s", out, i ? hx_with_str(c, "sep") : "", a, b ? hx_with_str(c, "sep") : "", b ? b : "");
        free(out);
        out = n;
    }
    if (hx_with_bool(c, "upper"))
        for (char *p = out; *p; p++)
            if (*p >= 'a' && *p <= 'z') *p -= 32;
    int rc = write_text(c, "data.txt", out);
    free(out);
    free(a);
    free(b);
    return rc;
}

static const hx_field concat_fields[] = {
    {"sep", HX_T_STR, "\"+\"", NULL, "separator"},
    {"times", HX_T_INT, "1", NULL, "repetitions"},
    {"upper", HX_T_BOOL, "false", NULL, "upper-case the result"},
    {"note", HX_T_ANY, "null", NULL, "anything (recorded only)"},
    {0},
};
static const hx_role concat_roles[] = {
    {"a", "t_source|t_concat|t_slow", 0, "the first text"},
    {"b", NULL, 1, "an optional second text"},
    {0},
};
const hx_stage_kind hx_kind_t_concat = {"t_concat", 1, "test: concatenates the data.txt of its inputs",
                                        concat_fields, concat_roles, 0, concat_run, NULL};

/* ---- t_slow: counts `steps` steps of `step_ms`, checkpointing each step in ckpt_dir/step ---- */

static int slow_run(hx_stage_ctx *c)
{
    note_execution(c);
    long long steps = hx_with_int(c, "steps"), ms = hx_with_int(c, "step_ms"), start = 0;
    char *ck = hx_path_join(c->ckpt_dir, "step");
    char *txt = NULL;
    if (hx_read_file(ck, &txt, NULL) == 0) {
        start = atoll(txt);
        free(txt);
    }
    json_object_set_new(c->metrics, "resumed_from", json_integer(start));
    hx_progress prog;
    hx_progress_begin(&prog, c->stage_name, (double)steps, "step");
    for (long long i = start; i < steps; i++) {
        if (c->interrupted && *c->interrupted) {
            free(ck);
            return error("t_slow: interrupted at step %lld of %lld (checkpointed)", i, steps);
        }
        usleep((useconds_t)(ms * 1000));
        char num[32];
        snprintf(num, sizeof num, "%lld", i + 1);
        if (hx_write_file_atomic(ck, num, strlen(num)) < 0) {
            free(ck);
            return -1;
        }
        hx_progress_update(&prog, (double)(i + 1), "step %lld", i + 1);
    }
    hx_progress_end(&prog);
    free(ck);
    char *in = read_input(c, "in");
    char *out = xstrfmt("slow:%lld%s%s", steps, in ? ":" : "", in ? in : "");
    int rc = write_text(c, "data.txt", out);
    free(out);
    free(in);
    return rc;
}

static const hx_field slow_fields[] = {
    {"steps", HX_T_INT, "10", NULL, "number of steps"},
    {"step_ms", HX_T_INT, "100", NULL, "milliseconds per step"},
    {0},
};
static const hx_role slow_roles[] = {{"in", NULL, 1, "an optional text to pass on"}, {0}};
const hx_stage_kind hx_kind_t_slow = {"t_slow", 1, "test: slow, resumable from its checkpoint", slow_fields,
                                      slow_roles, 0, slow_run, NULL};

/* ---- t_fail: fails when asked to ---- */

static int fail_run(hx_stage_ctx *c)
{
    note_execution(c);
    if (hx_with_bool(c, "fail")) return error("t_fail: %s", hx_with_str(c, "message"));
    return write_text(c, "data.txt", "did not fail");
}

static const hx_field fail_fields[] = {
    {"fail", HX_T_BOOL, "true", NULL, "fail or not"},
    {"message", HX_T_STR, "\"failing on purpose\"", NULL, "the error message"},
    {0},
};
static const hx_role fail_roles[] = {{"in", NULL, 1, "anything"}, {0}};
const hx_stage_kind hx_kind_t_fail = {"t_fail", 1, "test: fails on demand", fail_fields, fail_roles, 0, fail_run, NULL};

/* ---- t_file: data.txt = the contents of external files (path parameters), each file or directory listed ---- */

static int append_path(hx_sbuf *sb, const char *path)
{
    if (!*path) return 0;
    if (!strcmp(path, "builtin")) { /* a name, not a path (as the tokenizer's qwen3) */
        hx_sb_puts(sb, "(builtin)");
        return 0;
    }
    if (hx_is_dir(path)) { /* a directory: its files a.txt, b.txt, ... in name order, as a model directory */
        for (char c = 'a'; c <= 'z'; c++) {
            char *p = xstrfmt("%s/%c.txt", path, c), *text = NULL;
            if (hx_file_exists(p) && hx_read_file(p, &text, NULL) == 0) hx_sb_printf(sb, "[%c]%s", c, text);
            free(text);
            free(p);
        }
        return 0;
    }
    char *text = NULL;
    if (hx_read_file(path, &text, NULL) < 0) return error("t_file: %s", hx_last_error());
    hx_sb_puts(sb, text);
    free(text);
    return 0;
}

static int file_run(hx_stage_ctx *c)
{
    note_execution(c);
    hx_sbuf sb = {0};
    int rc = append_path(&sb, hx_with_str(c, "file"));
    json_t *files = hx_with_json(c, "files"), *f;
    size_t i;
    json_array_foreach(files, i, f) if (rc == 0) rc = append_path(&sb, json_string_value(f));
    char *text = hx_sb_take(&sb);
    if (rc == 0) rc = write_text(c, "data.txt", text);
    free(text);
    return rc;
}

static const hx_field file_fields[] = {
    {"file", HX_T_PATH, "\"\"", "builtin", "a file (or directory) read by the stage"},
    {"files", HX_T_PATHLIST, "[]", NULL, "more files or directories"},
    {0},
};
const hx_stage_kind hx_kind_t_file = {"t_file", 1, "test: copies external files", file_fields, no_roles, 0, file_run, NULL};

/* ---- t_oom: runs out of memory (the way a too-large model or batch would) ---- */

static int oom_run(hx_stage_ctx *c)
{
    note_execution(c);
    size_t huge = (size_t)1 << 62; /* more than any machine has: the allocation fails at once */
    if (!strcmp(hx_with_str(c, "how"), "backend")) {
        k_backend *b = k_backend_new("cpu", 1);
        if (!b) return -1;
        b->op->alloc(b, huge);
        k_backend_free(b);
    } else {
        free(xmalloc(huge));
    }
    return write_text(c, "data.txt", "had memory after all");
}

static const hx_field oom_fields[] = {
    {"how", HX_T_STR, "\"xmalloc\"", "xmalloc|backend", "which allocator fails: xmalloc or the CPU backend's"},
    {0},
};
const hx_stage_kind hx_kind_t_oom = {"t_oom", 1, "test: runs out of memory", oom_fields, fail_roles, 0, oom_run, NULL};

/* ---- t_gpu: a needs_gpu kind that sleeps and counts how many of its kind run at once (--gpu-share tests) ---- */

/* t_gpu instances running in this process now: the count at each start is the concurrency (it only grows at a
 * start), recorded in the manifest's metrics, never in the outputs (those must not depend on the schedule). */
static atomic_int gpu_running;

static int gpu_run(hx_stage_ctx *c)
{
    note_execution(c);
    int now = atomic_fetch_add(&gpu_running, 1) + 1;
    usleep((useconds_t)(hx_with_int(c, "ms") * 1000));
    atomic_fetch_sub(&gpu_running, 1);
    json_object_set_new(c->metrics, "running_at_start", json_integer(now));
    json_object_set_new(c->metrics, "device", json_string(c->device ? c->device : "?"));
    char *out = xstrfmt("gpu:%lld", hx_with_int(c, "id"));
    int rc = write_text(c, "data.txt", out);
    free(out);
    return rc;
}

static const hx_field gpu_fields[] = {
    {"id", HX_T_INT, "0", NULL, "what it writes (gpu:<id>)"},
    {"ms", HX_T_INT, "300", NULL, "milliseconds it holds its GPU slot"},
    {0},
};
const hx_stage_kind hx_kind_t_gpu = {"t_gpu", 1, "test: holds a GPU slot for ms milliseconds", gpu_fields,
                                     fail_roles, 1, gpu_run, NULL};

static const hx_stage_kind *const test_kinds[] = {&hx_kind_t_source, &hx_kind_t_concat, &hx_kind_t_slow,
                                                  &hx_kind_t_fail, &hx_kind_t_oom, &hx_kind_t_file,
                                                  &hx_kind_t_gpu, NULL};

void hx_test_kinds_register(void);
void hx_test_kinds_register(void) { hx_stage_kinds_add(test_kinds); }
