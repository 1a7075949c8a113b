/* tests/core/test_quant.c — f16/bf16 conversions, dequantization and quantization against llama.cpp.
 *
 * Reference data: $LOOM_SHARED/testdata/quant (see its README). manifest.json gives, for every type and
 * tensor, the absolute byte offset of the tensor data inside <TYPE>/<TYPE>.gguf, so no GGUF parser is needed.
 * Dequantization must match llama.cpp's `to_float` bit for bit; quantization must match `llama-quantize`
 * (ggml's reference quantizers) byte for byte.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/quant.h"
#include "core/tensor.h"
#include "tests/testutil.h"

static const char *const k_tensors[] = {"quant.awkward.weight", "quant.normal.weight", "quant.wide.weight",
                                        "quant.experts.weight"};
#define N_TENSORS 4

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bitsf(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ==== f16 / bf16 ==== */

Test(quant_f16, all_65536_round_trip) {
    int nan_count = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = loom_f16_to_f32((loom_f16)h);
        const int is_nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        if (is_nan) {
            nan_count++;
            cr_assert(isnan(f), "f16 %04x should be NaN", h);
            /* payload kept on the way up; the way down gives ggml's quiet NaN with the sign */
            cr_assert_eq(fbits(f) & 0x7fffffu, (h & 0x3ffu) << 13, "f16 %04x NaN payload", h);
            cr_assert_eq(loom_f32_to_f16(f), (h & 0x8000) | 0x7e00, "f16 %04x NaN back", h);
            continue;
        }
        cr_assert_eq(loom_f32_to_f16(f), h, "f16 %04x -> %a -> %04x", h, (double)f, loom_f32_to_f16(f));
        /* value check independent of the implementation: sign * mant * 2^(e-25) */
        const int e = (h >> 10) & 31, m = h & 0x3ff;
        double v = e == 31 ? INFINITY : e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
        if (h & 0x8000) v = -v;
        cr_assert_eq((double)f, v, "f16 %04x = %a, expected %a", h, (double)f, v);
        cr_assert_eq(signbit(f) != 0, (h & 0x8000) != 0, "f16 %04x sign", h);
    }
    cr_assert_eq(nan_count, 2 * 1023);
}

Test(quant_f16, rounding_boundaries) {
    const struct {
        float f;
        uint16_t h;
    } cases[] = {
        {0.0f, 0x0000},
        {-0.0f, 0x8000},
        {1.0f, 0x3c00},
        {-2.0f, 0xc000},
        {65504.0f, 0x7bff},              /* largest finite */
        {65519.99609375f, 0x7bff},       /* just below the halfway point to 65536 */
        {65520.0f, 0x7c00},              /* halfway, mantissa odd: ties to even = inf */
        {-65520.0f, 0xfc00},
        {1e10f, 0x7c00},
        {INFINITY, 0x7c00},
        {-INFINITY, 0xfc00},
        {0x1p-14f, 0x0400},              /* smallest normal */
        {0x1p-14f - 0x1p-25f, 0x0400},   /* halfway between 0x3ff and 0x400: even is 0x400 */
        {0x1p-14f - 0x1p-24f, 0x03ff},   /* largest subnormal */
        {0x1p-24f, 0x0001},              /* smallest subnormal */
        {-0x1p-24f, 0x8001},
        {0x1p-25f, 0x0000},              /* halfway between 0 and 1 unit: even is 0 */
        {-0x1p-25f, 0x8000},
        {0x1.000002p-25f, 0x0001},       /* just above halfway */
        {0x1.8p-24f, 0x0002},            /* 1.5 units: ties to even 2 */
        {0x1.4p-23f, 0x0002},            /* 2.5 units: ties to even 2 */
        {0x1.cp-23f, 0x0004},            /* 3.5 units: ties to even 4 */
        {0x1p-26f, 0x0000},
        {0x1p-149f, 0x0000},             /* f32 subnormal */
        {-0x1p-149f, 0x8000},
        {1.0f + 0x1p-11f, 0x3c00},       /* halfway, even below */
        {1.0f + 0x1.8p-10f, 0x3c02},     /* 1 + 1.5 ulp: halfway, even above */
        {0x1.002002p+0f, 0x3c01},      /* just above the halfway point */
        {2047.0f + 0.5f, 0x6800},        /* 2047.5 -> 2048 (ulp of 2048 is 2; 2047 odd in mantissa) */
        {0.1f, 0x2e66},
        {-3.14159265f, 0xc248},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(loom_f32_to_f16(cases[i].f), cases[i].h, "f32 %a -> %04x, expected %04x", (double)cases[i].f,
                     loom_f32_to_f16(cases[i].f), cases[i].h);
    cr_expect_eq(loom_f32_to_f16(NAN) & 0x7fff, 0x7e00);
    cr_expect_eq(loom_f32_to_f16(bitsf(0xff800001u)), 0xfe00); /* signalling NaN, sign kept */
}

#if defined(__FLT16_MAX__)
/* The compiler's own _Float16 conversion (round-to-nearest-even) as an independent reference. */
Test(quant_f16, matches_compiler_float16) {
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    int bad = 0;
    for (int i = 0; i < 400000; i++) {
        uint32_t u = (uint32_t)loom_test_rand_u64(&s);
        /* concentrate on the f16 range: exponents 100..145 cover subnormal rounding through overflow */
        if (i & 1) u = (u & 0x807fffffu) | ((100u + (u >> 23) % 46u) << 23);
        const float f = bitsf(u);
        if (isnan(f)) continue;
        const _Float16 r = (_Float16)f;
        uint16_t want;
        memcpy(&want, &r, sizeof want);
        if (loom_f32_to_f16(f) != want && bad++ < 5)
            cr_log_error("f32 %08x -> %04x, compiler says %04x", u, loom_f32_to_f16(f), want);
    }
    cr_assert_eq(bad, 0, "%d conversions differ from _Float16", bad);
}
#endif

Test(quant_bf16, conversions) {
    cr_expect_eq(loom_f32_to_bf16(1.0f), 0x3f80);
    cr_expect_eq(loom_f32_to_bf16(-0.0f), 0x8000);
    cr_expect_eq(loom_f32_to_bf16(bitsf(0x3f808000u)), 0x3f80); /* tie, even below */
    cr_expect_eq(loom_f32_to_bf16(bitsf(0x3f818000u)), 0x3f82); /* tie, even above */
    cr_expect_eq(loom_f32_to_bf16(bitsf(0x3f808001u)), 0x3f81); /* above the tie */
    cr_expect_eq(loom_f32_to_bf16(bitsf(0x7f7fffffu)), 0x7f80); /* FLT_MAX rounds to inf */
    cr_expect_eq(loom_f32_to_bf16(INFINITY), 0x7f80);
    cr_expect_eq(loom_f32_to_bf16(-INFINITY), 0xff80);
    cr_expect_eq(loom_f32_to_bf16(bitsf(0x00000001u)), 0x0000); /* subnormals are rounded, not flushed */
    cr_expect_eq(loom_f32_to_bf16(bitsf(0x0000c000u)), 0x0001);
    cr_expect_eq(loom_f32_to_bf16(bitsf(0x807f8000u)), 0x8080); /* rounds up into the smallest normal */
    cr_expect_eq(loom_f32_to_bf16(bitsf(0x7f800001u)), 0x7fc0); /* signalling NaN is quieted */
    cr_expect_eq(loom_f32_to_bf16(bitsf(0xffc12345u)), 0xffc1);
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = loom_bf16_to_f32((uint16_t)h);
        cr_assert_eq(fbits(f), h << 16);
        const int is_nan = (h & 0x7f80) == 0x7f80 && (h & 0x7f);
        cr_assert_eq(loom_f32_to_bf16(f), is_nan ? (h | 64) : h, "bf16 %04x", h);
    }
}

/* ==== reference data ==== */

typedef struct {
    const char *name;
    loom_dtype  t;
} qtype;

static const qtype k_types[] = {
    {"F16", LOOM_F16},   {"BF16", LOOM_BF16}, {"Q8_0", LOOM_Q8_0}, {"Q4_0", LOOM_Q4_0},
    {"Q4_1", LOOM_Q4_1}, {"Q5_0", LOOM_Q5_0}, {"Q5_1", LOOM_Q5_1}, {"Q4_K", LOOM_Q4_K},
    {"Q5_K", LOOM_Q5_K}, {"Q6_K", LOOM_Q6_K},
};
#define N_TYPES ((int)(sizeof k_types / sizeof k_types[0]))

typedef struct {
    int64_t ne0, nrows;
    size_t  off, n_bytes, row_bytes;
} tinfo;

/* Skips the test when the reference data is absent. */
static json_t *load_manifest(void) {
    char path[1024];
    LOOM_SHARED_PATH(path, "testdata/quant/manifest.json");
    json_error_t je;
    json_t *m = json_load_file(path, 0, &je);
    cr_assert_not_null(m, "%s: %s", path, je.text);
    return m;
}

static void *read_shared(const char *rel, size_t *size) {
    char path[1024];
    snprintf(path, sizeof path, "%s/testdata/quant/%s", loom_test_shared_root(), rel);
    void *buf = loom_test_read_file(path, size);
    cr_assert_not_null(buf, "cannot read %s", path);
    return buf;
}

/* Looks up one tensor of one type in the manifest and checks the entry is self-consistent. */
static tinfo tensor_info(json_t *man, const char *type, loom_dtype t, const char *tensor, size_t file_size) {
    json_t *e = json_object_get(json_object_get(json_object_get(json_object_get(man, "types"), type), "tensors"),
                                tensor);
    cr_assert_not_null(e, "manifest has no %s/%s", type, tensor);
    json_t *ne = json_object_get(e, "ne");
    tinfo ti = {0};
    ti.ne0 = json_integer_value(json_array_get(ne, 0));
    ti.nrows = 1;
    for (size_t i = 1; i < json_array_size(ne); i++) ti.nrows *= json_integer_value(json_array_get(ne, i));
    ti.off = (size_t)json_integer_value(json_object_get(e, "file_offset"));
    ti.n_bytes = (size_t)json_integer_value(json_object_get(e, "n_bytes"));
    ti.row_bytes = loom_row_size(t, ti.ne0);
    cr_assert_eq(json_integer_value(json_object_get(e, "ggml_type_id")), (json_int_t)t, "%s/%s type id", type, tensor);
    cr_assert(ti.row_bytes > 0 && ti.row_bytes == (size_t)json_integer_value(json_object_get(e, "row_bytes")));
    cr_assert_eq(ti.n_bytes, ti.row_bytes * (size_t)ti.nrows, "%s/%s size", type, tensor);
    cr_assert(ti.off + ti.n_bytes <= file_size, "%s/%s past end of file", type, tensor);
    return ti;
}

static const char *gguf_rel(json_t *man, const char *type) {
    const char *s = json_string_value(json_object_get(json_object_get(json_object_get(man, "types"), type), "gguf"));
    cr_assert_not_null(s, "manifest has no gguf for %s", type);
    return s;
}

static void check_dequant(const char *type, loom_dtype t) {
    json_t *man = load_manifest();
    size_t gsize = 0;
    uint8_t *gguf = read_shared(gguf_rel(man, type), &gsize);
    for (int k = 0; k < N_TENSORS; k++) {
        const tinfo ti = tensor_info(man, type, t, k_tensors[k], gsize);
        char rel[256];
        snprintf(rel, sizeof rel, "%s/%s.f32.bin", type, k_tensors[k]);
        size_t wsize = 0;
        float *want = read_shared(rel, &wsize);
        cr_assert_eq(wsize, (size_t)(ti.ne0 * ti.nrows) * sizeof(float), "%s size", rel);
        float *got = loom_malloc(wsize);
        for (int64_t r = 0; r < ti.nrows; r++)
            cr_assert_eq(loom_dequantize_row(t, gguf + ti.off + r * ti.row_bytes, got + r * ti.ne0, ti.ne0), 0);
        int64_t mism = 0, first = -1;
        for (int64_t i = 0; i < ti.ne0 * ti.nrows; i++) {
            if (fbits(got[i]) != fbits(want[i])) {
                if (first < 0) first = i;
                mism++;
            }
        }
        cr_expect_eq(mism, 0, "%s %s: %lld of %lld floats differ bitwise (first at %lld: got %08x want %08x)", type,
                     k_tensors[k], (long long)mism, (long long)(ti.ne0 * ti.nrows), (long long)first,
                     first >= 0 ? fbits(got[first]) : 0, first >= 0 ? fbits(want[first]) : 0);
        loom_free(got);
        loom_free(want);
    }
    loom_free(gguf);
    json_decref(man);
}

static void check_quantize(const char *type, loom_dtype t) {
    json_t *man = load_manifest();
    size_t gsize = 0;
    uint8_t *gguf = read_shared(gguf_rel(man, type), &gsize);
    const loom_type_info *info = loom_type_info_get(t);
    for (int k = 0; k < N_TENSORS; k++) {
        const tinfo ti = tensor_info(man, type, t, k_tensors[k], gsize);
        char rel[256];
        snprintf(rel, sizeof rel, "inputs/%s.f32.bin", k_tensors[k]);
        size_t isize = 0;
        float *in = read_shared(rel, &isize);
        cr_assert_eq(isize, (size_t)(ti.ne0 * ti.nrows) * sizeof(float), "%s size", rel);
        uint8_t *q = loom_malloc(ti.n_bytes);
        for (int64_t r = 0; r < ti.nrows; r++)
            cr_assert_eq(loom_quantize_row(t, in + r * ti.ne0, q + r * ti.row_bytes, ti.ne0), 0);
        const size_t bs = (size_t)info->type_size, nblk = ti.n_bytes / bs;
        size_t mism = 0, first = (size_t)-1;
        for (size_t b = 0; b < nblk; b++) {
            if (memcmp(q + b * bs, gguf + ti.off + b * bs, bs) != 0) {
                if (first == (size_t)-1) first = b;
                mism++;
            }
        }
        cr_expect_eq(mism, 0, "%s %s: %zu of %zu blocks differ from llama-quantize (first: block %zu, row %zu)", type,
                     k_tensors[k], mism, nblk, first, first == (size_t)-1 ? 0 : first * bs / ti.row_bytes);
        loom_free(q);
        loom_free(in);
    }
    loom_free(gguf);
    json_decref(man);
}

#define TYPE_TESTS(NAME)                                                                                       \
    Test(quant_dequant, NAME) { check_dequant(#NAME, LOOM_##NAME); }                                          \
    Test(quant_quantize, NAME) { check_quantize(#NAME, LOOM_##NAME); }

TYPE_TESTS(F16)
TYPE_TESTS(BF16)
TYPE_TESTS(Q8_0)
TYPE_TESTS(Q4_0)
TYPE_TESTS(Q4_1)
TYPE_TESTS(Q5_0)
TYPE_TESTS(Q5_1)
TYPE_TESTS(Q4_K)
TYPE_TESTS(Q5_K)
TYPE_TESTS(Q6_K)

Test(quant_data, f32_source_matches_inputs) {
    json_t *man = load_manifest();
    size_t gsize = 0;
    uint8_t *gguf = read_shared(gguf_rel(man, "F32"), &gsize);
    for (int k = 0; k < N_TENSORS; k++) {
        const tinfo ti = tensor_info(man, "F32", LOOM_F32, k_tensors[k], gsize);
        char rel[256];
        snprintf(rel, sizeof rel, "inputs/%s.f32.bin", k_tensors[k]);
        size_t isize = 0;
        float *in = read_shared(rel, &isize);
        cr_assert_eq(isize, ti.n_bytes, "%s size", rel);
        cr_expect(memcmp(gguf + ti.off, in, isize) == 0, "%s: F32.gguf data differs from %s", k_tensors[k], rel);
        float *got = loom_malloc(isize);
        uint8_t *back = loom_malloc(isize);
        for (int64_t r = 0; r < ti.nrows; r++) {
            cr_assert_eq(loom_dequantize_row(LOOM_F32, gguf + ti.off + r * ti.row_bytes, got + r * ti.ne0, ti.ne0), 0);
            cr_assert_eq(loom_quantize_row(LOOM_F32, got + r * ti.ne0, back + r * ti.row_bytes, ti.ne0), 0);
        }
        cr_expect(memcmp(got, in, isize) == 0, "%s: F32 dequantize is not a copy", k_tensors[k]);
        cr_expect(memcmp(back, in, isize) == 0, "%s: F32 quantize is not a copy", k_tensors[k]);
        loom_free(back);
        loom_free(got);
        loom_free(in);
    }
    loom_free(gguf);
    json_decref(man);
}

/* Each f32*f32 product is exact in f64; Neumaier summation makes the f64 sum essentially correctly rounded. */
static double dot_f64(const float *a, const float *b, int64_t n) {
    double s = 0, c = 0;
    for (int64_t i = 0; i < n; i++) {
        const double p = (double)a[i] * (double)b[i], t = s + p;
        c += fabs(s) >= fabs(p) ? (s - t) + p : (p - t) + s;
        s = t;
    }
    return s + c;
}

Test(quant_data, dot_refs) {
    json_t *man = load_manifest();
    char path[1024];
    LOOM_SHARED_PATH(path, "testdata/quant/dot_refs.json");
    json_error_t je;
    json_t *refs = json_load_file(path, 0, &je);
    cr_assert_not_null(refs, "%s: %s", path, je.text);
    int checked[N_TYPES] = {0};
    for (size_t e = 0; e < json_array_size(refs); e++) {
        json_t *ref = json_array_get(refs, e);
        const char *type = json_string_value(json_object_get(ref, "type"));
        int ti_idx = -1;
        for (int i = 0; i < N_TYPES; i++)
            if (type && strcmp(type, k_types[i].name) == 0) ti_idx = i;
        if (ti_idx < 0) continue;
        const loom_dtype t = k_types[ti_idx].t;
        const char *tensor = json_string_value(json_object_get(ref, "tensor"));
        const int64_t row = json_integer_value(json_object_get(ref, "row"));
        const int64_t n = json_integer_value(json_object_get(ref, "n"));
        const double want = json_real_value(json_object_get(ref, "dot_dequant_f64"));
        size_t gsize = 0, vsize = 0;
        uint8_t *gguf = read_shared(gguf_rel(man, type), &gsize);
        float *vec = read_shared(json_string_value(json_object_get(ref, "vector")), &vsize);
        const tinfo ti = tensor_info(man, type, t, tensor, gsize);
        cr_assert(ti.ne0 == n && row >= 0 && row < ti.nrows && vsize == (size_t)n * sizeof(float));
        float *y = loom_malloc((size_t)n * sizeof(float));
        cr_assert_eq(loom_dequantize_row(t, gguf + ti.off + (size_t)row * ti.row_bytes, y, n), 0);
        const double got = dot_f64(y, vec, n);
        cr_expect(fabs(got - want) <= 1e-12 * fabs(want), "%s %s row %lld: dot %.17g, expected %.17g", type, tensor,
                  (long long)row, got, want);
        checked[ti_idx]++;
        loom_free(y);
        loom_free(vec);
        loom_free(gguf);
    }
    for (int i = 0; i < N_TYPES; i++) cr_expect_eq(checked[i], 21, "%s: %d dot refs checked", k_types[i].name, checked[i]);
    json_decref(refs);
    json_decref(man);
}

/* ==== API edges ==== */

Test(quant_api, unsupported_types_and_bad_sizes) {
    float x[256] = {0};
    uint8_t buf[2048];
    const loom_dtype bad[] = {LOOM_Q2_K, LOOM_Q3_K, LOOM_IQ4_NL, LOOM_IQ4_XS, LOOM_Q8_1, LOOM_Q8_K,
                              LOOM_I8,   LOOM_I32,  LOOM_F64,    (loom_dtype)4, (loom_dtype)39, (loom_dtype)-1,
                              (loom_dtype)1000};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_expect_eq(loom_dequantize_row(bad[i], buf, x, 256), -1, "dequantize type %d", (int)bad[i]);
        cr_expect_eq(loom_quantize_row(bad[i], x, buf, 256), -1, "quantize type %d", (int)bad[i]);
    }
    for (int i = 0; i < N_TYPES; i++) {
        const loom_dtype t = k_types[i].t;
        const int bsz = loom_type_info_get(t)->block_size;
        cr_expect_eq(loom_quantize_row(t, x, buf, -bsz), -1);
        cr_expect_eq(loom_dequantize_row(t, buf, x, -bsz), -1);
        if (bsz > 1) {
            cr_expect_eq(loom_quantize_row(t, x, buf, bsz + 1), -1, "%s n not a block multiple", k_types[i].name);
            cr_expect_eq(loom_dequantize_row(t, buf, x, bsz / 2), -1, "%s n not a block multiple", k_types[i].name);
        }
        cr_expect_eq(loom_quantize_row(t, x, buf, 0), 0);
    }
}

/* Non-finite and huge inputs must not trip UBSan or crash; the output is whatever ggml's arithmetic gives. */
Test(quant_api, non_finite_inputs_are_safe) {
    float x[256];
    uint64_t s = 7;
    for (int i = 0; i < 256; i++) x[i] = loom_test_rand_normal(&s);
    x[3] = NAN;
    x[40] = INFINITY;
    x[77] = -INFINITY;
    x[100] = 3e38f;
    x[200] = -3e38f;
    x[201] = 0x1p-149f;
    uint8_t q[1024];
    float y[256];
    for (int i = 0; i < N_TYPES; i++) {
        cr_expect_eq(loom_quantize_row(k_types[i].t, x, q, 256), 0, "%s", k_types[i].name);
        cr_expect_eq(loom_dequantize_row(k_types[i].t, q, y, 256), 0, "%s", k_types[i].name);
    }
}

/* Quantization error on plain N(0,1) data stays within each format's expected bound (relative RMS). */
Test(quant_api, round_trip_error_is_small) {
    enum { N = 1024 };
    float x[N], y[N];
    uint8_t q[4 * N];
    uint64_t s = 42;
    for (int i = 0; i < N; i++) x[i] = loom_test_rand_normal(&s);
    const struct {
        loom_dtype t;
        double     max_rel_rms;
    } lim[] = {{LOOM_F16, 1e-3},  {LOOM_BF16, 5e-3}, {LOOM_Q8_0, 0.01}, {LOOM_Q4_0, 0.15}, {LOOM_Q4_1, 0.12},
               {LOOM_Q5_0, 0.07}, {LOOM_Q5_1, 0.06}, {LOOM_Q4_K, 0.12}, {LOOM_Q5_K, 0.06}, {LOOM_Q6_K, 0.03}};
    for (size_t k = 0; k < sizeof lim / sizeof lim[0]; k++) {
        cr_assert_eq(loom_quantize_row(lim[k].t, x, q, N), 0);
        cr_assert_eq(loom_dequantize_row(lim[k].t, q, y, N), 0);
        double se = 0, sx = 0;
        for (int i = 0; i < N; i++) {
            se += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
            sx += (double)x[i] * x[i];
        }
        const double rel = sqrt(se / sx);
        cr_expect(rel < lim[k].max_rel_rms, "%s: relative RMS error %g >= %g", loom_type_name(lim[k].t), rel,
                  lim[k].max_rel_rms);
    }
}
