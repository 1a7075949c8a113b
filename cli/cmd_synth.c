/* cli/cmd_synth.c — `loom synth`: random-weight Llama 4-shaped GGUF files (text model and mmproj).
 *
 * For benchmarks and tests that need a model of a real shape without a download. Weights are random but valid:
 * a pool of rows is drawn from N(0, 0.02^2), quantized once with loom_quantize_row, and every row of every
 * tensor copies one pool row chosen by a hash of (tensor, row). Quantizing a small pool instead of 2.7 B
 * values keeps synthesis fast, while every row still lives at its own address, so memory traffic in the
 * benchmarks is the same as for a real model. Norms are 1, the router is a random f32 matrix.
 * The layout is llama.cpp's (LLAMA4.md §6), so llama.cpp can load the same file.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/commands.h"
#include "core/alloc.h"
#include "core/gguf.h"
#include "core/log.h"
#include "core/quant.h"

#define POOL_ROWS 256

typedef struct synth_opts {
    const char *out, *mmproj_out, *vocab_from;
    const char *type_name;
    int d_model, n_layer, n_head, n_kv_head, d_head, n_expert, n_expert_used, d_expert, d_shexp, moe_step, d_dense;
    int n_vocab, chunk_size;
    int vit_width, vit_layers, vit_heads, vit_ff, vit_out, vit_type_f16;
    uint64_t seed;
} synth_opts;

/* ==== random numbers (xorshift64*; Box–Muller) ==== */
static uint64_t rng_next(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}
static float rng_normal(uint64_t *s) {
    double u1 = ((rng_next(s) >> 11) + 1.0) / 9007199254740993.0, u2 = (rng_next(s) >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* ==== tensor store: everything stays allocated until the writer has written the file ==== */
typedef struct synth_store {
    void  **bufs;
    size_t  n, cap;
} synth_store;

static void *store_alloc(synth_store *st, size_t bytes) {
    if (st->n == st->cap) {
        size_t nc = st->cap ? st->cap * 2 : 64;
        void **nb = loom_realloc(st->bufs, nc * sizeof(void *));
        if (!nb) return NULL;
        st->bufs = nb;
        st->cap = nc;
    }
    void *p = loom_malloc(bytes ? bytes : 1);
    if (p) st->bufs[st->n++] = p;
    return p;
}

static void store_free(synth_store *st) {
    for (size_t i = 0; i < st->n; i++) loom_free(st->bufs[i]);
    loom_free(st->bufs);
}

typedef struct synth_ctx {
    loom_gguf_writer *w;
    synth_store       store;
    uint64_t          rng;
    int               tensor_no;
    loom_err         *err;
    size_t            total_bytes;
} synth_ctx;

/* A [n_in, n_out, n_mat] weight of type t from a pool of POOL_ROWS quantized random rows. */
static loom_status add_matrix(synth_ctx *c, const char *name, loom_dtype t, int64_t n_in, int64_t n_out, int64_t n_mat,
                              float stddev) {
    size_t row = loom_row_size(t, n_in), total;
    if (!row) return LOOM_FAIL(c->err, LOOM_ERR_INVALID, "%s: width %lld is not a multiple of the %s block size", name,
                                (long long)n_in, loom_type_name(t));
    int64_t rows = n_out * (n_mat ? n_mat : 1);
    if (!loom_size_mul(row, (size_t)rows, &total)) return LOOM_FAIL(c->err, LOOM_ERR_LIMIT, "%s is too large", name);
    unsigned char *pool = loom_malloc(row * POOL_ROWS);
    float *tmp = loom_malloc(sizeof(float) * (size_t)n_in);
    unsigned char *data = store_alloc(&c->store, total);
    if (!pool || !tmp || !data) {
        loom_free(pool);
        loom_free(tmp);
        return LOOM_FAIL(c->err, LOOM_ERR_NOMEM, "out of memory for %s (%zu bytes)", name, total);
    }
    for (int r = 0; r < POOL_ROWS; r++) {
        for (int64_t i = 0; i < n_in; i++) tmp[i] = stddev * rng_normal(&c->rng);
        if (loom_quantize_row(t, tmp, pool + (size_t)r * row, n_in) != 0) {
            loom_free(pool);
            loom_free(tmp);
            return LOOM_FAIL(c->err, LOOM_ERR_UNSUPPORTED, "cannot quantize to %s", loom_type_name(t));
        }
    }
    uint64_t salt = (uint64_t)(++c->tensor_no) * 0x9E3779B97F4A7C15ULL;
    for (int64_t r = 0; r < rows; r++) {
        uint64_t h = (salt ^ (uint64_t)r) * 0xD6E8FEB86659FD93ULL;
        memcpy(data + (size_t)r * row, pool + (size_t)((h >> 32) % POOL_ROWS) * row, row);
    }
    loom_free(pool);
    loom_free(tmp);
    int64_t ne[3] = {n_in, n_out, n_mat};
    c->total_bytes += total;
    return loom_gguf_writer_add_tensor(c->w, name, t, n_mat ? 3 : 2, ne, data, c->err);
}

static loom_status add_vector(synth_ctx *c, const char *name, int64_t n, float value, float noise) {
    float *v = store_alloc(&c->store, sizeof(float) * (size_t)n);
    if (!v) return LOOM_FAIL(c->err, LOOM_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++) v[i] = value + noise * rng_normal(&c->rng);
    int64_t ne[1] = {n};
    c->total_bytes += sizeof(float) * (size_t)n;
    return loom_gguf_writer_add_tensor(c->w, name, LOOM_F32, 1, ne, v, c->err);
}

/* ==== text model ==== */
static loom_status synth_text(const synth_opts *o, loom_err *err) {
    loom_dtype wt, out_t;
    bool k_m = !strcasecmp(o->type_name, "Q4_K_M");
    if (k_m) {
        wt = LOOM_Q4_K;
        out_t = LOOM_Q6_K;
    } else if (loom_type_from_name(o->type_name, &wt)) {
        out_t = wt;
    } else {
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "unknown weight type '%s' (try Q4_K_M, Q8_0, Q4_K, F16, F32)", o->type_name);
    }
    synth_ctx c = {.rng = o->seed * 0x9E3779B97F4A7C15ULL + 1, .err = err};
    loom_status st = loom_gguf_writer_new(&c.w, err);
    if (st) return st;
    int n_vocab = o->n_vocab;
    loom_gguf *vocab = NULL;
    if (o->vocab_from) {
        loom_gguf_params gp = {.metadata_only = true};
        if ((st = loom_gguf_open(&vocab, o->vocab_from, &gp, err))) goto done;
        int64_t k = loom_gguf_find_key(vocab, "tokenizer.ggml.tokens");
        if (k < 0) {
            st = LOOM_FAIL(err, LOOM_ERR_FORMAT, "%s has no tokenizer.ggml.tokens", o->vocab_from);
            goto done;
        }
        n_vocab = (int)loom_gguf_arr_len(vocab, k);
        if ((st = loom_gguf_writer_copy_kv(c.w, vocab, err))) goto done;
    }
    loom_gguf_writer_set_str(c.w, "general.architecture", "llama4");
    loom_gguf_writer_set_str(c.w, "general.name", "loom synth (random weights)");
    loom_gguf_writer_set_u32(c.w, "llama4.vocab_size", (uint32_t)n_vocab);
    loom_gguf_writer_set_u32(c.w, "llama4.context_length", 1048576);
    loom_gguf_writer_set_u32(c.w, "llama4.embedding_length", (uint32_t)o->d_model);
    loom_gguf_writer_set_u32(c.w, "llama4.block_count", (uint32_t)o->n_layer);
    loom_gguf_writer_set_u32(c.w, "llama4.feed_forward_length", (uint32_t)o->d_dense);
    loom_gguf_writer_set_u32(c.w, "llama4.expert_feed_forward_length", (uint32_t)o->d_expert);
    loom_gguf_writer_set_u32(c.w, "llama4.attention.head_count", (uint32_t)o->n_head);
    loom_gguf_writer_set_u32(c.w, "llama4.attention.head_count_kv", (uint32_t)o->n_kv_head);
    loom_gguf_writer_set_u32(c.w, "llama4.attention.key_length", (uint32_t)o->d_head);
    loom_gguf_writer_set_u32(c.w, "llama4.attention.value_length", (uint32_t)o->d_head);
    loom_gguf_writer_set_u32(c.w, "llama4.rope.dimension_count", (uint32_t)o->d_head);
    loom_gguf_writer_set_f32(c.w, "llama4.rope.freq_base", 500000.0f);
    loom_gguf_writer_set_f32(c.w, "llama4.attention.layer_norm_rms_epsilon", 1e-5f);
    loom_gguf_writer_set_u32(c.w, "llama4.expert_count", (uint32_t)o->n_expert);
    loom_gguf_writer_set_u32(c.w, "llama4.expert_used_count", (uint32_t)o->n_expert_used);
    loom_gguf_writer_set_u32(c.w, "llama4.interleave_moe_layer_step", (uint32_t)o->moe_step);
    if (o->chunk_size) loom_gguf_writer_set_u32(c.w, "llama4.attention.chunk_size", (uint32_t)o->chunk_size);
    /* without --vocab-from the file carries no tokenizer: `loom bench` feeds token ids directly */
    int d = o->d_model, qd = o->n_head * o->d_head, kvd = o->n_kv_head * o->d_head;
    char name[96];
    loom_progress prog;
    loom_progress_begin(&prog, "synth: text tensors", o->n_layer + 2);
    if ((st = add_matrix(&c, "token_embd.weight", wt, d, n_vocab, 0, 0.02f))) goto done;
    for (int l = 0; l < o->n_layer; l++) {
#define N(fmt) (snprintf(name, sizeof name, "blk.%d." fmt, l), name)
        if ((st = add_vector(&c, N("attn_norm.weight"), d, 1.0f, 0.0f))) goto done;
        if ((st = add_vector(&c, N("ffn_norm.weight"), d, 1.0f, 0.0f))) goto done;
        if ((st = add_matrix(&c, N("attn_q.weight"), wt, d, qd, 0, 0.02f))) goto done;
        if ((st = add_matrix(&c, N("attn_k.weight"), wt, d, kvd, 0, 0.02f))) goto done;
        if ((st = add_matrix(&c, N("attn_v.weight"), wt, d, kvd, 0, 0.02f))) goto done;
        if ((st = add_matrix(&c, N("attn_output.weight"), wt, qd, d, 0, 0.02f))) goto done;
        bool moe = o->n_expert > 0 && (l + 1) % o->moe_step == 0;
        if (moe) {
            if ((st = add_matrix(&c, N("ffn_gate_inp.weight"), LOOM_F32, d, o->n_expert, 0, 0.02f))) goto done;
            if ((st = add_matrix(&c, N("ffn_gate_exps.weight"), wt, d, o->d_expert, o->n_expert, 0.02f))) goto done;
            if ((st = add_matrix(&c, N("ffn_up_exps.weight"), wt, d, o->d_expert, o->n_expert, 0.02f))) goto done;
            if ((st = add_matrix(&c, N("ffn_down_exps.weight"), wt, o->d_expert, d, o->n_expert, 0.02f))) goto done;
            if ((st = add_matrix(&c, N("ffn_gate_shexp.weight"), wt, d, o->d_shexp, 0, 0.02f))) goto done;
            if ((st = add_matrix(&c, N("ffn_up_shexp.weight"), wt, d, o->d_shexp, 0, 0.02f))) goto done;
            if ((st = add_matrix(&c, N("ffn_down_shexp.weight"), wt, o->d_shexp, d, 0, 0.02f))) goto done;
        } else {
            if ((st = add_matrix(&c, N("ffn_gate.weight"), wt, d, o->d_dense, 0, 0.02f))) goto done;
            if ((st = add_matrix(&c, N("ffn_up.weight"), wt, d, o->d_dense, 0, 0.02f))) goto done;
            if ((st = add_matrix(&c, N("ffn_down.weight"), wt, o->d_dense, d, 0, 0.02f))) goto done;
        }
#undef N
        loom_progress_update(&prog, l + 1);
    }
    if ((st = add_vector(&c, "output_norm.weight", d, 1.0f, 0.0f))) goto done;
    if ((st = add_matrix(&c, "output.weight", out_t, d, n_vocab, 0, 0.02f))) goto done;
    loom_progress_update(&prog, o->n_layer + 1);
    if ((st = loom_gguf_writer_write(c.w, o->out, err))) goto done;
    loom_progress_update(&prog, o->n_layer + 2);
    loom_progress_end(&prog);
    fprintf(stderr, "synth: wrote %s (%s, %.2f GB of tensors)\n", o->out, o->type_name, c.total_bytes / 1e9);
done:
    loom_gguf_writer_free(c.w);
    store_free(&c.store);
    loom_gguf_close(vocab);
    return st;
}

/* ==== mmproj (clip, projector llama4) ==== */
static loom_status synth_mmproj(const synth_opts *o, loom_err *err) {
    synth_ctx c = {.rng = o->seed * 0x9E3779B97F4A7C15ULL + 7, .err = err};
    loom_status st = loom_gguf_writer_new(&c.w, err);
    if (st) return st;
    loom_dtype wt = o->vit_type_f16 ? LOOM_F16 : LOOM_F32;
    int D = o->vit_width, F = o->vit_ff, P = 14, S = 336, np = (S / P) * (S / P);
    int shuffled = D * 4, ad = o->vit_out;
    loom_gguf_writer_set_str(c.w, "general.architecture", "clip");
    loom_gguf_writer_set_str(c.w, "general.type", "mmproj");
    loom_gguf_writer_set_str(c.w, "general.name", "loom synth mmproj (random weights)");
    loom_gguf_writer_set_bool(c.w, "clip.has_vision_encoder", true);
    loom_gguf_writer_set_str(c.w, "clip.projector_type", "llama4");
    loom_gguf_writer_set_u32(c.w, "clip.vision.image_size", (uint32_t)S);
    loom_gguf_writer_set_u32(c.w, "clip.vision.patch_size", (uint32_t)P);
    loom_gguf_writer_set_u32(c.w, "clip.vision.embedding_length", (uint32_t)D);
    loom_gguf_writer_set_u32(c.w, "clip.vision.feed_forward_length", (uint32_t)F);
    loom_gguf_writer_set_u32(c.w, "clip.vision.block_count", (uint32_t)o->vit_layers);
    loom_gguf_writer_set_u32(c.w, "clip.vision.attention.head_count", (uint32_t)o->vit_heads);
    loom_gguf_writer_set_f32(c.w, "clip.vision.attention.layer_norm_epsilon", 1e-5f);
    loom_gguf_writer_set_u32(c.w, "clip.vision.projection_dim", (uint32_t)o->d_model);
    loom_gguf_writer_set_u32(c.w, "clip.vision.projector.scale_factor", 2);
    loom_gguf_writer_set_bool(c.w, "clip.use_gelu", true);
    float half[3] = {0.5f, 0.5f, 0.5f};
    loom_gguf_writer_set_arr(c.w, "clip.vision.image_mean", LOOM_GGUF_F32, half, 3);
    loom_gguf_writer_set_arr(c.w, "clip.vision.image_std", LOOM_GGUF_F32, half, 3);
    char name[96];
    if ((st = add_matrix(&c, "v.patch_embd.weight", wt, 3 * P * P, D, 0, 0.02f))) goto done;
    if ((st = add_vector(&c, "v.class_embd", D, 0.0f, 0.02f))) goto done;
    if ((st = add_matrix(&c, "v.position_embd.weight", LOOM_F32, D, np + 1, 0, 0.02f))) goto done;
    if ((st = add_vector(&c, "v.pre_ln.weight", D, 1.0f, 0.0f))) goto done;
    if ((st = add_vector(&c, "v.pre_ln.bias", D, 0.0f, 0.0f))) goto done;
    if ((st = add_vector(&c, "v.post_ln.weight", D, 1.0f, 0.0f))) goto done;
    if ((st = add_vector(&c, "v.post_ln.bias", D, 0.0f, 0.0f))) goto done;
    for (int l = 0; l < o->vit_layers; l++) {
        static const char *proj[] = {"attn_q", "attn_k", "attn_v", "attn_out"};
        for (int k = 0; k < 4; k++) {
            snprintf(name, sizeof name, "v.blk.%d.%s.weight", l, proj[k]);
            if ((st = add_matrix(&c, name, wt, D, D, 0, 0.02f))) goto done;
            snprintf(name, sizeof name, "v.blk.%d.%s.bias", l, proj[k]);
            if ((st = add_vector(&c, name, D, 0.0f, 0.01f))) goto done;
        }
        static const char *lns[] = {"ln1", "ln2"};
        for (int k = 0; k < 2; k++) {
            snprintf(name, sizeof name, "v.blk.%d.%s.weight", l, lns[k]);
            if ((st = add_vector(&c, name, D, 1.0f, 0.0f))) goto done;
            snprintf(name, sizeof name, "v.blk.%d.%s.bias", l, lns[k]);
            if ((st = add_vector(&c, name, D, 0.0f, 0.0f))) goto done;
        }
        snprintf(name, sizeof name, "v.blk.%d.ffn_up.weight", l);
        if ((st = add_matrix(&c, name, wt, D, F, 0, 0.02f))) goto done;
        snprintf(name, sizeof name, "v.blk.%d.ffn_up.bias", l);
        if ((st = add_vector(&c, name, F, 0.0f, 0.01f))) goto done;
        snprintf(name, sizeof name, "v.blk.%d.ffn_down.weight", l);
        if ((st = add_matrix(&c, name, wt, F, D, 0, 0.02f))) goto done;
        snprintf(name, sizeof name, "v.blk.%d.ffn_down.bias", l);
        if ((st = add_vector(&c, name, D, 0.0f, 0.01f))) goto done;
    }
    if ((st = add_matrix(&c, "mm.model.mlp.1.weight", wt, shuffled, ad, 0, 0.02f))) goto done;
    if ((st = add_matrix(&c, "mm.model.mlp.2.weight", wt, ad, ad, 0, 0.02f))) goto done;
    if ((st = add_matrix(&c, "mm.model.fc.weight", wt, ad, o->d_model, 0, 0.02f))) goto done;
    if ((st = loom_gguf_writer_write(c.w, o->mmproj_out, err))) goto done;
    fprintf(stderr, "synth: wrote %s (ViT %d wide, %d layers, %.2f GB)\n", o->mmproj_out, D, o->vit_layers,
            c.total_bytes / 1e9);
done:
    loom_gguf_writer_free(c.w);
    store_free(&c.store);
    return st;
}

static void synth_usage(FILE *f) {
    fprintf(f,
            "usage: loom synth -o OUT.gguf [options]      random-weight Llama 4-shaped GGUF files\n"
            "  --type T            Q4_K_M (Q4_K, Q6_K output), Q8_0, Q4_K, Q6_K, F16, F32 ... (default Q4_K_M)\n"
            "  --vocab-from FILE   copy the tokenizer (and its size) from a GGUF, e.g. llama4-vocab.gguf\n"
            "  --vocab N           vocabulary size without a tokenizer (default 202048)\n"
            "  --d-model N (2048)  --layers N (16)  --heads N (16)  --kv-heads N (4)  --head-dim N (128)\n"
            "  --experts N (16)    --experts-used N (1)  --expert-ff N (1024)  --shared-ff N (1024)\n"
            "  --moe-step N (1)    --dense-ff N (4096)   --chunk-size N (absent: 8192)\n"
            "  --mmproj OUT.gguf   also write a vision projector: --vit-width N (1408) --vit-layers N (34)\n"
            "                      --vit-heads N (16) --vit-ff N (5632) --vit-out N (4096) --vit-f32\n"
            "  --seed S            random seed (default 1)\n"
            "Defaults give the performance reference shape (about 2.7 B parameters).\n");
}

int cmd_synth(int argc, char **argv) {
    synth_opts o = {.type_name = "Q4_K_M", .d_model = 2048, .n_layer = 16, .n_head = 16, .n_kv_head = 4,
                    .d_head = 128, .n_expert = 16, .n_expert_used = 1, .d_expert = 1024, .d_shexp = 1024,
                    .moe_step = 1, .d_dense = 4096, .n_vocab = 202048, .vit_width = 1408, .vit_layers = 34,
                    .vit_heads = 16, .vit_ff = 5632, .vit_out = 4096, .vit_type_f16 = 1, .seed = 1};
    struct { const char *flag; int *dst; } ints[] = {
        {"--d-model", &o.d_model}, {"--layers", &o.n_layer}, {"--heads", &o.n_head}, {"--kv-heads", &o.n_kv_head},
        {"--head-dim", &o.d_head}, {"--experts", &o.n_expert}, {"--experts-used", &o.n_expert_used},
        {"--expert-ff", &o.d_expert}, {"--shared-ff", &o.d_shexp}, {"--moe-step", &o.moe_step},
        {"--dense-ff", &o.d_dense}, {"--vocab", &o.n_vocab}, {"--chunk-size", &o.chunk_size},
        {"--vit-width", &o.vit_width}, {"--vit-layers", &o.vit_layers}, {"--vit-heads", &o.vit_heads},
        {"--vit-ff", &o.vit_ff}, {"--vit-out", &o.vit_out},
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            synth_usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--vit-f32")) {
            o.vit_type_f16 = 0;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "loom synth: option %s needs a value\n", a);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "-o")) o.out = v;
        else if (!strcmp(a, "--mmproj")) o.mmproj_out = v;
        else if (!strcmp(a, "--type")) o.type_name = v;
        else if (!strcmp(a, "--vocab-from")) o.vocab_from = v;
        else if (!strcmp(a, "--seed")) o.seed = strtoull(v, NULL, 10);
        else {
            size_t k = 0;
            for (; k < sizeof ints / sizeof ints[0]; k++)
                if (!strcmp(a, ints[k].flag)) break;
            char *end;
            long n = strtol(v, &end, 10);
            if (k == sizeof ints / sizeof ints[0]) {
                fprintf(stderr, "loom synth: unknown option %s (see --help)\n", a);
                return 2;
            }
            if (*end || n < 0 || n > (1 << 24)) {
                fprintf(stderr, "loom synth: %s expects a non-negative integer, got '%s'\n", a, v);
                return 2;
            }
            *ints[k].dst = (int)n;
        }
    }
    if (!o.out && !o.mmproj_out) {
        synth_usage(stderr);
        return 2;
    }
    if (o.d_model < 1 || o.n_layer < 1 || o.n_head < 1 || o.n_kv_head < 1 || o.n_head % o.n_kv_head || o.d_head < 2 ||
        o.moe_step < 1 || o.n_vocab < 1 || (o.n_expert && (o.n_expert_used < 1 || o.n_expert_used > o.n_expert))) {
        fprintf(stderr, "loom synth: inconsistent shape (heads must divide by kv-heads, experts-used <= experts, ...)\n");
        return 2;
    }
    loom_err err = {0};
    if (o.out && synth_text(&o, &err)) {
        fprintf(stderr, "loom synth: %s\n", err.msg);
        return 1;
    }
    if (o.mmproj_out && synth_mmproj(&o, &err)) {
        fprintf(stderr, "loom synth: %s\n", err.msg);
        return 1;
    }
    return 0;
}
