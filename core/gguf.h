/* core/gguf.h — reading and writing GGUF files (versions 2 and 3), as llama.cpp lays them out.
 *
 * File layout (little-endian):
 *
 *   | field            | type                         | checked against                                   |
 *   |------------------|------------------------------|---------------------------------------------------|
 *   | magic            | "GGUF"                       |                                                   |
 *   | version          | u32 (2 or 3)                 | v1 is refused                                     |
 *   | n_tensors        | u64                          | bytes left in the file / minimum tensor-info size |
 *   | n_kv             | u64                          | bytes left / minimum KV size                      |
 *   | kv[n_kv]         | string key, u32 type, value  | nested arrays, string lengths, element counts     |
 *   | tensor_info[...] | string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset |                  |
 *   | padding          | to `general.alignment` (default 32, power of two)                                 |
 *   | data             | tensor bytes at data_start + offset, each within the file, aligned                |
 *
 * A string is u64 length + bytes (no terminator on disk). Every count, length, offset, dimension and size is
 * checked against the file size and for overflow before it is used, so a truncated or hostile file gives
 * LOOM_ERR_FORMAT with a message naming the field and its byte offset — never a crash or a huge allocation.
 *
 *   loom_gguf *g;
 *   if (loom_gguf_open(&g, "model.gguf", NULL, &err)) ...;
 *   int64_t k = loom_gguf_find_key(g, "llama4.block_count");
 *   uint32_t n_layer; loom_gguf_get_u32(g, "llama4.block_count", &n_layer, &err);
 *   const loom_gguf_tensor *t = loom_gguf_find_tensor(g, "token_embd.weight");
 *   ... t->data ...   // points into the mapping; valid until loom_gguf_close
 *   loom_gguf_close(g);
 */
#ifndef LOOM_CORE_GGUF_H
#define LOOM_CORE_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/tensor.h"

typedef enum loom_gguf_type {
    LOOM_GGUF_U8 = 0,
    LOOM_GGUF_I8 = 1,
    LOOM_GGUF_U16 = 2,
    LOOM_GGUF_I16 = 3,
    LOOM_GGUF_U32 = 4,
    LOOM_GGUF_I32 = 5,
    LOOM_GGUF_F32 = 6,
    LOOM_GGUF_BOOL = 7,
    LOOM_GGUF_STRING = 8,
    LOOM_GGUF_ARRAY = 9,
    LOOM_GGUF_U64 = 10,
    LOOM_GGUF_I64 = 11,
    LOOM_GGUF_F64 = 12,
    LOOM_GGUF_TYPE_COUNT = 13,
} loom_gguf_type;

const char *loom_gguf_type_name(loom_gguf_type t); /* "u32", "string", "array", ... */

typedef struct loom_gguf loom_gguf;

/* A string as stored: not NUL-terminated in the mapping; use len. */
typedef struct loom_gguf_str {
    const char *ptr;
    uint64_t    len;
} loom_gguf_str;

typedef struct loom_gguf_tensor {
    const char *name;           /* NUL-terminated copy owned by the loom_gguf */
    loom_dtype  type;
    int         n_dims;
    int64_t     ne[LOOM_MAX_DIMS]; /* ne[0] fastest; unused dims are 1 */
    uint64_t    offset;         /* relative to the data section */
    uint64_t    file_offset;    /* absolute */
    size_t      nbytes;
    const void *data;           /* into the mapping (or the in-memory copy with no_mmap) */
} loom_gguf_tensor;

typedef struct loom_gguf_params {
    bool     no_mmap;         /* read the file into memory instead of mapping it */
    bool     mlock;           /* pin the weights (mlock) */
    bool     metadata_only;   /* parse header, KV and tensor infos; do not map data */
} loom_gguf_params;

loom_status loom_gguf_open(loom_gguf **out, const char *path, const loom_gguf_params *params, loom_err *err);
/* Parse from a caller-owned buffer (used by fuzz tests and the writer round trip). The buffer must outlive g. */
loom_status loom_gguf_open_memory(loom_gguf **out, const void *buf, size_t size, loom_err *err);
void        loom_gguf_close(loom_gguf *g); /* NULL is a no-op */

uint32_t    loom_gguf_version(const loom_gguf *g);
uint64_t    loom_gguf_file_size(const loom_gguf *g);
uint64_t    loom_gguf_alignment(const loom_gguf *g);
uint64_t    loom_gguf_data_offset(const loom_gguf *g);

/* ==== metadata ==== */
int64_t        loom_gguf_n_kv(const loom_gguf *g);
int64_t        loom_gguf_find_key(const loom_gguf *g, const char *key); /* -1 when absent */
loom_gguf_str  loom_gguf_key(const loom_gguf *g, int64_t i);
loom_gguf_type loom_gguf_kv_type(const loom_gguf *g, int64_t i);
/* Scalars: any integer type converts to the requested one when the value fits. */
bool           loom_gguf_kv_u64(const loom_gguf *g, int64_t i, uint64_t *out);
bool           loom_gguf_kv_i64(const loom_gguf *g, int64_t i, int64_t *out);
bool           loom_gguf_kv_f64(const loom_gguf *g, int64_t i, double *out); /* f32/f64 and integers */
bool           loom_gguf_kv_bool(const loom_gguf *g, int64_t i, bool *out);
bool           loom_gguf_kv_str(const loom_gguf *g, int64_t i, loom_gguf_str *out);
/* Arrays (a nested array's elements are themselves arrays; read them with the _arr_ calls on a path). */
loom_gguf_type loom_gguf_arr_type(const loom_gguf *g, int64_t i);
uint64_t       loom_gguf_arr_len(const loom_gguf *g, int64_t i);
/* Fixed-size element arrays: pointer to the raw little-endian elements in the mapping (unaligned). */
const void    *loom_gguf_arr_data(const loom_gguf *g, int64_t i);
/* String arrays: element j. O(1) after open (an index is built for string arrays). */
loom_gguf_str  loom_gguf_arr_str(const loom_gguf *g, int64_t i, uint64_t j);
/* Numeric array element as double / int64 (any numeric element type). */
bool           loom_gguf_arr_f64(const loom_gguf *g, int64_t i, uint64_t j, double *out);
bool           loom_gguf_arr_i64(const loom_gguf *g, int64_t i, uint64_t j, int64_t *out);

/* Array views, for nested arrays (arrays of arrays, any depth up to 8). A view points into g and stays valid until
 * loom_gguf_close. The loom_gguf_arr_* calls above are these applied to loom_gguf_kv_arr(g, i). */
typedef struct loom_gguf_arr loom_gguf_arr;
const loom_gguf_arr *loom_gguf_kv_arr(const loom_gguf *g, int64_t i);          /* NULL when KV i is no array */
const loom_gguf_arr *loom_gguf_arrv_sub(const loom_gguf_arr *a, uint64_t j);  /* element j of an array of arrays */
loom_gguf_type       loom_gguf_arrv_type(const loom_gguf_arr *a);             /* element type */
uint64_t             loom_gguf_arrv_len(const loom_gguf_arr *a);
const void          *loom_gguf_arrv_data(const loom_gguf_arr *a);             /* fixed-size elements, raw LE */
loom_gguf_str        loom_gguf_arrv_str(const loom_gguf_arr *a, uint64_t j);  /* {NULL, 0} when not a string */
bool                 loom_gguf_arrv_f64(const loom_gguf_arr *a, uint64_t j, double *out);
bool                 loom_gguf_arrv_i64(const loom_gguf_arr *a, uint64_t j, int64_t *out);
/* Size in bytes of one element of a fixed-size type; 0 for string, array and unknown types. */
size_t               loom_gguf_type_size(loom_gguf_type t);

/* Typed getters by key for model loaders: LOOM_ERR_FORMAT naming the key when missing or mistyped. */
loom_status loom_gguf_get_u32(const loom_gguf *g, const char *key, uint32_t *out, loom_err *err);
loom_status loom_gguf_get_f32(const loom_gguf *g, const char *key, float *out, loom_err *err);
loom_status loom_gguf_get_str(const loom_gguf *g, const char *key, loom_gguf_str *out, loom_err *err);
/* Optional variants: return false (and leave *out unchanged) when the key is absent or mistyped. */
bool        loom_gguf_opt_u32(const loom_gguf *g, const char *key, uint32_t *out);
bool        loom_gguf_opt_f32(const loom_gguf *g, const char *key, float *out);
bool        loom_gguf_opt_bool(const loom_gguf *g, const char *key, bool *out);

/* ==== tensors ==== */
int64_t                 loom_gguf_n_tensors(const loom_gguf *g);
const loom_gguf_tensor *loom_gguf_tensor_at(const loom_gguf *g, int64_t i);
const loom_gguf_tensor *loom_gguf_find_tensor(const loom_gguf *g, const char *name); /* NULL when absent */

/* ==== writer ==== */
typedef struct loom_gguf_writer loom_gguf_writer;

loom_status loom_gguf_writer_new(loom_gguf_writer **out, loom_err *err);
void        loom_gguf_writer_free(loom_gguf_writer *w);
/* Keys are written in the order they are set; setting an existing key replaces its value in place. */
loom_status loom_gguf_writer_set_u32(loom_gguf_writer *w, const char *key, uint32_t v);
loom_status loom_gguf_writer_set_i32(loom_gguf_writer *w, const char *key, int32_t v);
loom_status loom_gguf_writer_set_u64(loom_gguf_writer *w, const char *key, uint64_t v);
loom_status loom_gguf_writer_set_f32(loom_gguf_writer *w, const char *key, float v);
loom_status loom_gguf_writer_set_bool(loom_gguf_writer *w, const char *key, bool v);
loom_status loom_gguf_writer_set_str(loom_gguf_writer *w, const char *key, const char *v);
/* Array of fixed-size elements (type is the element type), copied. */
loom_status loom_gguf_writer_set_arr(loom_gguf_writer *w, const char *key, loom_gguf_type type, const void *data,
                                     uint64_t n);
loom_status loom_gguf_writer_set_arr_str(loom_gguf_writer *w, const char *key, const char *const *strs, uint64_t n);
/* Any fixed-size scalar type (u8 .. f64, bool): *v holds one value of that type. */
loom_status loom_gguf_writer_set_scalar(loom_gguf_writer *w, const char *key, loom_gguf_type type, const void *v);
/* Array of n arrays: sub-array k has lens[k] elements of types[k]; data[k] points to the raw elements, or for
 * LOOM_GGUF_STRING to a `const char *const *` list of NUL-terminated strings. */
loom_status loom_gguf_writer_set_arr_arr(loom_gguf_writer *w, const char *key, uint64_t n, const loom_gguf_type *types,
                                         const void *const *data, const uint64_t *lens);
/* Remove a key (no-op when absent); setting it again appends it at the end, as ggml's gguf_set_* do. */
void        loom_gguf_writer_remove_key(loom_gguf_writer *w, const char *key);
/* Copy every KV pair of g (used by `loom quantize` and `loom synth`); remove or overwrite keys afterwards. */
loom_status loom_gguf_writer_copy_kv(loom_gguf_writer *w, const loom_gguf *g, loom_err *err);
/* Tensor data is referenced, not copied: it must stay valid until loom_gguf_writer_write returns. */
loom_status loom_gguf_writer_add_tensor(loom_gguf_writer *w, const char *name, loom_dtype type, int n_dims,
                                        const int64_t *ne, const void *data, loom_err *err);
/* Streamed tensor: fill(ctx, dst, nbytes, err) writes the tensor's nbytes bytes into dst when the writer reaches it,
 * so `loom quantize` needs memory for one output tensor at a time, not the whole model. */
typedef loom_status (*loom_gguf_fill_fn)(void *ctx, void *dst, size_t nbytes, loom_err *err);
loom_status loom_gguf_writer_add_tensor_fill(loom_gguf_writer *w, const char *name, loom_dtype type, int n_dims,
                                             const int64_t *ne, loom_gguf_fill_fn fill, void *ctx, loom_err *err);
loom_status loom_gguf_writer_write(loom_gguf_writer *w, const char *path, loom_err *err); /* version 3 */
/* The same bytes into a loom_malloc'd buffer (free with loom_free): builds test models without touching disk. */
loom_status loom_gguf_writer_write_memory(loom_gguf_writer *w, void **buf, size_t *size, loom_err *err);

#endif
