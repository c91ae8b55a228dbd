/* canon.c - canonical JSON text and stage keys (see canon.h): one number format, one key order. */
#include "interp/canon.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/sort.h"

void hx_canon_number(double d, char *buf, size_t n)
{
    if (d == 0) { /* -0.0 and 0.0 are one value */
        snprintf(buf, n, "0");
        return;
    }
    if (d == floor(d) && fabs(d) <= 9007199254740992.0) {
        snprintf(buf, n, "%lld", (long long)d);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) return;
    }
}

static void put_string(hx_sbuf *b, const char *s, size_t len)
{
    hx_sb_add(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[8];
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\t') esc = "\\t";
        else if (c == '\r') esc = "\\r";
        else if (c == '\b') esc = "\\b";
        else if (c == '\f') esc = "\\f";
        else if (c < 0x20) {
            snprintf(u, sizeof u, "\\u%04x", c);
            esc = u;
        }
        if (!esc) continue;
        hx_sb_add(b, s + run, i - run);
        hx_sb_puts(b, esc);
        run = i + 1;
    }
    hx_sb_add(b, s + run, len - run);
    hx_sb_add(b, "\"", 1);
}

static int put_value(hx_sbuf *b, const json_t *v, int depth)
{
    char num[64];
    if (depth > 512) return error("canonical JSON: value nested deeper than 512 levels");
    switch (json_typeof(v)) {
    case JSON_NULL: hx_sb_puts(b, "null"); return 0;
    case JSON_TRUE: hx_sb_puts(b, "true"); return 0;
    case JSON_FALSE: hx_sb_puts(b, "false"); return 0;
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        hx_sb_puts(b, num);
        return 0;
    case JSON_REAL: {
        double d = json_real_value(v);
        if (!isfinite(d)) return error("canonical JSON: %g has no JSON form", d);
        hx_canon_number(d, num, sizeof num);
        hx_sb_puts(b, num);
        return 0;
    }
    case JSON_STRING: put_string(b, json_string_value(v), json_string_length(v)); return 0;
    case JSON_ARRAY:
        hx_sb_add(b, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) hx_sb_add(b, ",", 1);
            if (put_value(b, json_array_get(v, i), depth + 1) < 0) return -1;
        }
        hx_sb_add(b, "]", 1);
        return 0;
    case JSON_OBJECT: {
        size_t n = json_object_size(v), i = 0;
        const char **keys = xmalloc((n ? n : 1) * sizeof *keys);
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) keys[i++] = k;
        qsort(keys, n, sizeof *keys, hx_cmp_str);
        hx_sb_add(b, "{", 1);
        for (i = 0; i < n; i++) {
            if (i) hx_sb_add(b, ",", 1);
            put_string(b, keys[i], strlen(keys[i]));
            hx_sb_add(b, ":", 1);
            if (put_value(b, json_object_get(v, keys[i]), depth + 1) < 0) {
                free(keys);
                return -1;
            }
        }
        free(keys);
        hx_sb_add(b, "}", 1);
        return 0;
    }
    }
    return error("canonical JSON: unknown value type");
}

char *hx_canon_dump(const json_t *v)
{
    hx_sbuf b = {0};
    if (!v) return (void)error("canonical JSON: no value"), NULL;
    if (put_value(&b, v, 0) < 0) {
        free(b.s);
        return NULL;
    }
    if (!b.s) hx_sb_add(&b, "", 0);
    return b.s;
}

json_t *hx_canon_normalize(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_REAL: {
        double d = json_real_value(v);
        if (d == floor(d) && fabs(d) <= 9007199254740992.0) return json_integer((json_int_t)d);
        return json_real(d);
    }
    case JSON_ARRAY: {
        json_t *a = json_array();
        for (size_t i = 0; i < json_array_size(v); i++)
            json_array_append_new(a, hx_canon_normalize(json_array_get(v, i)));
        return a;
    }
    case JSON_OBJECT: {
        json_t *o = json_object(), *x;
        const char *k;
        json_object_foreach((json_t *)v, k, x) json_object_set_new(o, k, hx_canon_normalize(x));
        return o;
    }
    default: return json_deep_copy(v);
    }
}

int hx_canon_key_ext(const char *kind, int kind_version, const json_t *with, const json_t *inputs,
                     const json_t *external, const char *binary_digest, char key[65])
{
    json_t *o = json_object();
    json_object_set_new(o, "kind", json_string(kind));
    json_object_set_new(o, "kind_version", json_integer(kind_version));
    json_object_set_new(o, "with", with ? json_deep_copy(with) : json_object());
    json_object_set_new(o, "inputs", inputs ? json_deep_copy(inputs) : json_object());
    if (binary_digest) json_object_set_new(o, "hx_binary", json_string(binary_digest));
    if (external && json_object_size(external)) {
        json_t *ext = json_object(), *list;
        const char *field;
        json_object_foreach((json_t *)external, field, list) {
            json_t *d = json_array(), *x;
            size_t i;
            json_array_foreach(list, i, x) json_array_append(d, json_object_get(x, "sha256") ?: json_null());
            json_object_set_new(ext, field, d);
        }
        json_object_set_new(o, "external", ext);
    }
    char *text = hx_canon_dump(o);
    json_decref(o);
    if (!text) return error_prefix("stage key of kind '%s'", kind);
    hx_sha256_hex(text, strlen(text), key);
    free(text);
    return 0;
}

int hx_canon_key(const char *kind, int kind_version, const json_t *with, const json_t *inputs,
                 const char *binary_digest, char key[65])
{
    return hx_canon_key_ext(kind, kind_version, with, inputs, NULL, binary_digest, key);
}
