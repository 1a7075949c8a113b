/* core/ops_int.h — internal: the scalar references and the AVX2 and AVX-512 forms of the row ops in core/ops.h.
 *
 * core/ops.c dispatches on loom_isa_active(). The references stay callable so tests can hold each SIMD form
 * against its reference on random rows of awkward lengths (tests/core/test_ops.c).
 */
#ifndef LOOM_CORE_OPS_INT_H
#define LOOM_CORE_OPS_INT_H

#include <stdint.h>

void loom_op_rmsnorm_ref(float *out, const float *x, const float *w, int64_t n, float eps);
void loom_op_silu_mul_ref(float *h, const float *g, int64_t n);
void loom_op_add_ref(float *x, const float *a, int64_t n);

void loom_op_rmsnorm_avx2(float *out, const float *x, const float *w, int64_t n, float eps);
void loom_op_silu_mul_avx2(float *h, const float *g, int64_t n);
void loom_op_add_avx2(float *x, const float *a, int64_t n);

void loom_op_rmsnorm_avx512(float *out, const float *x, const float *w, int64_t n, float eps);
void loom_op_silu_mul_avx512(float *h, const float *g, int64_t n);
void loom_op_add_avx512(float *x, const float *a, int64_t n);

#endif
