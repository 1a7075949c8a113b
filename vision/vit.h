/* vision/vit.h — the Llama 4 vision encoder: ViT, pixel shuffle, adapter MLP and projector (prefix loom_vit_).
 *
 * Part of vision/'s public API (vision/vision.h holds decoding and tiling, prefix loom_img_). Weights come from
 * the mmproj GGUF as llama.cpp writes it (`clip.projector_type = "llama4"`, LLAMA4.md §6.2). Input is tiles that
 * are already preprocessed (LLAMA4.md §3); output is one embedding in the backbone's width per <|patch|> token.
 *
 *   loom_vit *vit;
 *   if (loom_vit_open(&vit, "mmproj.gguf", NULL, &err)) ...;
 *   const loom_vit_hparams *hp = loom_vit_get_hparams(vit);
 *   float *embd = malloc(n_tiles * hp->n_tok_out * hp->d_proj * sizeof(float));
 *   loom_vit_encode(vit, pool, embd, tiles, n_tiles, &err);   // pool may be NULL (one thread)
 *   loom_vit_close(vit);
 *
 * Per tile (LLAMA4.md §2.2): unfold 14x14 patches -> patch matmul -> [576 patches, CLS] (CLS LAST) + positions
 * -> LN_pre -> n_layer pre-LN blocks (2-D RoPE on q/k, bidirectional attention, erf-GELU MLP) -> LN_post ->
 * drop CLS -> pixel shuffle (2x2 -> one token, row-major over the 12x12 grid) -> GELU(fc2(GELU(fc1 .)))
 * -> projector. Every linear layer goes through loom_matmul, so weights may be F32/F16/BF16 or quantized;
 * activations and accumulation are f32.
 */
#ifndef LOOM_VISION_VIT_H
#define LOOM_VISION_VIT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "core/gguf.h"
#include "core/threadpool.h"

typedef struct loom_vit loom_vit;

typedef struct loom_vit_params {
    bool no_mmap;         /* read weights into memory instead of mapping the file */
    bool mlock;
    int  max_batch_tiles; /* tiles run through the layers together; <= 0: all tiles of a call at once.
                           * Scratch is ~4 * n_tok * (3 d_vis + max(3 d_vis, d_ff)) bytes per tile of the batch:
                           * about 23 MiB at Llama 4's size (17 tiles: ~390 MiB), 1 MiB for the tiny test model. */
} loom_vit_params;

/* Hyper-parameters as loaded (Llama 4 real values in brackets). */
typedef struct loom_vit_hparams {
    int   image_size;   /* tile side in pixels [336] */
    int   patch_size;   /* [14] */
    int   n_side;       /* patches per tile side [24] */
    int   n_patch;      /* n_side^2 [576] */
    int   n_tok;        /* n_patch + 1 (CLS) [577] */
    int   d_vis;        /* ViT width [1408] */
    int   d_ff;         /* ViT MLP width [5632] */
    int   n_layer;      /* [34] */
    int   n_head;       /* [16] */
    int   d_head;       /* [88] */
    int   scale_factor; /* pixel shuffle: scale_factor^2 patches -> one token [2] */
    int   n_tok_out;    /* output tokens per tile (<|patch|> rows) [144] */
    int   d_shuffle;    /* d_vis * scale_factor^2 [5632] */
    int   d_adapter;    /* adapter MLP width [4096] */
    int   d_proj;       /* output width = the backbone's d_model [5120] */
    float eps;          /* LayerNorm eps [1e-5] */
    float rope_theta;   /* [10000] (hard-coded, as in clip.cpp) */
} loom_vit_hparams;

/* Optional intermediate outputs (tests, debugging). Each non-NULL pointer receives that stage for every tile:
 *   vit_out  [n_tiles * n_patch, d_vis]        after LN_post, CLS dropped, patches row-major
 *   shuffle  [n_tiles * n_tok_out, d_shuffle]  after pixel shuffle
 *   adapter  [n_tiles * n_tok_out, d_adapter]  after the adapter MLP (before the projector) */
typedef struct loom_vit_taps {
    float *vit_out;
    float *shuffle;
    float *adapter;
} loom_vit_taps;

/* Opens and validates the mmproj file: every clip.* key and tensor shape is checked (errors name the key or
 * tensor); LOOM_ERR_UNSUPPORTED when clip.projector_type is not "llama4". params may be NULL. */
loom_status loom_vit_open(loom_vit **out, const char *path, const loom_vit_params *params, loom_err *err);
/* Same on an already-open GGUF; ownership of g passes to the encoder on success only. */
loom_status loom_vit_from_gguf(loom_vit **out, loom_gguf *g, const loom_vit_params *params, loom_err *err);
void        loom_vit_close(loom_vit *vit); /* NULL is a no-op */

const loom_vit_hparams *loom_vit_get_hparams(const loom_vit *vit);

/* Encodes n_tiles tiles (one image: its grid tiles then its thumbnail; tiles never attend to each other).
 *   tiles [n_tiles, 3, image_size, image_size] f32, CHW RGB, normalized as in LLAMA4.md §3 (values in [-1, 1])
 *   out   [n_tiles * n_tok_out, d_proj] f32, tile-major, then row-major over the n_side/scale_factor grid:
 *         exactly the rows for the image's <|patch|> tokens in prompt order. Caller-owned.
 * pool may be NULL (single thread). Scratch is allocated per call (LOOM_ERR_NOMEM when that fails);
 * LOOM_ERR_INVALID for n_tiles < 1 or NULL buffers. */
loom_status loom_vit_encode(const loom_vit *vit, loom_pool *pool, float *out, const float *tiles, int64_t n_tiles,
                            loom_err *err);
/* loom_vit_encode plus intermediate outputs (taps may be NULL; out may be NULL when only taps are wanted). */
loom_status loom_vit_encode_ex(const loom_vit *vit, loom_pool *pool, float *out, const float *tiles, int64_t n_tiles,
                               const loom_vit_taps *taps, loom_err *err);

#endif
