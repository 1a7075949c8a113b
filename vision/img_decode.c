/* vision/img_decode.c — the front door of image decoding: magic-byte format detection, file reading with a
 * size cap, dispatch to the per-format decoders (img_jpeg.c, img_png.c, img_webp.c), and the two pieces of
 * PIL behaviour every decoder shares: EXIF orientation (parsed here from the TIFF block, applied as
 * ImageOps.exif_transpose does) and RGBA-over-white compositing (Image.paste with an alpha mask).
 *
 * Invariants: decoders never apply the orientation themselves, so apply_exif_orientation = 0 gives the
 * pixels exactly as stored (Meta's path); every image leaving this file is c = 3.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "vision/vision.h"
#include "vision/vision_int.h"

/* ==== parameters and format detection ==== */

loom_img_decode_params loom_img_decode_default_params(void) {
    loom_img_decode_params p = {
        .max_pixels = LOOM_IMG_DEFAULT_MAX_PIXELS,
        .max_file_bytes = LOOM_IMG_DEFAULT_MAX_FILE_BYTES,
        .apply_exif_orientation = 1,
    };
    return p;
}

loom_img_format loom_img_detect_format(const void *buf, size_t len) {
    const uint8_t *b = buf;
    if (!b) return LOOM_IMG_FORMAT_UNKNOWN;
    if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return LOOM_IMG_FORMAT_JPEG;
    if (len >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return LOOM_IMG_FORMAT_PNG;
    if (len >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0) return LOOM_IMG_FORMAT_WEBP;
    return LOOM_IMG_FORMAT_UNKNOWN;
}

const char *loom_img_format_name(loom_img_format f) {
    switch (f) {
    case LOOM_IMG_FORMAT_JPEG: return "jpeg";
    case LOOM_IMG_FORMAT_PNG: return "png";
    case LOOM_IMG_FORMAT_WEBP: return "webp";
    case LOOM_IMG_FORMAT_UNKNOWN: break;
    }
    return "unknown";
}

/* Names formats we recognise but do not decode, so the error says "gif" rather than "unknown". */
static const char *other_format_name(const uint8_t *b, size_t len) {
    if (len >= 6 && (memcmp(b, "GIF87a", 6) == 0 || memcmp(b, "GIF89a", 6) == 0)) return "GIF";
    if (len >= 2 && b[0] == 'B' && b[1] == 'M') return "BMP";
    if (len >= 4 && (memcmp(b, "II*\0", 4) == 0 || memcmp(b, "MM\0*", 4) == 0)) return "TIFF";
    if (len >= 12 && memcmp(b + 4, "ftyp", 4) == 0) return "ISO-BMFF (HEIC/AVIF)";
    return NULL;
}

/* ==== EXIF orientation ==== */

static unsigned rd16(const uint8_t *p, int le) { return le ? (unsigned)(p[0] | p[1] << 8) : (unsigned)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p, int le) {
    return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
              : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* TIFF layout: "II*\0"|"MM\0*", u32 offset of IFD0; IFD = u16 count, count x {u16 tag, u16 type, u32 count,
 * u32 value-or-offset}. Orientation (0x0112) is a SHORT stored in the first two bytes of the value field;
 * PIL also accepts it typed LONG. Anything out of bounds means "no orientation". */
int vis_exif_orientation(const uint8_t *p, size_t n) {
    if (!p) return 1;
    if (n >= 6 && memcmp(p, "Exif\0\0", 6) == 0) {
        p += 6;
        n -= 6;
    }
    if (n < 8) return 1;
    int le;
    if (p[0] == 'I' && p[1] == 'I') le = 1;
    else if (p[0] == 'M' && p[1] == 'M') le = 0;
    else return 1;
    if (rd16(p + 2, le) != 42) return 1;
    uint32_t ifd = rd32(p + 4, le);
    if (ifd > n || n - ifd < 2) return 1;
    unsigned count = rd16(p + ifd, le);
    size_t pos = (size_t)ifd + 2;
    for (unsigned i = 0; i < count; i++, pos += 12) {
        if (n - pos < 12) return 1;
        if (rd16(p + pos, le) != 0x0112) continue;
        unsigned type = rd16(p + pos + 2, le);
        uint32_t cnt = rd32(p + pos + 4, le);
        if (cnt < 1) return 1;
        uint32_t v;
        if (type == 3) v = rd16(p + pos + 8, le);
        else if (type == 4) v = rd32(p + pos + 8, le);
        else return 1;
        return v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
}

/* out(x, y) = in(src(x, y)); the orientation value says how the stored pixels must be turned for display
 * (PIL: 2 FLIP_LEFT_RIGHT, 3 ROTATE_180, 4 FLIP_TOP_BOTTOM, 5 TRANSPOSE, 6 ROTATE_270, 7 TRANSVERSE,
 * 8 ROTATE_90; PIL's rotations are counter-clockwise, so 6 is a quarter turn clockwise). */
loom_status loom_img_apply_orientation(loom_image *img, int orientation, loom_err *err) {
    if (!img || !img->data) return LOOM_FAIL(err, LOOM_ERR_INVALID, "orientation: no image");
    if (orientation < 2 || orientation > 8) return LOOM_OK;
    const int W = img->w, H = img->h, C = img->c;
    const int swap = orientation >= 5;
    const int ow = swap ? H : W, oh = swap ? W : H;
    size_t bytes = (size_t)W * (size_t)H * (size_t)C;
    uint8_t *dst = loom_malloc(bytes);
    if (!dst) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "orientation: out of memory for %dx%d", W, H);
    for (int y = 0; y < oh; y++) {
        uint8_t *o = dst + (size_t)y * ow * C;
        for (int x = 0; x < ow; x++, o += C) {
            int sx, sy;
            switch (orientation) {
            case 2: sx = W - 1 - x; sy = y; break;
            case 3: sx = W - 1 - x; sy = H - 1 - y; break;
            case 4: sx = x; sy = H - 1 - y; break;
            case 5: sx = y; sy = x; break;
            case 6: sx = y; sy = H - 1 - x; break;
            case 7: sx = W - 1 - y; sy = H - 1 - x; break;
            default: sx = W - 1 - y; sy = x; break; /* 8 */
            }
            memcpy(o, img->data + ((size_t)sy * W + sx) * C, (size_t)C);
        }
    }
    loom_free(img->data);
    img->data = dst;
    img->w = ow;
    img->h = oh;
    return LOOM_OK;
}

/* ==== RGBA onto white (PIL Image.paste(im, mask=alpha) over Image.new("RGB", size, white)) ==== */

void vis_rgba_over_white(uint8_t *dst, const uint8_t *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const uint8_t *s = src + i * 4;
        unsigned a = s[3];
        uint8_t px[3];
        for (int k = 0; k < 3; k++) {
            /* BLEND(mask, 255, v) = DIV255(255*(255-a) + v*a) with PIL's rounding division by 255 */
            unsigned t = 255u * (255u - a) + (unsigned)s[k] * a + 128u;
            px[k] = (uint8_t)(((t >> 8) + t) >> 8);
        }
        memcpy(dst + i * 3, px, 3);
    }
}

/* ==== decoding entry points ==== */

loom_status loom_img_decode_memory(loom_image **out, const void *buf, size_t len,
                                   const loom_img_decode_params *params, loom_err *err) {
    if (!out) return LOOM_FAIL(err, LOOM_ERR_INVALID, "decode: no output pointer");
    *out = NULL;
    if (!buf && len) return LOOM_FAIL(err, LOOM_ERR_INVALID, "decode: NULL buffer");
    loom_img_decode_params p = params ? *params : loom_img_decode_default_params();
    if (p.max_pixels <= 0) p.max_pixels = LOOM_IMG_DEFAULT_MAX_PIXELS;
    const uint8_t *b = buf;
    if (len == 0) return LOOM_FAIL(err, LOOM_ERR_FORMAT, "image data is empty");

    int orientation = 1;
    loom_image *img = NULL;
    loom_status st;
    switch (loom_img_detect_format(b, len)) {
    case LOOM_IMG_FORMAT_JPEG: st = vis_decode_jpeg(&img, b, len, p.max_pixels, &orientation, err); break;
    case LOOM_IMG_FORMAT_PNG: st = vis_decode_png(&img, b, len, p.max_pixels, &orientation, err); break;
    case LOOM_IMG_FORMAT_WEBP: st = vis_decode_webp(&img, b, len, p.max_pixels, &orientation, err); break;
    default: {
        const char *name = other_format_name(b, len);
        if (name) return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "%s images are not supported (JPEG, PNG, WebP are)", name);
        return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "not a JPEG, PNG or WebP image (unknown magic bytes)");
    }
    }
    if (st != LOOM_OK) {
        loom_image_free(img);
        return st;
    }
    if (LOOM_NEVER(!img || img->c != 3)) {
        loom_image_free(img);
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "decoder returned no RGB image");
    }
    if (p.apply_exif_orientation && orientation != 1) {
        st = loom_img_apply_orientation(img, orientation, err);
        if (st != LOOM_OK) {
            loom_image_free(img);
            return st;
        }
    }
    *out = img;
    return LOOM_OK;
}

loom_status loom_img_decode_file(loom_image **out, const char *path, const loom_img_decode_params *params,
                                 loom_err *err) {
    if (!out) return LOOM_FAIL(err, LOOM_ERR_INVALID, "decode: no output pointer");
    *out = NULL;
    if (!path) return LOOM_FAIL(err, LOOM_ERR_INVALID, "decode: no path");
    int64_t max_bytes = params && params->max_file_bytes > 0 ? params->max_file_bytes : LOOM_IMG_DEFAULT_MAX_FILE_BYTES;

    FILE *f = fopen(path, "rb");
    if (!f) return LOOM_FAIL(err, LOOM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return LOOM_FAIL(err, LOOM_ERR_IO, "%s: not a regular file", path);
    }
    if ((int64_t)st.st_size > max_bytes) {
        fclose(f);
        return LOOM_FAIL(err, LOOM_ERR_LIMIT, "%s: file is %lld bytes, above the limit of %lld", path,
                         (long long)st.st_size, (long long)max_bytes);
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = loom_malloc(n ? n : 1);
    if (!buf) {
        fclose(f);
        return LOOM_FAIL(err, LOOM_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = n ? fread(buf, 1, n, f) : 0;
    int rerr = ferror(f);
    fclose(f);
    if (got != n || rerr) {
        loom_free(buf);
        return LOOM_FAIL(err, LOOM_ERR_IO, "%s: read failed", path);
    }
    loom_status s = loom_img_decode_memory(out, buf, n, params, err);
    loom_free(buf);
    if (s != LOOM_OK) loom_err_prefix(err, "%s: ", path);
    return s;
}
