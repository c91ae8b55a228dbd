/* test_base_limits.c - base's bounds on inputs: regular files within their kind's cap, capped streams, JSON numbers
 * (non-finite -> null) and thread counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "base/base.h"
#include "test_util.h"

static void assert_error_has(const char *what)
{
    if (!strstr(hx_last_error(), what)) fail_msg("error was: %s\nwanted: ...%s...", hx_last_error(), what);
}

static void test_regular_files_only(void **state)
{
    (void)state;
    char *data;
    size_t len;
    /* /dev/zero: refused before a byte is read (it used to be read until memory ran out) */
    assert_int_equal(hx_read_file("/dev/zero", &data, &len), -1);
    assert_error_has("'/dev/zero' is not a regular file (a device)");
    assert_int_equal(hx_read_input("/dev/zero", HX_IN_DOC, &data, &len), -1);
    /* a FIFO with no writer: refused at once, not waited on */
    char *fifo = tu_path("fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    double t0 = hx_now();
    assert_int_equal(hx_read_file(fifo, &data, &len), -1);
    assert_true(hx_now() - t0 < 1.0);
    assert_error_has("is not a regular file (a FIFO)");
    assert_null(hx_read_json(fifo, 0));
    assert_int_equal(hx_open_input(fifo, HX_IN_STREAM, NULL), -1);
    /* a symlink to a device is judged by its target */
    char *link = tu_path("config.json");
    assert_int_equal(symlink("/dev/zero", link), 0);
    assert_null(hx_read_json(link, 0));
    assert_error_has("is not a regular file (a device)");
    assert_int_equal(hx_read_file(tmpdir, &data, &len), -1);
    assert_error_has("is not a regular file (a directory)");
    char hex[65];
    assert_int_equal(hx_sha256_file_hex("/dev/zero", hex), -1);
    free(fifo);
    free(link);
}

static void test_caps(void **state)
{
    (void)state;
    assert_int_equal(hx_input_limit(HX_IN_RECIPE), (size_t)16 << 20);
    assert_int_equal(hx_input_limit(HX_IN_DOC), (size_t)256 << 20);
    assert_int_equal(hx_input_limit(HX_IN_DATA), (size_t)16384 << 20);
    assert_int_equal(hx_input_limit(HX_IN_STREAM), SIZE_MAX);
    char *p = tu_path("big.json");
    size_t n = (1 << 20) + 1;
    char *big = xmalloc(n);
    memset(big, ' ', n);
    big[0] = '1';
    assert_int_equal(hx_write_file(p, big, n), 0);
    char *data;
    size_t len;
    setenv("HX_MAX_DOC_MB", "1", 1);
    assert_int_equal(hx_input_limit(HX_IN_DOC), (size_t)1 << 20);
    assert_null(hx_read_json(p, JSON_DECODE_ANY));
    assert_error_has("is larger than 1 MiB, the cap on doc inputs");
    assert_error_has("hint: set HX_MAX_DOC_MB=N (MiB) to raise it");
    setenv("HX_MAX_DOC_MB", "2", 1);
    json_t *v = hx_read_json(p, JSON_DECODE_ANY);
    assert_non_null(v);
    assert_int_equal(json_integer_value(v), 1);
    json_decref(v);
    /* a malformed override keeps the default */
    setenv("HX_MAX_DOC_MB", "-3", 1);
    assert_int_equal(hx_input_limit(HX_IN_DOC), (size_t)256 << 20);
    unsetenv("HX_MAX_DOC_MB");
    /* the data cap applies to hx_read_file; exactly at the cap is fine */
    setenv("HX_MAX_DATA_MB", "1", 1);
    assert_int_equal(hx_read_file(p, &data, &len), -1);
    assert_int_equal(truncate(p, 1 << 20), 0);
    assert_int_equal(hx_read_file(p, &data, &len), 0);
    assert_int_equal(len, (size_t)1 << 20);
    assert_int_equal(data[len], 0);
    free(data);
    unsetenv("HX_MAX_DATA_MB");
    free(big);
    free(p);
}

/* A stream (standard input) has no size to check first: it is capped while it is read. */
static void test_stream_cap(void **state)
{
    (void)state;
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    if (pid == 0) { /* writes 3 MiB, or until the reader goes */
        close(fd[0]);
        char buf[4096];
        memset(buf, 'a', sizeof buf);
        for (int i = 0; i < 768; i++)
            if (write(fd[1], buf, sizeof buf) < 0) break;
        _exit(0);
    }
    close(fd[1]);
    setenv("HX_MAX_DATA_MB", "2", 1);
    char *data;
    size_t len;
    assert_int_equal(hx_read_stream(fd[0], "<stdin>", HX_IN_DATA, &data, &len), -1);
    assert_error_has("'<stdin>' is larger than 2 MiB, the cap on data inputs");
    unsetenv("HX_MAX_DATA_MB");
    close(fd[0]);
    waitpid(pid, NULL, 0);
}

static void test_json_numbers(void **state)
{
    (void)state;
    double bad[] = {NAN, INFINITY, -INFINITY};
    for (int i = 0; i < 3; i++) {
        json_t *v = hx_json_num(bad[i]);
        assert_true(json_is_null(v));
        json_t *o = json_pack("{s:o}", "x", v); /* json_real(NAN) was NULL: json_pack failed, the caller crashed */
        assert_non_null(o);
        char *s = json_dumps(o, JSON_COMPACT);
        assert_string_equal(s, "{\"x\":null}");
        free(s);
        json_decref(o);
        char buf[48];
        assert_string_equal(hx_json_numf(buf, "%.6f", bad[i]), "null");
    }
    json_t *v = hx_json_num(-2.5);
    assert_true(json_is_real(v) && json_real_value(v) == -2.5);
    json_decref(v);
    char buf[48];
    assert_string_equal(hx_json_numf(buf, "%.4f", 0.125), "0.1250");
}

static void test_threads(void **state)
{
    (void)state;
    assert_int_equal(hx_threads(3), 3);
    assert_int_equal(hx_threads(100000), HX_MAX_THREADS);
    setenv("OMP_NUM_THREADS", "100000", 1);
    assert_int_equal(hx_threads(0), HX_MAX_THREADS);
    setenv("OMP_NUM_THREADS", "5", 1);
    assert_int_equal(hx_threads(0), 5);
    assert_int_equal(hx_threads(-1), 5);
    unsetenv("OMP_NUM_THREADS");
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(hx_threads(0), cpus < 1 ? 1 : cpus > HX_MAX_THREADS ? HX_MAX_THREADS : cpus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regular_files_only), cmocka_unit_test(test_caps),    cmocka_unit_test(test_stream_cap),
        cmocka_unit_test(test_json_numbers),       cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, tu_tmpdir_setup, tu_tmpdir_teardown);
}
