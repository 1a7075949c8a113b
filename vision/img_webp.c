/* vision/img_webp.c — WebP decoding through libwebp (still images, lossy and lossless).
 *
 * WebPGetFeatures reads the header (size, alpha, animation) so max_pixels is checked before allocating.
 * Like PIL, a WebP with alpha is an "RGBA" image and is composited onto white; one without is plain RGB.
 * Animated WebP needs libwebpdemux, which loom does not link: LOOM_ERR_UNSUPPORTED. EXIF orientation comes
 * from the RIFF "EXIF" chunk (PIL strips a leading "Exif\0\0" as vis_exif_orientation does).
 */
#include <string.h>

#include "core/alloc.h"
#include "vision/vision_int.h"

#if LOOM_WITH_WEBP
#include <webp/decode.h>

/* RIFF: "RIFF" u32le size "WEBP", then chunks {fourcc, u32le size, payload padded to even}. */
static int webp_exif_orientation(const uint8_t *b, size_t n) {
    size_t pos = 12;
    while (n >= 8 && pos <= n - 8) {
        uint32_t sz = (uint32_t)b[pos + 4] | (uint32_t)b[pos + 5] << 8 | (uint32_t)b[pos + 6] << 16 |
                      (uint32_t)b[pos + 7] << 24;
        if (sz > n - pos - 8) return 1;
        if (memcmp(b + pos, "EXIF", 4) == 0) return vis_exif_orientation(b + pos + 8, sz);
        pos += 8 + (size_t)sz + (sz & 1);
    }
    return 1;
}

static const char *vp8_status_str(VP8StatusCode s) {
    switch (s) {
    case VP8_STATUS_OK: return "ok";
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "corrupt bitstream";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "file is truncated";
    }
    return "unknown error";
}

loom_status vis_decode_webp(loom_image **out, const uint8_t *buf, size_t len, int64_t max_pixels,
                            int *orientation, loom_err *err) {
    *out = NULL;
    *orientation = 1;
    WebPBitstreamFeatures f;
    VP8StatusCode vs = WebPGetFeatures(buf, len, &f);
    if (vs != VP8_STATUS_OK)
        return LOOM_FAIL(err, vs == VP8_STATUS_UNSUPPORTED_FEATURE ? LOOM_ERR_UNSUPPORTED : LOOM_ERR_FORMAT,
                         "webp: %s", vp8_status_str(vs));
    if (f.has_animation) return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "webp: animated WebP is not supported");
    if (f.width <= 0 || f.height <= 0) return LOOM_FAIL(err, LOOM_ERR_FORMAT, "webp: bad size %dx%d", f.width, f.height);
    if ((int64_t)f.width * f.height > max_pixels)
        return LOOM_FAIL(err, LOOM_ERR_LIMIT, "webp: %dx%d = %lld pixels is above the limit of %lld", f.width,
                         f.height, (long long)f.width * f.height, (long long)max_pixels);

    loom_image *img = NULL;
    loom_status st = loom_image_new(&img, f.width, f.height, 3, max_pixels, err);
    if (st != LOOM_OK) return st;
    const size_t n = (size_t)f.width * (size_t)f.height;
    if (f.has_alpha) {
        uint8_t *rgba = loom_malloc(n * 4);
        if (!rgba) {
            loom_image_free(img);
            return LOOM_FAIL(err, LOOM_ERR_NOMEM, "webp: out of memory for %dx%d", f.width, f.height);
        }
        if (!WebPDecodeRGBAInto(buf, len, rgba, n * 4, f.width * 4)) {
            loom_free(rgba);
            loom_image_free(img);
            return LOOM_FAIL(err, LOOM_ERR_FORMAT, "webp: corrupt or truncated image data");
        }
        vis_rgba_over_white(img->data, rgba, n);
        loom_free(rgba);
    } else if (!WebPDecodeRGBInto(buf, len, img->data, n * 3, f.width * 3)) {
        loom_image_free(img);
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "webp: corrupt or truncated image data");
    }
    *orientation = webp_exif_orientation(buf, len);
    *out = img;
    return LOOM_OK;
}

#else /* !LOOM_WITH_WEBP */

loom_status vis_decode_webp(loom_image **out, const uint8_t *buf, size_t len, int64_t max_pixels,
                            int *orientation, loom_err *err) {
    (void)buf, (void)len, (void)max_pixels;
    *out = NULL;
    *orientation = 1;
    return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "webp: loom was built without libwebp");
}

#endif
