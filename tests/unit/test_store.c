/* test_store.c - the store: atomic commit, manifests and digests, corruption, locks, run records, gc. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/base.h"
#include "interp/canon.h"
#include "interp/store.h"
#include "test_util.h"

/* Keys that the fake stage's manifests hash to (kind t_unit, with {"id": 1 or 2}): set up once. */
static char K1[65], K2[65];

static json_t *fake_manifest(const char *key)
{
    return json_pack("{s:s,s:s,s:i,s:{s:i},s:{}}", "key", key, "kind", "t_unit", "kind_version", 1, "with", "id",
                     strcmp(key, K1) ? 2 : 1, "inputs");
}

static void write_in(const char *dir, const char *name, const char *text)
{
    char *p = hx_path_join(dir, name);
    assert_int_equal(hx_write_file(p, text, strlen(text)), 0);
    free(p);
}

/* Execute a fake stage for KEY: outputs a.txt and sub/b.txt, then commit. */
static void produce(hx_store *s, const char *key, const char *text)
{
    char *out, *ckpt;
    assert_int_equal(hx_store_begin(s, key, &out, &ckpt), 0);
    assert_true(hx_is_dir(out) && hx_is_dir(ckpt));
    write_in(out, "a.txt", text);
    char *sub = hx_path_join(out, "sub");
    assert_int_equal(hx_mkdir_p(sub), 0);
    write_in(sub, "b.txt", "bee");
    write_in(ckpt, "step", "7"); /* checkpoints never reach the store */
    json_t *m = fake_manifest(key);
    assert_false(hx_store_has(s, key));
    assert_int_equal(hx_store_commit(s, key, m), 0);
    json_decref(m);
    free(sub);
    free(out);
    free(ckpt);
}

static void test_commit(void **state)
{
    (void)state;
    hx_store s;
    char *root = tu_path("s1");
    assert_int_equal(hx_store_open(&s, root), 0);
    produce(&s, K1, "hello");
    assert_true(hx_store_has(&s, K1));
    json_t *m = hx_store_manifest(&s, K1);
    assert_non_null(m);
    json_t *outs = json_object_get(m, "outputs");
    assert_int_equal(json_array_size(outs), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(outs, 0), "path")), "a.txt");
    assert_string_equal(json_string_value(json_object_get(json_array_get(outs, 1), "path")), "sub/b.txt");
    char want[65];
    hx_sha256_hex("hello", 5, want);
    assert_string_equal(json_string_value(json_object_get(json_array_get(outs, 0), "sha256")), want);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(outs, 0), "size")), 5);
    json_decref(m);
    /* The work directory, checkpoints included, is gone; the entry has no checkpoint. */
    char *partial = xstrfmt("%s/partial/%s", root, K1), *entry = hx_store_entry_dir(&s, K1);
    assert_false(hx_file_exists(partial));
    char *ck = hx_path_join(entry, "step");
    assert_false(hx_file_exists(ck));
    assert_int_equal(hx_store_verify(&s, K1, 0), 0);
    assert_int_equal(hx_store_verify(&s, K1, 1), 0);
    /* Prefix lookup. */
    char prefix[5] = {K1[0], K1[1], K1[2], K1[3], 0}, other[5] = "0000";
    while (other[0] == K1[0] || other[0] == K2[0]) other[0]++;
    char *k = hx_store_find_key(&s, prefix);
    assert_string_equal(k, K1);
    free(k);
    assert_null(hx_store_find_key(&s, other));
    assert_null(hx_store_find_key(&s, "../x"));
    free(ck);
    free(partial);
    free(entry);
    free(root);
    hx_store_release(&s);
}

/* The one rule for a path inside an entry (manifest outputs, archive members, files a stage wrote). */
static void test_rel_rule(void **state)
{
    (void)state;
    static const char *ok[] = {"a", "a.txt", "sub/b.bin", "x/y/z", "..a", "a..", ".hidden", "a/.b/c", "...",
                               "model.safetensors", "with space", "caf\xc3\xa9.txt"};
    static const char *bad[] = {"", "/", "/etc/passwd", "../x", "..", "a/../b", "a/..", ".", "./a", "a/./b", "a/.",
                                "a//b", "//a", "a/", "sub/b/", "a\\b", "a\nb", "a\tb", "\x01", "a\x7f"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        if (!hx_store_rel_ok(ok[i])) fail_msg("'%s' refused", ok[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (hx_store_rel_ok(bad[i])) fail_msg("'%s' accepted", bad[i]);
    assert_true(hx_store_rel_ok("a\0/../b")); /* a C string ends at its NUL: this is "a" */
    char *p = xmalloc(HX_STORE_REL_MAX + 2);
    memset(p, 'a', 255); /* a component of 255 bytes is the most a file system takes */
    p[255] = 0;
    assert_true(hx_store_rel_ok(p));
    p[255] = 'a';
    p[256] = 0;
    assert_false(hx_store_rel_ok(p));
    for (size_t i = 0; i < HX_STORE_REL_MAX; i++) p[i] = i % 100 == 99 ? '/' : 'a'; /* 99-byte components */
    p[HX_STORE_REL_MAX] = 0;
    if (p[HX_STORE_REL_MAX - 1] == '/') p[HX_STORE_REL_MAX - 1] = 'a';
    assert_true(hx_store_rel_ok(p));
    p[HX_STORE_REL_MAX] = 'a';
    p[HX_STORE_REL_MAX + 1] = 0;
    assert_false(hx_store_rel_ok(p)); /* one byte over */
    free(p);
}

/* A stage that writes a file the rule refuses (here a backslash in its name) fails at commit, not at export. */
static void test_commit_refuses_bad_names(void **state)
{
    (void)state;
    hx_store s;
    char *root = hx_path_join(tmpdir, "s_names");
    assert_int_equal(hx_store_open(&s, root), 0);
    char *out, *ckpt;
    assert_int_equal(hx_store_begin(&s, K1, &out, &ckpt), 0);
    write_in(out, "ok.txt", "fine");
    write_in(out, "a\\b.txt", "odd");
    json_t *m = fake_manifest(K1);
    assert_int_equal(hx_store_commit(&s, K1, m), -1);
    if (!strstr(hx_last_error(), "a\\b.txt") || !strstr(hx_last_error(), "not a name an entry may hold"))
        fail_msg("error was: %s", hx_last_error());
    assert_false(hx_store_has(&s, K1));
    char *bad = hx_path_join(out, "a\\b.txt");
    assert_int_equal(unlink(bad), 0); /* without it, the same work commits */
    assert_int_equal(hx_store_commit(&s, K1, m), 0);
    assert_int_equal(hx_store_verify(&s, K1, 1), 0);
    json_decref(m);
    free(bad);
    free(out);
    free(ckpt);
    free(root);
    hx_store_release(&s);
}

static void test_partial_kept_and_reserved_name(void **state)
{
    (void)state;
    hx_store s;
    char *root = tu_path("s2");
    assert_int_equal(hx_store_open(&s, root), 0);
    char *out, *ckpt;
    assert_int_equal(hx_store_begin(&s, K1, &out, &ckpt), 0);
    write_in(ckpt, "step", "3");
    write_in(out, "manifest.json", "{}"); /* left by a commit killed before its rename */
    free(out);
    free(ckpt);
    /* A second attempt finds its checkpoint, and not the stale manifest. */
    assert_int_equal(hx_store_begin(&s, K1, &out, &ckpt), 0);
    char *step = hx_path_join(ckpt, "step"), *mf = hx_path_join(out, "manifest.json");
    assert_true(hx_file_exists(step));
    assert_false(hx_file_exists(mf));
    /* A stage writing manifest.json itself is refused. */
    write_in(out, "manifest.json", "{}");
    json_t *m = json_object();
    assert_int_equal(hx_store_commit(&s, K1, m), -1);
    assert_non_null(strstr(hx_last_error(), "may not write 'manifest.json'"));
    assert_false(hx_store_has(&s, K1));
    json_decref(m);
    free(step);
    free(mf);
    free(out);
    free(ckpt);
    free(root);
    hx_store_release(&s);
}

static void test_corruption(void **state)
{
    (void)state;
    hx_store s;
    char *root = tu_path("s3");
    assert_int_equal(hx_store_open(&s, root), 0);
    produce(&s, K1, "hello");
    char *entry = hx_store_entry_dir(&s, K1), *a = hx_path_join(entry, "a.txt");
    struct stat st;
    assert_int_equal(stat(a, &st), 0);
    /* Same size, same mtime, other content: only a full verify sees it (the cheap check trusts size+mtime). */
    write_in(entry, "a.txt", "jello");
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, a, ts, 0), 0);
    assert_int_equal(hx_store_verify(&s, K1, 0), 0);
    assert_int_equal(hx_store_verify(&s, K1, 1), 1);
    assert_non_null(strstr(hx_last_error(), "a.txt: sha256"));
    /* Touched (mtime differs): re-hashed, caught. */
    write_in(entry, "a.txt", "jello");
    assert_int_equal(hx_store_verify(&s, K1, 0), 1);
    /* Size differs: caught without hashing. */
    write_in(entry, "a.txt", "hello world");
    assert_int_equal(hx_store_verify(&s, K1, 0), 1);
    assert_non_null(strstr(hx_last_error(), "size 11, the manifest recorded 5"));
    /* Restored content with a new mtime: intact again. */
    write_in(entry, "a.txt", "hello");
    assert_int_equal(hx_store_verify(&s, K1, 0), 0);
    unlink(a);
    assert_int_equal(hx_store_verify(&s, K1, 0), 1);
    assert_non_null(strstr(hx_last_error(), "missing"));
    assert_int_equal(hx_store_discard(&s, K1), 0);
    assert_false(hx_store_has(&s, K1));
    assert_false(hx_file_exists(entry));
    free(a);
    free(entry);
    free(root);
    hx_store_release(&s);
}

static void test_locks(void **state)
{
    (void)state;
    hx_store s;
    char *root = tu_path("s4");
    assert_int_equal(hx_store_open(&s, root), 0);
    hx_lock a, b;
    assert_int_equal(hx_store_lock(&s, K1, 0, NULL, &a), 0);
    assert_int_equal(hx_store_lock(&s, K1, 0, NULL, &b), 1); /* busy */
    assert_int_equal(hx_store_lock(&s, K2, 0, NULL, &b), 0); /* other keys are independent */
    hx_store_unlock(&b);
    volatile int stop = 1;
    assert_int_equal(hx_store_lock(&s, K1, 1, &stop, &b), -1); /* waiting stops on an interrupt */
    assert_non_null(strstr(hx_last_error(), "interrupted"));
    hx_store_unlock(&a);
    assert_int_equal(hx_store_lock(&s, K1, 0, NULL, &b), 0);
    hx_store_unlock(&b);
    free(root);
    hx_store_release(&s);
}

static json_t *run_with(const char *name, const char *key)
{
    return json_pack("{s:{s:s},s:[{s:s,s:{},s:s,s:s,s:s,s:i,s:{},s:{}}]}", "recipe", "name", name, "stages", "stage",
                     "st", "axes", "key", key, "state", "executed", "kind", "k", "kind_version", 1, "with", "inputs");
}

static void test_runs_and_gc(void **state)
{
    (void)state;
    hx_store s;
    char *root = tu_path("s5");
    assert_int_equal(hx_store_open(&s, root), 0);
    produce(&s, K1, "one");
    produce(&s, K2, "two");
    char *id1 = hx_store_new_run_id(&s);
    json_t *r1 = run_with("rec", K1);
    assert_int_equal(hx_store_write_run(&s, id1, r1), 0);
    usleep(5000); /* run ids sort in creation order (millisecond resolution) */
    char *id2 = hx_store_new_run_id(&s);
    json_t *r2 = run_with("rec", K2);
    assert_int_equal(hx_store_write_run(&s, id2, r2), 0);
    json_t *ids = hx_store_list_runs(&s);
    assert_int_equal(json_array_size(ids), 2);
    assert_string_equal(json_string_value(json_array_get(ids, 0)), id1);
    json_decref(ids);
    json_t *latest = hx_store_read_run(&s, "latest");
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(latest, "stages"), 0), "key")), K2);
    json_decref(latest);
    assert_null(hx_store_read_run(&s, "../../etc"));
    /* History: the newest record per (stage, axes). */
    json_t *h = hx_store_history(&s, "rec", 10);
    assert_int_equal(json_object_size(h), 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(h, "st|{}"), "run_id")), id2);
    json_decref(h);
    /* gc keeping everything removes nothing referenced. */
    json_t *rep = json_object();
    assert_int_equal(hx_store_gc(&s, -1, 0, rep), 0);
    assert_int_equal(json_integer_value(json_object_get(rep, "entries_removed")), 0);
    assert_true(hx_store_has(&s, K1) && hx_store_has(&s, K2));
    /* --keep 1: the older run and the entry only it referenced go together. */
    assert_int_equal(hx_store_gc(&s, 1, 1, rep), 0); /* dry run first */
    assert_int_equal(json_integer_value(json_object_get(rep, "entries_removed")), 1);
    assert_true(hx_store_has(&s, K1));
    assert_int_equal(hx_store_gc(&s, 1, 0, rep), 0);
    assert_int_equal(json_integer_value(json_object_get(rep, "runs_removed")), 1);
    assert_int_equal(json_integer_value(json_object_get(rep, "entries_removed")), 1);
    assert_false(hx_store_has(&s, K1));
    assert_true(hx_store_has(&s, K2));
    assert_null(hx_store_read_run(&s, id1));
    /* A locked entry is left alone. */
    hx_lock l;
    assert_int_equal(hx_store_lock(&s, K2, 0, NULL, &l), 0);
    assert_int_equal(hx_store_gc(&s, 0, 0, rep), 0);
    assert_true(hx_store_has(&s, K2));
    hx_store_unlock(&l);
    /* So is a pinned one (a stage is reading it), and discard refuses it. */
    assert_int_equal(hx_store_pin(&s, K2, &l), 0);
    assert_int_equal(hx_store_gc(&s, 0, 0, rep), 0);
    assert_true(hx_store_has(&s, K2));
    assert_int_equal(hx_store_discard(&s, K2), -1);
    assert_non_null(strstr(hx_last_error(), "being read by a running stage"));
    hx_store_unlock(&l);
    assert_int_equal(hx_store_gc(&s, 0, 0, rep), 0);
    assert_false(hx_store_has(&s, K2));
    json_decref(rep);
    json_decref(r1);
    json_decref(r2);
    free(id1);
    free(id2);
    free(root);
    hx_store_release(&s);
}

static void test_open_errors(void **state)
{
    (void)state;
    hx_store s;
    char *file = tu_path("plainfile");
    write_in(tmpdir, "plainfile", "x");
    assert_int_equal(hx_store_open(&s, file), -1);
    assert_non_null(strstr(hx_last_error(), "plainfile"));
    free(file);
}

static int setup(void **state)
{
    for (int n = 1; n <= 2; n++) {
        json_t *w = json_pack("{s:i}", "id", n), *in = json_object();
        assert_int_equal(hx_canon_key("t_unit", 1, w, in, NULL, n == 1 ? K1 : K2), 0);
        json_decref(w);
        json_decref(in);
    }
    return tu_tmpdir_setup(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit), cmocka_unit_test(test_rel_rule), cmocka_unit_test(test_commit_refuses_bad_names),
        cmocka_unit_test(test_partial_kept_and_reserved_name),
        cmocka_unit_test(test_corruption), cmocka_unit_test(test_locks), cmocka_unit_test(test_runs_and_gc),
        cmocka_unit_test(test_open_errors),
    };
    return cmocka_run_group_tests(tests, setup, tu_tmpdir_teardown);
}
