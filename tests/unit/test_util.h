/* test_util.h - what the unit tests share: one temporary directory per test binary (the cmocka group fixture),
 * files written below it and read back, checks of the last error, and artifacts served from memory. */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

/* /tmp/hx-<binary>-XXXXXX, made by tu_tmpdir_setup before the first test and removed after the last */
static char tmpdir[256] __attribute__((unused));

/* cmocka group setup (or the first call of a test's own setup): a fresh temporary directory in tmpdir. */
static inline int tu_tmpdir_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/hx-%s-XXXXXX", program_invocation_short_name);
    return mkdtemp(tmpdir) ? 0 : -1;
}

/* cmocka group teardown: removes tmpdir and all below it. */
static inline int tu_tmpdir_teardown(void **state)
{
    (void)state;
    return hx_rm_rf(tmpdir);
}

/* TMPDIR/NAME (the caller frees it). */
static inline char *tu_path(const char *name) { return hx_path_join(tmpdir, name); }

/* Writes LEN bytes of TEXT to TMPDIR/NAME, making the folders it needs. */
static inline void tu_write(const char *name, const char *text, size_t len)
{
    char *p = tu_path(name), *d = xstrdup(p);
    *strrchr(d, '/') = 0;
    assert_int_equal(hx_mkdir_p(d), 0);
    assert_int_equal(hx_write_file(p, text, len), 0);
    free(d);
    free(p);
}

/* Writes the string TEXT to TMPDIR/NAME, making the folders it needs. */
static inline void tu_puts(const char *name, const char *text) { tu_write(name, text, strlen(text)); }

/* DIR/FILE's bytes, NUL-terminated (the caller frees them); fails the test if it cannot be read. */
static inline char *tu_slurp(const char *dir, const char *file)
{
    char *p = hx_path_join(dir, file), *d;
    size_t n;
    if (hx_read_file(p, &d, &n) < 0) fail_msg("%s", hx_last_error());
    free(p);
    return d;
}

/* A report loader over artifacts in memory: UD is {key: {file: JSON}}; a missing one is an error (returns NULL). */
static inline json_t *tu_mem_load(void *ud, const char *key, const char *file)
{
    json_t *v = json_object_get(json_object_get(ud, key), file);
    if (!v) {
        error("no %s in entry %s", file, key);
        return NULL;
    }
    return json_incref(v);
}

/* The call failed (RC -1) and the last error contains NEEDLE. */
static inline void tu_expect_error(int rc, const char *needle)
{
    assert_int_equal(rc, -1);
    if (!strstr(hx_last_error(), needle)) fail_msg("error '%s' lacks '%s'", hx_last_error(), needle);
}

/* The last error starts with "<tmpdir>/<file>:<line>:<col>: " and contains WHAT. */
static inline void tu_assert_error_at(const char *file, int line, int col, const char *what)
{
    char *want = xstrfmt("%s/%s:%d:%d: ", tmpdir, file, line, col);
    const char *e = hx_last_error();
    if (strncmp(e, want, strlen(want)) || !strstr(e, what)) fail_msg("error was: %s\nwanted:    %s...%s", e, want, what);
    free(want);
}

#endif
