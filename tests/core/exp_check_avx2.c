/* tests/core/exp_check_avx2.c — exposes core/exp_avx2.h's exp256 to the tests, which are built for baseline
 * x86-64: this file gets the AVX2 flags from its name (see the Makefile). Call only where the CPU has AVX2 and
 * FMA. */
#include "core/exp_avx2.h"

void loom_test_exp256(float *y, const float *x, int n); /* y[i] = exp256(x[i]), n a multiple of 8 */

void loom_test_exp256(float *y, const float *x, int n) {
    for (int i = 0; i < n; i += 8) _mm256_storeu_ps(y + i, exp256(_mm256_loadu_ps(x + i)));
}
