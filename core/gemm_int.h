/* core/gemm_int.h — private to core/: the tiled matrix-matrix products behind loom_matmul (prefill, ViT).
 *
 * loom_matmul hands a product to loom_gemm when it has enough tokens to pay for packing; loom_gemm returns 1
 * ("not mine") for shapes, types or ISAs it does not accelerate and the caller uses the dot4 path.
 *
 * Two engines, both: activations packed once per call (shared by all threads), weights unpacked one panel
 * at a time per thread and reused across every token, threads splitting output panels (or token blocks when
 * there are fewer panels than threads). Each output element is computed by one thread with the same
 * operations whatever the thread count, so threaded results equal single-threaded ones bit for bit.
 *
 * f32 engine (F32/F16/BF16 weights, f32 activations): BLIS-style. A weight panel of NR outputs x KC inputs is
 * converted to f32 and transposed into bp[k][NR]; activations are packed as ap[token block][k][MR]; the
 * micro-kernel keeps an MR x NR block of Y in registers (broadcast one activation, FMA against NR/16 weight
 * vectors). Y is accumulated per KC block (the block starts from zero and is added to Y), which also bounds the
 * length of each f32 summation chain to KC.
 *
 * int8 engine (Q8_0/Q4_0/Q5_0 and Q4_K/Q5_K/Q6_K weights, quantized activations): AMX where the CPU and OS
 * allow it, else AVX-512 VNNI, else AVX2 (each with its own panel layout, below). The scalar reference (dot_ref.c) defines the result per scale group G (G = 32 for Q8_0
 * activations, 256 for Q8_K):  y += (dw*dx) * sum_k w'_k a_k  [- (dmw*dx) * sum_j mn_j bs_j],  where w' is the
 * integer weight with its sub-block scale folded in (Q4_K/Q5_K: q*sc in [0, 1953]; Q6_K: sc*(q-32) in
 * [-4096, 4064]; Q8_0-like: q in [-128, 127]). A w' that does not fit int8 is split into a low byte (u8) and a
 * high byte (s8): sum w'a = sum lo*a + 256 * sum hi*a, both exact in int32. Per group the int32 tile is read
 * out once, converted, and scaled into f32 accumulators. The result equals the reference up to f32 rounding
 * of the scale products and summation order.
 */
#ifndef LOOM_CORE_GEMM_INT_H
#define LOOM_CORE_GEMM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/matmul.h"
#include "core/threadpool.h"

/* 1: not handled (caller falls back), 0: done, -1: allocation failure. */
int loom_gemm(loom_pool *pool, float *Y, const void *W, loom_dtype wt, int64_t n_in, int64_t n_out, const float *X,
              int64_t n_tok);

/* Products with inputs of their own, in two pool passes for all of them (see gemm.c). Takes the jobs the int8
 * engine handles (enough tokens, an int8 layout whose activation format equals the first taken job's) and sets
 * done[i] for those; the caller computes the others. 0: done (possibly none taken), -1: allocation failure
 * (then no done[i] is set and no Y was written). At most GEMM_GROUP_MAX jobs per call. */
#define GEMM_GROUP_MAX 64
int loom_gemm_grouped(loom_pool *pool, const loom_matmul_group_job *jobs, int n_jobs, int64_t n_in, bool *done);
/* Tests/bench: 0 disables the AMX int8 engine (the VNNI engine, or the caller's fallback, runs instead), 1
 * re-enables it where available. Returns whether AMX is usable now. */
int loom_gemm_amx_enable(int on);
/* Tests/bench: the same switch for the AVX-512 VNNI int8 engine (used where AMX is absent or off). Returns
 * whether VNNI is usable now. */
int loom_gemm_vnni_enable(int on);
/* Tests/bench: the same switch for the AVX2 int8 engine (used where the AVX-512 ones are absent or off).
 * Returns whether AVX2 is usable now. */
int loom_gemm_avx2_enable(int on);
/* Tests: engage the engines from n_tok >= n instead of the measured thresholds (n <= 0: restore). */
void loom_gemm_set_min_tokens(int n);
/* Tests: frees the calling thread's gemm scratch (as loom_matmul_scratch_release does for matmul's). */
void loom_gemm_scratch_release(void);

/* ==== f32 engine kernels (one table per ISA) ==== */

typedef struct loom_gemm_f32_kernels {
    int mr, nr; /* micro-tile: mr tokens x nr outputs (nr a multiple of the vector width) */
    int kc;     /* inputs per weight panel block: the product makes one pass over Y per block */
    /* bp[k][nr] (k < kc) = W[o0 + j][k0 + k] as f32 for j < nv, 0 for nv <= j < nr. */
    void (*pack_w)(loom_dtype wt, const void *W, size_t row_bytes, int64_t o0, int nv, int64_t k0, int kc,
                   float *bp);
    /* ap[k][mr] = X[t0 + i][k] for i < nv, 0 for nv <= i < mr; k < kc, X rows ldx floats apart. */
    void (*pack_x)(const float *X, int64_t ldx, int kc, int64_t t0, int nv, float *ap);
    /* Y[i][j] (+)= sum_k ap[k][i] * bp[k][j] for i < mv, j < nv; Y row stride ldy. acc: add to Y. */
    void (*kernel)(int kc, const float *ap, const float *bp, float *Y, size_t ldy, int mv, int nv, int acc);
} loom_gemm_f32_kernels;

void loom_gemm_f32_fill_avx2(loom_gemm_f32_kernels *k);   /* avx2 + fma + f16c */
void loom_gemm_f32_fill_avx512(loom_gemm_f32_kernels *k); /* avx512 f/bw/vl/dq */

/* ==== int8 engine (AMX) ==== */

#define GEMM_TB 16 /* tokens per activation block (AMX tile rows) */
#define GEMM_RB 16 /* weight rows per panel (AMX tile rows) */

typedef struct gemm_q_layout {
    loom_dtype wt;
    int        group;    /* G: 32 (Q8_0 activations) or 256 (Q8_K) */
    int        kc;       /* inputs per tile product: min(G, 64) (VNNI, AVX2: G) */
    int        planes;   /* 1: w' fits s8; 2: low u8 + high s8 (VNNI, AVX2: 1) */
    int        has_min;  /* Q4_K/Q5_K: the dmin * sum mn*bsums term (VNNI, AVX2: every K-quant) */
    int        sub;      /* VNNI and AVX2: inputs per sub-block scale (32: Q4_K/Q5_K, 16: Q6_K, 0: 32-blocks) */
} gemm_q_layout;

/* Packed activations, n_tb blocks of GEMM_TB tokens (zero-padded):
 *   tiles   int8 [n_groups][n_tb][G / kc][kc / 4][GEMM_TB * 4]   AMX B layout: row q = inputs 4q..4q+3 of
 *                                               every token; the blocks of one group are adjacent, so the
 *                                               kernel streams them sequentially
 *   meta    [n_tb] x meta_bytes:  dx  f32 [n_groups][GEMM_TB]      activation scale per group
 *                                 bsp i32 [n_groups][4][GEMM_TB]   has_min: pairs (bs_2p, bs_2p+1) as int16,
 *                                                                  bs_j = bsums of sub-block j (32 inputs)
 * Weight panel of GEMM_RB rows (zero-padded), all inputs:
 *   plane   int8 [planes][GEMM_RB][n_in]            plane 0: low bytes (u8) or the whole s8 w'; plane 1: high
 *   dw, dmw f32  [n_groups][GEMM_RB]
 *   mnp     i32  [n_groups][4][GEMM_RB]             has_min: pairs (mn_2p, mn_2p+1) as int16 */
typedef struct gemm_q_act {
    uint8_t *tiles;
    uint8_t *meta;
    int64_t  n_tb;
    size_t   meta_bytes;
} gemm_q_act;
size_t gemm_q_meta_bytes(const gemm_q_layout *L, int64_t n_in);
size_t gemm_q_panel_bytes(const gemm_q_layout *L, int64_t n_in);

int  loom_gemm_amx_init(void); /* 1 if AMX tiles are usable in this process (requests the OS permission) */
/* 1 when loom_gemm would use AMX now (CPU + OS support, not switched off, ISA not capped below AVX-512). */
int  loom_gemm_amx_active(void);
/* Register-only AMX loop for the roofline probe; returns operations done. Call only when amx_active. */
double loom_gemm_amx_peak_loop(long iters);
int  gemm_q_layout_for(loom_dtype wt, gemm_q_layout *L); /* 0 if wt has an int8 engine layout */
/* xq: nv (<= GEMM_TB) activation rows (stride act_bytes) in the vec_dot format -> token block tb of A. */
void gemm_q_pack_act(const gemm_q_layout *L, const uint8_t *xq, size_t act_bytes, int64_t n_in, int nv,
                     const gemm_q_act *A, int64_t tb);
void gemm_q_pack_panel(const gemm_q_layout *L, const uint8_t *W, size_t row_bytes, int64_t n_in, int nv,
                       uint8_t *dst);
/* Per thread around the kernel calls: loads / releases the tile configuration for layout L. */
void gemm_q_amx_begin(const gemm_q_layout *L);
void gemm_q_amx_end(void);
/* One weight panel against token blocks [tb0, tb0 + n_tb) of A (n_tokv valid tokens from block tb0):
 * Y[t][o] for t < n_tokv, o < ov; Y row stride ldy. F: scratch of n_tb * 1 KiB, 64-byte aligned. */
void gemm_q_amx_panel(const gemm_q_layout *L, int64_t n_in, const uint8_t *panel, const gemm_q_act *A, int64_t tb0,
                      int64_t n_tb, int64_t n_tokv, float *Y, size_t ldy, int ov, float *F);

/* ==== int8 engine (AVX-512 VNNI, where AMX is absent): core/gemm_vnni_avx512.c ====
 *
 * The same two passes, buffers and threading as AMX (gemm.c does not know which engine runs), other layouts:
 * the weights stay in registers (one zmm = 4 consecutive inputs of 16 weight rows, as u8) and each token's 4
 * activation bytes are broadcast (vpdpbusd u8 x s8), so an accumulator holds 16 output rows of one token and Y
 * is stored without a transpose. Integer weights keep their own range and the sub-block scales are applied in
 * f32 once per sub-block: K-quants store q (Q4_K/Q5_K: 0..31) or q (Q6_K: 0..63, the -32 becomes 32 * d *
 * sum_j sc_j bs_j, computed like Q4_K's min term); 32-blocks store w + 128 and the accumulator starts at
 * -128 * sum(a). A register block is 16 weight rows x 12 tokens; per token and sub-block it costs 8 vpdpbusd
 * + 2 f32 ops (running sums, see kq_block), where the AMX path's two byte planes would cost 16 vpdpbusd.
 * Measured (Q4_K, 2048 x 2048, 512 tokens, one thread): 365-375 GOP/s, about half of a register-only vpdpbusd
 * loop's 5.7 G instructions/s (730 GOP/s) on the same core.
 *
 * Activations: token-major (gemm_q_tok_*, below). Panel of 16 rows: per group, int8 [G / 4][16 rows][4] then
 * the scales. */
size_t gemm_q_vnni_panel_bytes(const gemm_q_layout *L, int64_t n_in);
void   gemm_q_vnni_pack_panel(const gemm_q_layout *L, const uint8_t *W, size_t row_bytes, int64_t n_in, int nv,
                              uint8_t *dst);
/* Same contract as gemm_q_amx_panel (F: 8 x 16 f32 of it hold the outputs of a register block). */
void   gemm_q_vnni_panel(const gemm_q_layout *L, int64_t n_in, const uint8_t *panel, const gemm_q_act *A, int64_t tb0,
                         int64_t n_tb, int64_t n_tokv, float *Y, size_t ldy, int ov, float *F);

/* ==== int8 engine (AVX2, where AVX-512 is absent): core/gemm_q_avx2.c ====
 *
 * The VNNI engine's shape in 256-bit registers without vpdpbusd: a weight register holds 4 consecutive inputs
 * of 8 rows as u8, each token's 4 activation bytes are broadcast, and vpmaddubsw gives s16 pair sums. K-quants
 * keep those in s16 over as many steps as cannot overflow (|q| * 127 * 2 per step: Q4_K 8 steps, Q5_K 4,
 * Q6_K 2), then vpmaddwd by the integer sub-block scale takes them to int32, exact; the f32 work is once per
 * 256 inputs. 32-blocks have signed weights up to 128 in magnitude, so they take the sign trick of ggml's
 * Q8_0 dot (|w| x sign(w)·a, one step per s16 sum) and convert per block. Activations as gemm_q_tok_*. */
size_t gemm_q_avx2_panel_bytes(const gemm_q_layout *L, int64_t n_in);
void   gemm_q_avx2_pack_panel(const gemm_q_layout *L, const uint8_t *W, size_t row_bytes, int64_t n_in, int nv,
                              uint8_t *dst);
/* Same contract as gemm_q_amx_panel (F unused). */
void   gemm_q_avx2_panel(const gemm_q_layout *L, int64_t n_in, const uint8_t *panel, const gemm_q_act *A, int64_t tb0,
                         int64_t n_tb, int64_t n_tokv, float *Y, size_t ldy, int ov, float *F);

/* ==== token-major activations (VNNI and AVX2 engines): core/gemm_q_act.c ==== */
int    gemm_q_tok_layout_for(loom_dtype wt, gemm_q_layout *L); /* 0 if wt has a layout there */
size_t gemm_q_tok_meta_bytes(const gemm_q_layout *L, int64_t n_in);
void   gemm_q_tok_pack_act(const gemm_q_layout *L, const uint8_t *xq, size_t act_bytes, int64_t n_in, int nv,
                           const gemm_q_act *A, int64_t tb);

/* Two int16 in one int32 lane (a low), the operand vpmaddwd / vpdpwssd multiply pairwise. */
static inline int32_t gemm_pair16(int a, int b) {
    return (int32_t)((uint32_t)(uint16_t)(int16_t)a | ((uint32_t)(uint16_t)(int16_t)b << 16));
}

#endif
