/* core/tensor.h — element types and the tensor descriptor, with loom's one shape convention.
 *
 * Shape convention (ggml's): ne[0] is the fastest-varying (contiguous) dimension. A weight matrix that maps
 * d_in -> d_out has ne = [d_in, d_out]: each of its d_out rows is a run of d_in values (in blocks for
 * quantized types), and y = W x means y[o] = dot(row o, x). nb[i] is the byte stride of dimension i; for a
 * quantized type nb[0] is the block size in bytes and nb[1] the row size. Expert stacks add ne[2] = n_expert.
 *
 * Shape vocabulary used in comments across loom: n_tok, n_patch, d_model, d_vis, n_head, d_head, n_kv_head,
 * n_expert, n_expert_used, H/W/C. Comments write shapes outermost first, e.g. [n_tok, d_model] f32.
 *
 * Type ids equal ggml's, so GGUF tensor types map one to one.
 */
#ifndef LOOM_CORE_TENSOR_H
#define LOOM_CORE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

typedef enum loom_dtype {
    LOOM_F32 = 0,
    LOOM_F16 = 1,
    LOOM_Q4_0 = 2,
    LOOM_Q4_1 = 3,
    LOOM_Q5_0 = 6,
    LOOM_Q5_1 = 7,
    LOOM_Q8_0 = 8,
    LOOM_Q8_1 = 9,
    LOOM_Q2_K = 10,
    LOOM_Q3_K = 11,
    LOOM_Q4_K = 12,
    LOOM_Q5_K = 13,
    LOOM_Q6_K = 14,
    LOOM_Q8_K = 15,
    LOOM_IQ4_NL = 20,
    LOOM_IQ4_XS = 23,
    LOOM_I8 = 24,
    LOOM_I16 = 25,
    LOOM_I32 = 26,
    LOOM_I64 = 27,
    LOOM_F64 = 28,
    LOOM_BF16 = 30,
    LOOM_DTYPE_COUNT = 40,
} loom_dtype;

#define LOOM_MAX_DIMS 4

typedef struct loom_tensor {
    const char *name;
    loom_dtype  type;
    int         n_dims;
    int64_t     ne[LOOM_MAX_DIMS]; /* elements per dimension, ne[0] fastest; unused dims are 1 */
    size_t      nb[LOOM_MAX_DIMS]; /* byte strides */
    void       *data;              /* view into a mapping or an arena; the tensor never owns it */
} loom_tensor;

/* Per-type facts. A type loom can store but not compute with has block_size 0 in the table. */
typedef struct loom_type_info {
    const char *name;       /* "Q4_K" — as llama.cpp prints it */
    int         block_size; /* elements per block (1 for F32/F16/BF16/ints) */
    int         type_size;  /* bytes per block */
    int         supported;  /* weights of this type can be loaded and multiplied */
} loom_type_info;

const loom_type_info *loom_type_info_get(loom_dtype t); /* NULL for an id outside the table */
const char           *loom_type_name(loom_dtype t);     /* "?" for unknown ids */
int                   loom_type_from_name(const char *name, loom_dtype *out); /* 1 on success, case-insensitive */

/* Bytes taken by `n` elements of type t; 0 when n is not a multiple of the block size, t is unknown,
 * or the size overflows. */
size_t loom_row_size(loom_dtype t, int64_t n);

#endif
