/* vision/img_jpeg.c — JPEG decoding through the TurboJPEG 2 API (libjpeg-turbo 2.1 on Debian 12).
 *
 * TurboJPEG keeps libjpeg's setjmp/longjmp inside the library, so this file has none. Settings match what PIL
 * uses (libjpeg defaults: islow IDCT, fancy upsampling), so pixels agree with Meta's reference bit for bit
 * when the libjpeg-turbo versions agree.
 *
 *   header    tjDecompressHeader3 -> w, h, colourspace; max_pixels is checked here, before any allocation
 *   gray/YCbCr/RGB  -> TJPF_RGB (libjpeg replicates gray)
 *   CMYK/YCCK       -> TJPF_CMYK, then PIL's "CMYK;I" (Adobe-inverted) reading and cmyk2rgb formula
 *   EXIF      the first APP1 "Exif\0\0" segment before SOS, parsed by vis_exif_orientation
 *
 * Warnings: libjpeg reports a truncated file as the warning "Premature end of JPEG file" and fills the rest
 * with grey; PIL raises "image file is truncated" there, so it is an error here too. TurboJPEG keeps only the
 * first warning's text, so a truncation can hide behind an earlier warning; to make "truncated or corrupt
 * means an error" hold, every warning is an error except "extraneous bytes before marker", which is common
 * in camera files and loses no data (logged). PIL would decode corrupt entropy data best-effort instead.
 * TJFLAG_LIMITSCANS guards against progressive files with absurd scan counts (a CPU-time bomb).
 */
#include <limits.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "vision/vision_int.h"

#if LOOM_WITH_TURBOJPEG
#include <turbojpeg.h>

/* Walks the marker segments before the first scan looking for APP1 Exif. Returns 1 when there is none. */
static int jpeg_exif_orientation(const uint8_t *b, size_t n) {
    if (n < 4 || b[0] != 0xFF || b[1] != 0xD8) return 1;
    size_t pos = 2;
    while (n - pos >= 4) {
        if (b[pos] != 0xFF) return 1;
        uint8_t m = b[pos + 1];
        if (m == 0xFF) { /* fill byte */
            pos++;
            continue;
        }
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) { /* markers without a length */
            pos += 2;
            continue;
        }
        if (m == 0xDA || m == 0xD9) return 1; /* scan data or end: EXIF must come before */
        size_t seg = (size_t)b[pos + 2] << 8 | b[pos + 3]; /* includes the two length bytes */
        if (seg < 2 || seg > n - pos - 2) return 1;
        if (m == 0xE1 && seg >= 2 + 6 && memcmp(b + pos + 4, "Exif\0\0", 6) == 0)
            return vis_exif_orientation(b + pos + 4 + 6, seg - 2 - 6);
        pos += 2 + seg;
    }
    return 1;
}

loom_status vis_decode_jpeg(loom_image **out, const uint8_t *buf, size_t len, int64_t max_pixels,
                            int *orientation, loom_err *err) {
    *out = NULL;
    *orientation = jpeg_exif_orientation(buf, len);
    if (len > ULONG_MAX) return LOOM_FAIL(err, LOOM_ERR_LIMIT, "jpeg: file too large");

    tjhandle tj = tjInitDecompress();
    if (!tj) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "jpeg: cannot create a decompressor: %s", tjGetErrorStr2(NULL));

    loom_status st = LOOM_OK;
    uint8_t *cmyk = NULL;
    loom_image *img = NULL;
    int w = 0, h = 0, subsamp = 0, cs = 0;
    if (tjDecompressHeader3(tj, buf, (unsigned long)len, &w, &h, &subsamp, &cs) != 0) {
        const char *msg = tjGetErrorStr2(tj);
        st = LOOM_FAIL(err, strstr(msg, "precision") ? LOOM_ERR_UNSUPPORTED : LOOM_ERR_FORMAT, "jpeg: %s", msg);
        goto done;
    }
    if (w <= 0 || h <= 0) {
        st = LOOM_FAIL(err, LOOM_ERR_FORMAT, "jpeg: bad size %dx%d", w, h);
        goto done;
    }
    if ((int64_t)w * h > max_pixels) {
        st = LOOM_FAIL(err, LOOM_ERR_LIMIT, "jpeg: %dx%d = %lld pixels is above the limit of %lld", w, h,
                       (long long)w * h, (long long)max_pixels);
        goto done;
    }
    st = loom_image_new(&img, w, h, 3, max_pixels, err);
    if (st != LOOM_OK) goto done;

    const int is_cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK;
    uint8_t *dst = img->data;
    if (is_cmyk) {
        cmyk = loom_malloc((size_t)w * (size_t)h * 4);
        if (!cmyk) {
            st = LOOM_FAIL(err, LOOM_ERR_NOMEM, "jpeg: out of memory for %dx%d CMYK", w, h);
            goto done;
        }
        dst = cmyk;
    }
    if (tjDecompress2(tj, buf, (unsigned long)len, dst, w, 0, h, is_cmyk ? TJPF_CMYK : TJPF_RGB,
                      TJFLAG_LIMITSCANS) != 0) {
        const char *msg = tjGetErrorStr2(tj);
        if (tjGetErrorCode(tj) != TJERR_WARNING || !strstr(msg, "extraneous bytes")) {
            st = LOOM_FAIL(err, LOOM_ERR_FORMAT, "jpeg: %s", msg);
            goto done;
        }
        LOOM_DEBUG("jpeg: decoded with a warning: %s", msg);
    }
    if (is_cmyk) {
        /* PIL reads 4-channel JPEGs as "CMYK;I": c = 255 - stored. Then cmyk2rgb:
         * R = CLIP8(nk - MULDIV255(c, nk)) with nk = 255 - k = stored K. */
        const size_t n = (size_t)w * (size_t)h;
        for (size_t i = 0; i < n; i++) {
            const uint8_t *s = cmyk + i * 4;
            int nk = s[3];
            for (int k = 0; k < 3; k++) {
                int c = 255 - s[k];
                int t = c * nk + 128;
                int v = nk - (((t >> 8) + t) >> 8);
                img->data[i * 3 + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    }
done:
    loom_free(cmyk);
    tjDestroy(tj);
    if (st != LOOM_OK) {
        loom_image_free(img);
        return st;
    }
    *out = img;
    return LOOM_OK;
}

#else /* !LOOM_WITH_TURBOJPEG */

loom_status vis_decode_jpeg(loom_image **out, const uint8_t *buf, size_t len, int64_t max_pixels,
                            int *orientation, loom_err *err) {
    (void)buf, (void)len, (void)max_pixels;
    *out = NULL;
    *orientation = 1;
    return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "jpeg: loom was built without libturbojpeg");
}

#endif
