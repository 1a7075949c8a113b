/* fusion/lm.h — the Llama 4 mixture-of-experts backbone: load from GGUF, KV-cached forward.
 *
 * Part of fusion/'s public API (the session API in fusion/fusion.h builds on it). Everything the model needs
 * is read from the GGUF (LLAMA4.md §6.1 and §10):
 *
 *   loom_lm *lm;          loom_lm_open(&lm, "model.gguf", &params, &err);
 *   loom_lm_session *s;   loom_lm_session_new(&s, lm, n_ctx, n_threads, &err);
 *   float *x = ...;       loom_lm_embed(lm, x, ids, n);           // [n, d_model] token embeddings
 *   (overwrite rows of x with image embeddings at <|patch|> positions here)
 *   loom_lm_eval(s, x, n, logits, LOOM_LOGITS_LAST, &err);          // appends n positions to the cache
 *   loom_lm_session_free(s); loom_lm_close(lm);
 *
 * Layer schedule (0-based l): RoPE + chunked attention unless l % 4 == 3 (NoPE + full causal attention +
 * temperature tuning of q); MoE when the layer has `ffn_gate_inp`, dense SwiGLU otherwise.
 */
#ifndef LOOM_FUSION_LM_H
#define LOOM_FUSION_LM_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "core/gguf.h"

typedef struct loom_lm         loom_lm;
typedef struct loom_lm_session loom_lm_session;

typedef struct loom_lm_params {
    bool no_mmap; /* read weights into memory instead of mapping the file */
    bool mlock;
} loom_lm_params;

/* Hyper-parameters as loaded (read-only view for the CLI and tests). */
typedef struct loom_lm_hparams {
    int      n_vocab, d_model, n_layer, n_head, n_kv_head, d_head;
    int      n_expert, n_expert_used, d_expert, d_shexp, d_ff_dense;
    int      moe_step;          /* llama4.interleave_moe_layer_step */
    int      nope_interval;     /* 4 */
    int      chunk_size;        /* llama4.attention.chunk_size, default 8192 */
    int      temp_floor_scale;  /* llama4.attention.temperature_floor_scale, default 8192 */
    float    temp_attn_scale;   /* 0.1 */
    bool     use_qk_norm;
    float    rope_theta, norm_eps;
    int64_t  n_ctx_train;
    bool     has_rope_freqs;
} loom_lm_hparams;

typedef enum loom_logits_mode {
    LOOM_LOGITS_NONE = 0, /* only fill the cache */
    LOOM_LOGITS_LAST = 1, /* logits [n_vocab] of the last position */
    LOOM_LOGITS_ALL = 2,  /* logits [n, n_vocab] of every position */
} loom_logits_mode;

loom_status            loom_lm_open(loom_lm **out, const char *path, const loom_lm_params *params, loom_err *err);
/* Build on an already-open GGUF (ownership of g passes to the model on success). */
loom_status            loom_lm_from_gguf(loom_lm **out, loom_gguf *g, loom_err *err);
void                   loom_lm_close(loom_lm *lm);
const loom_lm_hparams *loom_lm_get_hparams(const loom_lm *lm);
const loom_gguf       *loom_lm_get_gguf(const loom_lm *lm); /* vocab and metadata, for the tokenizer */
size_t                 loom_lm_weight_bytes(const loom_lm *lm);

/* Token embeddings: x [n, d_model] f32. LOOM_ERR_INVALID for an id outside [0, n_vocab). */
loom_status loom_lm_embed(const loom_lm *lm, float *x, const int32_t *ids, int64_t n, loom_err *err);

/* n_ctx: positions the session can hold (prompt + generated). n_threads <= 0: all cores. */
loom_status loom_lm_session_new(loom_lm_session **out, const loom_lm *lm, int64_t n_ctx, int n_threads, loom_err *err);
void        loom_lm_session_free(loom_lm_session *s);
int64_t     loom_lm_session_pos(const loom_lm_session *s);  /* positions already in the cache */
int64_t     loom_lm_session_n_ctx(const loom_lm_session *s);
void        loom_lm_session_reset(loom_lm_session *s);       /* forget the cache */

/* Where the time of loom_lm_eval goes, summed since profiling was switched on: seconds on the calling thread
 * (each part ends when its pool dispatch returns, so a part's time includes waiting for the slowest thread)
 * and the bytes of weights each part read. Off by default; on, it costs two clock reads per part (~60 per
 * layer and token). */
typedef enum loom_lm_part {
    LOOM_LM_PART_GLUE,     /* norms, RoPE, KV store, routing, expert gather/scatter on the calling thread */
    LOOM_LM_PART_QKV,      /* q, k, v projections */
    LOOM_LM_PART_ATTN,     /* attention over the cache */
    LOOM_LM_PART_WO,       /* attention output projection */
    LOOM_LM_PART_SHARED,   /* router, the shared expert (or the dense FFN) */
    LOOM_LM_PART_ROUTED,   /* the routed experts */
    LOOM_LM_PART_HEAD,     /* output norm and head */
    LOOM_LM_PART_COUNT
} loom_lm_part;
typedef struct loom_lm_profile {
    double  seconds[LOOM_LM_PART_COUNT];
    double  weight_bytes[LOOM_LM_PART_COUNT];
    int64_t evals;
} loom_lm_profile;
void        loom_lm_session_set_profiling(loom_lm_session *s, bool on); /* also clears the sums */
void        loom_lm_session_get_profile(const loom_lm_session *s, loom_lm_profile *out);
const char *loom_lm_part_name(loom_lm_part part);

/* Run n input embeddings x [n, d_model] at positions pos .. pos+n-1 and append them to the cache.
 * logits: [n_vocab] (LAST) or [n, n_vocab] (ALL) or NULL (NONE). LOOM_ERR_LIMIT when the context is full. */
loom_status loom_lm_eval(loom_lm_session *s, const float *x, int64_t n, float *logits, loom_logits_mode mode,
                         loom_err *err);

#endif
