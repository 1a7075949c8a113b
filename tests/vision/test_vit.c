/* tests/vision/test_vit.c — the Llama 4 vision encoder against Meta's reference (../shared/testdata/llama4-tiny).
 *
 * Fed Meta's own preprocessed tiles, the projected embeddings of every test image must match within
 * max|Δ| <= 1e-4 · max|ref| (f32), and so must img2's intermediates (ViT output after LN_post, pixel shuffle,
 * adapter). Also: batching and threading do not change results, the AVX2 attention agrees with the scalar
 * reference and with a double-precision one, and broken mmproj files (wrong projector type, missing tensor,
 * wrong shape) fail with messages naming what is wrong.
 */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/attn.h"
#include "core/gguf.h"
#include "core/matmul.h"
#include "core/ops.h"
#include "core/quant.h"
#include "core/threadpool.h"
#include "tests/testutil.h"
#include "vision/vit.h"
#include "vision/vit_int.h"

#define MMPROJ "testdata/llama4-tiny/models/mmproj-tiny-llama4.gguf"

static const struct {
    const char *name;
    int         n_tiles;
} images[] = {
    {"img1_200x300", 1}, {"img2_336x336_gray", 1}, {"img3_480x640", 5}, {"img4_337x336_rgba", 3}, {"img5_1000x700", 10},
};

static loom_vit *open_vit(int max_batch_tiles) {
    char path[512];
    LOOM_SHARED_PATH(path, MMPROJ);
    loom_vit *vit = NULL;
    loom_err err = {0};
    loom_vit_params p = {.max_batch_tiles = max_batch_tiles};
    loom_status st = loom_vit_open(&vit, path, &p, &err);
    cr_assert_eq(st, LOOM_OK, "mmproj: %s", err.msg);
    return vit;
}

static float compare(const float *got, const float *ref, size_t n, float rel_tol, const char *what) {
    float max_ref = 0, max_diff = 0;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        max_ref = fmaxf(max_ref, fabsf(ref[i]));
        float dlt = fabsf(got[i] - ref[i]);
        if (!(dlt <= max_diff)) { /* also catches NaN */
            max_diff = dlt;
            worst = i;
        }
    }
    cr_log_info("%s: max|Δ| = %.3g, max|ref| = %.3g, ratio %.3g", what, max_diff, max_ref, max_diff / max_ref);
    cr_expect(max_ref > 0, "%s: reference is all zeros", what);
    cr_expect(max_diff <= rel_tol * max_ref, "%s: max|Δ| %g > %g * %g (element %zu: %g vs %g)", what, max_diff,
              rel_tol, max_ref, worst, got[worst], ref[worst]);
    return max_diff;
}

/* ==== hyper-parameters ==== */

Test(vit, hparams_of_tiny_model) {
    int64_t live = loom_alloc_live_bytes();
    loom_vit *vit = open_vit(0);
    const loom_vit_hparams *hp = loom_vit_get_hparams(vit);
    cr_expect_eq(hp->image_size, 336);
    cr_expect_eq(hp->patch_size, 14);
    cr_expect_eq(hp->n_side, 24);
    cr_expect_eq(hp->n_patch, 576);
    cr_expect_eq(hp->n_tok, 577);
    cr_expect_eq(hp->d_vis, 64);
    cr_expect_eq(hp->d_ff, 256);
    cr_expect_eq(hp->n_layer, 2);
    cr_expect_eq(hp->n_head, 4);
    cr_expect_eq(hp->d_head, 16);
    cr_expect_eq(hp->scale_factor, 2);
    cr_expect_eq(hp->n_tok_out, 144);
    cr_expect_eq(hp->d_shuffle, 256);
    cr_expect_eq(hp->d_adapter, 96);
    cr_expect_eq(hp->d_proj, 128);
    cr_expect_float_eq(hp->eps, 1e-5f, 1e-9f);
    loom_vit_close(vit);
    loom_vit_close(NULL);
    cr_expect_eq(loom_alloc_live_bytes(), live, "leak: %lld bytes", (long long)(loom_alloc_live_bytes() - live));
}

/* ==== embeddings of every reference image ==== */

static void check_image(int idx) {
    loom_vit *vit = open_vit(0);
    const loom_vit_hparams *hp = loom_vit_get_hparams(vit);
    int T = images[idx].n_tiles;
    char rel[256];
    snprintf(rel, sizeof rel, "testdata/llama4-tiny/vision/%s.tiles.f32", images[idx].name);
    float *tiles = loom_test_read_f32(rel, (size_t)T * 3 * 336 * 336);
    snprintf(rel, sizeof rel, "testdata/llama4-tiny/vision/%s.embd.f32", images[idx].name);
    size_t n_out = (size_t)T * 144 * 128;
    float *ref = loom_test_read_f32(rel, n_out);
    float *got = loom_malloc(n_out * sizeof(float));
    loom_pool *pool = NULL;
    loom_err err = {0};
    cr_assert_eq(loom_pool_new(&pool, 2, &err), LOOM_OK, "%s", err.msg);
    cr_assert_eq(loom_vit_encode(vit, pool, got, tiles, T, &err), LOOM_OK, "%s", err.msg);
    cr_assert_eq((size_t)T * hp->n_tok_out * hp->d_proj, n_out);
    compare(got, ref, n_out, 1e-4f, images[idx].name);
    loom_pool_free(pool);
    loom_free(got);
    loom_free(ref);
    loom_free(tiles);
    loom_vit_close(vit);
}

Test(vit, embd_img1) { check_image(0); }
Test(vit, embd_img2) { check_image(1); }
Test(vit, embd_img3) { check_image(2); }
Test(vit, embd_img4) { check_image(3); }
Test(vit, embd_img5) { check_image(4); }

/* The scalar paths (matmul and the ViT's own kernels) give the same embeddings. */
Test(vit, embd_img2_scalar) {
    loom_isa_force(LOOM_ISA_SCALAR);
    cr_assert_eq(loom_isa_active(), LOOM_ISA_SCALAR);
    check_image(1);
}

/* ==== intermediates of img2 ==== */

Test(vit, intermediates_img2) {
    loom_vit *vit = open_vit(0);
    float *tiles = loom_test_read_f32("testdata/llama4-tiny/vision/img2_336x336_gray.tiles.f32", 3 * 336 * 336);
    float *ref_vit = loom_test_read_f32("testdata/llama4-tiny/vision/img2_336x336_gray.vit_out.f32", 576 * 64);
    float *ref_ps = loom_test_read_f32("testdata/llama4-tiny/vision/img2_336x336_gray.pixel_shuffle.f32", 144 * 256);
    float *ref_ad = loom_test_read_f32("testdata/llama4-tiny/vision/img2_336x336_gray.adapter.f32", 144 * 96);
    loom_vit_taps taps = {
        .vit_out = loom_malloc(576 * 64 * sizeof(float)),
        .shuffle = loom_malloc(144 * 256 * sizeof(float)),
        .adapter = loom_malloc(144 * 96 * sizeof(float)),
    };
    loom_err err = {0};
    /* taps only (out == NULL) is allowed */
    cr_assert_eq(loom_vit_encode_ex(vit, NULL, NULL, tiles, 1, &taps, &err), LOOM_OK, "%s", err.msg);
    compare(taps.vit_out, ref_vit, 576 * 64, 1e-4f, "img2 vit_out");
    compare(taps.shuffle, ref_ps, 144 * 256, 1e-4f, "img2 pixel_shuffle");
    compare(taps.adapter, ref_ad, 144 * 96, 1e-4f, "img2 adapter");
    /* the shuffle is a pure permutation of vit_out: check the exact index map, not just closeness */
    for (int R = 0; R < 12; R++)
        for (int Q = 0; Q < 12; Q++)
            for (int k = 0; k < 4; k++)
                cr_assert_eq(memcmp(taps.shuffle + (R * 12 + Q) * 256 + k * 64,
                                    taps.vit_out + ((2 * R + k / 2) * 24 + 2 * Q + k % 2) * 64, 64 * sizeof(float)),
                             0, "shuffle token (%d, %d) block %d", R, Q, k);
    loom_free(taps.vit_out);
    loom_free(taps.shuffle);
    loom_free(taps.adapter);
    loom_free(ref_vit);
    loom_free(ref_ps);
    loom_free(ref_ad);
    loom_free(tiles);
    loom_vit_close(vit);
}

/* ==== batching and threading ==== */

/* img3 (5 tiles): one thread, whole batch vs 2 threads in batches of 2 tiles — rows are independent, so the
 * results may only differ by the matmul's blocking (not at all for the reference kernels). */
Test(vit, batches_and_threads_agree) {
    float *tiles = loom_test_read_f32("testdata/llama4-tiny/vision/img3_480x640.tiles.f32", 5 * 3 * 336 * 336);
    size_t n_out = 5 * 144 * 128;
    float *a = loom_malloc(n_out * sizeof(float)), *b = loom_malloc(n_out * sizeof(float));
    loom_err err = {0};
    loom_vit *v1 = open_vit(0), *v2 = open_vit(2);
    loom_pool *pool = NULL;
    cr_assert_eq(loom_pool_new(&pool, 2, &err), LOOM_OK, "%s", err.msg);
    cr_assert_eq(loom_vit_encode(v1, NULL, a, tiles, 5, &err), LOOM_OK, "%s", err.msg);
    cr_assert_eq(loom_vit_encode(v2, pool, b, tiles, 5, &err), LOOM_OK, "%s", err.msg);
    compare(b, a, n_out, 1e-6f, "batch of 2 + 2 threads vs batch of 5, 1 thread");
    /* tile 4 (the thumbnail) alone gives the last 144 rows */
    cr_assert_eq(loom_vit_encode(v1, NULL, b, tiles + 4 * 3 * 336 * 336, 1, &err), LOOM_OK, "%s", err.msg);
    compare(b, a + 4 * 144 * 128, 144 * 128, 1e-6f, "thumbnail alone vs in the batch");
    loom_pool_free(pool);
    loom_vit_close(v1);
    loom_vit_close(v2);
    loom_free(a);
    loom_free(b);
    loom_free(tiles);
}

Test(vit, bad_arguments) {
    loom_vit *vit = open_vit(0);
    float tile[4] = {0}, out[4];
    loom_err err = {0};
    cr_expect_eq(loom_vit_encode(vit, NULL, out, tile, 0, &err), LOOM_ERR_INVALID);
    cr_expect_eq(loom_vit_encode(vit, NULL, NULL, tile, 1, &err), LOOM_ERR_INVALID);
    cr_expect_eq(loom_vit_encode(vit, NULL, out, NULL, 1, &err), LOOM_ERR_INVALID);
    loom_vit_close(vit);
}

/* ==== attention kernel ==== */

/* The ViT's bidirectional attention (core/attn, as vision/vit.c calls it: 16 queries per task, all keys
 * visible): scalar reference and SIMD dispatch against a double-precision softmax, on sizes that exercise the
 * 16-query tail and head widths that are not multiples of 16 (88 in Llama 4). */
static void vit_style_attention(bool reference, float *O, int ldo, const float *Q, const float *K, const float *V,
                                int n, int dh, float scale) {
    for (int i0 = 0; i0 < n; i0 += LOOM_ATTN_LANES) {
        loom_attn_task t;
        t.n_q = n - i0 < LOOM_ATTN_LANES ? n - i0 : LOOM_ATTN_LANES;
        t.d_head = dh;
        t.scale = scale;
        for (int m = 0; m < t.n_q; m++) {
            t.q[m] = Q + (i0 + m) * dh;
            t.out[m] = O + (i0 + m) * ldo;
            t.lo[m] = 0;
            t.hi[m] = n - 1;
        }
        t.n_seg = 1;
        t.seg[0] = (loom_attn_seg){K, V, dh, 0, n};
        if (reference) loom_attn_run_ref(&t);
        else loom_attn_run(&t);
    }
}

Test(vit, attention_kernel) {
    static const int ns[] = {1, 5, 37, 130};
    static const int dhs[] = {4, 12, 16, 88};
    uint64_t seed = 12345;
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
        for (size_t b = 0; b < sizeof dhs / sizeof *dhs; b++) {
            int n = ns[a], dh = dhs[b], ldo = dh + 3;
            float *Q = loom_malloc(sizeof(float) * n * dh), *K = loom_malloc(sizeof(float) * n * dh);
            float *V = loom_malloc(sizeof(float) * n * dh);
            float *O1 = loom_calloc((size_t)n * ldo, sizeof(float)), *O2 = loom_calloc((size_t)n * ldo, sizeof(float));
            for (int i = 0; i < n * dh; i++) {
                Q[i] = loom_test_rand_normal(&seed);
                K[i] = loom_test_rand_normal(&seed);
                V[i] = loom_test_rand_normal(&seed);
            }
            float scale = 1.0f / sqrtf((float)dh);
            vit_style_attention(true, O1, ldo, Q, K, V, n, dh, scale);
            vit_style_attention(false, O2, ldo, Q, K, V, n, dh, scale);
            double *p = loom_malloc(sizeof(double) * n);
            for (int i = 0; i < n; i++) {
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < n; j++) {
                    double s = 0;
                    for (int e = 0; e < dh; e++) s += (double)Q[i * dh + e] * K[j * dh + e];
                    p[j] = s * scale;
                    mx = fmax(mx, p[j]);
                }
                for (int j = 0; j < n; j++) sum += (p[j] = exp(p[j] - mx));
                for (int e = 0; e < dh; e++) {
                    double o = 0;
                    for (int j = 0; j < n; j++) o += p[j] / sum * V[j * dh + e];
                    cr_assert(fabs(O1[i * ldo + e] - o) < 1e-5, "ref n=%d dh=%d [%d][%d]: %g vs %g", n, dh, i, e,
                              O1[i * ldo + e], o);
                    cr_assert(fabs(O2[i * ldo + e] - o) < 1e-5, "simd n=%d dh=%d [%d][%d]: %g vs %g", n, dh, i, e,
                              O2[i * ldo + e], o);
                }
                /* the padding between output rows is never written */
                for (int e = dh; e < ldo; e++) cr_assert(O1[i * ldo + e] == 0 && O2[i * ldo + e] == 0);
            }
            loom_free(p);
            loom_free(Q);
            loom_free(K);
            loom_free(V);
            loom_free(O1);
            loom_free(O2);
        }
}

/* The branch-free GELU (scalar and AVX2 builds) against libm's erff, over [-12, 12] and odd row lengths. */
Test(vit, gelu_matches_erf) {
    enum { N = 48001 };
    float *x = loom_malloc(sizeof(float) * N), *b = loom_malloc(sizeof(float) * N);
    float *y1 = loom_malloc(sizeof(float) * N), *y2 = loom_malloc(sizeof(float) * N);
    for (int i = 0; i < N; i++) {
        x[i] = -12.0f + 24.0f * (float)i / (float)(N - 1);
        b[i] = (i % 7) * 0.01f - 0.03f;
    }
    double worst1 = 0, worst2 = 0;
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        memcpy(y1, x, sizeof(float) * N);
        memcpy(y2, x, sizeof(float) * N);
        const float *bias = with_bias ? b : NULL;
        vit_gelu_row_ref(y1, bias, N);
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            vit_gelu_row_avx2(y2, bias, N);
        else
            vit_gelu_row(y2, bias, N);
        for (int i = 0; i < N; i++) {
            float v = x[i] + (bias ? bias[i] : 0.0f);
            double want = 0.5 * (double)v * (1.0 + erf((double)v / sqrt(2.0)));
            double tol = 4e-7 * fmax(1.0, fabs(v));
            worst1 = fmax(worst1, fabs(y1[i] - want) / fmax(1.0, fabs(v)));
            worst2 = fmax(worst2, fabs(y2[i] - want) / fmax(1.0, fabs(v)));
            cr_assert(fabs(y1[i] - want) <= tol, "ref gelu(%g) = %.9g, want %.9g", v, y1[i], want);
            cr_assert(fabs(y2[i] - want) <= tol, "simd gelu(%g) = %.9g, want %.9g", v, y2[i], want);
            float lib = loom_gelu_erf(v);
            cr_assert(fabsf(y1[i] - lib) <= 1e-6f * fmaxf(1.0f, fabsf(v)), "vs loom_gelu_erf at %g", v);
        }
    }
    cr_log_info("gelu: max |err| / max(1, |x|): scalar %.3g, simd %.3g", worst1, worst2);
    /* odd lengths exercise the vector tail */
    for (int n = 1; n < 20; n++) {
        memcpy(y1, x + 20000, sizeof(float) * n);
        memcpy(y2, x + 20000, sizeof(float) * n);
        vit_gelu_row_ref(y1, NULL, n);
        vit_gelu_row(y2, NULL, n);
        for (int i = 0; i < n; i++) cr_assert(fabsf(y1[i] - y2[i]) <= 1e-6f, "n=%d i=%d", n, i);
    }
    loom_free(x);
    loom_free(b);
    loom_free(y1);
    loom_free(y2);
}

/* ==== rewritten mmproj files ==== */

/* One edit of the tiny mmproj, written to memory and opened with loom_vit_from_gguf. */
typedef struct rewrite {
    const char *projector;     /* new clip.projector_type */
    bool        bad_heads;     /* head_count 3 (does not divide 64) */
    const char *drop;          /* leave this tensor out */
    const char *transpose;     /* swap ne[0] and ne[1] of this tensor (same bytes) */
    loom_dtype  mat_type;      /* store the linear layers (not the patch embedding) as this type */
    loom_dtype  vec_type;      /* store vectors, class and position embeddings as this type (F32 or F16/BF16) */
    bool        patch_as_conv; /* v.patch_embd.weight as the conv kernel [14, 14, 3, 64] */
} rewrite;

typedef struct rewritten {
    loom_vit *vit;
    void     *buf; /* the GGUF bytes: must outlive vit */
} rewritten;

static bool is_matrix(const loom_gguf_tensor *t) {
    return t->n_dims == 2 && strcmp(t->name, "v.patch_embd.weight") && strcmp(t->name, "v.position_embd.weight");
}

static loom_status open_rewritten(const rewrite *rw, rewritten *out, loom_err *err) {
    char src[512];
    LOOM_SHARED_PATH(src, MMPROJ);
    loom_gguf *g = NULL;
    loom_err e2 = {0};
    cr_assert_eq(loom_gguf_open(&g, src, NULL, &e2), LOOM_OK, "%s", e2.msg);
    loom_gguf_writer *w = NULL;
    cr_assert_eq(loom_gguf_writer_new(&w, &e2), LOOM_OK, "%s", e2.msg);
    cr_assert_eq(loom_gguf_writer_copy_kv(w, g, &e2), LOOM_OK, "%s", e2.msg);
    if (rw->projector) cr_assert_eq(loom_gguf_writer_set_str(w, "clip.projector_type", rw->projector), LOOM_OK);
    if (rw->bad_heads) cr_assert_eq(loom_gguf_writer_set_u32(w, "clip.vision.attention.head_count", 3), LOOM_OK);
    void *conv[64] = {0};
    int n_conv = 0;
    for (int64_t i = 0; i < loom_gguf_n_tensors(g); i++) {
        const loom_gguf_tensor *t = loom_gguf_tensor_at(g, i);
        if (rw->drop && !strcmp(t->name, rw->drop)) continue;
        int64_t ne[LOOM_MAX_DIMS];
        memcpy(ne, t->ne, sizeof ne);
        int n_dims = t->n_dims;
        if (rw->transpose && !strcmp(t->name, rw->transpose)) {
            int64_t tmp = ne[0];
            ne[0] = ne[1];
            ne[1] = tmp;
            if (n_dims < 2) n_dims = 2;
        }
        if (rw->patch_as_conv && !strcmp(t->name, "v.patch_embd.weight")) {
            ne[0] = 14, ne[1] = 14, ne[2] = 3, ne[3] = 64;
            n_dims = 4;
        }
        loom_dtype type = is_matrix(t) ? rw->mat_type : strcmp(t->name, "v.patch_embd.weight") ? rw->vec_type : LOOM_F32;
        const void *data = t->data;
        if (type != LOOM_F32) {
            int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
            size_t rb = loom_row_size(type, t->ne[0]);
            cr_assert(rb > 0 && n_conv < 64, "%s: cannot store as %s", t->name, loom_type_name(type));
            unsigned char *q = conv[n_conv++] = loom_malloc(rb * (size_t)rows);
            for (int64_t r = 0; r < rows; r++)
                cr_assert_eq(loom_quantize_row(type, (const float *)t->data + r * t->ne[0], q + r * rb, t->ne[0]), 0);
            data = q;
        }
        cr_assert_eq(loom_gguf_writer_add_tensor(w, t->name, type, n_dims, ne, data, &e2), LOOM_OK, "%s", e2.msg);
    }
    size_t size = 0;
    cr_assert_eq(loom_gguf_writer_write_memory(w, &out->buf, &size, &e2), LOOM_OK, "%s", e2.msg);
    loom_gguf_writer_free(w);
    for (int i = 0; i < n_conv; i++) loom_free(conv[i]);
    loom_gguf_close(g);
    cr_assert_eq(loom_gguf_open_memory(&g, out->buf, size, &e2), LOOM_OK, "%s", e2.msg);
    out->vit = NULL;
    loom_status st = loom_vit_from_gguf(&out->vit, g, NULL, err);
    if (st) {
        cr_expect_null(out->vit);
        loom_gguf_close(g); /* still ours on failure */
        cr_log_info("rewritten mmproj: %s", err->msg);
    }
    return st;
}

static void rewritten_close(rewritten *r) {
    loom_vit_close(r->vit);
    loom_free(r->buf);
}

/* Encodes img3 (5 tiles) with a rewritten file and compares with Meta's embeddings. */
static void encode_rewritten(const rewrite *rw, float rel_tol, const char *what, float *got_out) {
    rewritten r;
    loom_err err = {0};
    cr_assert_eq(open_rewritten(rw, &r, &err), LOOM_OK, "%s: %s", what, err.msg);
    float *tiles = loom_test_read_f32("testdata/llama4-tiny/vision/img3_480x640.tiles.f32", 5 * 3 * 336 * 336);
    float *ref = loom_test_read_f32("testdata/llama4-tiny/vision/img3_480x640.embd.f32", 5 * 144 * 128);
    float *got = got_out ? got_out : loom_malloc(5 * 144 * 128 * sizeof(float));
    cr_assert_eq(loom_vit_encode(r.vit, NULL, got, tiles, 5, &err), LOOM_OK, "%s: %s", what, err.msg);
    compare(got, ref, 5 * 144 * 128, rel_tol, what);
    if (!got_out) loom_free(got);
    loom_free(ref);
    loom_free(tiles);
    rewritten_close(&r);
}

/* The conv-kernel layout of the patch embedding has the same bytes: results must be identical. */
Test(vit, patch_embd_as_conv_kernel) {
    size_t n = 5 * 144 * 128;
    float *a = loom_malloc(n * sizeof(float)), *b = loom_malloc(n * sizeof(float));
    encode_rewritten(&(rewrite){.mat_type = LOOM_F32, .vec_type = LOOM_F32}, 1e-4f, "img3, plain rewrite", a);
    encode_rewritten(&(rewrite){.mat_type = LOOM_F32, .vec_type = LOOM_F32, .patch_as_conv = true}, 1e-4f,
                     "img3, patch_embd [14,14,3,64]", b);
    cr_expect_eq(memcmp(a, b, n * sizeof(float)), 0, "conv layout changes the result");
    loom_free(a);
    loom_free(b);
}

/* Weights stored as F16 / BF16 / Q8_0 (vectors converted at load): the error is the weights' rounding. */
Test(vit, f16_weights) {
    encode_rewritten(&(rewrite){.mat_type = LOOM_F16, .vec_type = LOOM_F16}, 5e-3f, "img3, F16 weights and vectors", NULL);
}
Test(vit, bf16_weights) {
    encode_rewritten(&(rewrite){.mat_type = LOOM_BF16, .vec_type = LOOM_BF16}, 3e-2f, "img3, BF16 weights and vectors",
                     NULL);
}
Test(vit, q8_0_weights) {
    encode_rewritten(&(rewrite){.mat_type = LOOM_Q8_0, .vec_type = LOOM_F32}, 3e-2f, "img3, Q8_0 linear layers", NULL);
}

/* ==== hostile mmproj files ==== */

static loom_status open_broken(const rewrite *rw, loom_err *err) {
    rewritten r;
    loom_status st = open_rewritten(rw, &r, err);
    if (st == LOOM_OK) rewritten_close(&r);
    else loom_free(r.buf);
    return st;
}

Test(vit, hostile_projector_type) {
    loom_err err = {0};
    cr_expect_eq(open_broken(&(rewrite){.projector = "gemma3"}, &err), LOOM_ERR_UNSUPPORTED);
    cr_expect(strstr(err.msg, "gemma3") && strstr(err.msg, "llama4"), "message: %s", err.msg);
}

Test(vit, hostile_missing_tensor) {
    int64_t live = loom_alloc_live_bytes();
    static const char *names[] = {"v.blk.1.ffn_down.bias", "mm.model.fc.weight", "v.patch_embd.weight",
                                  "v.position_embd.weight", "v.blk.0.attn_q.weight"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        loom_err err = {0};
        cr_expect_eq(open_broken(&(rewrite){.drop = names[i]}, &err), LOOM_ERR_FORMAT, "%s", names[i]);
        cr_expect(strstr(err.msg, names[i]) && strstr(err.msg, "missing"), "message: %s", err.msg);
    }
    cr_expect_eq(loom_alloc_live_bytes(), live, "leak on the error path: %lld bytes",
                 (long long)(loom_alloc_live_bytes() - live));
}

Test(vit, hostile_wrong_shape) {
    static const char *names[] = {"v.blk.0.ffn_up.weight", "mm.model.fc.weight", "v.position_embd.weight",
                                  "v.patch_embd.weight", "mm.model.mlp.1.weight"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        loom_err err = {0};
        cr_expect_eq(open_broken(&(rewrite){.transpose = names[i]}, &err), LOOM_ERR_FORMAT, "%s: %s", names[i], err.msg);
        cr_expect(strstr(err.msg, names[i]) != NULL, "message: %s", err.msg);
    }
}

Test(vit, hostile_hparams) {
    loom_err err = {0};
    cr_expect_eq(open_broken(&(rewrite){.bad_heads = true}, &err), LOOM_ERR_FORMAT);
    cr_expect(strstr(err.msg, "head_count") != NULL, "message: %s", err.msg);
}

Test(vit, missing_file) {
    loom_vit *vit = (loom_vit *)1;
    loom_err err = {0};
    cr_expect_neq(loom_vit_open(&vit, "/nonexistent/mmproj.gguf", NULL, &err), LOOM_OK);
    cr_expect_null(vit);
    cr_expect(strlen(err.msg) > 0);
}
