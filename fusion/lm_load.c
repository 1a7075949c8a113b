/* fusion/lm_load.c — binds a llama4 GGUF (llama.cpp layout, LLAMA4.md §6.1) to the backbone's weights.
 *
 * Every tensor's shape is checked against the hyper-parameters before use, so a file with a missing or
 * mis-shaped tensor fails here with a message naming it, not later inside a kernel. Keys beyond llama.cpp's
 * layout (LLAMA4.md §10) override its hard-coded constants when present.
 */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/quant.h"
#include "fusion/lm_int.h"

static loom_status need_u32(const loom_gguf *g, const char *key, int *out, uint32_t lo, uint32_t hi, loom_err *err) {
    uint32_t v;
    loom_status st = loom_gguf_get_u32(g, key, &v, err);
    if (st) return st;
    if (v < lo || v > hi) return LOOM_FAIL(err, LOOM_ERR_FORMAT, "%s = %u is outside [%u, %u]", key, v, lo, hi);
    *out = (int)v;
    return LOOM_OK;
}

static bool is_float_type(loom_dtype t) { return t == LOOM_F32 || t == LOOM_F16 || t == LOOM_BF16; }

/* Checks that `name` exists with exactly the expected ne (n_mat == 0: a 2-D tensor). */
static loom_status bind_weight(lm_weight *w, const loom_gguf *g, const char *name, int64_t n_in, int64_t n_out,
                               int64_t n_mat, loom_err *err) {
    const loom_gguf_tensor *t = loom_gguf_find_tensor(g, name);
    if (!t) return LOOM_FAIL(err, LOOM_ERR_FORMAT, "tensor '%s' is missing", name);
    int want_dims = n_mat ? 3 : 2;
    if (t->n_dims != want_dims || t->ne[0] != n_in || t->ne[1] != n_out || (n_mat && t->ne[2] != n_mat))
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "tensor '%s' has shape [%lld, %lld, %lld], expected [%lld, %lld%s%lld]",
                         name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)n_in,
                         (long long)n_out, n_mat ? ", " : "", (long long)(n_mat ? n_mat : 1));
    const loom_type_info *ti = loom_type_info_get(t->type);
    if (!ti || !ti->supported)
        return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "tensor '%s' has weight type %s, which loom cannot compute with",
                         name, loom_type_name(t->type));
    w->data = t->data;
    w->type = t->type;
    w->n_in = n_in;
    w->n_out = n_out;
    w->n_mat = n_mat ? n_mat : 1;
    w->row_bytes = loom_row_size(t->type, n_in);
    if (!w->row_bytes) return LOOM_FAIL(err, LOOM_ERR_FORMAT, "tensor '%s': row of %lld is not whole blocks", name, (long long)n_in);
    return LOOM_OK;
}

/* Norm weights are f32 in every published file; other float types are converted once into norm_copies. */
static loom_status bind_vector(const float **out, loom_lm *lm, float **copy_cursor, const char *name, int64_t n,
                               loom_err *err) {
    const loom_gguf_tensor *t = loom_gguf_find_tensor(lm->gguf, name);
    if (!t) return LOOM_FAIL(err, LOOM_ERR_FORMAT, "tensor '%s' is missing", name);
    if (t->ne[0] != n || t->ne[1] != 1 || t->ne[2] != 1)
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "tensor '%s' has %lld elements, expected %lld", name,
                         (long long)(t->ne[0] * t->ne[1] * t->ne[2]), (long long)n);
    if (t->type == LOOM_F32) {
        *out = t->data;
        return LOOM_OK;
    }
    if (!is_float_type(t->type))
        return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "tensor '%s' has type %s; expected a float type", name,
                         loom_type_name(t->type));
    loom_dequantize_row(t->type, t->data, *copy_cursor, n);
    *out = *copy_cursor;
    *copy_cursor += n;
    return LOOM_OK;
}

static loom_status read_hparams(loom_lm *lm, loom_err *err) {
    const loom_gguf *g = lm->gguf;
    loom_lm_hparams *hp = &lm->hp;
    loom_gguf_str arch;
    loom_status st = loom_gguf_get_str(g, "general.architecture", &arch, err);
    if (st) return st;
    if (arch.len != 6 || memcmp(arch.ptr, "llama4", 6) != 0)
        return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "architecture '%.*s' is not supported (loom runs 'llama4')",
                         (int)(arch.len > 64 ? 64 : arch.len), arch.ptr);
    if ((st = need_u32(g, "llama4.embedding_length", &hp->d_model, 1, 1 << 16, err))) return st;
    if ((st = need_u32(g, "llama4.block_count", &hp->n_layer, 1, 1024, err))) return st;
    if ((st = need_u32(g, "llama4.attention.head_count", &hp->n_head, 1, 1024, err))) return st;
    hp->n_kv_head = hp->n_head;
    uint32_t v;
    if (loom_gguf_opt_u32(g, "llama4.attention.head_count_kv", &v)) hp->n_kv_head = (int)v;
    if (hp->n_kv_head < 1 || hp->n_head % hp->n_kv_head)
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "head_count %d is not a multiple of head_count_kv %d", hp->n_head,
                         hp->n_kv_head);
    hp->d_head = hp->d_model / hp->n_head;
    if (loom_gguf_opt_u32(g, "llama4.attention.key_length", &v)) hp->d_head = (int)v;
    if (hp->d_head < 2 || hp->d_head > 1024 || hp->d_head % 2)
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "head dimension %d is not supported", hp->d_head);
    hp->n_expert = 0;
    hp->n_expert_used = 0;
    if (loom_gguf_opt_u32(g, "llama4.expert_count", &v)) hp->n_expert = (int)v;
    if (loom_gguf_opt_u32(g, "llama4.expert_used_count", &v)) hp->n_expert_used = (int)v;
    if (hp->n_expert > 4096 || hp->n_expert_used > hp->n_expert || (hp->n_expert && hp->n_expert_used < 1))
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "expert_used_count %d / expert_count %d are inconsistent",
                         hp->n_expert_used, hp->n_expert);
    hp->moe_step = 1;
    if (loom_gguf_opt_u32(g, "llama4.interleave_moe_layer_step", &v)) hp->moe_step = (int)v;
    hp->nope_interval = 4;
    hp->chunk_size = 8192;
    if (loom_gguf_opt_u32(g, "llama4.attention.chunk_size", &v)) hp->chunk_size = (int)v;
    hp->temp_floor_scale = 8192;
    if (loom_gguf_opt_u32(g, "llama4.attention.temperature_floor_scale", &v)) hp->temp_floor_scale = (int)v;
    if (hp->chunk_size < 1 || hp->temp_floor_scale < 1)
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "chunk_size and temperature_floor_scale must be positive");
    hp->temp_attn_scale = 0.1f;
    hp->use_qk_norm = hp->n_expert != 128; /* llama.cpp's rule when the key is absent */
    bool b;
    if (loom_gguf_opt_bool(g, "llama4.use_qk_norm", &b)) hp->use_qk_norm = b;
    hp->rope_theta = 500000.0f;
    loom_gguf_opt_f32(g, "llama4.rope.freq_base", &hp->rope_theta);
    hp->norm_eps = 1e-5f;
    loom_gguf_opt_f32(g, "llama4.attention.layer_norm_rms_epsilon", &hp->norm_eps);
    hp->n_ctx_train = 0;
    if (loom_gguf_opt_u32(g, "llama4.context_length", &v)) hp->n_ctx_train = v;
    if (!(hp->rope_theta > 0.0f) || !(hp->norm_eps > 0.0f) || !(hp->norm_eps < 1.0f))
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "rope.freq_base or layer_norm_rms_epsilon is out of range");
    const loom_gguf_tensor *emb = loom_gguf_find_tensor(g, "token_embd.weight");
    if (!emb) return LOOM_FAIL(err, LOOM_ERR_FORMAT, "tensor 'token_embd.weight' is missing");
    if (emb->n_dims != 2 || emb->ne[0] != hp->d_model || emb->ne[1] < 1 || emb->ne[1] > (1 << 24))
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "token_embd.weight has shape [%lld, %lld], expected [%d, n_vocab]",
                         (long long)emb->ne[0], (long long)emb->ne[1], hp->d_model);
    hp->n_vocab = (int)emb->ne[1];
    if (loom_gguf_opt_u32(g, "llama4.vocab_size", &v) && (int)v != hp->n_vocab)
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "llama4.vocab_size %u differs from token_embd rows %d", v, hp->n_vocab);
    return LOOM_OK;
}

/* llama3-style frequency scaling comes from `rope_freqs.weight` (the factors f_i, LLAMA4.md §1.4): dividing
 * inv_freq by them is what llama.cpp does, and it keeps loom independent of the rope-scaling constants. */
static loom_status build_rope(loom_lm *lm, loom_err *err) {
    int n_pairs = lm->hp.d_head / 2;
    lm->inv_freq = loom_malloc(sizeof(float) * (size_t)n_pairs);
    if (!lm->inv_freq) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "out of memory");
    const loom_gguf_tensor *rf = loom_gguf_find_tensor(lm->gguf, "rope_freqs.weight");
    if (rf && (rf->type != LOOM_F32 || rf->ne[0] != n_pairs || rf->ne[1] != 1))
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "rope_freqs.weight must be F32 [%d]", n_pairs);
    lm->hp.has_rope_freqs = rf != NULL;
    for (int i = 0; i < n_pairs; i++) {
        double f = 1.0;
        if (rf) {
            f = ((const float *)rf->data)[i];
            if (!(f > 0.0)) return LOOM_FAIL(err, LOOM_ERR_FORMAT, "rope_freqs.weight[%d] = %g is not positive", i, f);
        }
        lm->inv_freq[i] = (float)(pow((double)lm->hp.rope_theta, -2.0 * i / lm->hp.d_head) / f);
    }
    return LOOM_OK;
}

static loom_status bind_layers(loom_lm *lm, loom_err *err) {
    loom_lm_hparams *hp = &lm->hp;
    const loom_gguf *g = lm->gguf;
    int d = hp->d_model, qd = hp->n_head * hp->d_head, kvd = hp->n_kv_head * hp->d_head;
    lm->layers = loom_calloc((size_t)hp->n_layer, sizeof(lm_layer));
    /* f32 copies for norm weights stored as f16/bf16: 2 per layer + output norm */
    lm->norm_copies = loom_malloc(sizeof(float) * (size_t)d * (2 * (size_t)hp->n_layer + 1));
    if (!lm->layers || !lm->norm_copies) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "out of memory for layer table");
    float *cursor = lm->norm_copies;
    char name[96];
    loom_status st;
#define NAME(fmt) (snprintf(name, sizeof name, "blk.%d." fmt, l), name)
    for (int l = 0; l < hp->n_layer; l++) {
        lm_layer *L = &lm->layers[l];
        L->use_rope = (l + 1) % hp->nope_interval != 0;
        if ((st = bind_vector(&L->attn_norm, lm, &cursor, NAME("attn_norm.weight"), d, err))) return st;
        if ((st = bind_vector(&L->ffn_norm, lm, &cursor, NAME("ffn_norm.weight"), d, err))) return st;
        if ((st = bind_weight(&L->wq, g, NAME("attn_q.weight"), d, qd, 0, err))) return st;
        if ((st = bind_weight(&L->wk, g, NAME("attn_k.weight"), d, kvd, 0, err))) return st;
        if ((st = bind_weight(&L->wv, g, NAME("attn_v.weight"), d, kvd, 0, err))) return st;
        if ((st = bind_weight(&L->wo, g, NAME("attn_output.weight"), qd, d, 0, err))) return st;
        L->is_moe = loom_gguf_find_tensor(g, NAME("ffn_gate_inp.weight")) != NULL;
        if (L->is_moe != (hp->n_expert > 0 && (l + 1) % hp->moe_step == 0))
            return LOOM_FAIL(err, LOOM_ERR_FORMAT, "layer %d: %s, but interleave_moe_layer_step %d / expert_count %d say otherwise",
                             l, L->is_moe ? "has a router" : "has no router", hp->moe_step, hp->n_expert);
        if (L->is_moe) {
            const loom_gguf_tensor *ge = loom_gguf_find_tensor(g, NAME("ffn_gate_exps.weight"));
            const loom_gguf_tensor *gs = loom_gguf_find_tensor(g, NAME("ffn_gate_shexp.weight"));
            if (!ge || !gs) return LOOM_FAIL(err, LOOM_ERR_FORMAT, "layer %d: expert tensors are missing", l);
            int de = (int)ge->ne[1], ds = (int)gs->ne[1];
            if (hp->d_expert && hp->d_expert != de)
                return LOOM_FAIL(err, LOOM_ERR_FORMAT, "layer %d: expert width %d differs from %d", l, de, hp->d_expert);
            hp->d_expert = de;
            hp->d_shexp = ds;
            int E = hp->n_expert;
            if ((st = bind_weight(&L->router, g, NAME("ffn_gate_inp.weight"), d, E, 0, err))) return st;
            if ((st = bind_weight(&L->gate_exps, g, NAME("ffn_gate_exps.weight"), d, de, E, err))) return st;
            if ((st = bind_weight(&L->up_exps, g, NAME("ffn_up_exps.weight"), d, de, E, err))) return st;
            if ((st = bind_weight(&L->down_exps, g, NAME("ffn_down_exps.weight"), de, d, E, err))) return st;
            if ((st = bind_weight(&L->gate_sh, g, NAME("ffn_gate_shexp.weight"), d, ds, 0, err))) return st;
            if ((st = bind_weight(&L->up_sh, g, NAME("ffn_up_shexp.weight"), d, ds, 0, err))) return st;
            if ((st = bind_weight(&L->down_sh, g, NAME("ffn_down_shexp.weight"), ds, d, 0, err))) return st;
        } else {
            const loom_gguf_tensor *gt = loom_gguf_find_tensor(g, NAME("ffn_gate.weight"));
            if (!gt) return LOOM_FAIL(err, LOOM_ERR_FORMAT, "tensor 'blk.%d.ffn_gate.weight' is missing", l);
            int df = (int)gt->ne[1];
            hp->d_ff_dense = df;
            if ((st = bind_weight(&L->gate, g, NAME("ffn_gate.weight"), d, df, 0, err))) return st;
            if ((st = bind_weight(&L->up, g, NAME("ffn_up.weight"), d, df, 0, err))) return st;
            if ((st = bind_weight(&L->down, g, NAME("ffn_down.weight"), df, d, 0, err))) return st;
        }
    }
#undef NAME
    if ((st = bind_vector(&lm->output_norm, lm, &cursor, "output_norm.weight", d, err))) return st;
    if ((st = bind_weight(&lm->output, g, "output.weight", d, hp->n_vocab, 0, err))) return st;
    return LOOM_OK;
}

loom_status loom_lm_from_gguf(loom_lm **out, loom_gguf *g, loom_err *err) {
    *out = NULL;
    loom_lm *lm = loom_calloc(1, sizeof *lm);
    if (!lm) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "out of memory");
    lm->gguf = g;
    loom_status st = read_hparams(lm, err);
    if (!st) st = build_rope(lm, err);
    if (!st) st = bind_layers(lm, err);
    if (!st) {
        const loom_gguf_tensor *emb = loom_gguf_find_tensor(g, "token_embd.weight");
        const loom_type_info *ti = loom_type_info_get(emb->type);
        if (!ti || !ti->supported)
            st = LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "token_embd.weight has type %s, which loom cannot read",
                           loom_type_name(emb->type));
        lm->tok_embd = emb->data;
        lm->tok_embd_type = emb->type;
        lm->tok_embd_row_bytes = loom_row_size(emb->type, lm->hp.d_model);
    }
    if (st) {
        lm->gguf = NULL; /* the caller still owns g on failure */
        loom_lm_close(lm);
        return st;
    }
    for (int64_t i = 0; i < loom_gguf_n_tensors(g); i++) lm->weight_bytes += loom_gguf_tensor_at(g, i)->nbytes;
    *out = lm;
    return LOOM_OK;
}

loom_status loom_lm_open(loom_lm **out, const char *path, const loom_lm_params *params, loom_err *err) {
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
    st = loom_lm_from_gguf(out, g, err);
    if (st) {
        loom_gguf_close(g);
        loom_err_prefix(err, "%s: ", path);
    }
    return st;
}

void loom_lm_close(loom_lm *lm) {
    if (!lm) return;
    loom_free(lm->layers);
    loom_free(lm->norm_copies);
    loom_free(lm->inv_freq);
    loom_gguf_close(lm->gguf);
    loom_free(lm);
}

const loom_lm_hparams *loom_lm_get_hparams(const loom_lm *lm) { return &lm->hp; }
const loom_gguf *loom_lm_get_gguf(const loom_lm *lm) { return lm->gguf; }
size_t loom_lm_weight_bytes(const loom_lm *lm) { return lm->weight_bytes; }

loom_status loom_lm_embed(const loom_lm *lm, float *x, const int32_t *ids, int64_t n, loom_err *err) {
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= lm->hp.n_vocab)
            return LOOM_FAIL(err, LOOM_ERR_INVALID, "token id %d at position %lld is outside the vocabulary [0, %d)",
                             ids[i], (long long)i, lm->hp.n_vocab);
        const unsigned char *row = (const unsigned char *)lm->tok_embd + (size_t)ids[i] * lm->tok_embd_row_bytes;
        loom_dequantize_row(lm->tok_embd_type, row, x + i * lm->hp.d_model, lm->hp.d_model);
    }
    return LOOM_OK;
}
