/* core/tensor.c — the type table (ids and block geometry as in ggml). */
#include "core/tensor.h"

#include <strings.h>

static const loom_type_info type_table[LOOM_DTYPE_COUNT] = {
    [LOOM_F32] = {"F32", 1, 4, 1},
    [LOOM_F16] = {"F16", 1, 2, 1},
    [LOOM_Q4_0] = {"Q4_0", 32, 18, 1},
    [LOOM_Q4_1] = {"Q4_1", 32, 20, 1},
    [LOOM_Q5_0] = {"Q5_0", 32, 22, 1},
    [LOOM_Q5_1] = {"Q5_1", 32, 24, 1},
    [LOOM_Q8_0] = {"Q8_0", 32, 34, 1},
    [LOOM_Q8_1] = {"Q8_1", 32, 36, 0},
    [LOOM_Q2_K] = {"Q2_K", 256, 84, 0},
    [LOOM_Q3_K] = {"Q3_K", 256, 110, 0},
    [LOOM_Q4_K] = {"Q4_K", 256, 144, 1},
    [LOOM_Q5_K] = {"Q5_K", 256, 176, 1},
    [LOOM_Q6_K] = {"Q6_K", 256, 210, 1},
    [LOOM_Q8_K] = {"Q8_K", 256, 292, 0},
    [LOOM_IQ4_NL] = {"IQ4_NL", 32, 18, 0},
    [LOOM_IQ4_XS] = {"IQ4_XS", 256, 136, 0},
    [LOOM_I8] = {"I8", 1, 1, 0},
    [LOOM_I16] = {"I16", 1, 2, 0},
    [LOOM_I32] = {"I32", 1, 4, 0},
    [LOOM_I64] = {"I64", 1, 8, 0},
    [LOOM_F64] = {"F64", 1, 8, 0},
    [LOOM_BF16] = {"BF16", 1, 2, 1},
};

const loom_type_info *loom_type_info_get(loom_dtype t) {
    if ((unsigned)t >= LOOM_DTYPE_COUNT || !type_table[t].name) return NULL;
    return &type_table[t];
}

const char *loom_type_name(loom_dtype t) {
    const loom_type_info *ti = loom_type_info_get(t);
    return ti ? ti->name : "?";
}

int loom_type_from_name(const char *name, loom_dtype *out) {
    for (int t = 0; t < LOOM_DTYPE_COUNT; t++) {
        if (type_table[t].name && strcasecmp(type_table[t].name, name) == 0) {
            *out = (loom_dtype)t;
            return 1;
        }
    }
    return 0;
}

size_t loom_row_size(loom_dtype t, int64_t n) {
    const loom_type_info *ti = loom_type_info_get(t);
    if (!ti || n < 0 || n % ti->block_size) return 0;
    size_t out;
    if (__builtin_mul_overflow((size_t)(n / ti->block_size), (size_t)ti->type_size, &out)) return 0;
    return out;
}
