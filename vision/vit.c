/* vision/vit.c — the Llama 4 vision encoder forward: tiles in, <|patch|> embeddings out.
 *
 * Pipeline (LLAMA4.md §2.2), for a batch of T tiles of one image, N = T * n_tok rows:
 *
 *   unfold   patches of each tile -> [T*n_patch, 3*P*P] in (c, ky, kx) order, patches row-major
 *   x        = [patch rows · W_patch, CLS] + pos        [N, d_vis]; CLS is each tile's LAST row
 *   x        = LN_pre(x)
 *   n_layer x:  xn = LN1(x); q, k, v = xn W + b; RoPE-2D on q, k (CLS unrotated);
 *               attention per (tile, head) over the tile's n_tok tokens, no mask;
 *               x += attn W_o + b_o; xn = LN2(x); x += GELU(xn W_up + b_up) W_down + b_down
 *   x        = LN_post(x); drop CLS
 *   shuffle  [T*n_tok_out, d_shuffle]: 2x2 patch blocks -> one token (exact map in shuffle_rows)
 *   adapter  GELU(GELU(y W1) W2)   (GELU after both; no biases)
 *   out      = adapter · W_proj    [T*n_tok_out, d_proj]
 *
 * The linear layers run over all rows of the batch at once through loom_matmul (weights of any supported type,
 * f32 activations and accumulation). Attention runs over (tile, head) pairs in parallel; row-wise ops are split
 * over rows. GELU is the erf form everywhere (llama.cpp's tanh approximation differs by ~1e-4), computed with a
 * branch-free erf accurate to ~2e-7 (vit_simd.c).
 *
 * Scratch is one allocation per call, carved into four buffers whose roles rotate through the pipeline:
 *   x    [N, d_vis]                 residual stream
 *   xn   [N, d_vis] | [T*n_out, d_shuffle] | [T*n_out, d_adapter]   LN output, attention output, shuffle, fc2
 *   tmp  [N, d_vis] | [T*n_out, d_adapter]                          projection outputs, fc1
 *   big  [N, 3*d_vis] | [N, d_ff] | [T*n_patch, 3*P*P]              q|k|v, MLP hidden, unfolded patches
 * plus per-thread attention scratch (the head's Q, K, V gathered contiguous, and a score strip).
 */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/attn.h"
#include "core/matmul.h"
#include "core/ops.h"
#include "vision/vit_int.h"

/* ==== scratch ==== */

typedef struct enc_buf {
    float *x, *xn, *tmp, *big;
    float *attn;            /* [n_threads, attn_floats] */
    size_t attn_floats;     /* per thread: Q, K, V [n_tok, d_head] + S [VIT_ATTN_QB, n_tok] */
    void  *block;
} enc_buf;

static size_t max3(size_t a, size_t b, size_t c) {
    size_t m = a > b ? a : b;
    return m > c ? m : c;
}

static loom_status enc_buf_alloc(enc_buf *b, const loom_vit_hparams *hp, int64_t T, int n_threads, loom_err *err) {
    size_t n_tok = (size_t)hp->n_tok, d = (size_t)hp->d_vis, n_out = (size_t)hp->n_tok_out;
    size_t pd = 3 * (size_t)hp->patch_size * (size_t)hp->patch_size;
    /* per-tile floats; every factor is bounded at load (d <= 2^16, n_tok <= 2^14 + 1, d_ff/d_adapter <= 2^20) */
    size_t f_x = n_tok * d;
    size_t f_xn = max3(n_tok * d, n_out * (size_t)hp->d_shuffle, n_out * (size_t)hp->d_adapter);
    size_t f_tmp = max3(n_tok * d, n_out * (size_t)hp->d_adapter, 0);
    size_t f_big = max3(3 * n_tok * d, n_tok * (size_t)hp->d_ff, (size_t)hp->n_patch * pd);
    b->attn_floats = 3 * n_tok * (size_t)hp->d_head; /* per thread: one head's Q, K, V */
    b->attn_floats = (b->attn_floats + 15) & ~(size_t)15; /* keep each thread's strip 64-byte aligned */
    size_t per_tile = f_x + f_xn + f_tmp + f_big, total, attn_total;
    if (!loom_size_mul(per_tile, (size_t)T, &total) || !loom_size_mul(b->attn_floats, (size_t)n_threads, &attn_total) ||
        !loom_size_add(total, attn_total, &total) || !loom_size_add(total, 64, &total) ||
        !loom_size_mul(total, sizeof(float), &total))
        return LOOM_FAIL(err, LOOM_ERR_NOMEM, "vit: scratch for %lld tiles overflows", (long long)T);
    float *p = loom_malloc(total);
    if (!p) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "vit: out of memory for %zu MiB of scratch (%lld tiles)",
                             total >> 20, (long long)T);
    b->block = p;
    /* round each buffer to 16 floats so every one starts on a cache line */
#define CARVE(dst, n)                                                                                          \
    do {                                                                                                       \
        (dst) = p;                                                                                             \
        p += ((n) + 15) & ~(size_t)15;                                                                         \
    } while (0)
    CARVE(b->x, f_x * (size_t)T);
    CARVE(b->xn, f_xn * (size_t)T);
    CARVE(b->tmp, f_tmp * (size_t)T);
    CARVE(b->big, f_big * (size_t)T);
    b->attn = p;
#undef CARVE
    return LOOM_OK;
}

/* ==== row-parallel steps ==== */

typedef struct step_ctx {
    const loom_vit *vit;
    const enc_buf  *b;
    int64_t         T;       /* tiles in the batch */
    const float    *tiles;   /* [T, 3, S, S] */
    float          *dst;
    const float    *src;
    const float    *w, *bias;
    int64_t         width;   /* values per row */
    const vit_layer *L;
} step_ctx;

/* dst = LN(src) * w + bias, rows of `width`. */
static void ln_range(void *vctx, int64_t r0, int64_t r1, int ith) {
    const step_ctx *c = vctx;
    for (int64_t r = r0; r < r1; r++)
        loom_op_layernorm(c->dst + r * c->width, c->src + r * c->width, c->w, c->bias, c->width, c->vit->hp.eps);
}

/* dst += src + bias: the residual add after a projection. */
static void residual_range(void *vctx, int64_t r0, int64_t r1, int ith) {
    const step_ctx *c = vctx;
    for (int64_t r = r0; r < r1; r++) {
        float *x = c->dst + r * c->width;
        const float *y = c->src + r * c->width;
        for (int64_t i = 0; i < c->width; i++) x[i] += y[i] + c->bias[i];
    }
}

/* dst = GELU(dst + bias) (bias may be NULL). */
static void gelu_range(void *vctx, int64_t r0, int64_t r1, int ith) {
    const step_ctx *c = vctx;
    for (int64_t r = r0; r < r1; r++) vit_gelu_row(c->dst + r * c->width, c->bias, c->width);
}

static void rows(loom_pool *pool, int64_t n, loom_pool_range_fn fn, step_ctx *c) { loom_pool_for(pool, n, fn, c); }

/* Patch row (t, p), p = r*n_side + q, as a 3*P*P vector in (c, ky, kx) order — Meta's unfold order, which is
 * also the byte order of the conv kernel [P, P, 3, d_vis] that llama.cpp may store. */
static void unfold_range(void *vctx, int64_t r0, int64_t r1, int ith) {
    const step_ctx *c = vctx;
    const loom_vit_hparams *hp = &c->vit->hp;
    int64_t P = hp->patch_size, S = hp->image_size, pd = 3 * P * P;
    for (int64_t rr = r0; rr < r1; rr++) {
        int64_t t = rr / hp->n_patch, p = rr % hp->n_patch, pr = p / hp->n_side, pq = p % hp->n_side;
        float *dst = c->dst + rr * pd;
        for (int64_t ch = 0; ch < 3; ch++) {
            const float *plane = c->tiles + (t * 3 + ch) * S * S;
            for (int64_t ky = 0; ky < P; ky++)
                memcpy(dst + (ch * P + ky) * P, plane + (pr * P + ky) * S + pq * P, sizeof(float) * (size_t)P);
        }
    }
}

/* x row (t, i) = embedded patch i (or CLS when i == n_patch) + pos[i]. src is [T*n_patch, d_vis]. */
static void embed_range(void *vctx, int64_t r0, int64_t r1, int ith) {
    const step_ctx *c = vctx;
    const loom_vit *vit = c->vit;
    int64_t d = vit->hp.d_vis, n_tok = vit->hp.n_tok, n_patch = vit->hp.n_patch;
    for (int64_t rr = r0; rr < r1; rr++) {
        int64_t t = rr / n_tok, i = rr % n_tok;
        const float *e = i < n_patch ? c->src + (t * n_patch + i) * d : vit->class_embd;
        const float *pos = vit->pos_embd + i * d;
        float *x = c->dst + rr * d;
        for (int64_t k = 0; k < d; k++) x[k] = e[k] + pos[k];
    }
}

/* Pixel shuffle (LLAMA4.md §2.4), with s = scale_factor and m = n_side / s:
 *   Y[t][R*m + Q][(dr*s + dq)*d_vis + c] = X[t][(s*R + dr)*n_side + (s*Q + dq)][c],  dr, dq < s
 * i.e. output tokens row-major over the m x m grid, each the concatenation of its s x s block row by row
 * (top-left, top-right, bottom-left, bottom-right for s = 2). This is Meta's view/permute/view/permute
 * sequence worked out by hand; llama.cpp's current graph drops the second permute and transposes the grid. */
static void shuffle_range(void *vctx, int64_t r0, int64_t r1, int ith) {
    const step_ctx *c = vctx;
    const loom_vit_hparams *hp = &c->vit->hp;
    int64_t s = hp->scale_factor, m = hp->n_side / s, d = hp->d_vis;
    for (int64_t rr = r0; rr < r1; rr++) {
        int64_t t = rr / hp->n_tok_out, o = rr % hp->n_tok_out, R = o / m, Q = o % m;
        float *y = c->dst + rr * hp->d_shuffle;
        for (int64_t dr = 0; dr < s; dr++)
            for (int64_t dq = 0; dq < s; dq++) {
                int64_t p = (s * R + dr) * hp->n_side + (s * Q + dq);
                memcpy(y + (dr * s + dq) * d, c->src + (t * hp->n_tok + p) * d, sizeof(float) * (size_t)d);
            }
    }
}

/* ==== attention ==== */

/* One (tile, head) pair per item: gather the head's q, k, v rows with their biases (RoPE on q and k), then
 * attend. Items write disjoint column blocks of xn, so they need no synchronisation. */
static void attn_range(void *vctx, int64_t i0, int64_t i1, int ith) {
    const step_ctx *c = vctx;
    const loom_vit_hparams *hp = &c->vit->hp;
    const vit_layer *L = c->L;
    int64_t n_tok = hp->n_tok, d = hp->d_vis, dh = hp->d_head, N = c->T * n_tok;
    const float *q = c->b->big, *k = q + N * d, *v = k + N * d;
    float *Qh = c->b->attn + (size_t)ith * c->b->attn_floats, *Kh = Qh + n_tok * dh, *Vh = Kh + n_tok * dh;
    float scale = (float)(1.0 / sqrt((double)dh));
    for (int64_t item = i0; item < i1; item++) {
        int64_t t = item / hp->n_head, h = item % hp->n_head, off = h * dh;
        for (int64_t i = 0; i < n_tok; i++) {
            int64_t row = (t * n_tok + i) * d + off;
            float *qi = Qh + i * dh, *ki = Kh + i * dh, *vi = Vh + i * dh;
            for (int64_t e = 0; e < dh; e++) {
                qi[e] = q[row + e] + L->bq[off + e];
                ki[e] = k[row + e] + L->bk[off + e];
                vi[e] = v[row + e] + L->bv[off + e];
            }
            /* every head uses the same per-token table: pairs 0..dh/4-1 turn with x, the rest with y */
            const float *cs = c->vit->rope_cs + i * dh;
            loom_op_rope_pairs(qi, cs, dh / 2);
            loom_op_rope_pairs(ki, cs, dh / 2);
        }
        /* bidirectional: every query sees all n_tok keys; 16 queries per pass of the fused kernel */
        for (int64_t i0q = 0; i0q < n_tok; i0q += LOOM_ATTN_LANES) {
            loom_attn_task at;
            at.n_q = (int)(n_tok - i0q < LOOM_ATTN_LANES ? n_tok - i0q : LOOM_ATTN_LANES);
            at.d_head = (int)dh;
            at.scale = scale;
            for (int m = 0; m < at.n_q; m++) {
                at.q[m] = Qh + (i0q + m) * dh;
                at.out[m] = c->dst + (t * n_tok + i0q + m) * d + off;
                at.lo[m] = 0;
                at.hi[m] = n_tok - 1;
            }
            at.n_seg = 1;
            at.seg[0] = (loom_attn_seg){Kh, Vh, dh, 0, n_tok};
            loom_attn_run(&at);
        }
    }
}

/* ==== forward ==== */

static loom_status mm(loom_pool *pool, float *Y, const vit_weight *w, const float *X, int64_t n_rows, loom_err *err) {
    if (loom_matmul(pool, Y, w->data, w->type, w->n_in, w->n_out, X, n_rows) != 0)
        return LOOM_FAIL(err, LOOM_ERR_NOMEM, "vit: matmul [%lld -> %lld] (%s) over %lld rows failed",
                         (long long)w->n_in, (long long)w->n_out, loom_type_name(w->type), (long long)n_rows);
    return LOOM_OK;
}

/* T tiles at once; out/taps already offset to the batch's first tile. */
static loom_status encode_batch(const loom_vit *vit, loom_pool *pool, const enc_buf *b, float *out, const float *tiles,
                                int64_t T, const loom_vit_taps *taps, loom_err *err) {
    const loom_vit_hparams *hp = &vit->hp;
    int64_t d = hp->d_vis, N = T * hp->n_tok, n_out = T * hp->n_tok_out;
    step_ctx c = {.vit = vit, .b = b, .T = T, .tiles = tiles};
    loom_status st;

    /* patch embedding: unfold into big, project into tmp, then place with CLS and positions into x */
    c.dst = b->big;
    rows(pool, T * hp->n_patch, unfold_range, &c);
    if ((st = mm(pool, b->tmp, &vit->patch, b->big, T * hp->n_patch, err))) return st;
    c.dst = b->x, c.src = b->tmp;
    rows(pool, N, embed_range, &c);
    c.dst = b->x, c.src = b->x, c.w = vit->pre_ln_w, c.bias = vit->pre_ln_b, c.width = d;
    rows(pool, N, ln_range, &c);

    for (int l = 0; l < hp->n_layer; l++) {
        const vit_layer *L = &vit->layers[l];
        c.L = L;
        c.dst = b->xn, c.src = b->x, c.w = L->ln1_w, c.bias = L->ln1_b, c.width = d;
        rows(pool, N, ln_range, &c);
        /* q | k | v land in big as three [N, d] blocks; biases are added while gathering per head */
        if ((st = mm(pool, b->big, &L->wq, b->xn, N, err))) return st;
        if ((st = mm(pool, b->big + N * d, &L->wk, b->xn, N, err))) return st;
        if ((st = mm(pool, b->big + 2 * N * d, &L->wv, b->xn, N, err))) return st;
        c.dst = b->xn;
        loom_pool_for(pool, T * hp->n_head, attn_range, &c);
        if ((st = mm(pool, b->tmp, &L->wo, b->xn, N, err))) return st;
        c.dst = b->x, c.src = b->tmp, c.bias = L->bo, c.width = d;
        rows(pool, N, residual_range, &c);

        c.dst = b->xn, c.src = b->x, c.w = L->ln2_w, c.bias = L->ln2_b, c.width = d;
        rows(pool, N, ln_range, &c);
        if ((st = mm(pool, b->big, &L->ffn_up, b->xn, N, err))) return st;
        c.dst = b->big, c.bias = L->ffn_up_b, c.width = hp->d_ff;
        rows(pool, N, gelu_range, &c);
        if ((st = mm(pool, b->tmp, &L->ffn_down, b->big, N, err))) return st;
        c.dst = b->x, c.src = b->tmp, c.bias = L->ffn_down_b, c.width = d;
        rows(pool, N, residual_range, &c);
    }

    c.dst = b->x, c.src = b->x, c.w = vit->post_ln_w, c.bias = vit->post_ln_b, c.width = d;
    rows(pool, N, ln_range, &c);
    if (taps && taps->vit_out)
        for (int64_t t = 0; t < T; t++)
            memcpy(taps->vit_out + t * hp->n_patch * d, b->x + t * hp->n_tok * d, sizeof(float) * (size_t)(hp->n_patch * d));

    c.dst = b->xn, c.src = b->x;
    rows(pool, n_out, shuffle_range, &c);
    if (taps && taps->shuffle) memcpy(taps->shuffle, b->xn, sizeof(float) * (size_t)(n_out * hp->d_shuffle));

    if ((st = mm(pool, b->tmp, &vit->adapter1, b->xn, n_out, err))) return st;
    c.dst = b->tmp, c.bias = NULL, c.width = hp->d_adapter;
    rows(pool, n_out, gelu_range, &c);
    if ((st = mm(pool, b->xn, &vit->adapter2, b->tmp, n_out, err))) return st;
    c.dst = b->xn;
    rows(pool, n_out, gelu_range, &c);
    if (taps && taps->adapter) memcpy(taps->adapter, b->xn, sizeof(float) * (size_t)(n_out * hp->d_adapter));

    if (out && (st = mm(pool, out, &vit->proj, b->xn, n_out, err))) return st;
    return LOOM_OK;
}

loom_status loom_vit_encode_ex(const loom_vit *vit, loom_pool *pool, float *out, const float *tiles, int64_t n_tiles,
                               const loom_vit_taps *taps, loom_err *err) {
    if (!vit || !tiles || n_tiles < 1 || n_tiles > (1 << 20))
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "vit: encode needs a model, tiles and 1 <= n_tiles (got %lld)",
                         (long long)n_tiles);
    const loom_vit_hparams *hp = &vit->hp;
    int64_t T = n_tiles;
    if (vit->max_batch_tiles > 0 && T > vit->max_batch_tiles) T = vit->max_batch_tiles;
    enc_buf b;
    loom_status st = enc_buf_alloc(&b, hp, T, loom_pool_size(pool), err);
    if (st) return st;
    int64_t tile_floats = 3 * (int64_t)hp->image_size * hp->image_size;
    for (int64_t t0 = 0; t0 < n_tiles && !st; t0 += T) {
        int64_t nt = n_tiles - t0 < T ? n_tiles - t0 : T;
        loom_vit_taps tp = {0};
        if (taps) {
            tp.vit_out = taps->vit_out ? taps->vit_out + t0 * hp->n_patch * hp->d_vis : NULL;
            tp.shuffle = taps->shuffle ? taps->shuffle + t0 * hp->n_tok_out * hp->d_shuffle : NULL;
            tp.adapter = taps->adapter ? taps->adapter + t0 * hp->n_tok_out * hp->d_adapter : NULL;
        }
        st = encode_batch(vit, pool, &b, out ? out + t0 * hp->n_tok_out * hp->d_proj : NULL, tiles + t0 * tile_floats,
                          nt, taps ? &tp : NULL, err);
    }
    loom_free(b.block);
    return st;
}

loom_status loom_vit_encode(const loom_vit *vit, loom_pool *pool, float *out, const float *tiles, int64_t n_tiles,
                            loom_err *err) {
    if (!out) return LOOM_FAIL(err, LOOM_ERR_INVALID, "vit: encode needs an output buffer");
    return loom_vit_encode_ex(vit, pool, out, tiles, n_tiles, NULL, err);
}
