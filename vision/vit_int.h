/* vision/vit_int.h — private layout of the vision encoder (weights bound to mmproj tensors). */
#ifndef LOOM_VISION_VIT_INT_H
#define LOOM_VISION_VIT_INT_H

#include <stddef.h>

#include "core/gguf.h"
#include "vision/vit.h"

/* A linear layer's weight: a view into the GGUF mapping, ne = [n_in, n_out], any type loom_matmul takes. */
typedef struct vit_weight {
    const void *data;
    loom_dtype  type;
    int64_t     n_in, n_out;
} vit_weight;

typedef struct vit_layer {
    const float *ln1_w, *ln1_b;  /* [d_vis] */
    vit_weight   wq, wk, wv, wo; /* [d_vis -> d_vis] */
    const float *bq, *bk, *bv, *bo;
    const float *ln2_w, *ln2_b;  /* [d_vis] */
    vit_weight   ffn_up;         /* [d_vis -> d_ff] */
    const float *ffn_up_b;       /* [d_ff] */
    vit_weight   ffn_down;       /* [d_ff -> d_vis] */
    const float *ffn_down_b;     /* [d_vis] */
} vit_layer;

struct loom_vit {
    loom_gguf       *gguf;
    loom_vit_hparams hp;
    int              max_batch_tiles;
    vit_weight       patch;      /* [3 * patch^2 -> d_vis], input order (c, ky, kx); no bias */
    const float     *class_embd; /* [d_vis] */
    const float     *pos_embd;   /* [n_tok, d_vis], row n_patch is CLS */
    const float     *pre_ln_w, *pre_ln_b, *post_ln_w, *post_ln_b; /* [d_vis] */
    vit_layer       *layers;     /* [n_layer] */
    vit_weight       adapter1;   /* [d_shuffle -> d_adapter], no bias */
    vit_weight       adapter2;   /* [d_adapter -> d_adapter], no bias */
    vit_weight       proj;       /* [d_adapter -> d_proj], no bias */
    float           *rope_cs;    /* [n_tok, d_head/2, 2] cos/sin per token and pair; CLS row is (1, 0) */
    float           *f32_copies; /* f32 copies of vectors stored as F16/BF16 */
};

/* ==== kernels (vit_simd.c, AVX2 build in vit_simd_avx2.c; attention is core/attn) ==== */

/* x[i] = GELU(x[i] + bias[i]) (bias may be NULL), erf form to ~2e-7 absolute on erf (see vit_simd.c). */
void vit_gelu_row(float *x, const float *bias, int64_t n);
void vit_gelu_row_ref(float *x, const float *bias, int64_t n);
void vit_gelu_row_avx2(float *x, const float *bias, int64_t n);

#endif
