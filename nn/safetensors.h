/* safetensors.h - reading (mmap, bounds-checked header) and writing (atomic) of .safetensors files. */
#ifndef NN_SAFETENSORS_H
#define NN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Format (https://github.com/huggingface/safetensors): u64 little-endian header length N, N bytes of JSON
 * {name: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {str: str}},
 * then the data block; offsets are relative to the data block. Tensors are row-major, little-endian.
 */
typedef enum { ST_F32, ST_F16, ST_BF16, ST_I32, ST_I64, ST_U8, ST_I8, ST_BOOL, ST_F64 } st_dtype;

#define ST_MAX_DIMS 8

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t offset, nbytes;  /* within the data block */
} st_tensor;

typedef struct {
    char *path;
    void *map;
    size_t map_len;
    const unsigned char *data; /* start of the data block */
    size_t data_len;
    int n;
    st_tensor *t;              /* in header order */
} st_file;

/* Opens and maps path; every header field is checked (dtype, shape, offsets inside the file, sizes
 * consistent, no overlaps beyond the data block). Returns 0 or error("path: ...") naming the field. */
int st_open(st_file *f, const char *path);
void st_close(st_file *f);
/* Parses a header + data already in memory (no copy; buf must outlive f). Used by st_open and fuzzers. */
int st_parse(st_file *f, const char *name_for_errors, const void *buf, size_t len);

const st_tensor *st_find(const st_file *f, const char *name);
size_t st_numel(const st_tensor *t);
size_t st_dtype_size(st_dtype d);
const char *st_dtype_name(st_dtype d);
int st_dtype_parse(const char *s, st_dtype *out); /* "F32" -> ST_F32; -1 if unknown */

/* Converts any float or integer dtype to float32 (out holds st_numel floats). */
int st_read_f32(const st_file *f, const st_tensor *t, float *out);
/* Integer tensors (I32, I64, U8, I8, BOOL) to int32; I64 values outside int32 are an error. */
int st_read_i32(const st_file *f, const st_tensor *t, int32_t *out);
/* xmalloc'd float32 copy of tensor `name`; NULL + error() if absent. numel may be NULL. */
float *st_load_f32(const st_file *f, const char *name, size_t *numel);
/* xmalloc'd int32 copy; NULL + error() if absent. */
int32_t *st_load_i32(const st_file *f, const char *name, size_t *numel);

/* Scalar conversions (round to nearest even). */
uint16_t st_f32_to_bf16(float x);
float st_bf16_to_f32(uint16_t h);
uint16_t st_f32_to_f16(float x);
float st_f16_to_f32(uint16_t h);

/* Writer. Float dtypes (F32/F16/BF16/F64) take float32 input, integer dtypes (I32/I64/U8/I8/BOOL) int32
 * input; the data is converted and copied at add time, so the caller's buffer may be reused at once. */
typedef struct st_wentry st_wentry;
typedef struct {
    int n, cap;
    st_wentry *e;
    void *meta;       /* json_t object of __metadata__ strings, or NULL */
} st_writer;

void st_writer_init(st_writer *w);
int st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape,
                  const void *f32_or_i32_data);
/* Adds a __metadata__ string entry (e.g. "format": "pt", which transformers expects). */
void st_writer_meta(st_writer *w, const char *key, const char *value);
/* Writes path atomically (tmp file + fsync + rename). Tensors are written sorted by name. */
int st_writer_write(st_writer *w, const char *path);
size_t st_writer_bytes(const st_writer *w); /* data bytes added so far */
void st_writer_release(st_writer *w);

#endif
