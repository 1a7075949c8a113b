/* tests/core/test_matmul.c — dot-product kernels, activation quantizers, matvec / matmul.
 *
 * Oracles, in order of trust:
 *   1. an f64 dot of element values this file decodes itself from the block formulas (README of
 *      ../shared/testdata/quant), independent of the kernels;
 *   2. the scalar reference kernels (dot_ref.c), checked against 1;
 *   3. every SIMD ISA the CPU has, checked against 2.
 * Tolerances are relative to S = sum_i |w_i * x_i| (the magnitude of the terms, which is what float
 * rounding scales with; the value itself can cancel to ~0): ref vs f64 within 1e-6 * S, SIMD vs ref within
 * 1e-5 * S. Weight blocks are random bytes with sane f16 scales, so the tests need neither quant.c nor files.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/matmul.h"
#include "core/gemm_int.h"
#include "core/matmul_int.h"
#include "core/quant.h"
#include "core/threadpool.h"
#include "tests/core/rand_rows.h"
#include "tests/testutil.h"

static const loom_dtype k_types[] = {LOOM_F32,  LOOM_F16,  LOOM_BF16, LOOM_Q8_0, LOOM_Q4_0, LOOM_Q4_1,
                                     LOOM_Q5_0, LOOM_Q5_1, LOOM_Q4_K, LOOM_Q5_K, LOOM_Q6_K};
#define N_TYPES (int)(sizeof k_types / sizeof k_types[0])

static int blk(loom_dtype t) { return loom_type_info_get(t)->block_size; }


/* ==== independent decoders (straight from the README formulas) ==== */

static double f16d(uint16_t h) { return (double)mm_f16_to_f32(h); }

static void decode_row(loom_dtype t, const void *row, int64_t n, double *out) {
    for (int64_t e = 0; e < n; e++) {
        int64_t b = e / blk(t);
        int i = (int)(e % blk(t));
        switch (t) {
        case LOOM_F32: out[e] = ((const float *)row)[e]; break;
        case LOOM_F16: out[e] = f16d(((const uint16_t *)row)[e]); break;
        case LOOM_BF16: out[e] = mm_bf16_to_f32(((const uint16_t *)row)[e]); break;
        case LOOM_Q8_0: { const block_q8_0 *x = (const block_q8_0 *)row + b; out[e] = x->qs[i] * f16d(x->d); break; }
        case LOOM_Q4_0: {
            const block_q4_0 *x = (const block_q4_0 *)row + b;
            int q = i < 16 ? x->qs[i] & 0xF : x->qs[i - 16] >> 4;
            out[e] = (q - 8) * f16d(x->d);
            break;
        }
        case LOOM_Q4_1: {
            const block_q4_1 *x = (const block_q4_1 *)row + b;
            int q = i < 16 ? x->qs[i] & 0xF : x->qs[i - 16] >> 4;
            out[e] = q * f16d(x->d) + f16d(x->m);
            break;
        }
        case LOOM_Q5_0:
        case LOOM_Q5_1: {
            const uint8_t *p = (const uint8_t *)row + b * (t == LOOM_Q5_0 ? 22 : 24);
            const uint8_t *qh = p + (t == LOOM_Q5_0 ? 2 : 4), *qs = qh + 4;
            uint32_t h = qh[0] | qh[1] << 8 | qh[2] << 16 | (uint32_t)qh[3] << 24;
            int q = (i < 16 ? qs[i] & 0xF : qs[i - 16] >> 4) | (int)((h >> i) & 1) << 4;
            uint16_t d = p[0] | p[1] << 8, m = p[2] | p[3] << 8;
            out[e] = t == LOOM_Q5_0 ? (q - 16) * f16d(d) : q * f16d(d) + f16d(m);
            break;
        }
        case LOOM_Q4_K:
        case LOOM_Q5_K: {
            const uint8_t *p = (const uint8_t *)row + b * (t == LOOM_Q4_K ? 144 : 176);
            const uint8_t *S = p + 4, *qh = p + 16, *qs = p + (t == LOOM_Q4_K ? 16 : 48);
            int k = i / 32, c = i / 64, l = i % 32;
            int sc = k < 4 ? S[k] & 63 : (S[k + 4] & 0xF) | ((S[k - 4] >> 6) << 4);
            int mn = k < 4 ? S[k + 4] & 63 : (S[k + 4] >> 4) | ((S[k] >> 6) << 4);
            int q = (i % 64 < 32) ? qs[32 * c + l] & 0xF : qs[32 * c + l] >> 4;
            if (t == LOOM_Q5_K) q += 16 * ((qh[l] >> k) & 1);
            uint16_t d = p[0] | p[1] << 8, dmin = p[2] | p[3] << 8;
            out[e] = f16d(d) * sc * q - f16d(dmin) * mn;
            break;
        }
        case LOOM_Q6_K: {
            const block_q6_k *x = (const block_q6_k *)row + b;
            int h = i / 128, w = i % 128, k = w / 32, l = w % 32;
            int lo = k == 0 ? x->ql[64 * h + l] & 0xF : k == 1 ? x->ql[64 * h + 32 + l] & 0xF
                   : k == 2 ? x->ql[64 * h + l] >> 4 : x->ql[64 * h + 32 + l] >> 4;
            int hi = (x->qh[32 * h + l] >> (2 * k)) & 3;
            out[e] = f16d(x->d) * x->scales[i / 16] * ((lo | hi << 4) - 32);
            break;
        }
        default: cr_assert_fail("type");
        }
    }
}

static void decode_act(loom_dtype wt, const void *xq, int64_t n, double *out) {
    loom_dtype vt = loom_vec_dot_type(wt);
    for (int64_t e = 0; e < n; e++) {
        if (vt == LOOM_F32) out[e] = ((const float *)xq)[e];
        else if (vt == LOOM_Q8_0) {
            const block_q8_0 *y = (const block_q8_0 *)xq + e / 32;
            out[e] = y->qs[e % 32] * f16d(y->d);
        } else {
            const block_q8_k *y = (const block_q8_k *)xq + e / 256;
            out[e] = y->qs[e % 256] * (double)y->d;
        }
    }
}

/* ==== a fixture: one random weight row and activation per (type, n) ==== */

typedef struct tcase {
    loom_dtype t;
    int64_t    n;
    void      *w;          /* [n_rows] rows */
    float     *x;          /* [n] */
    void      *xq;         /* scalar-quantized activation */
    double     exact, mag; /* f64 dot of decoded values; sum |w_i x_i| */
} tcase;

static void tcase_make(tcase *c, loom_dtype t, int64_t n, uint64_t seed) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + (uint64_t)t * 1000003 + (uint64_t)n;
    c->t = t;
    c->n = n;
    c->w = rand_rows(t, n, 1, &s);
    c->x = loom_malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) c->x[i] = loom_test_rand_normal(&s) * (i % 7 == 0 ? 5.0f : 1.0f);
    c->xq = loom_malloc(loom_act_row_size(t, n));
    cr_assert_not_null(c->xq);
    loom_isa_force(LOOM_ISA_SCALAR);
    loom_act_quantize(t, c->x, c->xq, n);
    loom_isa_force(LOOM_ISA_AVX512);
    double *wd = loom_malloc((size_t)n * sizeof(double)), *xd = loom_malloc((size_t)n * sizeof(double));
    decode_row(t, c->w, n, wd);
    decode_act(t, c->xq, n, xd);
    c->exact = c->mag = 0;
    for (int64_t i = 0; i < n; i++) {
        c->exact += wd[i] * xd[i];
        c->mag += fabs(wd[i] * xd[i]);
    }
    loom_free(wd);
    loom_free(xd);
}

static void tcase_free(tcase *c) {
    loom_free(c->w);
    loom_free(c->x);
    loom_free(c->xq);
}

static int64_t sizes_for(loom_dtype t, int64_t *out) {
    static const int64_t blocks[] = {1, 2, 3, 7, 33, 129};
    static const int64_t fl[] = {1, 7, 15, 16, 17, 31, 33, 63, 64, 65, 129, 1000, 4128};
    if (blk(t) == 1) {
        memcpy(out, fl, sizeof fl);
        return (int64_t)(sizeof fl / sizeof fl[0]);
    }
    for (int i = 0; i < 6; i++) out[i] = blocks[i] * blk(t);
    return 6;
}

/* ==== tests ==== */

Test(matmul, f16_conversion_roundtrip) {
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) continue; /* NaN */
        cr_assert_eq(mm_f32_to_f16(mm_f16_to_f32((uint16_t)h)), h, "half 0x%04x", h);
    }
    cr_assert_eq(mm_f16_to_f32(0x3C00), 1.0f);
    cr_assert_eq(mm_f16_to_f32(0x0001), ldexpf(1.0f, -24));
    cr_assert_eq(mm_f32_to_f16(1.0f + ldexpf(1.0f, -11)), 0x3C00);     /* tie -> even */
    cr_assert_eq(mm_f32_to_f16(1.0f + 3 * ldexpf(1.0f, -11)), 0x3C02); /* tie -> even (up) */
    cr_assert_eq(mm_f32_to_f16(65520.0f), 0x7C00);
    cr_assert_eq(mm_f32_to_f16(ldexpf(1.0f, -25)), 0x0000);
    cr_assert_eq(mm_f32_to_f16(ldexpf(1.5f, -25)), 0x0001);
}

Test(matmul, cpu_features_and_isa) {
    const loom_cpu_features *f = loom_cpu_features_get();
    loom_isa best = loom_isa_best();
    if (best >= LOOM_ISA_AVX2) cr_assert(f->avx2 && f->fma && f->f16c);
    if (best == LOOM_ISA_AVX512) cr_assert(f->avx512f && f->avx512bw && f->avx512vl && f->avx512vnni);
    loom_isa_force(LOOM_ISA_SCALAR);
    cr_assert_eq(loom_isa_active(), LOOM_ISA_SCALAR);
    loom_isa_force(LOOM_ISA_AVX512);
    cr_assert_eq(loom_isa_active(), best);
    cr_assert_str_eq(loom_isa_name(LOOM_ISA_AVX2), "avx2");
    cr_assert_eq(loom_vec_dot_type(LOOM_Q4_K), LOOM_Q8_K);
    cr_assert_eq(loom_vec_dot_type(LOOM_Q5_1), LOOM_Q8_0);
    cr_assert_eq(loom_vec_dot_type(LOOM_BF16), LOOM_F32);
    cr_assert_eq(loom_act_row_size(LOOM_Q6_K, 512), 2 * sizeof(block_q8_k));
    cr_assert_eq(loom_act_row_size(LOOM_Q4_0, 48), 0);
}

/* The reference itself against f64 sums of independently decoded values. */
Test(matmul, reference_matches_decoded_f64) {
    for (int ti = 0; ti < N_TYPES; ti++) {
        int64_t ns[16];
        int64_t nn = sizes_for(k_types[ti], ns);
        for (int64_t k = 0; k < nn; k++) {
            tcase c;
            tcase_make(&c, k_types[ti], ns[k], 1);
            float r = loom_vec_dot_isa(LOOM_ISA_SCALAR, c.t, c.n, c.w, c.xq);
            cr_assert(fabs(r - c.exact) <= 1e-6 * c.mag + 1e-30, "%s n=%ld: ref %.9g exact %.9g (mag %.3g)",
                      loom_type_name(c.t), (long)c.n, r, c.exact, c.mag);
            cr_assert(c.mag > 0);
            tcase_free(&c);
        }
    }
}

Test(matmul, simd_matches_reference) {
    for (int isa = LOOM_ISA_AVX2; isa <= (int)loom_isa_best(); isa++) {
        const loom_kernels *k = loom_kernels_get((loom_isa)isa);
        for (int ti = 0; ti < N_TYPES; ti++) {
            int64_t ns[16];
            int64_t nn = sizes_for(k_types[ti], ns);
            for (int64_t j = 0; j < nn; j++) {
                for (uint64_t seed = 1; seed <= 3; seed++) {
                    tcase c;
                    tcase_make(&c, k_types[ti], ns[j], seed);
                    float r = loom_vec_dot_isa(LOOM_ISA_SCALAR, c.t, c.n, c.w, c.xq);
                    float v = loom_vec_dot_isa((loom_isa)isa, c.t, c.n, c.w, c.xq);
                    cr_assert(fabs((double)v - r) <= 1e-5 * c.mag, "%s %s n=%ld: simd %.9g ref %.9g (mag %.3g)",
                              loom_isa_name((loom_isa)isa), loom_type_name(c.t), (long)c.n, v, r, c.mag);
                    /* the four-token kernel gives each token exactly the single-token result */
                    if (k->dot4[c.t]) {
                        size_t ab = loom_act_row_size(c.t, c.n);
                        uint8_t *x4 = loom_malloc(4 * ab);
                        float *xf = loom_malloc((size_t)c.n * sizeof(float));
                        float o[4];
                        for (int t = 0; t < 4; t++) {
                            for (int64_t i = 0; i < c.n; i++) xf[i] = c.x[(i + 13 * t) % c.n] * (float)(t + 1);
                            loom_act_quantize(c.t, xf, x4 + t * ab, c.n);
                        }
                        k->dot4[c.t](c.n, c.w, x4, ab, o);
                        for (int t = 0; t < 4; t++)
                            cr_assert_eq(o[t], k->dot[c.t](c.n, c.w, x4 + t * ab), "%s %s dot4 token %d",
                                         loom_isa_name((loom_isa)isa), loom_type_name(c.t), t);
                        loom_free(x4);
                        loom_free(xf);
                    }
                    tcase_free(&c);
                }
            }
        }
    }
}

/* Every ISA's activation quantizer writes the same bytes; the values are within half a step of x. */
Test(matmul, act_quantizers_identical_across_isas) {
    uint64_t s = 77;
    const int64_t n = 1024 + 256;
    float *x = loom_malloc(n * sizeof(float));
    for (int64_t i = 0; i < n; i++) x[i] = loom_test_rand_normal(&s) * (i < 256 ? 1e-3f : 3.0f);
    x[5] = 0.0f;
    for (int i = 32; i < 64; i++) x[i] = 0.0f; /* an all-zero Q8_0 block */
    const loom_dtype wts[] = {LOOM_Q4_0, LOOM_Q4_K};
    for (int wi = 0; wi < 2; wi++) {
        size_t ab = loom_act_row_size(wts[wi], n);
        uint8_t *ref = loom_malloc(ab), *got = loom_malloc(ab);
        if (wts[wi] == LOOM_Q4_0) loom_kernels_get(LOOM_ISA_SCALAR)->quant_q8_0(x, ref, n);
        else loom_kernels_get(LOOM_ISA_SCALAR)->quant_q8_k(x, ref, n);
        for (int isa = LOOM_ISA_AVX2; isa <= (int)loom_isa_best(); isa++) {
            memset(got, 0xAB, ab);
            if (wts[wi] == LOOM_Q4_0) loom_kernels_get((loom_isa)isa)->quant_q8_0(x, got, n);
            else loom_kernels_get((loom_isa)isa)->quant_q8_k(x, got, n);
            cr_assert_eq(memcmp(ref, got, ab), 0, "%s quantizer differs for %s", loom_isa_name((loom_isa)isa),
                         loom_type_name(wts[wi]));
        }
        double *xd = loom_malloc(n * sizeof(double));
        decode_act(wts[wi], ref, n, xd);
        int bs = wts[wi] == LOOM_Q4_0 ? 32 : 256;
        for (int64_t i = 0; i < n; i++) {
            float amax = 0;
            for (int64_t k = i / bs * bs; k < i / bs * bs + bs; k++) amax = fmaxf(amax, fabsf(x[k]));
            /* half a step of the f32 scale, plus 127 times the rounding of the stored (f16 for Q8_0) scale */
            double step = amax / 127.0f;
            double stored = bs == 32 ? f16d(((const block_q8_0 *)ref)[i / 32].d) : ((const block_q8_k *)ref)[i / 256].d;
            double tol = 0.5 * step * (1 + 1e-5) + 127 * fabs(stored - step) + 1e-30;
            cr_assert(fabs(xd[i] - x[i]) <= tol, "%s i=%ld x=%g got %g", loom_type_name(wts[wi]), (long)i, x[i], xd[i]);
        }
        if (wts[wi] == LOOM_Q4_K) {
            const block_q8_k *yk = (const block_q8_k *)ref;
            for (int64_t b = 0; b < n / 256; b++)
                for (int j = 0; j < 16; j++) {
                    int sum = 0;
                    for (int i = 0; i < 16; i++) sum += yk[b].qs[16 * j + i];
                    cr_assert_eq(yk[b].bsums[j], sum);
                }
        }
        loom_free(xd);
        loom_free(ref);
        loom_free(got);
    }
    loom_free(x);
}

/* The register kernels (dot/dot4) behind matmul equal vec_dot bit for bit; the tiled GEMM engines that take
 * larger batches are checked against the scalar reference in test_gemm.c, so they are switched off here. */
static void check_products(loom_isa isa) {
    loom_isa_force(isa);
    loom_gemm_amx_enable(0);
    loom_gemm_set_min_tokens(1 << 20);
    loom_pool *pool2 = NULL, *pool3 = NULL;
    cr_assert_eq(loom_pool_new(&pool2, 2, NULL), LOOM_OK);
    cr_assert_eq(loom_pool_new(&pool3, 3, NULL), LOOM_OK);
    const int64_t n_outs[] = {1, 37, 100};
    const int64_t n_toks[] = {2, 5, 9};
    for (int ti = 0; ti < N_TYPES; ti++) {
        loom_dtype t = k_types[ti];
        int64_t n_in = blk(t) == 256 ? 512 : blk(t) == 32 ? 96 : 75;
        size_t rb = loom_row_size(t, n_in), ab = loom_act_row_size(t, n_in);
        for (int oi = 0; oi < 3; oi++) {
            int64_t n_out = n_outs[oi];
            uint64_t s = 1234 + (uint64_t)ti * 17 + (uint64_t)oi;
            uint8_t *W = rand_rows(t, n_in, n_out, &s);
            for (int ki = 0; ki < 3; ki++) {
                int64_t n_tok = n_toks[ki];
                float *X = loom_malloc((size_t)(n_tok * n_in) * sizeof(float));
                for (int64_t i = 0; i < n_tok * n_in; i++) X[i] = loom_test_rand_normal(&s);
                float *Y1 = loom_malloc((size_t)(n_tok * n_out) * sizeof(float));
                float *Y2 = loom_malloc((size_t)(n_tok * n_out) * sizeof(float));
                float *Y3 = loom_malloc((size_t)(n_tok * n_out) * sizeof(float));
                float *y = loom_malloc((size_t)n_out * sizeof(float));
                uint8_t *xq = loom_malloc(ab);
                cr_assert_eq(loom_matmul(NULL, Y1, W, t, n_in, n_out, X, n_tok), 0);
                cr_assert_eq(loom_matmul(pool2, Y2, W, t, n_in, n_out, X, n_tok), 0);
                cr_assert_eq(loom_matmul(pool3, Y3, W, t, n_in, n_out, X, n_tok), 0);
                for (int64_t tok = 0; tok < n_tok; tok++) {
                    loom_act_quantize(t, X + tok * n_in, xq, n_in);
                    cr_assert_eq(loom_matvec(tok & 1 ? pool2 : NULL, y, W, t, n_in, n_out, X + tok * n_in), 0);
                    for (int64_t o = 0; o < n_out; o++) {
                        float v = loom_vec_dot(t, n_in, W + o * rb, xq);
                        cr_assert_eq(y[o], v, "%s %s matvec row %ld", loom_isa_name(isa), loom_type_name(t), (long)o);
                        cr_assert_eq(Y1[tok * n_out + o], v, "%s %s matmul tok %ld row %ld", loom_isa_name(isa),
                                     loom_type_name(t), (long)tok, (long)o);
                        cr_assert_eq(Y2[tok * n_out + o], v);
                        cr_assert_eq(Y3[tok * n_out + o], v);
                    }
                }
                loom_free(X);
                loom_free(Y1);
                loom_free(Y2);
                loom_free(Y3);
                loom_free(y);
                loom_free(xq);
            }
            loom_free(W);
        }
    }
    loom_pool_free(pool2);
    loom_pool_free(pool3);
    loom_isa_force(LOOM_ISA_AVX512);
}

Test(matmul, products_equal_vec_dot_scalar) { check_products(LOOM_ISA_SCALAR); }
Test(matmul, products_equal_vec_dot_avx2) {
    if (loom_isa_best() < LOOM_ISA_AVX2) cr_skip_test("no AVX2");
    check_products(LOOM_ISA_AVX2);
}
Test(matmul, products_equal_vec_dot_avx512) {
    if (loom_isa_best() < LOOM_ISA_AVX512) cr_skip_test("no AVX-512 VNNI");
    check_products(LOOM_ISA_AVX512);
}

/* Rows longer than an AVX-512 matvec's prepared-activation buffer take its plain kernel (Q8_0: 8192 values,
 * Q4_K and Q5_K: 16384): the matvec still equals vec_dot bit for bit there, and just inside the buffer too, at every ISA
 * this CPU has and with rows walked as one stream per thread or two (37 rows: an odd one left after the pairs). */
static void check_long_rows(loom_dtype t, int64_t n_in) {
    const int64_t n_out = 37;
    uint64_t s = 4242;
    uint8_t *W = rand_rows(t, n_in, n_out, &s);
    float *x = loom_malloc((size_t)n_in * sizeof(float)), *y = loom_malloc((size_t)n_out * sizeof(float));
    uint8_t *xq = loom_malloc(loom_act_row_size(t, n_in));
    for (int64_t i = 0; i < n_in; i++) x[i] = loom_test_rand_normal(&s);
    const loom_isa isas[] = {LOOM_ISA_SCALAR, LOOM_ISA_AVX2, LOOM_ISA_AVX512};
    for (int k = 0; k < 3 && isas[k] <= loom_isa_best(); k++)
        for (int streams = 1; streams <= 2; streams++) {
            loom_isa_force(isas[k]);
            loom_row_streams_force(streams);
            cr_assert_eq(loom_row_streams(), streams);
            loom_act_quantize(t, x, xq, n_in);
            memset(y, 0xFF, (size_t)n_out * sizeof(float));
            cr_assert_eq(loom_matvec(NULL, y, W, t, n_in, n_out, x), 0);
            for (int64_t o = 0; o < n_out; o++)
                cr_assert_eq(y[o], loom_vec_dot(t, n_in, W + o * loom_row_size(t, n_in), xq),
                             "%s %s n_in %ld row %ld, %d streams", loom_isa_name(isas[k]), loom_type_name(t), (long)n_in,
                             (long)o, streams);
        }
    loom_row_streams_force(0);
    loom_isa_force(loom_isa_best());
    loom_free(W), loom_free(x), loom_free(y), loom_free(xq);
}

/* The AVX-512 matvec kernels step through a row four blocks (K-quants) or four block pairs (Q8_0) at a time
 * with a remainder: every remainder, and an odd last Q8_0 block, equals vec_dot bit for bit. */
Test(matmul, row_remainders_equal_vec_dot) {
    const int64_t blocks[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 17};
    for (int bi = 0; bi < 11; bi++) {
        check_long_rows(LOOM_Q8_0, 32 * blocks[bi]);
        check_long_rows(LOOM_Q8_0, 32 * (8 * blocks[bi] + 1));
        check_long_rows(LOOM_Q4_K, 256 * blocks[bi]);
        check_long_rows(LOOM_Q5_K, 256 * blocks[bi]);
        check_long_rows(LOOM_Q6_K, 256 * blocks[bi]);
    }
}

Test(matmul, long_rows_equal_vec_dot) {
    check_long_rows(LOOM_Q8_0, 8192 + 96);
    check_long_rows(LOOM_Q4_K, 16384);
    check_long_rows(LOOM_Q4_K, 16384 + 256);
    check_long_rows(LOOM_Q5_K, 16384 + 256);
}

/* Larger shapes through pools of 2, 3 and 5 threads: threaded equals single-threaded bit for bit. The
 * matvec hands out rows by stealing or guided self-scheduling (which thread takes which rows depends on
 * timing), so it is repeated under both: every split must give the same bits. 4099 rows are 257 ROW_ALIGN
 * units, an uneven tail. */
Test(matmul, threaded_equals_single_large) {
    loom_pool *pools[3] = {NULL, NULL, NULL};
    const int sizes[3] = {2, 3, 5};
    for (int p = 0; p < 3; p++) cr_assert_eq(loom_pool_new(&pools[p], sizes[p], NULL), LOOM_OK);
    const loom_dtype ts[] = {LOOM_Q4_K, LOOM_Q8_0, LOOM_F16};
    for (int ti = 0; ti < 3; ti++) {
        const int64_t n_in = 1024, n_out = 300, n_tok = 7, n_out_mv = 4099;
        uint64_t s = 99 + (uint64_t)ti;
        uint8_t *W = rand_rows(ts[ti], n_in, n_out_mv, &s);
        float *X = loom_malloc(n_tok * n_in * sizeof(float));
        for (int64_t i = 0; i < n_tok * n_in; i++) X[i] = loom_test_rand_normal(&s);
        float *A = loom_malloc(n_tok * n_out_mv * sizeof(float)), *B = loom_malloc(n_tok * n_out_mv * sizeof(float));
        cr_assert_eq(loom_matmul(NULL, A, W, ts[ti], n_in, n_out, X, n_tok), 0);
        cr_assert_eq(loom_matmul(pools[0], B, W, ts[ti], n_in, n_out, X, n_tok), 0);
        cr_assert_eq(memcmp(A, B, n_tok * n_out * sizeof(float)), 0);
        cr_assert_eq(loom_matvec(NULL, A, W, ts[ti], n_in, n_out_mv, X), 0);
        for (int p = 0; p < 3; p++)
            for (int rep = 0; rep < 8; rep++) {
                loom_row_streams_force(1 + rep % 2); /* the single-thread reference ran the CPU's defaults */
                loom_mv_schedule_force(rep / 2 % 2 ? LOOM_MV_GUIDED : LOOM_MV_STEAL);
                memset(B, 0xFF, n_out_mv * sizeof(float));
                cr_assert_eq(loom_matvec(pools[p], B, W, ts[ti], n_in, n_out_mv, X), 0);
                cr_assert_eq(memcmp(A, B, n_out_mv * sizeof(float)), 0,
                             "%s, %d threads, repetition %d, %d streams, %s", loom_type_name(ts[ti]), sizes[p], rep,
                             1 + rep % 2, rep / 2 % 2 ? "guided" : "steal");
            }
        loom_row_streams_force(0);
        loom_mv_schedule_force(0);
        loom_free(W);
        loom_free(X);
        loom_free(A);
        loom_free(B);
    }
    for (int p = 0; p < 3; p++) loom_pool_free(pools[p]);
}

Test(matmul, bad_arguments_and_scratch_release) {
    int64_t base = loom_alloc_live_bytes();
    float x[512] = {0}, y[4];
    uint8_t W[4 * 288] = {0};
    cr_assert_eq(loom_matvec(NULL, y, W, LOOM_Q2_K, 256, 1, x), -1);  /* no kernel for Q2_K */
    cr_assert_eq(loom_matvec(NULL, y, W, LOOM_Q4_K, 100, 1, x), -1);  /* not a whole super-block */
    cr_assert_eq(loom_matvec(NULL, y, W, LOOM_Q4_0, 0, 1, x), -1);
    cr_assert_eq(loom_matmul(NULL, y, W, (loom_dtype)99, 32, 1, x, 2), -1);
    cr_assert(isnan(loom_vec_dot(LOOM_IQ4_NL, 32, W, x)));
    cr_assert_eq(loom_matmul(NULL, y, W, LOOM_Q8_0, 256, 1, x, 2), 0);
    cr_assert_gt(loom_alloc_live_bytes(), base); /* the scratch is kept for reuse */
    loom_alloc_fail_after(0);
    cr_assert_eq(loom_matvec(NULL, y, W, LOOM_Q8_0, 256, 4, x), 0); /* fits the existing scratch */
    for (int i = 0; i < 4; i++) cr_assert_eq(y[i], 0.0f);
    loom_alloc_fail_after(-1);
    loom_matmul_scratch_release();
    cr_assert_eq(loom_alloc_live_bytes(), base);
    loom_alloc_fail_after(0);
    cr_assert_eq(loom_matvec(NULL, y, W, LOOM_Q8_0, 256, 4, x), -1); /* allocation failure reported */
    loom_alloc_fail_after(-1);
    loom_matmul_scratch_release();
    cr_assert_eq(loom_alloc_live_bytes(), base);
}

/* loom_matmul_multi equals separate loom_matmul calls bit for bit: mixed weight types (all three activation
 * formats), uneven row counts, every ISA, no pool / 2 / 3 threads, decode (n_tok = 1) and prefill shapes, and
 * more jobs than one dispatch takes. */
static void check_multi(loom_isa isa) {
    loom_isa_force(isa);
    loom_pool *pools[3] = {NULL, NULL, NULL};
    cr_assert_eq(loom_pool_new(&pools[1], 2, NULL), LOOM_OK);
    cr_assert_eq(loom_pool_new(&pools[2], 3, NULL), LOOM_OK);
    enum { NJ = 21 };
    const loom_dtype ts[] = {LOOM_Q4_K, LOOM_Q8_0, LOOM_F16, LOOM_Q6_K, LOOM_Q4_0, LOOM_F32, LOOM_Q5_K};
    const int64_t n_outs[] = {37, 100, 16, 300, 1, 64, 0};
    const int64_t n_in = 512;
    uint64_t s = 4242;
    loom_matmul_job jobs[NJ];
    uint8_t *W[NJ];
    float *ref[NJ];
    for (int64_t n_tok = 1; n_tok <= 3; n_tok += 2) {
        float *X = loom_malloc((size_t)(n_tok * n_in) * sizeof(float));
        for (int64_t i = 0; i < n_tok * n_in; i++) X[i] = loom_test_rand_normal(&s);
        for (int j = 0; j < NJ; j++) {
            const loom_dtype t = ts[j % 7];
            const int64_t n_out = n_outs[(j * 3) % 7];
            W[j] = rand_rows(t, n_in, n_out ? n_out : 1, &s);
            ref[j] = loom_malloc((size_t)(n_tok * (n_out ? n_out : 1)) * sizeof(float));
            jobs[j] = (loom_matmul_job){.Y = loom_malloc((size_t)(n_tok * (n_out ? n_out : 1)) * sizeof(float)),
                                        .W = W[j], .wt = t, .n_out = n_out};
            cr_assert_eq(loom_matmul(NULL, ref[j], W[j], t, n_in, n_out, X, n_tok), 0);
        }
        for (int pi = 0; pi < 3; pi++) {
            for (int nj = 1; nj <= NJ; nj += NJ - 1) { /* one job, then all (more than one dispatch holds) */
                for (int j = 0; j < nj; j++) memset(jobs[j].Y, 0xFF, (size_t)(n_tok * jobs[j].n_out) * sizeof(float));
                cr_assert_eq(loom_matmul_multi(pools[pi], jobs, nj, n_in, X, n_tok), 0);
                for (int j = 0; j < nj; j++)
                    cr_assert_eq(memcmp(jobs[j].Y, ref[j], (size_t)(n_tok * jobs[j].n_out) * sizeof(float)), 0,
                                 "%s job %d (%s, %ld rows) n_tok %ld pool %d", loom_isa_name(isa), j,
                                 loom_type_name(jobs[j].wt), (long)jobs[j].n_out, (long)n_tok, pi);
            }
        }
        for (int j = 0; j < NJ; j++) {
            loom_free(W[j]);
            loom_free(ref[j]);
            loom_free(jobs[j].Y);
        }
        loom_free(X);
    }
    cr_assert_eq(loom_matmul_multi(pools[1], jobs, 0, n_in, NULL, 1), 0); /* nothing to do */
    loom_pool_free(pools[1]);
    loom_pool_free(pools[2]);
    loom_isa_force(LOOM_ISA_AVX512);
}

Test(matmul, multi_equals_separate_scalar) { check_multi(LOOM_ISA_SCALAR); }
Test(matmul, multi_equals_separate_avx2) {
    if (loom_isa_best() < LOOM_ISA_AVX2) cr_skip_test("no AVX2");
    check_multi(LOOM_ISA_AVX2);
}
Test(matmul, multi_equals_separate_avx512) {
    if (loom_isa_best() < LOOM_ISA_AVX512) cr_skip_test("no AVX-512 VNNI");
    check_multi(LOOM_ISA_AVX512);
}

Test(matmul, multi_bad_arguments) {
    float x[256] = {0}, y[4];
    uint8_t W[4 * 288] = {0};
    loom_matmul_job ok = {.Y = y, .W = W, .wt = LOOM_Q8_0, .n_out = 4};
    loom_matmul_job jobs[2] = {ok, ok};
    jobs[1].wt = LOOM_Q2_K; /* no kernel */
    cr_assert_eq(loom_matmul_multi(NULL, jobs, 2, 256, x, 1), -1);
    jobs[1] = ok;
    jobs[1].n_out = -1;
    cr_assert_eq(loom_matmul_multi(NULL, jobs, 2, 256, x, 1), -1);
    jobs[1] = ok;
    jobs[1].Y = NULL;
    cr_assert_eq(loom_matmul_multi(NULL, jobs, 2, 256, x, 1), -1);
    cr_assert_eq(loom_matmul_multi(NULL, jobs, -1, 256, x, 1), -1);
    cr_assert_eq(loom_matmul_multi(NULL, NULL, 1, 256, x, 1), -1);
    cr_assert_eq(loom_matmul_multi(NULL, jobs, 1, 100, x, 1), -1); /* not a whole Q8_0 block */
    cr_assert_eq(loom_matmul_multi(NULL, jobs, 1, 256, x, 1), 0);
    loom_matmul_scratch_release();
}
