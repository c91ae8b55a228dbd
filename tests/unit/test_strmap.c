/* test_strmap.c - base's string table: indexes in insertion order, values, growth, colliding slots, binary keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "base/strmap.h"

static void test_insert_and_lookup(void **state)
{
    (void)state;
    hx_strmap m = {0};
    assert_int_equal(hx_strmap_find(&m, "a", 1), -1); /* an empty map answers without slots */
    int added = -1;
    assert_int_equal(hx_strmap_add(&m, "apple", 5, &added), 0);
    assert_int_equal(added, 1);
    assert_int_equal(hx_strmap_add(&m, "pear", 4, &added), 1);
    assert_int_equal(added, 1);
    assert_int_equal(hx_strmap_add(&m, "fig", 3, NULL), 2);
    assert_int_equal(hx_strmap_add(&m, "apple", 5, &added), 0); /* again: the same index, not added */
    assert_int_equal(added, 0);
    assert_int_equal(m.n, 3);
    assert_int_equal(hx_strmap_find(&m, "pear", 4), 1);
    assert_int_equal(hx_strmap_find(&m, "pea", 3), -1);   /* a prefix is another key */
    assert_int_equal(hx_strmap_find(&m, "pears", 5), -1);
    assert_int_equal(hx_strmap_find(&m, "appl", 4), -1);
    size_t len = 0;
    assert_string_equal(hx_strmap_key(&m, 2, &len), "fig");
    assert_int_equal(len, 3);
    assert_int_equal(*hx_strmap_val(&m, 1), 0); /* values start at 0 */
    *hx_strmap_val(&m, 1) = -7;
    *hx_strmap_val(&m, 2) = INT64_MAX;
    assert_int_equal(*hx_strmap_val(&m, hx_strmap_find(&m, "pear", 4)), -7);
    assert_true(*hx_strmap_val(&m, hx_strmap_find(&m, "fig", 3)) == INT64_MAX);
    hx_strmap_free(&m);
    assert_int_equal(m.n, 0);
    assert_null(m.slot);
}

/* 100000 keys: the slot array doubles many times; every key keeps its index, key bytes and value. */
static void test_growth(void **state)
{
    (void)state;
    enum { N = 100000 };
    hx_strmap m = {0};
    char k[32];
    for (int i = 0; i < N; i++) {
        int n = snprintf(k, sizeof k, "key-%d", i), added = 0;
        assert_int_equal(hx_strmap_add(&m, k, (size_t)n, &added), i);
        assert_int_equal(added, 1);
        *hx_strmap_val(&m, (size_t)i) = 3 * (int64_t)i;
    }
    assert_int_equal(m.n, N);
    assert_true(m.cap >= 2 * (size_t)N);
    assert_int_equal(m.cap & (m.cap - 1), 0); /* a power of two */
    for (int i = N - 1; i >= 0; i--) {
        int n = snprintf(k, sizeof k, "key-%d", i);
        int64_t j = hx_strmap_find(&m, k, (size_t)n);
        assert_int_equal(j, i);
        assert_int_equal(*hx_strmap_val(&m, (size_t)j), 3 * (int64_t)i);
        size_t len;
        assert_string_equal(hx_strmap_key(&m, (size_t)j, &len), k);
        assert_int_equal(len, (size_t)n);
    }
    assert_int_equal(hx_strmap_find(&m, "key-100000", 10), -1);
    hx_strmap_free(&m);
}

/* Keys whose hashes share their home slot in a 16-slot map probe past one another and are all found. */
static void test_collisions(void **state)
{
    (void)state;
    hx_strmap all = {0};
    char k[16];
    for (int i = 0; i < 1000; i++) hx_strmap_add(&all, k, (size_t)snprintf(k, sizeof k, "c%d", i), NULL);
    const char *same[5];
    int n_same = 0;
    for (size_t i = 1; i < all.n && n_same < 5; i++)
        if ((all.ent[i].hash & 15) == (all.ent[0].hash & 15)) same[n_same++] = hx_strmap_key(&all, i, NULL);
    assert_int_equal(n_same, 5); /* 1000 keys over 16 home slots: ~62 per slot */
    hx_strmap m = {0};
    hx_strmap_add(&m, "c0", 2, NULL);
    assert_int_equal(m.cap, 16); /* still 16 slots: the five below all share c0's home slot */
    for (int i = 0; i < n_same; i++) assert_int_equal(hx_strmap_add(&m, same[i], strlen(same[i]), NULL), i + 1);
    assert_int_equal(m.cap, 16);
    assert_int_equal(hx_strmap_find(&m, "c0", 2), 0);
    for (int i = 0; i < n_same; i++) assert_int_equal(hx_strmap_find(&m, same[i], strlen(same[i])), i + 1);
    int used = 0;
    for (size_t j = 0; j < m.cap; j++) used += m.slot[j] != 0;
    assert_int_equal(used, 6);
    hx_strmap_free(&m);
    hx_strmap_free(&all);
}

/* Keys are bytes: NULs inside, the empty key, and keys that agree up to a NUL are all distinct. */
static void test_binary_keys(void **state)
{
    (void)state;
    hx_strmap m = {0};
    assert_int_equal(hx_strmap_add(&m, "a\0b", 3, NULL), 0);
    assert_int_equal(hx_strmap_add(&m, "a\0c", 3, NULL), 1);
    assert_int_equal(hx_strmap_add(&m, "a", 1, NULL), 2);
    assert_int_equal(hx_strmap_add(&m, "", 0, NULL), 3);
    assert_int_equal(hx_strmap_add(&m, NULL, 0, NULL), 3); /* the empty key, however it is passed */
    assert_int_equal(hx_strmap_add(&m, "a\0", 2, NULL), 4);
    assert_int_equal(hx_strmap_find(&m, "a\0b", 3), 0);
    assert_int_equal(hx_strmap_find(&m, "a\0c", 3), 1);
    assert_int_equal(hx_strmap_find(&m, "a\0d", 3), -1);
    assert_int_equal(hx_strmap_find(&m, "", 0), 3);
    size_t len;
    const char *k = hx_strmap_key(&m, 1, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(k, "a\0c", 4); /* and a NUL after the key */
    assert_int_equal(hx_strmap_key(&m, 3, &len)[0], 0);
    assert_int_equal(len, 0);
    unsigned char all[256];
    for (int i = 0; i < 256; i++) all[i] = (unsigned char)i;
    int64_t next = 5; /* one-byte keys: new indexes, but for "a", added above */
    for (int i = 0; i < 256; i++) assert_int_equal(hx_strmap_add(&m, all + i, 1, NULL), i == 'a' ? 2 : next++);
    assert_int_equal(m.n, 5 + 255);
    assert_int_equal(hx_strmap_find(&m, "\0", 1), 5); /* the NUL byte is a key, not the empty one */
    assert_int_equal(hx_strmap_find(&m, "\xff", 1), next - 1);
    hx_strmap_free(&m);
}

/* A size hint changes the slot count, never an index. */
static void test_reserve(void **state)
{
    (void)state;
    hx_strmap a = {0}, b = {0};
    hx_strmap_reserve(&b, 5000);
    assert_true(b.cap >= 10000);
    size_t cap = b.cap;
    char k[16];
    for (int i = 0; i < 3000; i++) {
        int n = snprintf(k, sizeof k, "%x", i * 7919);
        assert_int_equal(hx_strmap_add(&a, k, (size_t)n, NULL), hx_strmap_add(&b, k, (size_t)n, NULL));
    }
    assert_int_equal(b.cap, cap); /* no growth within the hint */
    assert_true(a.cap < b.cap);
    hx_strmap_free(&a);
    hx_strmap_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_and_lookup),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_collisions),
        cmocka_unit_test(test_binary_keys),
        cmocka_unit_test(test_reserve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
