/* safetensors.c - .safetensors reader (mmap, every header field bounds-checked) and atomic writer. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "base/base.h"
#include "nn/safetensors.h"

/* The header of a real 0.6B..70B checkpoint is well under a few MB; refuse absurd sizes. */
#define ST_MAX_HEADER (100u << 20)

static const struct { const char *name; st_dtype d; size_t size; } dtypes[] = {
    {"F32", ST_F32, 4}, {"F16", ST_F16, 2}, {"BF16", ST_BF16, 2}, {"I32", ST_I32, 4}, {"I64", ST_I64, 8},
    {"U8", ST_U8, 1},   {"I8", ST_I8, 1},   {"BOOL", ST_BOOL, 1}, {"F64", ST_F64, 8},
};

size_t st_dtype_size(st_dtype d)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (dtypes[i].d == d) return dtypes[i].size;
    BUG("unknown st_dtype %d", (int)d);
}

const char *st_dtype_name(st_dtype d)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (dtypes[i].d == d) return dtypes[i].name;
    return "?";
}

int st_dtype_parse(const char *s, st_dtype *out)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (!strcmp(dtypes[i].name, s)) {
            *out = dtypes[i].d;
            return 0;
        }
    return -1;
}

size_t st_numel(const st_tensor *t)
{
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    return n;
}

/* ---- scalar conversions ---- */

uint16_t st_f32_to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1);                                           /* round to nearest even */
    return (uint16_t)(u >> 16);
}

float st_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

uint16_t st_f32_to_f16(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);  /* NaN */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to >= 65520: inf */
    if (a < 0x38800000u) {                                    /* subnormal or zero in f16 */
        if (a < 0x33000000u) return (uint16_t)sign;           /* < 2^-25: rounds to 0 */
        uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
        /* value = m * 2^(e-150); the f16 subnormal unit is 2^-24, so the f16 mantissa is m >> (126 - e) */
        int shift = 126 - (int)e;
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t r = a + 0xfffu + ((a >> 13) & 1); /* round mantissa to 10 bits, nearest even */
    r -= 0x38000000u;                           /* rebias exponent 127 -> 15 */
    return (uint16_t)(sign | (r >> 13));
}

float st_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ffu, u;
    if (e == 0) {
        if (m == 0) u = sign;
        else { /* subnormal: m * 2^-24 */
            float x = ldexpf((float)m, -24);
            memcpy(&u, &x, 4);
            u |= sign;
        }
    } else if (e == 31) u = sign | 0x7f800000u | (m << 13);
    else u = sign | ((e + 112) << 23) | (m << 13);
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* ---- reader ---- */

static void st_free_tensors(st_file *f)
{
    for (int i = 0; i < f->n; i++) free(f->t[i].name);
    free(f->t);
    f->t = NULL;
    f->n = 0;
}

static int cmp_offset(const void *a, const void *b)
{
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

int st_parse(st_file *f, const char *path, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    memset(f, 0, sizeof *f);
    if (len < 8) return error("%s: truncated safetensors file (%zu bytes, need at least 8)", path, len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | p[i];
    if (hlen < 2 || hlen > ST_MAX_HEADER)
        return error("%s: header length %llu at byte 0 is invalid (file of %zu bytes)", path,
                     (unsigned long long)hlen, len);
    if (hlen > len - 8)
        return error("%s: header of %llu bytes runs past the end of the file (%zu bytes): truncated?", path,
                     (unsigned long long)hlen, len);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)p + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return error("%s: header JSON: %s at header byte %d", path, jerr.text, jerr.position);
    if (!json_is_object(root)) {
        json_decref(root);
        return error("%s: header is not a JSON object", path);
    }
    f->data = p + 8 + hlen;
    f->data_len = len - 8 - (size_t)hlen;
    size_t cap = json_object_size(root);
    f->t = xcalloc(cap ? cap : 1, sizeof *f->t);
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "__metadata__")) {
            if (!json_is_object(v)) goto bad_meta;
            continue;
        }
        st_tensor *t = &f->t[f->n];
        json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape"),
               *jo = json_object_get(v, "data_offsets");
        if (!json_is_object(v) || !json_is_string(jd) || !json_is_array(js) || !json_is_array(jo) ||
            json_array_size(jo) != 2) {
            error("%s: tensor '%s': entry needs dtype (string), shape (array), data_offsets [begin, end]", path,
                  key);
            goto fail;
        }
        if (st_dtype_parse(json_string_value(jd), &t->dtype)) {
            error("%s: tensor '%s': unsupported dtype '%s'", path, key, json_string_value(jd));
            goto fail;
        }
        size_t nd = json_array_size(js);
        if (nd > ST_MAX_DIMS) {
            error("%s: tensor '%s': %zu dimensions (at most %d)", path, key, nd, ST_MAX_DIMS);
            goto fail;
        }
        t->ndim = (int)nd;
        size_t numel = 1;
        for (size_t i = 0; i < nd; i++) {
            json_t *d = json_array_get(js, i);
            if (!json_is_integer(d) || json_integer_value(d) < 0) {
                error("%s: tensor '%s': shape[%zu] is not a non-negative integer", path, key, i);
                goto fail;
            }
            t->shape[i] = json_integer_value(d);
            if (t->shape[i] != 0 && numel > SIZE_MAX / 16 / (size_t)t->shape[i]) {
                error("%s: tensor '%s': shape overflows", path, key);
                goto fail;
            }
            numel *= (size_t)t->shape[i];
        }
        json_t *b0 = json_array_get(jo, 0), *b1 = json_array_get(jo, 1);
        if (!json_is_integer(b0) || !json_is_integer(b1) || json_integer_value(b0) < 0 ||
            json_integer_value(b1) < json_integer_value(b0)) {
            error("%s: tensor '%s': data_offsets must be integers 0 <= begin <= end", path, key);
            goto fail;
        }
        uint64_t o0 = (uint64_t)json_integer_value(b0), o1 = (uint64_t)json_integer_value(b1);
        if (o1 > f->data_len) {
            error("%s: tensor '%s': data_offsets [%llu, %llu] past the data block (%zu bytes): truncated file?",
                  path, key, (unsigned long long)o0, (unsigned long long)o1, f->data_len);
            goto fail;
        }
        t->offset = (size_t)o0;
        t->nbytes = (size_t)(o1 - o0);
        if (t->nbytes != numel * st_dtype_size(t->dtype)) {
            error("%s: tensor '%s': %zu bytes of data for %zu elements of %s", path, key, t->nbytes, numel,
                  st_dtype_name(t->dtype));
            goto fail;
        }
        t->name = xstrdup(key);
        f->n++;
    }
    /* No two tensors may share bytes (a hostile file could alias them). */
    if (f->n > 1) {
        st_tensor **ord = xmalloc((size_t)f->n * sizeof *ord);
        for (int i = 0; i < f->n; i++) ord[i] = &f->t[i];
        qsort(ord, (size_t)f->n, sizeof *ord, cmp_offset);
        for (int i = 1; i < f->n; i++)
            if (ord[i - 1]->nbytes && ord[i]->offset < ord[i - 1]->offset + ord[i - 1]->nbytes) {
                error("%s: tensors '%s' and '%s' overlap in the data block", path, ord[i - 1]->name, ord[i]->name);
                free(ord);
                goto fail;
            }
        free(ord);
    }
    json_decref(root);
    return 0;
bad_meta:
    error("%s: __metadata__ is not an object", path);
fail:
    json_decref(root);
    st_free_tensors(f);
    return -1;
}

int st_open(st_file *f, const char *path)
{
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return error("%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        close(fd);
        return error("%s: cannot stat: %s", path, strerror(errno));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return error("%s: not a regular file", path);
    }
    size_t len = (size_t)sb.st_size;
    void *map = NULL;
    if (len > 0) {
        map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            close(fd);
            return error("%s: cannot mmap: %s", path, strerror(errno));
        }
    }
    close(fd);
    if (st_parse(f, path, map ? map : "", len)) {
        if (map) munmap(map, len);
        memset(f, 0, sizeof *f);
        return -1;
    }
    f->path = xstrdup(path);
    f->map = map;
    f->map_len = len;
    return 0;
}

void st_close(st_file *f)
{
    st_free_tensors(f);
    if (f->map) munmap(f->map, f->map_len);
    free(f->path);
    memset(f, 0, sizeof *f);
}

const st_tensor *st_find(const st_file *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name)) return &f->t[i];
    return NULL;
}

int st_read_f32(const st_file *f, const st_tensor *t, float *out)
{
    const unsigned char *p = f->data + t->offset;
    size_t n = st_numel(t);
    switch (t->dtype) {
    case ST_F32: memcpy(out, p, n * 4); break;
    case ST_BF16:
        for (size_t i = 0; i < n; i++) out[i] = st_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        break;
    case ST_F16:
        for (size_t i = 0; i < n; i++) out[i] = st_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        break;
    case ST_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            out[i] = (float)d;
        }
        break;
    case ST_I32:
        for (size_t i = 0; i < n; i++) {
            int32_t v;
            memcpy(&v, p + 4 * i, 4);
            out[i] = (float)v;
        }
        break;
    case ST_I64:
        for (size_t i = 0; i < n; i++) {
            int64_t v;
            memcpy(&v, p + 8 * i, 8);
            out[i] = (float)v;
        }
        break;
    case ST_U8: case ST_BOOL:
        for (size_t i = 0; i < n; i++) out[i] = (float)p[i];
        break;
    case ST_I8:
        for (size_t i = 0; i < n; i++) out[i] = (float)(int8_t)p[i];
        break;
    }
    return 0;
}

int st_read_i32(const st_file *f, const st_tensor *t, int32_t *out)
{
    const unsigned char *p = f->data + t->offset;
    size_t n = st_numel(t);
    switch (t->dtype) {
    case ST_I32: memcpy(out, p, n * 4); return 0;
    case ST_I64:
        for (size_t i = 0; i < n; i++) {
            int64_t v;
            memcpy(&v, p + 8 * i, 8);
            if (v < INT32_MIN || v > INT32_MAX)
                return error("%s: tensor '%s': element %zu = %lld does not fit int32", f->path ? f->path : "?",
                             t->name, i, (long long)v);
            out[i] = (int32_t)v;
        }
        return 0;
    case ST_U8: case ST_BOOL:
        for (size_t i = 0; i < n; i++) out[i] = p[i];
        return 0;
    case ST_I8:
        for (size_t i = 0; i < n; i++) out[i] = (int8_t)p[i];
        return 0;
    default:
        return error("%s: tensor '%s' has dtype %s, expected an integer dtype", f->path ? f->path : "?", t->name,
                     st_dtype_name(t->dtype));
    }
}

float *st_load_f32(const st_file *f, const char *name, size_t *numel)
{
    const st_tensor *t = st_find(f, name);
    if (!t) {
        error("%s: no tensor '%s'", f->path ? f->path : "?", name);
        return NULL;
    }
    size_t n = st_numel(t);
    float *out = xmalloc((n ? n : 1) * sizeof(float));
    st_read_f32(f, t, out);
    if (numel) *numel = n;
    return out;
}

int32_t *st_load_i32(const st_file *f, const char *name, size_t *numel)
{
    const st_tensor *t = st_find(f, name);
    if (!t) {
        error("%s: no tensor '%s'", f->path ? f->path : "?", name);
        return NULL;
    }
    size_t n = st_numel(t);
    int32_t *out = xmalloc((n ? n : 1) * sizeof(int32_t));
    if (st_read_i32(f, t, out)) {
        free(out);
        return NULL;
    }
    if (numel) *numel = n;
    return out;
}

/* ---- writer ---- */

struct st_wentry {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t nbytes;
    unsigned char *bytes;
};

void st_writer_init(st_writer *w)
{
    memset(w, 0, sizeof *w);
}

int st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape,
                  const void *data)
{
    if (ndim < 0 || ndim > ST_MAX_DIMS) return error("safetensors writer: '%s': %d dimensions", name, ndim);
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->e[i].name, name)) return error("safetensors writer: tensor '%s' added twice", name);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return error("safetensors writer: '%s': negative shape", name);
        n *= (size_t)shape[i];
    }
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 64;
        w->e = xrealloc(w->e, (size_t)w->cap * sizeof *w->e);
    }
    st_wentry *e = &w->e[w->n];
    e->name = xstrdup(name);
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    e->nbytes = n * st_dtype_size(dtype);
    e->bytes = xmalloc(e->nbytes ? e->nbytes : 1);
    const float *xf = data;
    const int32_t *xi = data;
    unsigned char *b = e->bytes;
    for (size_t i = 0; i < n; i++) {
        switch (dtype) {
        case ST_F32: memcpy(b + 4 * i, &xf[i], 4); break;
        case ST_BF16: { uint16_t h = st_f32_to_bf16(xf[i]); b[2 * i] = h & 0xff; b[2 * i + 1] = h >> 8; } break;
        case ST_F16: { uint16_t h = st_f32_to_f16(xf[i]); b[2 * i] = h & 0xff; b[2 * i + 1] = h >> 8; } break;
        case ST_F64: { double d = xf[i]; memcpy(b + 8 * i, &d, 8); } break;
        case ST_I32: memcpy(b + 4 * i, &xi[i], 4); break;
        case ST_I64: { int64_t v = xi[i]; memcpy(b + 8 * i, &v, 8); } break;
        case ST_U8: b[i] = (unsigned char)xi[i]; break;
        case ST_I8: b[i] = (unsigned char)(int8_t)xi[i]; break;
        case ST_BOOL: b[i] = xi[i] != 0; break;
        }
    }
    w->n++;
    return 0;
}

void st_writer_meta(st_writer *w, const char *key, const char *value)
{
    if (!w->meta) w->meta = json_object();
    json_object_set_new((json_t *)w->meta, key, json_string(value));
}

size_t st_writer_bytes(const st_writer *w)
{
    size_t s = 0;
    for (int i = 0; i < w->n; i++) s += w->e[i].nbytes;
    return s;
}

static int cmp_wentry(const void *a, const void *b)
{
    return strcmp(((const st_wentry *)a)->name, ((const st_wentry *)b)->name);
}

int st_writer_write(st_writer *w, const char *path)
{
    qsort(w->e, (size_t)w->n, sizeof *w->e, cmp_wentry);
    json_t *h = json_object();
    if (w->meta) json_object_set((json_t *)h, "__metadata__", (json_t *)w->meta);
    size_t off = 0;
    for (int i = 0; i < w->n; i++) {
        st_wentry *e = &w->e[i];
        json_t *shape = json_array();
        for (int d = 0; d < e->ndim; d++) json_array_append_new(shape, json_integer(e->shape[d]));
        json_t *t = json_pack("{s:s, s:o, s:[I,I]}", "dtype", st_dtype_name(e->dtype), "shape", shape,
                              "data_offsets", (json_int_t)off, (json_int_t)(off + e->nbytes));
        json_object_set_new(h, e->name, t);
        off += e->nbytes;
    }
    char *htxt = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(h);
    size_t hl = strlen(htxt), padded = (hl + 7) & ~(size_t)7; /* data block 8-byte aligned */
    char *tmp = xstrfmt("%s.tmp.%d", path, (int)getpid());
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        free(htxt);
        int r = error("%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return r;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int ok = fwrite(len8, 1, 8, fp) == 8 && fwrite(htxt, 1, hl, fp) == hl;
    for (size_t i = hl; ok && i < padded; i++) ok = fputc(' ', fp) != EOF;
    for (int i = 0; ok && i < w->n; i++)
        ok = fwrite(w->e[i].bytes, 1, w->e[i].nbytes, fp) == w->e[i].nbytes;
    free(htxt);
    ok = ok && fflush(fp) == 0 && fsync(fileno(fp)) == 0;
    ok = (fclose(fp) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int r = error("%s: write failed: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return r;
    }
    free(tmp);
    return 0;
}

void st_writer_release(st_writer *w)
{
    for (int i = 0; i < w->n; i++) {
        free(w->e[i].name);
        free(w->e[i].bytes);
    }
    free(w->e);
    if (w->meta) json_decref((json_t *)w->meta);
    memset(w, 0, sizeof *w);
}
