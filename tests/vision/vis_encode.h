/* tests/vision/vis_encode.h — encoders for the decoder tests: build PNG (libpng), JPEG (TurboJPEG) and WebP
 * (libwebp) files in memory from known pixel arrays, so every test image is generated from code and its
 * expected pixels are known. Header-only (each tests/vision/test_*.c includes what it uses). */
#ifndef LOOM_TESTS_VISION_VIS_ENCODE_H
#define LOOM_TESTS_VISION_VIS_ENCODE_H

#include <png.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <webp/encode.h>

#include "core/alloc.h"

typedef struct vbuf {
    uint8_t *p;
    size_t   n, cap;
} vbuf;

static inline void vbuf_put(vbuf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->n + n) cap *= 2;
        b->p = realloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void vbuf_png_write(png_structp png, png_bytep d, size_t n) { vbuf_put(png_get_io_ptr(png), d, n); }
static void vbuf_png_flush(png_structp png) { (void)png; }

typedef struct png_spec {
    int w, h, color_type, depth, interlace;
    const uint8_t *rows; /* packed PNG rows, big-endian 16-bit samples, row stride = rowbytes */
    const png_color *palette;
    int n_palette;
    const uint8_t *trans; /* palette alpha */
    int n_trans;
    const png_color_16 *trans_color; /* gray/RGB tRNS */
    const uint8_t *exif;
    int exif_len;
} png_spec;

static inline size_t png_rowbytes(int w, int color_type, int depth) {
    int ch = color_type == 0 || color_type == 3 ? 1 : color_type == 4 ? 2 : color_type == 2 ? 3 : 4;
    return ((size_t)w * ch * depth + 7) / 8;
}

/* Returns a malloc'd PNG (free()) or NULL. */
static inline uint8_t *png_encode(const png_spec *s, size_t *len) {
    vbuf b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(b.p);
        return NULL;
    }
    png_set_write_fn(png, &b, vbuf_png_write, vbuf_png_flush);
    png_set_IHDR(png, info, s->w, s->h, s->depth, s->color_type, s->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (s->palette) png_set_PLTE(png, info, s->palette, s->n_palette);
    if (s->trans || s->trans_color) png_set_tRNS(png, info, s->trans, s->n_trans, s->trans_color);
    if (s->exif) png_set_eXIf_1(png, info, (png_uint_32)s->exif_len, (png_bytep)s->exif);
    png_write_info(png, info);
    size_t rb = png_rowbytes(s->w, s->color_type, s->depth);
    png_bytep *rows = malloc(sizeof(png_bytep) * s->h);
    for (int y = 0; y < s->h; y++) rows[y] = (png_bytep)(s->rows + rb * y);
    png_write_image(png, rows);
    png_write_end(png, info);
    free(rows);
    png_destroy_write_struct(&png, &info);
    *len = b.n;
    return b.p;
}

/* TurboJPEG compress; pf TJPF_RGB / TJPF_GRAY / TJPF_CMYK. Returns a tjAlloc'd buffer (tjFree). */
static inline uint8_t *jpeg_encode(const uint8_t *pix, int w, int h, int pf, int subsamp, int quality, int flags,
                                   size_t *len) {
    tjhandle tj = tjInitCompress();
    unsigned char *out = NULL;
    unsigned long n = 0;
    int rc = tjCompress2(tj, pix, w, 0, h, pf, &out, &n, subsamp, quality, flags);
    tjDestroy(tj);
    if (rc != 0) {
        tjFree(out);
        return NULL;
    }
    *len = n;
    return out;
}

/* A TIFF block (26 bytes) holding IFD0 { Orientation = o }, little- or big-endian. */
static inline void exif_tiff(uint8_t tiff[26], int orientation, int big_endian) {
    int le = !big_endian;
#define P16(o, v) (le ? (tiff[o] = (uint8_t)(v), tiff[(o) + 1] = (uint8_t)((v) >> 8)) : (tiff[o] = (uint8_t)((v) >> 8), tiff[(o) + 1] = (uint8_t)(v)))
#define P32(o, v) (le ? (P16(o, (v) & 0xffff), P16((o) + 2, (uint32_t)(v) >> 16)) : (P16(o, (uint32_t)(v) >> 16), P16((o) + 2, (v) & 0xffff)))
    memcpy(tiff, le ? "II" : "MM", 2);
    P16(2, 42);
    P32(4, 8);
    P16(8, 1);       /* one entry */
    P16(10, 0x0112); /* Orientation */
    P16(12, 3);      /* SHORT */
    P32(14, 1);      /* count */
    memset(tiff + 18, 0, 4);
    P16(18, orientation);
    P32(22, 0); /* next IFD */
#undef P16
#undef P32
}

/* Inserts an APP1 Exif segment holding IFD0 { Orientation = o } right after SOI. Returns malloc'd bytes. */
static inline uint8_t *jpeg_add_exif(const uint8_t *jpg, size_t n, int orientation, int big_endian, size_t *len) {
    uint8_t tiff[26];
    exif_tiff(tiff, orientation, big_endian);
    vbuf b = {0};
    vbuf_put(&b, jpg, 2);
    size_t seg = 2 + 6 + sizeof tiff;
    uint8_t hdr[4] = {0xFF, 0xE1, (uint8_t)(seg >> 8), (uint8_t)seg};
    vbuf_put(&b, hdr, 4);
    vbuf_put(&b, "Exif\0\0", 6);
    vbuf_put(&b, tiff, sizeof tiff);
    vbuf_put(&b, jpg + 2, n - 2);
    *len = b.n;
    return b.p;
}

#endif
