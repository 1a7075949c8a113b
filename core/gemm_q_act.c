/* core/gemm_q_act.c — token-major packing of quantized activations, shared by the AVX-512 VNNI and the AVX2
 * int8 engines (plain C: it runs once per token and product, beside kernels that run once per weight row).
 *
 * Per block of 16 tokens: tiles = int8 [16 tokens][n_in], the quantized values as they are; meta:
 *   K-quants:  dx f32 [ng][16], b32 i32 [ng][4][16] (pairs of 32-input sums as int16), b16 i32 [ng][8][16]
 *              (pairs of 16-input sums), so Q4_K/Q5_K and Q6_K share one layout (and one grouped pass)
 *   32-blocks: dx f32 [ng][16], start i32 [ng][16] = -128 * sum of the block's activations (the VNNI engine's
 *              accumulator start for its w + 128 weights; the AVX2 engine does not read it)
 * The metadata of padding tokens (t >= nv) is zero; no kernel reads their rows. */
#include <string.h>

#include "core/gemm_int.h"
#include "core/matmul_int.h"

/* The activation layout both token-major engines use: one group per activation block (G = kc), one byte plane;
 * every K-quant keeps a min term (Q6_K's -32 offset is one), sub = inputs per weight sub-block scale. */
int gemm_q_tok_layout_for(loom_dtype wt, gemm_q_layout *L) {
    L->wt = wt;
    L->planes = 1;
    switch (wt) {
    case LOOM_Q8_0:
    case LOOM_Q4_0:
    case LOOM_Q5_0: L->group = 32, L->kc = 32, L->has_min = 0, L->sub = 0; return 0;
    case LOOM_Q4_K:
    case LOOM_Q5_K: L->group = 256, L->kc = 256, L->has_min = 1, L->sub = 32; return 0;
    case LOOM_Q6_K: L->group = 256, L->kc = 256, L->has_min = 1, L->sub = 16; return 0;
    default: return -1;
    }
}

size_t gemm_q_tok_meta_bytes(const gemm_q_layout *L, int64_t n_in) {
    const size_t ng = (size_t)(n_in / L->group);
    return L->group == QK_K ? ng * 16 * 4 * (1 + 4 + 8) : ng * 16 * 4 * 2;
}

void gemm_q_tok_pack_act(const gemm_q_layout *L, const uint8_t *xq, size_t act_bytes, int64_t n_in, int nv,
                         const gemm_q_act *A, int64_t tb) {
    const int64_t ng = n_in / L->group;
    uint8_t *meta = A->meta + (size_t)tb * A->meta_bytes;
    memset(meta, 0, gemm_q_tok_meta_bytes(L, n_in));
    float *dx = (float *)meta;
    int32_t *i32 = (int32_t *)(meta + (size_t)ng * 16 * sizeof(float));
    for (int t = 0; t < nv; t++) {
        int8_t *row = (int8_t *)A->tiles + ((size_t)tb * GEMM_TB + (size_t)t) * (size_t)n_in;
        const uint8_t *x = xq + (size_t)t * act_bytes;
        for (int64_t g = 0; g < ng; g++) {
            if (L->group == QK_K) {
                const block_q8_k *y = (const block_q8_k *)x + g;
                memcpy(row + g * QK_K, y->qs, QK_K);
                dx[g * 16 + t] = y->d;
                for (int p = 0; p < 4; p++)
                    i32[(g * 4 + p) * 16 + t] = gemm_pair16(y->bsums[4 * p] + y->bsums[4 * p + 1],
                                                            y->bsums[4 * p + 2] + y->bsums[4 * p + 3]);
                int32_t *b16 = i32 + (size_t)ng * 4 * 16;
                for (int p = 0; p < 8; p++) b16[(g * 8 + p) * 16 + t] = gemm_pair16(y->bsums[2 * p], y->bsums[2 * p + 1]);
            } else {
                const block_q8_0 *y = (const block_q8_0 *)x + g;
                memcpy(row + g * QK8_0, y->qs, QK8_0);
                dx[g * 16 + t] = mm_f16_to_f32(y->d);
                int s = 0;
                for (int k = 0; k < QK8_0; k++) s += y->qs[k];
                i32[g * 16 + t] = -128 * s;
            }
        }
    }
}
