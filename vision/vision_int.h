/* vision/vision_int.h — declarations private to vision/ (decoders, EXIF parsing, resample kernels).
 *
 * Nothing outside vision/ includes this except white-box tests in tests/vision/.
 */
#ifndef LOOM_VISION_VISION_INT_H
#define LOOM_VISION_VISION_INT_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/image.h"
#include "vision/vision.h"

/* ==== decoders (img_jpeg.c, img_png.c, img_webp.c) ====
 * Each turns a whole encoded file into an 8-bit RGB image (c = 3) following the conversion rules in vision.h,
 * checks max_pixels from its header before allocating, and reports the EXIF orientation it found (1 when
 * none) without applying it. Messages start with the format name. */
loom_status vis_decode_jpeg(loom_image **out, const uint8_t *buf, size_t len, int64_t max_pixels,
                            int *orientation, loom_err *err);
loom_status vis_decode_png(loom_image **out, const uint8_t *buf, size_t len, int64_t max_pixels,
                           int *orientation, loom_err *err);
loom_status vis_decode_webp(loom_image **out, const uint8_t *buf, size_t len, int64_t max_pixels,
                            int *orientation, loom_err *err);

/* EXIF orientation from a TIFF-structured EXIF block (starting at "II*\0" / "MM\0*"; a leading "Exif\0\0" is
 * skipped). Returns 1..8, or 1 when absent or malformed. Every offset is bounds-checked against len. */
int vis_exif_orientation(const uint8_t *tiff, size_t len);

/* PIL's Image.paste(rgba, mask=alpha) onto white, for n pixels: [n, 4] u8 RGBA -> [n, 3] u8 RGB. dst may
 * alias src (it writes behind where it reads). */
void vis_rgba_over_white(uint8_t *dst, const uint8_t *src, size_t n);

/* ==== resampling (preprocess.c scalar, resize_avx2.c AVX2) ====
 * Coefficients for one axis as PIL's precompute_coeffs + normalize_coeffs_8bpc make them for the bilinear
 * filter: output i reads inputs [bounds[2i], bounds[2i] + bounds[2i+1]) with weights k[i*ksize + j] scaled by
 * 2^22. Pixels in the kernels are 4 bytes (RGBX, like PIL's internal layout), rows of w*4 bytes. */
#define VIS_PRECISION_BITS 22

typedef struct vis_coeffs {
    int      out_size;
    int      ksize;  /* stride of k between outputs */
    int     *bounds; /* [out_size, 2] first input index, count */
    int32_t *k;      /* [out_size, ksize] fixed-point weights */
} vis_coeffs;

loom_status vis_coeffs_init(vis_coeffs *c, int in_size, int out_size, loom_err *err);
void        vis_coeffs_release(vis_coeffs *c);

/* dst [rows, c->out_size, 4] u8  <-  src rows [rows, in_w, 4] u8 (row strides in bytes) */
void vis_resample_h_scalar(uint8_t *dst, size_t dst_stride, const uint8_t *src, size_t src_stride, int rows,
                           const vis_coeffs *c);
void vis_resample_h_avx2(uint8_t *dst, size_t dst_stride, const uint8_t *src, size_t src_stride, int rows,
                         const vis_coeffs *c);
/* dst [c->out_size, row_bytes] u8  <-  src [in_h, row_bytes] u8; row_bytes = w*4 */
void vis_resample_v_scalar(uint8_t *dst, const uint8_t *src, size_t row_bytes, const vis_coeffs *c);
void vis_resample_v_avx2(uint8_t *dst, const uint8_t *src, size_t row_bytes, const vis_coeffs *c);

/* Resizes a [h, w, 4] u8 buffer to [oh, ow, 4] with PIL's two-pass algorithm (simd: 0 scalar, 1 AVX2 when
 * the CPU has it). dst is caller-allocated. */
loom_status vis_resize_rgbx(uint8_t *dst, int ow, int oh, const uint8_t *src, int w, int h, int simd,
                            loom_err *err);

int vis_cpu_has_avx2(void);

#endif
