/* test_archive.c - hx export/import (interp/archive.c): member names, round trips, provenance, every truncation refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "interp/archive.h"
#include "interp/canon.h"
#include "interp/store.h"
#include "test_util.h"

static char KSRC[65], KDST[65];
static const char *RUN_ID = "20260101-120000-00001";

static void test_member_names(void **state)
{
    (void)state;
    char key[65], id[32];
    const char *rel = NULL;
    const char *k = "ab00000000000000000000000000000000000000000000000000000000000001";
    char *m = xstrfmt("store/ab/%s/manifest.json", k), *o = xstrfmt("store/ab/%s/sub/w.bin", k);
    char *wrong_shard = xstrfmt("store/cd/%s/manifest.json", k), *esc = xstrfmt("store/ab/%s/../../x", k);
    assert_int_equal(hx_archive_member("hx-export.json", key, id, &rel), HX_MEMBER_INDEX);
    assert_int_equal(hx_archive_member(m, key, id, &rel), HX_MEMBER_MANIFEST);
    assert_string_equal(key, k);
    assert_int_equal(hx_archive_member(o, key, id, &rel), HX_MEMBER_OUTPUT);
    assert_string_equal(rel, "sub/w.bin");
    assert_int_equal(hx_archive_member("runs/20260101-120000-00001/run.json", key, id, &rel), HX_MEMBER_RUN);
    assert_string_equal(id, "20260101-120000-00001");
    assert_int_equal(hx_archive_member(wrong_shard, key, id, &rel), HX_MEMBER_BAD);
    assert_int_equal(hx_archive_member(esc, key, id, &rel), HX_MEMBER_BAD);
    assert_int_equal(hx_archive_member("runs/latest", key, id, &rel), HX_MEMBER_BAD);
    assert_int_equal(hx_archive_member("runs/20260101-120000-00001/../../x", key, id, &rel), HX_MEMBER_BAD);
    assert_int_equal(hx_archive_member("./hx-export.json", key, id, &rel), HX_MEMBER_BAD);
    assert_int_equal(hx_archive_member("store/ab/short/manifest.json", key, id, &rel), HX_MEMBER_BAD);
    assert_int_equal(hx_archive_member("locks/x.lock", key, id, &rel), HX_MEMBER_BAD);
    free(m);
    free(o);
    free(wrong_shard);
    free(esc);
}

/* A committed entry like the executor's: src (a.txt, sub/b.bin) and dst (input src, c.txt). */
static void produce(hx_store *s, const char *stage, const json_t *with, const json_t *inputs, char key[65],
                    const char *const *files, int n)
{
    assert_int_equal(hx_canon_key("t_unit", 1, with, inputs, NULL, key), 0);
    char *out, *ckpt;
    assert_int_equal(hx_store_begin(s, key, &out, &ckpt), 0);
    for (int i = 0; i < n; i++) {
        char *p = hx_path_join(out, files[2 * i]), *slash = strrchr(p, '/');
        *slash = 0;
        assert_int_equal(hx_mkdir_p(p), 0);
        *slash = '/';
        assert_int_equal(hx_write_file(p, files[2 * i + 1], strlen(files[2 * i + 1])), 0);
        free(p);
    }
    json_t *m = json_pack("{s:i,s:s,s:s,s:s,s:i,s:O,s:O,s:s}", "hx_manifest", 1, "key", key, "stage", stage, "kind",
                          "t_unit", "kind_version", 1, "with", with, "inputs", inputs, "run_id", RUN_ID);
    assert_int_equal(hx_store_commit(s, key, m), 0);
    json_decref(m);
    free(out);
    free(ckpt);
}


static int entries_in(const hx_store *s)
{
    return hx_store_has(s, KSRC) + hx_store_has(s, KDST);
}

static int partial_is_empty(const hx_store *s)
{
    char *p = hx_path_join(s->root, "partial");
    DIR *d = opendir(p);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d) closedir(d);
    free(p);
    return n == 0;
}

static int setup(void **state)
{
    if (tu_tmpdir_setup(state)) return -1;
    hx_store s;
    char *root = tu_path("A");
    if (hx_store_open(&s, root) < 0) return -1;
    json_t *w1 = json_pack("{s:s}", "text", "hello"), *w2 = json_pack("{s:i}", "times", 2);
    json_t *none = json_object();
    static const char *src_files[] = {"a.txt", "alpha", "sub/b.bin", "\x01\x02 binary-ish"};
    produce(&s, "src", w1, none, KSRC, src_files, 2);
    json_t *in = json_pack("{s:s}", "a", KSRC);
    static const char *dst_files[] = {"c.txt", "alpha alpha"};
    produce(&s, "dst", w2, in, KDST, dst_files, 1);
    json_t *run = json_pack("{s:s,s:s,s:s,s:{s:s},s:[{s:s,s:s,s:s},{s:s,s:s,s:s}]}", "run_id", RUN_ID, "status", "ok",
                            "started", "2026-01-01T12:00:00Z", "recipe", "name", "unit", "stages", "stage", "src", "key", KSRC, "state", "executed",
                            "stage", "dst", "key", KDST, "state", "executed");
    int rc = hx_store_write_run(&s, RUN_ID, run);
    json_decref(run);
    json_decref(w1);
    json_decref(w2);
    json_decref(none);
    json_decref(in);
    hx_store_release(&s);
    free(root);
    return rc;
}

static void test_run_round_trip(void **state)
{
    (void)state;
    hx_store a, b;
    char *ra = tu_path("A"), *rb = tu_path("B"), *file = tu_path("run.tar.zst"), *again = tu_path("again.tar.zst");
    assert_int_equal(hx_store_open(&a, ra), 0);
    assert_int_equal(hx_store_open(&b, rb), 0);
    const char *runs[] = {RUN_ID};
    json_t *rep = json_object();
    assert_int_equal(hx_archive_export(&a, runs, 1, NULL, 0, 0, NULL, file, rep), 0);
    assert_int_equal(json_integer_value(json_object_get(rep, "entries")), 2);
    assert_int_equal(json_integer_value(json_object_get(rep, "with_outputs")), 2);
    assert_int_equal(json_integer_value(json_object_get(rep, "runs")), 1);
    json_decref(rep);
    /* deterministic: the same export, byte for byte */
    assert_int_equal(hx_archive_export(&a, runs, 1, NULL, 0, 0, NULL, again, NULL), 0);
    char *x, *y;
    size_t nx, ny;
    assert_int_equal(hx_read_file(file, &x, &nx), 0);
    assert_int_equal(hx_read_file(again, &y, &ny), 0);
    assert_int_equal(nx, ny);
    assert_memory_equal(x, y, nx);
    free(x);
    free(y);

    rep = json_object();
    assert_int_equal(hx_archive_import(&b, file, 0, rep), 0);
    assert_int_equal(json_array_size(json_object_get(rep, "added")), 2);
    assert_int_equal(json_array_size(json_object_get(rep, "runs_added")), 1);
    json_decref(rep);
    assert_int_equal(entries_in(&b), 2);
    assert_int_equal(hx_store_verify(&b, KSRC, 1), 0); /* every byte re-hashed */
    assert_int_equal(hx_store_verify(&b, KDST, 0), 0); /* the cheap check: mtimes were restored */
    json_t *run = hx_store_read_run(&b, "latest");
    assert_non_null(run);
    assert_string_equal(json_string_value(json_object_get(run, "run_id")), RUN_ID);
    json_decref(run);
    assert_true(partial_is_empty(&b));

    rep = json_object();
    assert_int_equal(hx_archive_import(&b, file, 0, rep), 0); /* again: everything already there */
    assert_int_equal(json_array_size(json_object_get(rep, "added")), 0);
    assert_int_equal(json_array_size(json_object_get(rep, "present")), 2);
    assert_int_equal(json_array_size(json_object_get(rep, "runs_present")), 1);
    json_decref(rep);
    hx_store_release(&a);
    hx_store_release(&b);
    free(ra);
    free(rb);
    free(file);
    free(again);
}

static void test_key_provenance(void **state)
{
    (void)state;
    hx_store a, k;
    char *ra = tu_path("A"), *rk = tu_path("K"), *file = tu_path("key.tar.zst");
    assert_int_equal(hx_store_open(&a, ra), 0);
    assert_int_equal(hx_store_open(&k, rk), 0);
    const char *keys[] = {KDST};
    json_t *rep = json_object();
    assert_int_equal(hx_archive_export(&a, NULL, 0, keys, 1, 0, NULL, file, rep), 0);
    assert_int_equal(json_integer_value(json_object_get(rep, "manifests_only")), 1);
    json_decref(rep);
    rep = json_object();
    assert_int_equal(hx_archive_import(&k, file, 0, rep), 0);
    assert_int_equal(json_array_size(json_object_get(rep, "provenance")), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(rep, "provenance"), 0), "key")),
                        KSRC);
    json_decref(rep);
    assert_true(hx_store_has(&k, KDST));
    assert_false(hx_store_has(&k, KSRC)); /* a manifest without outputs is no entry */
    /* --with-inputs: the input comes whole */
    assert_int_equal(hx_archive_export(&a, NULL, 0, keys, 1, 1, NULL, file, NULL), 0);
    assert_int_equal(hx_archive_import(&k, file, 0, NULL), 0);
    assert_int_equal(entries_in(&k), 2);
    hx_store_release(&a);
    hx_store_release(&k);
    free(ra);
    free(rk);
    free(file);
}

/* Every prefix of an export is refused, and leaves the store as it was (no entry, no run, no staging). */
static void test_every_truncation(void **state)
{
    (void)state;
    hx_store a, t;
    char *ra = tu_path("A"), *rt = tu_path("T"), *file = tu_path("full.tar.zst"), *cut = tu_path("cut.tar.zst");
    assert_int_equal(hx_store_open(&a, ra), 0);
    assert_int_equal(hx_store_open(&t, rt), 0);
    const char *runs[] = {RUN_ID};
    assert_int_equal(hx_archive_export(&a, runs, 1, NULL, 0, 0, NULL, file, NULL), 0);
    char *data;
    size_t n;
    assert_int_equal(hx_read_file(file, &data, &n), 0);
    int tried = 0;
    for (size_t len = 0; len < n; len += 1 + len / 24, tried++) {
        assert_int_equal(hx_write_file(cut, data, len), 0);
        assert_int_equal(hx_archive_import(&t, cut, 0, NULL), -1);
        assert_int_equal(entries_in(&t), 0);
        assert_null(hx_store_read_run(&t, RUN_ID));
        assert_true(partial_is_empty(&t));
    }
    assert_true(tried > 20);
    /* one flipped byte in the compressed stream: refused (zstd's checksum or our digests) */
    data[n / 2] ^= 0x20;
    assert_int_equal(hx_write_file(cut, data, n), 0);
    assert_int_equal(hx_archive_import(&t, cut, 0, NULL), -1);
    assert_int_equal(entries_in(&t), 0);
    hx_clear_error();
    free(data);
    hx_store_release(&a);
    hx_store_release(&t);
    free(ra);
    free(rt);
    free(file);
    free(cut);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_member_names),
        cmocka_unit_test(test_run_round_trip),
        cmocka_unit_test(test_key_provenance),
        cmocka_unit_test(test_every_truncation),
    };
    return cmocka_run_group_tests(tests, setup, tu_tmpdir_teardown);
}
