/* test_canon.c - canonical JSON and stage keys: stable under reordering and number spelling, sensitive to values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "interp/canon.h"

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    assert_non_null(v);
    return v;
}

static void assert_canon(const char *json_text, const char *want)
{
    json_t *v = parse(json_text);
    char *t = hx_canon_dump(v);
    assert_non_null(t);
    assert_string_equal(t, want);
    free(t);
    json_decref(v);
}

static void test_numbers(void **state)
{
    (void)state;
    char buf[64];
    struct { double d; const char *want; } cases[] = {
        {1e-3, "0.001"}, {0.001, "0.001"}, {2.0, "2"}, {-0.0, "0"}, {0.1, "0.1"}, {1e300, "1e+300"},
        {-3.5, "-3.5"}, {1.0 / 3.0, "0.3333333333333333"}, {9007199254740992.0, "9007199254740992"},
        {1e20, "1e+20"}, {3e-5, "3e-05"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        hx_canon_number(cases[i].d, buf, sizeof buf);
        assert_string_equal(buf, cases[i].want);
        assert_true(strtod(buf, NULL) == cases[i].d); /* round trip */
    }
}

static void test_dump(void **state)
{
    (void)state;
    assert_canon("{\"b\": 1, \"a\": [true, null, 2.0, \"x\"]}", "{\"a\":[true,null,2,\"x\"],\"b\":1}");
    assert_canon("{\"z\": {\"y\": 1e-3, \"x\": 0.5}}", "{\"z\":{\"x\":0.5,\"y\":0.001}}");
    assert_canon("\"tab\\tquote\\\"nl\\n\\u0001\"", "\"tab\\tquote\\\"nl\\n\\u0001\"");
    assert_canon("\"caf\\u00e9\"", "\"caf\xc3\xa9\""); /* UTF-8 kept as is */
    assert_canon("[]", "[]");
    assert_canon("{}", "{}");
    /* Byte order of keys: upper case sorts before lower case. */
    assert_canon("{\"b\":1,\"B\":2,\"a\":3}", "{\"B\":2,\"a\":3,\"b\":1}");
}

static void key_of(const char *with, const char *inputs, char key[65])
{
    json_t *w = parse(with), *in = parse(inputs);
    assert_int_equal(hx_canon_key("distill", 1, w, in, NULL, key), 0);
    json_decref(w);
    json_decref(in);
}

static void test_key_stability(void **state)
{
    (void)state;
    char a[65], b[65], c[65], d[65];
    key_of("{\"lr\": 0.001, \"steps\": 300, \"freeze\": [\"attention\"]}", "{\"model\": \"k1\", \"data\": \"k2\"}", a);
    key_of("{\"freeze\": [\"attention\"], \"steps\": 300.0, \"lr\": 1e-3}", "{\"data\": \"k2\", \"model\": \"k1\"}", b);
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), 64);
    /* Known value: a change in the canonical form would silently invalidate every store. */
    json_t *w = json_object(), *in = json_object();
    assert_int_equal(hx_canon_key("k", 1, w, in, NULL, c), 0);
    char want[65];
    const char *canon = "{\"inputs\":{},\"kind\":\"k\",\"kind_version\":1,\"with\":{}}";
    hx_sha256_hex(canon, strlen(canon), want);
    assert_string_equal(c, want);
    /* --strict mixes the binary digest in. */
    assert_int_equal(hx_canon_key("k", 1, w, in, "abc", d), 0);
    assert_string_not_equal(c, d);
    json_decref(w);
    json_decref(in);
}

static void test_key_sensitivity(void **state)
{
    (void)state;
    char base[65], k[65];
    key_of("{\"lr\": 0.001, \"steps\": 300}", "{\"model\": \"k1\"}", base);
    const char *withs[] = {"{\"lr\": 0.0011, \"steps\": 300}", "{\"lr\": 0.001, \"steps\": 301}",
                           "{\"lr\": 0.001, \"steps\": \"300\"}", "{\"lr\": 0.001, \"steps\": 300, \"x\": null}",
                           "{\"lr\": 0.001}"};
    for (size_t i = 0; i < sizeof withs / sizeof *withs; i++) {
        key_of(withs[i], "{\"model\": \"k1\"}", k);
        assert_string_not_equal(base, k);
    }
    key_of("{\"lr\": 0.001, \"steps\": 300}", "{\"model\": \"k2\"}", k);
    assert_string_not_equal(base, k);
    key_of("{\"lr\": 0.001, \"steps\": 300}", "{\"teacher\": \"k1\"}", k);
    assert_string_not_equal(base, k);
    json_t *w = parse("{\"lr\": 0.001, \"steps\": 300}"), *in = parse("{\"model\": \"k1\"}");
    assert_int_equal(hx_canon_key("distill", 2, w, in, NULL, k), 0); /* kind_version bump */
    assert_string_not_equal(base, k);
    assert_int_equal(hx_canon_key("finetune", 1, w, in, NULL, k), 0);
    assert_string_not_equal(base, k);
    json_decref(w);
    json_decref(in);
}

static void test_normalize(void **state)
{
    (void)state;
    json_t *v = parse("{\"a\": 2.0, \"b\": [1.5, 3.0], \"c\": \"2.0\"}");
    json_t *n = hx_canon_normalize(v);
    assert_true(json_is_integer(json_object_get(n, "a")));
    assert_int_equal(json_integer_value(json_object_get(n, "a")), 2);
    assert_true(json_is_real(json_array_get(json_object_get(n, "b"), 0)));
    assert_true(json_is_integer(json_array_get(json_object_get(n, "b"), 1)));
    assert_true(json_is_string(json_object_get(n, "c")));
    json_decref(v);
    json_decref(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers),      cmocka_unit_test(test_dump),      cmocka_unit_test(test_key_stability),
        cmocka_unit_test(test_key_sensitivity), cmocka_unit_test(test_normalize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
