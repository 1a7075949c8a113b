/* vision/resize_avx2.c — AVX2 versions of the two resample kernels of preprocess.c.
 *
 * Same integer maths as the scalar kernels (u8 x int32 weights with 22 fractional bits, +2^21, >>22, clamp),
 * so the results are bit-identical; tests/vision compares them on awkward sizes. The sums cannot overflow:
 * weights are non-negative for the bilinear filter and sum to about 2^22, so a sum is < 255 * 2^22 + 2^21.
 *
 *   horizontal: one output RGBX pixel per step; two input pixels per 256-bit multiply (lanes 0-3 tap x,
 *               lanes 4-7 tap x+1), the halves added at the end; an odd last tap uses 128 bits.
 *   vertical:   32 bytes of the output row per step (four 8-lane accumulators), a scalar tail.
 * Never reads outside [xmin, xmin+count) pixels of a row or past the row's last byte.
 */
#include <immintrin.h>
#include <string.h>

#include "vision/vision_int.h"

static inline uint32_t finish4(__m128i a) {
    a = _mm_add_epi32(a, _mm_set1_epi32(1 << (VIS_PRECISION_BITS - 1)));
    a = _mm_srai_epi32(a, VIS_PRECISION_BITS);
    a = _mm_packus_epi32(a, a); /* clamps below 0 */
    a = _mm_packus_epi16(a, a); /* clamps above 255 */
    return (uint32_t)_mm_cvtsi128_si32(a);
}

void vis_resample_h_avx2(uint8_t *dst, size_t dst_stride, const uint8_t *src, size_t src_stride, int rows,
                         const vis_coeffs *c) {
    const __m256i dup = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
    for (int r = 0; r < rows; r++) {
        const uint8_t *s = src + (size_t)r * src_stride;
        uint8_t *d = dst + (size_t)r * dst_stride;
        for (int xx = 0; xx < c->out_size; xx++) {
            const int xmin = c->bounds[xx * 2], cnt = c->bounds[xx * 2 + 1];
            const int32_t *k = c->k + (size_t)xx * c->ksize;
            const uint8_t *p = s + (size_t)xmin * 4;
            __m256i acc = _mm256_setzero_si256();
            int x = 0;
            for (; x + 2 <= cnt; x += 2) {
                __m256i px = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + (size_t)x * 4)));
                __m256i kv = _mm256_permutevar8x32_epi32(
                    _mm256_castsi128_si256(_mm_loadl_epi64((const __m128i *)(k + x))), dup);
                acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(px, kv));
            }
            __m128i a = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
            if (x < cnt) {
                int32_t one;
                memcpy(&one, p + (size_t)x * 4, 4);
                __m128i px = _mm_cvtepu8_epi32(_mm_cvtsi32_si128(one));
                a = _mm_add_epi32(a, _mm_mullo_epi32(px, _mm_set1_epi32(k[x])));
            }
            uint32_t v = finish4(a);
            memcpy(d + (size_t)xx * 4, &v, 4);
        }
    }
}

void vis_resample_v_avx2(uint8_t *dst, const uint8_t *src, size_t row_bytes, const vis_coeffs *c) {
    const __m256i half = _mm256_set1_epi32(1 << (VIS_PRECISION_BITS - 1));
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int yy = 0; yy < c->out_size; yy++) {
        const int ymin = c->bounds[yy * 2], cnt = c->bounds[yy * 2 + 1];
        const int32_t *k = c->k + (size_t)yy * c->ksize;
        const uint8_t *base = src + (size_t)ymin * row_bytes;
        uint8_t *d = dst + (size_t)yy * row_bytes;
        size_t i = 0;
        for (; i + 32 <= row_bytes; i += 32) {
            __m256i a0 = half, a1 = half, a2 = half, a3 = half;
            for (int y = 0; y < cnt; y++) {
                const __m256i kv = _mm256_set1_epi32(k[y]);
                const uint8_t *p = base + (size_t)y * row_bytes + i;
                a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)), kv));
                a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 8))), kv));
                a2 = _mm256_add_epi32(a2, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 16))), kv));
                a3 = _mm256_add_epi32(a3, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 24))), kv));
            }
            a0 = _mm256_srai_epi32(a0, VIS_PRECISION_BITS);
            a1 = _mm256_srai_epi32(a1, VIS_PRECISION_BITS);
            a2 = _mm256_srai_epi32(a2, VIS_PRECISION_BITS);
            a3 = _mm256_srai_epi32(a3, VIS_PRECISION_BITS);
            /* packs work within 128-bit lanes; the permute restores byte order */
            __m256i b = _mm256_packus_epi16(_mm256_packus_epi32(a0, a1), _mm256_packus_epi32(a2, a3));
            b = _mm256_permutevar8x32_epi32(b, order);
            _mm256_storeu_si256((__m256i *)(d + i), b);
        }
        for (; i < row_bytes; i++) {
            int32_t s = 1 << (VIS_PRECISION_BITS - 1);
            for (int y = 0; y < cnt; y++) s += base[(size_t)y * row_bytes + i] * k[y];
            s >>= VIS_PRECISION_BITS;
            d[i] = (uint8_t)(s < 0 ? 0 : s > 255 ? 255 : s);
        }
    }
}
