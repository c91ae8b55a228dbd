/* test_safetensors.c - safetensors round trips, dtype conversions, fixtures, truncated and hostile files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "nn/safetensors.h"
#include "test_util.h"

static void write_raw(const char *path, const char *header, const void *data, size_t dlen)
{
    size_t hl = strlen(header);
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(len8, 1, 8, f);
    fwrite(header, 1, hl, f);
    if (dlen) fwrite(data, 1, dlen, f);
    fclose(f);
}

static void test_conversions(void **state)
{
    (void)state;
    assert_int_equal(st_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(st_f32_to_bf16(-2.0f), 0xc000);
    /* 1 + 2^-8 is halfway between bf16 1.0 and 1.0078125: ties to even -> 1.0 */
    assert_int_equal(st_f32_to_bf16(1.00390625f), 0x3f80);
    assert_int_equal(st_f32_to_bf16(1.01171875f), 0x3f82); /* tie with odd lsb rounds up */
    assert_true(isnan(st_bf16_to_f32(st_f32_to_bf16(NAN))));
    assert_int_equal(st_f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(st_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(st_f32_to_f16(65520.0f), 0x7c00); /* rounds to inf */
    assert_int_equal(st_f32_to_f16(-0.5f), 0xb800);
    assert_int_equal(st_f32_to_f16(5.960464477539063e-08f), 0x0001); /* smallest subnormal */
    assert_int_equal(st_f32_to_f16(2.0e-8f), 0x0000);
    assert_true(st_f16_to_f32(0x0001) == 5.960464477539063e-08f);
    assert_true(st_f16_to_f32(0x3555) == 0.333251953125f);
    /* every finite f16 survives f16 -> f32 -> f16 */
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00) continue;
        assert_int_equal(st_f32_to_f16(st_f16_to_f32((uint16_t)h)), h);
    }
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7f80) == 0x7f80) continue;
        assert_int_equal(st_f32_to_bf16(st_bf16_to_f32((uint16_t)h)), h);
    }
}

static void test_roundtrip(void **state)
{
    (void)state;
    float a[6] = {1.5f, -2.25f, 3.0f, 0.1f, -1e-3f, 1e4f};
    int32_t ids[4] = {7, -3, 100000, 0};
    int64_t s23[2] = {2, 3}, s4[1] = {4};
    st_writer w;
    st_writer_init(&w);
    assert_int_equal(st_writer_add(&w, "a.f32", ST_F32, 2, s23, a), 0);
    assert_int_equal(st_writer_add(&w, "a.bf16", ST_BF16, 2, s23, a), 0);
    assert_int_equal(st_writer_add(&w, "a.f16", ST_F16, 2, s23, a), 0);
    assert_int_equal(st_writer_add(&w, "a.f64", ST_F64, 2, s23, a), 0);
    assert_int_equal(st_writer_add(&w, "ids", ST_I32, 1, s4, ids), 0);
    assert_int_equal(st_writer_add(&w, "ids64", ST_I64, 1, s4, ids), 0);
    assert_int_equal(st_writer_add(&w, "scalar", ST_F32, 0, NULL, a), 0);
    assert_int_equal(st_writer_add(&w, "ids", ST_I32, 1, s4, ids), -1); /* duplicate */
    st_writer_meta(&w, "format", "pt");
    char *p = tu_path("rt.safetensors");
    assert_int_equal(st_writer_write(&w, p), 0);
    st_writer_release(&w);

    st_file f;
    assert_int_equal(st_open(&f, p), 0);
    assert_int_equal(f.n, 7);
    const st_tensor *t = st_find(&f, "a.bf16");
    assert_non_null(t);
    assert_int_equal(t->dtype, ST_BF16);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[1], 3);
    assert_int_equal(st_numel(t), 6);
    float out[6];
    st_read_f32(&f, st_find(&f, "a.f32"), out);
    assert_memory_equal(out, a, sizeof a);
    st_read_f32(&f, st_find(&f, "a.f64"), out);
    assert_memory_equal(out, a, sizeof a);
    st_read_f32(&f, t, out);
    for (int i = 0; i < 6; i++) assert_true(fabsf(out[i] - a[i]) <= fabsf(a[i]) * (1.0f / 256));
    st_read_f32(&f, st_find(&f, "a.f16"), out);
    for (int i = 0; i < 6; i++) assert_true(fabsf(out[i] - a[i]) <= fabsf(a[i]) * (1.0f / 2048));
    size_t n = 0;
    int32_t *got = st_load_i32(&f, "ids64", &n);
    assert_int_equal(n, 4);
    assert_memory_equal(got, ids, sizeof ids);
    free(got);
    float *fi = st_load_f32(&f, "ids", &n);
    assert_true(fi[2] == 100000.0f);
    free(fi);
    assert_null(st_load_f32(&f, "nope", NULL));
    assert_non_null(strstr(hx_last_error(), "nope"));
    assert_int_equal(st_numel(st_find(&f, "scalar")), 1);
    assert_int_equal(st_read_i32(&f, st_find(&f, "a.f32"), ids), -1); /* float as int */
    assert_int_equal((uintptr_t)f.data % 8, 0);
    st_close(&f);
    free(p);
}

static void test_fixture(void **state)
{
    (void)state;
    st_file f;
    if (st_open(&f, "tests/fixtures/qwen3_tiny_tied/model.safetensors")) {
        skip();
        return;
    }
    const st_tensor *t = st_find(&f, "model.embed_tokens.weight");
    assert_non_null(t);
    assert_int_equal(t->dtype, ST_BF16);
    assert_int_equal(t->shape[0], 384);
    assert_int_equal(t->shape[1], 64);
    size_t n;
    float *x = st_load_f32(&f, "model.norm.weight", &n);
    assert_int_equal(n, 64);
    for (size_t i = 0; i < n; i++) assert_true(isfinite(x[i]));
    free(x);
    st_close(&f);
}

/* Each hostile header must be refused with a message naming the file; never a crash. */
static void test_hostile(void **state)
{
    (void)state;
    static const struct { const char *header; size_t dlen; const char *needle; } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "past the data block"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "bytes of data"},
        {"{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}", 8,
         "overflows"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "dimensions"},
        {"{\"a\":1}", 0, "entry"},
        {"[1,2]", 0, "not a JSON object"},
        {"{\"a\":", 0, "JSON"},
        {"{\"a\":{},\"a\":{}}", 0, "JSON"},
        {"{\"__metadata__\":3}", 0, "metadata"},
    };
    unsigned char data[16] = {0};
    char *p = tu_path("bad.safetensors");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_raw(p, cases[i].header, data, cases[i].dlen);
        st_file f;
        hx_clear_error();
        int r = st_open(&f, p);
        if (r == 0) fail_msg("case %zu accepted: %s", i, cases[i].header);
        if (!strstr(hx_last_error(), cases[i].needle) || !strstr(hx_last_error(), p))
            fail_msg("case %zu: message '%s' lacks '%s'", i, hx_last_error(), cases[i].needle);
    }
    /* header length larger than the file; file shorter than 8 bytes; empty file */
    FILE *fp = fopen(p, "wb");
    unsigned char big[8] = {0xff, 0xff, 0, 0, 0, 0, 0, 0};
    fwrite(big, 1, 8, fp);
    fwrite("{}", 1, 2, fp);
    fclose(fp);
    st_file f;
    assert_int_equal(st_open(&f, p), -1);
    assert_non_null(strstr(hx_last_error(), "past the end"));
    fp = fopen(p, "wb");
    fwrite(big, 1, 5, fp);
    fclose(fp);
    assert_int_equal(st_open(&f, p), -1);
    assert_non_null(strstr(hx_last_error(), "truncated"));
    fp = fopen(p, "wb");
    fclose(fp);
    assert_int_equal(st_open(&f, p), -1);
    assert_int_equal(st_open(&f, "/nonexistent/x.safetensors"), -1);
    /* every truncation of a valid file is refused cleanly */
    float a[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int64_t s8[1] = {8};
    st_writer w;
    st_writer_init(&w);
    st_writer_add(&w, "x", ST_F32, 1, s8, a);
    st_writer_add(&w, "y", ST_BF16, 1, s8, a);
    assert_int_equal(st_writer_write(&w, p), 0);
    st_writer_release(&w);
    char *buf;
    size_t len;
    assert_int_equal(hx_read_file(p, &buf, &len), 0);
    for (size_t cut = 0; cut < len; cut++) {
        st_file g;
        assert_int_equal(st_parse(&g, "cut", buf, cut), -1);
    }
    st_file g;
    assert_int_equal(st_parse(&g, "whole", buf, len), 0);
    st_close(&g);
    free(buf);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conversions),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_fixture),
        cmocka_unit_test(test_hostile),
    };
    int r = cmocka_run_group_tests(tests, tu_tmpdir_setup, tu_tmpdir_teardown);
    return r;
}
