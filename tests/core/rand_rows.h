/* tests/core/rand_rows.h — random but valid weight rows of every type, shared by test_matmul.c and
 * test_gemm.c: random bytes (every quant bit pattern) with sane f16 scales, normal values for float types. */
#ifndef LOOM_TESTS_CORE_RAND_ROWS_H
#define LOOM_TESTS_CORE_RAND_ROWS_H

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/matmul_int.h"
#include "core/quant.h"
#include "tests/testutil.h"

static float rand_unit(uint64_t *s) { return (float)(loom_test_rand_u64(s) >> 40) / (float)(1 << 24); }

/* a random f16 scale of magnitude 2^-9 .. 2^-3, random sign */
static uint16_t rand_scale(uint64_t *s) {
    float v = (0.5f + rand_unit(s)) * ldexpf(1.0f, -(int)(3 + loom_test_rand_u64(s) % 7));
    return mm_f32_to_f16(loom_test_rand_u64(s) & 1 ? -v : v);
}

/* Sets the f16 scales of nblk blocks of quantized type t: random (rand_scale) when s is given, else fixed. */
static inline void set_block_scales(loom_dtype t, uint8_t *w, int64_t nblk, uint64_t *s, uint16_t fixed) {
#define SC() (s ? rand_scale(s) : fixed)
    for (int64_t b = 0; b < nblk; b++) {
        uint16_t *h;
        switch (t) {
        case LOOM_Q8_0: ((block_q8_0 *)w)[b].d = SC(); break;
        case LOOM_Q4_0: ((block_q4_0 *)w)[b].d = SC(); break;
        case LOOM_Q5_0: ((block_q5_0 *)w)[b].d = SC(); break;
        case LOOM_Q4_1: h = &((block_q4_1 *)w)[b].d; h[0] = SC(); h[1] = SC(); break;
        case LOOM_Q5_1: h = &((block_q5_1 *)w)[b].d; h[0] = SC(); h[1] = SC(); break;
        case LOOM_Q4_K: ((block_q4_k *)w)[b].d = SC(); ((block_q4_k *)w)[b].dmin = SC(); break;
        case LOOM_Q5_K: ((block_q5_k *)w)[b].d = SC(); ((block_q5_k *)w)[b].dmin = SC(); break;
        case LOOM_Q6_K: ((block_q6_k *)w)[b].d = SC(); break;
        default: cr_assert_fail("type");
        }
    }
#undef SC
}

/* n_rows random valid rows of type t, each n values */
static inline void *rand_rows(loom_dtype t, int64_t n, int64_t n_rows, uint64_t *s) {
    size_t rb = loom_row_size(t, n);
    uint8_t *w = loom_malloc(rb * (size_t)n_rows);
    cr_assert_not_null(w);
    for (size_t i = 0; i < rb * (size_t)n_rows; i++) w[i] = (uint8_t)loom_test_rand_u64(s);
    switch (t) {
    case LOOM_F32:
        for (int64_t i = 0; i < n * n_rows; i++) ((float *)w)[i] = loom_test_rand_normal(s);
        return w;
    case LOOM_F16:
        for (int64_t i = 0; i < n * n_rows; i++) ((uint16_t *)w)[i] = mm_f32_to_f16(loom_test_rand_normal(s));
        return w;
    case LOOM_BF16:
        for (int64_t i = 0; i < n * n_rows; i++) {
            float f = loom_test_rand_normal(s);
            uint32_t u;
            memcpy(&u, &f, 4);
            ((uint16_t *)w)[i] = (uint16_t)(u >> 16);
        }
        return w;
    default: set_block_scales(t, w, n_rows * (n / loom_type_info_get(t)->block_size), s, 0); return w;
    }
}

/* n_rows rows of quantized type t with every quant byte = fill and every scale = the f16 scale: the extreme
 * bit patterns (fill 0xFF: the largest q and sub-block scales; 0x80: Q8_0's -128) at once. */
static inline void *fill_rows(loom_dtype t, int64_t n, int64_t n_rows, uint8_t fill, uint16_t scale) {
    size_t rb = loom_row_size(t, n);
    uint8_t *w = loom_malloc(rb * (size_t)n_rows);
    cr_assert_not_null(w);
    memset(w, fill, rb * (size_t)n_rows);
    set_block_scales(t, w, n_rows * (n / loom_type_info_get(t)->block_size), NULL, scale);
    return w;
}

#endif
