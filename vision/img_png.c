/* vision/img_png.c — PNG decoding through libpng 1.6.
 *
 * libpng reports errors by longjmp from its error callback. The one setjmp is in png_run(); everything that
 * must survive a longjmp (buffers, the output image, the message) lives in a png_ctx owned by the caller,
 * vis_decode_png(), which frees it whatever happened. libpng allocates through loom_malloc, so fault
 * injection reaches it too.
 *
 * Conversion to RGB follows PIL's modes (see vision.h):
 *
 *   PNG colour type          PIL mode      here
 *   0 gray 1/2/4/8/16        1 / L / I     expand to 8 bits (1/2/4-bit scaled to 0..255), replicate
 *   2 RGB 8/16               RGB           16-bit: high byte
 *   3 palette (+tRNS)        P             palette colour; transparency ignored
 *   4 gray+alpha 8/16        LA            gray replicated, alpha dropped
 *   6 RGBA 8/16              RGBA          composited onto white (PIL paste)
 *   any + tRNS (not palette) L / RGB       transparency ignored
 *
 * libpng's gamma, sBIT and colour-profile handling stay off, as in PIL. A file must end with IEND: a PNG cut
 * anywhere is an error. EXIF orientation comes from an eXIf chunk (before or after IDAT).
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "vision/vision_int.h"

#if LOOM_WITH_PNG
#include <png.h>

typedef struct png_ctx {
    const uint8_t *buf;
    size_t         len, pos;
    int64_t        max_pixels;
    char           msg[200];
    uint8_t       *pix;  /* [h, rowbytes] decoded rows */
    png_bytep     *rows; /* [h] pointers into pix */
    loom_image    *img;  /* the RGB result */
    int            orientation;
    int            nomem; /* an allocation failed: report LOOM_ERR_NOMEM, not a format error */
} png_ctx;

static void png_read_cb(png_structp png, png_bytep data, size_t n) {
    png_ctx *c = png_get_io_ptr(png);
    if (c->len - c->pos < n) png_error(png, "file is truncated");
    memcpy(data, c->buf + c->pos, n);
    c->pos += n;
}

static void png_error_cb(png_structp png, png_const_charp msg) {
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_warning_cb(png_structp png, png_const_charp msg) {
    (void)png;
    LOOM_DEBUG("png: warning: %s", msg);
}

static png_voidp png_malloc_cb(png_structp png, png_alloc_size_t n) {
    void *p = loom_malloc(n);
    png_ctx *c = png_get_mem_ptr(png);
    if (!p && c) c->nomem = 1;
    return p;
}
static void png_free_cb(png_structp png, png_voidp p) {
    (void)png;
    loom_free(p);
}

/* The only setjmp of this decoder. Locals are not modified after setjmp; state lives in *c. */
static loom_status png_run(png_ctx *c, png_structp png, png_infop info, loom_err *err) {
    if (setjmp(png_jmpbuf(png)))
        return LOOM_FAIL(err, c->nomem ? LOOM_ERR_NOMEM : LOOM_ERR_FORMAT, "png: %s", c->msg[0] ? c->msg : "decode error");

    png_set_read_fn(png, c, png_read_cb);
    /* our max_pixels is the limit that matters; libpng's default 1e6 per side would pre-empt it */
    png_set_user_limits(png, 0x7fffffffu, 0x7fffffffu);
    png_read_info(png, info);

    png_uint_32 w = 0, h = 0;
    int depth = 0, ctype = 0, interlace = 0;
    png_get_IHDR(png, info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
    if (w == 0 || h == 0 || w > 0x7fffffffu || h > 0x7fffffffu)
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "png: bad size %ux%u", (unsigned)w, (unsigned)h);
    if ((uint64_t)w * h > (uint64_t)c->max_pixels)
        return LOOM_FAIL(err, LOOM_ERR_LIMIT, "png: %ux%u = %llu pixels is above the limit of %lld", (unsigned)w,
                         (unsigned)h, (unsigned long long)w * h, (long long)c->max_pixels);

    if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16) png_set_strip_16(png); /* keep the high byte, like PIL's ";16B" raw modes */
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    const int ch = png_get_channels(png, info);
    const size_t rowbytes = png_get_rowbytes(png, info);
    if (png_get_bit_depth(png, info) != 8 || ch < 1 || ch > 4 || rowbytes != (size_t)w * (size_t)ch)
        return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "png: unexpected layout after transforms (%d channels)", ch);

    loom_status st = loom_image_new(&c->img, (int)w, (int)h, 3, c->max_pixels, err);
    if (st != LOOM_OK) return st;
    c->pix = loom_malloc(rowbytes * h);
    c->rows = loom_malloc(sizeof(png_bytep) * h);
    if (!c->pix || !c->rows) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "png: out of memory for %ux%u", (unsigned)w, (unsigned)h);
    for (png_uint_32 y = 0; y < h; y++) c->rows[y] = c->pix + (size_t)y * rowbytes;
    png_read_image(png, c->rows);
    png_read_end(png, info); /* insists on IEND and picks up an eXIf after IDAT */

#ifdef PNG_eXIf_SUPPORTED
    png_uint_32 exif_len = 0;
    png_bytep exif = NULL;
    if (png_get_eXIf_1(png, info, &exif_len, &exif) && exif) c->orientation = vis_exif_orientation(exif, exif_len);
#endif

    const size_t n = (size_t)w * h;
    uint8_t *o = c->img->data;
    const uint8_t *s = c->pix;
    switch (ch) {
    case 1:
        for (size_t i = 0; i < n; i++) o[i * 3] = o[i * 3 + 1] = o[i * 3 + 2] = s[i];
        break;
    case 2: /* PIL "LA" (or L + tRNS): convert("RGB") drops alpha */
        for (size_t i = 0; i < n; i++) o[i * 3] = o[i * 3 + 1] = o[i * 3 + 2] = s[i * 2];
        break;
    case 3: memcpy(o, s, n * 3); break;
    default:
        if (ctype == PNG_COLOR_TYPE_RGB_ALPHA) {
            vis_rgba_over_white(o, s, n);
        } else { /* alpha came from tRNS on a palette/RGB image: PIL ignores it */
            for (size_t i = 0; i < n; i++) memcpy(o + i * 3, s + i * 4, 3);
        }
    }
    return LOOM_OK;
}

loom_status vis_decode_png(loom_image **out, const uint8_t *buf, size_t len, int64_t max_pixels,
                           int *orientation, loom_err *err) {
    *out = NULL;
    *orientation = 1;
    png_ctx c = {.buf = buf, .len = len, .max_pixels = max_pixels, .orientation = 1};
    png_structp png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, &c, png_error_cb, png_warning_cb, &c,
                                               png_malloc_cb, png_free_cb);
    if (!png) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "png: cannot create a libpng reader");
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return LOOM_FAIL(err, LOOM_ERR_NOMEM, "png: cannot create a libpng info struct");
    }
    loom_status st = png_run(&c, png, info, err);
    png_destroy_read_struct(&png, &info, NULL);
    loom_free(c.rows);
    loom_free(c.pix);
    if (st != LOOM_OK) {
        loom_image_free(c.img);
        return st;
    }
    *orientation = c.orientation;
    *out = c.img;
    return LOOM_OK;
}

#else /* !LOOM_WITH_PNG */

loom_status vis_decode_png(loom_image **out, const uint8_t *buf, size_t len, int64_t max_pixels,
                           int *orientation, loom_err *err) {
    (void)buf, (void)len, (void)max_pixels;
    *out = NULL;
    *orientation = 1;
    return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "png: loom was built without libpng");
}

#endif
