/* vision/vit_load.c — binds an mmproj GGUF (clip architecture, projector type "llama4") to the encoder.
 *
 * File layout read here (llama.cpp's mmproj, LLAMA4.md §6.2; ne order, fastest first; Llama 4 values):
 *
 *   | tensor                                | ne                      | note                                  |
 *   |---------------------------------------|-------------------------|---------------------------------------|
 *   | v.patch_embd.weight                   | [588, 1408] or [14,14,3,1408] | unfold-conv linear, input (c,ky,kx) |
 *   | v.class_embd                          | [1408]                  | CLS, appended LAST                    |
 *   | v.position_embd.weight                | [1408, 577]             | row 576 = CLS                         |
 *   | v.pre_ln.{weight,bias}, v.post_ln.*   | [1408]                  |                                       |
 *   | v.blk.N.attn_{q,k,v,out}.weight/.bias | [1408, 1408] / [1408]   |                                       |
 *   | v.blk.N.ln1.*, v.blk.N.ln2.*          | [1408]                  | pre-attention / pre-MLP LayerNorm     |
 *   | v.blk.N.ffn_up.weight/.bias           | [1408, 5632] / [5632]   |                                       |
 *   | v.blk.N.ffn_down.weight/.bias         | [5632, 1408] / [1408]   |                                       |
 *   | mm.model.mlp.1.weight                 | [5632, 4096]            | adapter fc1, no bias                  |
 *   | mm.model.mlp.2.weight                 | [4096, 4096]            | adapter fc2, no bias                  |
 *   | mm.model.fc.weight                    | [4096, 5120]            | projector to the backbone, no bias    |
 *
 * Keys: clip.projector_type, clip.vision.{image_size, patch_size, embedding_length, feed_forward_length,
 * block_count, attention.head_count, attention.layer_norm_epsilon, projection_dim, projector.scale_factor}.
 * Every shape is checked against them before use, so a broken file fails here naming the tensor, never later
 * inside a kernel. Vectors (norms, biases, embeddings) are used in place when F32 and converted once to f32
 * when F16/BF16; matrices stay in the mapping in whatever type loom_matmul supports.
 */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/quant.h"
#include "vision/vit_int.h"

#define VIT_ROPE_THETA 10000.0f /* hard-coded in Meta's encoder and in clip.cpp; not in the GGUF */

/* ==== hyper-parameters ==== */

static loom_status need_u32(const loom_gguf *g, const char *key, int *out, uint32_t lo, uint32_t hi, loom_err *err) {
    uint32_t v;
    loom_status st = loom_gguf_get_u32(g, key, &v, err);
    if (st) return st;
    if (v < lo || v > hi) return LOOM_FAIL(err, LOOM_ERR_FORMAT, "%s = %u is outside [%u, %u]", key, v, lo, hi);
    *out = (int)v;
    return LOOM_OK;
}

static loom_status read_hparams(loom_vit *vit, loom_err *err) {
    const loom_gguf *g = vit->gguf;
    loom_vit_hparams *hp = &vit->hp;
    loom_gguf_str s;
    if (loom_gguf_find_key(g, "clip.projector_type") < 0)
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "clip.projector_type is missing (not an mmproj file?)");
    loom_status st = loom_gguf_get_str(g, "clip.projector_type", &s, err);
    if (st) return st;
    if (s.len != 6 || memcmp(s.ptr, "llama4", 6) != 0)
        return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "clip.projector_type '%.*s' is not supported (loom runs 'llama4')",
                         (int)(s.len > 64 ? 64 : s.len), s.ptr);
    bool has_vision = true;
    if (loom_gguf_opt_bool(g, "clip.has_vision_encoder", &has_vision) && !has_vision)
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "clip.has_vision_encoder is false: the file has no vision encoder");

    if ((st = need_u32(g, "clip.vision.image_size", &hp->image_size, 1, 8192, err))) return st;
    if ((st = need_u32(g, "clip.vision.patch_size", &hp->patch_size, 1, 1024, err))) return st;
    if ((st = need_u32(g, "clip.vision.embedding_length", &hp->d_vis, 1, 1 << 16, err))) return st;
    if ((st = need_u32(g, "clip.vision.feed_forward_length", &hp->d_ff, 1, 1 << 20, err))) return st;
    if ((st = need_u32(g, "clip.vision.block_count", &hp->n_layer, 1, 1024, err))) return st;
    if ((st = need_u32(g, "clip.vision.attention.head_count", &hp->n_head, 1, 1 << 16, err))) return st;
    if ((st = need_u32(g, "clip.vision.projection_dim", &hp->d_proj, 1, 1 << 20, err))) return st;
    if ((st = need_u32(g, "clip.vision.projector.scale_factor", &hp->scale_factor, 1, 64, err))) return st;
    if ((st = loom_gguf_get_f32(g, "clip.vision.attention.layer_norm_epsilon", &hp->eps, err))) return st;
    if (!(hp->eps > 0.0f) || !(hp->eps < 1.0f))
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "clip.vision.attention.layer_norm_epsilon = %g is out of range", hp->eps);

    if (hp->image_size % hp->patch_size)
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "clip.vision.image_size %d is not a multiple of patch_size %d",
                         hp->image_size, hp->patch_size);
    hp->n_side = hp->image_size / hp->patch_size;
    /* attention is quadratic in the tokens of a tile: keep a hostile file from asking for terabytes */
    if (hp->n_side > 128)
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "%d x %d patches per tile is more than loom supports (128 x 128)",
                         hp->n_side, hp->n_side);
    if (hp->n_side % hp->scale_factor)
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "%d patches per side do not divide by projector.scale_factor %d",
                         hp->n_side, hp->scale_factor);
    hp->n_patch = hp->n_side * hp->n_side;
    hp->n_tok = hp->n_patch + 1;
    hp->n_tok_out = hp->n_patch / (hp->scale_factor * hp->scale_factor);
    int64_t d_shuffle = (int64_t)hp->d_vis * hp->scale_factor * hp->scale_factor;
    if (d_shuffle > (1 << 22))
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "pixel-shuffle width %lld is out of range", (long long)d_shuffle);
    hp->d_shuffle = (int)d_shuffle;
    if (hp->d_vis % hp->n_head)
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "embedding_length %d is not a multiple of head_count %d", hp->d_vis,
                         hp->n_head);
    hp->d_head = hp->d_vis / hp->n_head;
    /* 2-D RoPE splits each head into x pairs then y pairs: needs a multiple of 4 dimensions (Meta's too) */
    if (hp->d_head % 4)
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "head dimension %d is not a multiple of 4 (2-D RoPE)", hp->d_head);
    hp->rope_theta = VIT_ROPE_THETA;
    return LOOM_OK;
}

/* ==== tensors ==== */

static loom_status find(const loom_gguf_tensor **out, const loom_gguf *g, const char *name, loom_err *err) {
    const loom_gguf_tensor *t = loom_gguf_find_tensor(g, name);
    if (!t) return LOOM_FAIL(err, LOOM_ERR_FORMAT, "tensor '%s' is missing", name);
    if (!t->data) return LOOM_FAIL(err, LOOM_ERR_INVALID, "tensor '%s' has no data (GGUF opened metadata-only)", name);
    *out = t;
    return LOOM_OK;
}

static loom_status shape_error(const loom_gguf_tensor *t, int64_t e0, int64_t e1, loom_err *err) {
    return LOOM_FAIL(err, LOOM_ERR_FORMAT, "tensor '%s' has shape [%lld, %lld, %lld, %lld] (%d dims), expected [%lld, %lld]",
                     t->name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
                     t->n_dims, (long long)e0, (long long)e1);
}

/* ne beyond n_dims are 1, so [n] and [n, 1] both read as a vector; only the element layout matters. */
static bool shape_is(const loom_gguf_tensor *t, int64_t e0, int64_t e1) {
    return t->ne[0] == e0 && t->ne[1] == e1 && t->ne[2] == 1 && t->ne[3] == 1;
}

static loom_status check_matmul_type(const loom_gguf_tensor *t, int64_t n_in, loom_err *err) {
    const loom_type_info *ti = loom_type_info_get(t->type);
    if (!ti || !ti->supported)
        return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "tensor '%s' has weight type %s, which loom cannot compute with",
                         t->name, loom_type_name(t->type));
    if (!loom_row_size(t->type, n_in))
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "tensor '%s': a row of %lld values is not whole %s blocks", t->name,
                         (long long)n_in, loom_type_name(t->type));
    return LOOM_OK;
}

/* A matrix mapping n_in -> n_out, ne = [n_in, n_out]; n_out < 0 takes it from the file (and returns it). */
static loom_status bind_weight(vit_weight *w, const loom_gguf *g, const char *name, int64_t n_in, int64_t n_out,
                               loom_err *err) {
    const loom_gguf_tensor *t = NULL;
    loom_status st = find(&t, g, name, err);
    if (st) return st;
    if (n_out < 0) {
        if (t->ne[0] != n_in || t->n_dims != 2)
            return LOOM_FAIL(err, LOOM_ERR_FORMAT,
                             "tensor '%s' has shape [%lld, %lld, %lld, %lld] (%d dims), expected [%lld, n_out]", name,
                             (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
                             t->n_dims, (long long)n_in);
        n_out = t->ne[1];
        if (n_out < 1 || n_out > (1 << 20))
            return LOOM_FAIL(err, LOOM_ERR_FORMAT, "tensor '%s': %lld outputs is out of range", name, (long long)n_out);
    }
    if (!shape_is(t, n_in, n_out)) return shape_error(t, n_in, n_out, err);
    if ((st = check_matmul_type(t, n_in, err))) return st;
    w->data = t->data;
    w->type = t->type;
    w->n_in = n_in;
    w->n_out = n_out;
    return LOOM_OK;
}

typedef struct copy_state {
    float *base, *cursor;
    size_t cap; /* floats */
} copy_state;

/* An f32 view of a [e0, e1] float tensor: the mapping itself when F32, else a converted copy. */
static loom_status bind_vector(const float **out, const loom_gguf *g, copy_state *cs, const char *name, int64_t e0,
                               int64_t e1, loom_err *err) {
    const loom_gguf_tensor *t = NULL;
    loom_status st = find(&t, g, name, err);
    if (st) return st;
    if (!shape_is(t, e0, e1)) return shape_error(t, e0, e1, err);
    if (t->type == LOOM_F32) {
        *out = t->data;
        return LOOM_OK;
    }
    if (t->type != LOOM_F16 && t->type != LOOM_BF16)
        return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "tensor '%s' has type %s; expected F32, F16 or BF16", name,
                         loom_type_name(t->type));
    size_t n = (size_t)(e0 * e1);
    if (!cs->base) {
        cs->base = cs->cursor = loom_malloc(cs->cap * sizeof(float));
        if (!cs->base) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "out of memory for f32 copies of vectors");
    }
    if (LOOM_NEVER((size_t)(cs->cursor - cs->base) + n > cs->cap))
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "tensor '%s': vector copies exceed their budget", name);
    if (loom_dequantize_row(t->type, t->data, cs->cursor, (int64_t)n) != 0)
        return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "tensor '%s': cannot convert %s to f32", name,
                         loom_type_name(t->type));
    *out = cs->cursor;
    cs->cursor += n;
    return LOOM_OK;
}

static loom_status bind_tensors(loom_vit *vit, loom_err *err) {
    const loom_gguf *g = vit->gguf;
    const loom_vit_hparams *hp = &vit->hp;
    int64_t d = hp->d_vis, P = hp->patch_size, PD = 3 * P * P;
    copy_state cs = {0};
    /* every vector the encoder reads, so one allocation covers any mix of F16/BF16 vectors */
    cs.cap = (size_t)hp->n_layer * (size_t)(9 * d + hp->d_ff) + (size_t)(5 + hp->n_tok) * (size_t)d;
    loom_status st;

    /* The patch embedding is a linear layer in llama.cpp's file but may be stored as the equivalent conv kernel
     * [P, P, 3, d]; both have the same bytes (kx fastest, then ky, then c). */
    const loom_gguf_tensor *pe = NULL;
    if ((st = find(&pe, g, "v.patch_embd.weight", err))) goto out;
    bool as_conv = pe->ne[0] == P && pe->ne[1] == P && pe->ne[2] == 3 && pe->ne[3] == d;
    if (!as_conv && !shape_is(pe, PD, d)) {
        st = shape_error(pe, PD, d, err);
        goto out;
    }
    if ((st = check_matmul_type(pe, PD, err))) goto out;
    vit->patch = (vit_weight){pe->data, pe->type, PD, d};

    if ((st = bind_vector(&vit->class_embd, g, &cs, "v.class_embd", d, 1, err))) goto out;
    if ((st = bind_vector(&vit->pos_embd, g, &cs, "v.position_embd.weight", d, hp->n_tok, err))) goto out;
    if ((st = bind_vector(&vit->pre_ln_w, g, &cs, "v.pre_ln.weight", d, 1, err))) goto out;
    if ((st = bind_vector(&vit->pre_ln_b, g, &cs, "v.pre_ln.bias", d, 1, err))) goto out;
    if ((st = bind_vector(&vit->post_ln_w, g, &cs, "v.post_ln.weight", d, 1, err))) goto out;
    if ((st = bind_vector(&vit->post_ln_b, g, &cs, "v.post_ln.bias", d, 1, err))) goto out;

    vit->layers = loom_calloc((size_t)hp->n_layer, sizeof(vit_layer));
    if (!vit->layers) {
        st = LOOM_FAIL(err, LOOM_ERR_NOMEM, "out of memory for the layer table");
        goto out;
    }
    char name[96];
#define NAME(fmt) (snprintf(name, sizeof name, "v.blk.%d." fmt, l), name)
    for (int l = 0; l < hp->n_layer; l++) {
        vit_layer *L = &vit->layers[l];
        if ((st = bind_vector(&L->ln1_w, g, &cs, NAME("ln1.weight"), d, 1, err))) goto out;
        if ((st = bind_vector(&L->ln1_b, g, &cs, NAME("ln1.bias"), d, 1, err))) goto out;
        if ((st = bind_weight(&L->wq, g, NAME("attn_q.weight"), d, d, err))) goto out;
        if ((st = bind_vector(&L->bq, g, &cs, NAME("attn_q.bias"), d, 1, err))) goto out;
        if ((st = bind_weight(&L->wk, g, NAME("attn_k.weight"), d, d, err))) goto out;
        if ((st = bind_vector(&L->bk, g, &cs, NAME("attn_k.bias"), d, 1, err))) goto out;
        if ((st = bind_weight(&L->wv, g, NAME("attn_v.weight"), d, d, err))) goto out;
        if ((st = bind_vector(&L->bv, g, &cs, NAME("attn_v.bias"), d, 1, err))) goto out;
        if ((st = bind_weight(&L->wo, g, NAME("attn_out.weight"), d, d, err))) goto out;
        if ((st = bind_vector(&L->bo, g, &cs, NAME("attn_out.bias"), d, 1, err))) goto out;
        if ((st = bind_vector(&L->ln2_w, g, &cs, NAME("ln2.weight"), d, 1, err))) goto out;
        if ((st = bind_vector(&L->ln2_b, g, &cs, NAME("ln2.bias"), d, 1, err))) goto out;
        if ((st = bind_weight(&L->ffn_up, g, NAME("ffn_up.weight"), d, hp->d_ff, err))) goto out;
        if ((st = bind_vector(&L->ffn_up_b, g, &cs, NAME("ffn_up.bias"), hp->d_ff, 1, err))) goto out;
        if ((st = bind_weight(&L->ffn_down, g, NAME("ffn_down.weight"), hp->d_ff, d, err))) goto out;
        if ((st = bind_vector(&L->ffn_down_b, g, &cs, NAME("ffn_down.bias"), d, 1, err))) goto out;
    }
#undef NAME
    /* The adapter width is not a key in llama.cpp's layout; it is whatever fc1 produces. */
    if ((st = bind_weight(&vit->adapter1, g, "mm.model.mlp.1.weight", hp->d_shuffle, -1, err))) goto out;
    vit->hp.d_adapter = (int)vit->adapter1.n_out;
    if ((st = bind_weight(&vit->adapter2, g, "mm.model.mlp.2.weight", hp->d_adapter, hp->d_adapter, err))) goto out;
    if ((st = bind_weight(&vit->proj, g, "mm.model.fc.weight", hp->d_adapter, hp->d_proj, err))) goto out;
out:
    vit->f32_copies = cs.base;
    return st;
}

/* ==== 2-D RoPE table ==== */

/* cos/sin per token and pair (LLAMA4.md §2.3, Meta's VisionEncoder): with F = d_head/2 pairs and
 * w_j = 1 / theta^(2j/F), j < F/2, pairs j < F/2 turn by x*w_j and pairs F/2 + j by y*w_j, where x = col + 1 and
 * y = row + 1 (1-based; column first). CLS (the last token) is not rotated. Frequencies and angles are formed in
 * f32 as torch does, so the table matches the reference to the last bit of the angle. */
static loom_status build_rope(loom_vit *vit, loom_err *err) {
    const loom_vit_hparams *hp = &vit->hp;
    int F = hp->d_head / 2, half = F / 2;
    vit->rope_cs = loom_malloc(sizeof(float) * 2 * (size_t)F * (size_t)hp->n_tok);
    if (!vit->rope_cs) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "out of memory for the RoPE table");
    for (int i = 0; i < hp->n_tok; i++) {
        float *cs = vit->rope_cs + (size_t)i * 2 * F;
        for (int p = 0; p < F; p++) {
            float ang = 0.0f;
            if (i < hp->n_patch) {
                int j = p < half ? p : p - half;
                int coord = p < half ? i % hp->n_side + 1 : i / hp->n_side + 1;
                float w = 1.0f / powf(hp->rope_theta, (float)(2 * j) / (float)F);
                ang = (float)coord * w;
            }
            cs[2 * p] = (float)cos((double)ang);
            cs[2 * p + 1] = (float)sin((double)ang);
        }
    }
    return LOOM_OK;
}

/* ==== lifecycle ==== */

loom_status loom_vit_from_gguf(loom_vit **out, loom_gguf *g, const loom_vit_params *params, loom_err *err) {
    *out = NULL;
    loom_vit *vit = loom_calloc(1, sizeof *vit);
    if (!vit) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "out of memory");
    vit->gguf = g;
    vit->max_batch_tiles = params && params->max_batch_tiles > 0 ? params->max_batch_tiles : 0;
    loom_status st = read_hparams(vit, err);
    if (!st) st = bind_tensors(vit, err);
    if (!st) st = build_rope(vit, err);
    if (st) {
        vit->gguf = NULL; /* the caller still owns g on failure */
        loom_vit_close(vit);
        return st;
    }
    *out = vit;
    return LOOM_OK;
}

loom_status loom_vit_open(loom_vit **out, const char *path, const loom_vit_params *params, loom_err *err) {
    *out = NULL;
    loom_gguf_params gp = {0};
    if (params) {
        gp.no_mmap = params->no_mmap;
        gp.mlock = params->mlock;
    }
    loom_gguf *g;
    loom_status st = loom_gguf_open(&g, path, &gp, err);
    if (st) {
        loom_err_prefix(err, "%s: ", path);
        return st;
    }
    st = loom_vit_from_gguf(out, g, params, err);
    if (st) {
        loom_gguf_close(g);
        loom_err_prefix(err, "%s: ", path);
    }
    return st;
}

void loom_vit_close(loom_vit *vit) {
    if (!vit) return;
    loom_free(vit->layers);
    loom_free(vit->rope_cs);
    loom_free(vit->f32_copies);
    loom_gguf_close(vit->gguf);
    loom_free(vit);
}

const loom_vit_hparams *loom_vit_get_hparams(const loom_vit *vit) { return &vit->hp; }
