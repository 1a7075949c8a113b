/* core/ops.h — elementwise and row-wise CPU ops shared by the backbone and the ViT.
 *
 * All activations are f32 with f32 accumulation (the router margins of Llama 4 are ~1e-4; see LLAMA4.md §10).
 * Rows are contiguous runs of n floats; "in place" variants allow out == x. rmsnorm, silu_mul and add run
 * AVX-512 forms where the kernels do (LOOM_ISA caps them too); core/ops_int.h has the scalar references.
 */
#ifndef LOOM_CORE_OPS_H
#define LOOM_CORE_OPS_H

#include <stdint.h>

/* out = x * rsqrt(mean(x^2) + eps) * w   (w may be NULL: no weight, as in Llama 4's QK-norm) */
void loom_op_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps);
/* h = silu(h) * g, elementwise (SwiGLU's gate times up) */
void loom_op_silu_mul(float *h, const float *g, int64_t n);
/* x += a, elementwise (residual adds) */
void loom_op_add(float *x, const float *a, int64_t n);
/* out = (x - mean) * rsqrt(var + eps) * w + b   (biased variance, as torch.nn.LayerNorm) */
void loom_op_layernorm(float *out, const float *x, const float *w, const float *b, int64_t n, float eps);
/* Softmax in place over n values (max-subtracted, f32; f64 not needed at these sizes). */
void loom_op_softmax(float *x, int64_t n);
/* Rotates adjacent pairs (x[2i], x[2i+1]) by angle theta_i: (a,b) -> (a cos - b sin, a sin + b cos).
 * cs holds [cos_0, sin_0, cos_1, sin_1, ...] for n_pairs pairs. */
void loom_op_rope_pairs(float *x, const float *cs, int64_t n_pairs);
static inline float loom_silu(float x) { return x / (1.0f + __builtin_expf(-x)); }
float loom_gelu_erf(float x); /* exact GELU: 0.5 x (1 + erf(x / sqrt 2)) */
float loom_sigmoid(float x);
float loom_dot_f32(const float *a, const float *b, int64_t n); /* plain f32 dot, vectorised by the compiler */

#endif
