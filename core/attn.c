/* core/attn.c — scalar reference of the fused attention and the run-time dispatch (see attn.h).
 *
 * The reference processes keys in the same order as the SIMD kernel (segment by segment) with the same online
 * softmax: running max m, running sum l, output o; for each visible key s = scale q·k,
 * m' = max(m, s), o = o e^(m-m') + e^(s-m') v, l = l e^(m-m') + e^(s-m'), and finally o / l.
 */
#include "core/attn.h"
#include "core/matmul.h"

#include <math.h>
#include <string.h>

void loom_attn_run_ref(const loom_attn_task *t) {
    int dh = t->d_head;
    for (int m = 0; m < t->n_q; m++) {
        float mx = -INFINITY, l = 0.0f;
        float *o = t->out[m];
        memset(o, 0, sizeof(float) * (size_t)dh);
        for (int s = 0; s < t->n_seg; s++) {
            const loom_attn_seg *g = &t->seg[s];
            for (int64_t i = 0; i < g->n; i++) {
                int64_t pos = g->pos0 + i;
                if (pos < t->lo[m] || pos > t->hi[m]) continue;
                const float *k = g->k + i * g->stride, *v = g->v + i * g->stride;
                float dot = 0.0f;
                for (int d = 0; d < dh; d++) dot += t->q[m][d] * k[d];
                float sc = dot * t->scale;
                if (sc > mx) {
                    float alpha = expf(mx - sc); /* 0 on the first key (mx = -inf) */
                    for (int d = 0; d < dh; d++) o[d] *= alpha;
                    l *= alpha;
                    mx = sc;
                }
                float p = expf(sc - mx);
                l += p;
                for (int d = 0; d < dh; d++) o[d] += p * v[d];
            }
        }
        float inv = l > 0.0f ? 1.0f / l : 0.0f;
        for (int d = 0; d < dh; d++) o[d] *= inv;
    }
}

void loom_attn_run(const loom_attn_task *t) {
    /* the same dispatch as the matmul kernels, so LOOM_ISA=avx2|scalar caps attention too */
    loom_isa isa = loom_isa_active();
    if (isa >= LOOM_ISA_AVX512 && t->d_head <= 256) loom_attn_run_avx512(t);
    else if (isa >= LOOM_ISA_AVX2 && t->d_head <= 256) loom_attn_run_avx2(t);
    else loom_attn_run_ref(t);
}
