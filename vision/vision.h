/* vision/vision.h — pixels in, embeddings out: the public header of vision/.
 *
 * Prefixes: loom_img_ (decoding image files, Llama 4 tiling and normalisation) and loom_vit_ (the ViT encoder,
 * pixel shuffle, adapter and projector; declared in its own section below when it lands).
 *
 * Basic usage (decode, then make the tiles the ViT reads):
 *
 *   loom_err err = {0};
 *   loom_image *img = NULL;
 *   loom_img_tiles *t = NULL;
 *   if (loom_img_decode_file(&img, "cat.jpg", NULL, &err) != LOOM_OK ||
 *       loom_img_preprocess(&t, img, NULL, &err) != LOOM_OK)
 *       fprintf(stderr, "loom: %s\n", err.msg);              // "cat.jpg: jpeg: Premature end of JPEG file"
 *   // t->data: [t->n_tiles, 3, 336, 336] f32, grid t->h_tiles x t->w_tiles, thumbnail last when n_tiles > 1
 *   loom_img_tiles_free(t);
 *   loom_image_free(img);
 */
#ifndef LOOM_VISION_VISION_H
#define LOOM_VISION_VISION_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/image.h"

/* ============================================================================================================
 * ==== loom_img_: image decoding (vision/img_decode.c, img_jpeg.c, img_png.c, img_webp.c) ====
 *
 * Formats are found by magic bytes, never by file name: JPEG (TurboJPEG), PNG (libpng), WebP (libwebp). A
 * format whose library was not found at build time gives LOOM_ERR_UNSUPPORTED.
 *
 * The result is always 8-bit RGB (loom_image with c = 3), converted the way Meta's Llama 4 reference does it
 * (PIL open + convert_image_to_rgb), so the tiles match Meta's:
 *   - images that PIL opens as "RGBA" (PNG colour type 6 at 8 or 16 bits, WebP with alpha) are composited onto
 *     WHITE with PIL's integer blend: out = (255*(255-a) + v*a + 128) * 257 >> 16 (Image.paste with a mask);
 *   - everything else is a plain conversion, alpha or transparency information is dropped: gray+alpha PNGs
 *     (PIL "LA") keep their gray value, a palette PNG with tRNS keeps the palette colour of transparent
 *     entries (PIL "P"), gray/RGB PNGs with tRNS ignore it;
 *   - gray (any bit depth, JPEG or PNG) is replicated to R = G = B; 1/2/4-bit gray is scaled to 0..255;
 *   - 16-bit PNG samples keep their high byte (PIL's ";16B" raw modes do that for RGB/RGBA/LA; for 16-bit
 *     gray Pillow's result depends on its version, see ../shared/design/LLAMA4.md §11);
 *   - CMYK/YCCK JPEGs are read as Adobe-inverted CMYK (PIL assumes so for every 4-channel JPEG) and turned
 *     into RGB with PIL's formula: R = 255-K' - (C'*(255-K')+128)*257>>16 with C' = 255-stored C, etc.;
 *   - JPEG decoding uses libjpeg's defaults (islow IDCT, fancy upsampling), as PIL does.
 * EXIF orientation (JPEG APP1, PNG eXIf, WebP EXIF chunk; IFD0 tag 0x0112 values 2..8) is applied by
 * default, as Hugging Face's image loader does (PIL ImageOps.exif_transpose). Meta's own Llama 4 path does
 * NOT apply it (it opens the file with PIL and uses the pixels as stored); set apply_exif_orientation = 0 to
 * reproduce Meta exactly.
 *
 * Hostile input: every size is checked against max_pixels from the header, before any pixel buffer is
 * allocated (LOOM_ERR_LIMIT). Corrupt or truncated data gives LOOM_ERR_FORMAT (a PNG without IEND and a JPEG
 * that ends before its EOI are truncated); animated WebP, 12-bit JPEG and the like give LOOM_ERR_UNSUPPORTED.
 * Messages start with the format ("png: ..."); loom_img_decode_file prefixes the path.
 */

#define LOOM_IMG_DEFAULT_MAX_PIXELS (64LL * 1024 * 1024)     /* 64 Mpx: 8192 x 8192 */
#define LOOM_IMG_DEFAULT_MAX_FILE_BYTES (512LL * 1024 * 1024) /* files larger than this are not read */

typedef enum loom_img_format {
    LOOM_IMG_FORMAT_UNKNOWN = 0,
    LOOM_IMG_FORMAT_JPEG,
    LOOM_IMG_FORMAT_PNG,
    LOOM_IMG_FORMAT_WEBP,
} loom_img_format;

typedef struct loom_img_decode_params {
    int64_t max_pixels;             /* width*height limit checked from the header; <= 0 means the default */
    int64_t max_file_bytes;         /* loom_img_decode_file only; <= 0 means the default */
    int     apply_exif_orientation; /* 1 (default): rotate/flip per EXIF like HF; 0: pixels as stored (Meta) */
} loom_img_decode_params;

loom_img_decode_params loom_img_decode_default_params(void);

/* Decodes an image file or an in-memory encoded image into *out (8-bit RGB, c = 3; free with
 * loom_image_free). params may be NULL for the defaults. On failure *out is NULL, nothing is leaked and err
 * names the problem (and, for _file, the path). buf is only read. */
loom_status loom_img_decode_file(loom_image **out, const char *path, const loom_img_decode_params *params,
                                 loom_err *err);
loom_status loom_img_decode_memory(loom_image **out, const void *buf, size_t len,
                                   const loom_img_decode_params *params, loom_err *err);

/* The format the first bytes announce (needs at most 12 bytes; fewer give UNKNOWN). */
loom_img_format loom_img_detect_format(const void *buf, size_t len);
const char     *loom_img_format_name(loom_img_format f); /* "jpeg", "png", "webp", "unknown" */

/* Rotates/flips img in place (replacing its buffer) for an EXIF orientation 1..8; other values are left
 * alone, like PIL. Exposed so callers with their own decoders (video frames with rotation metadata) share it. */
loom_status loom_img_apply_orientation(loom_image *img, int orientation, loom_err *err);

/* ============================================================================================================
 * ==== loom_img_: Llama 4 preprocessing (vision/preprocess.c, resize_avx2.c) ====
 *
 * Meta's VariableSizeImageTransform (../shared/design/LLAMA4.md §3): pick the canvas of h_tiles x w_tiles
 * tiles (h*w <= max_tiles) that needs the least scaling, resize without distortion and with upscaling limited
 * to the tile size, pad right/bottom with black, normalise (u8/255 - 0.5)/0.5 in f32 (so padding is -1), cut
 * row-major 336x336 tiles, and when there is more than one tile append a global thumbnail: the whole image
 * resized (aspect NOT kept) to 336x336.
 * Resizing is PIL's Image.resize(BILINEAR) re-implemented bit-exactly: separable, horizontal pass then
 * vertical, fixed-point coefficients (22 fractional bits) with the filter support widened by the scale
 * factor when shrinking (antialiasing), rounding to u8 between the passes.
 */

#define LOOM_IMG_TILE_SIZE 336
#define LOOM_IMG_MAX_TILES 16

typedef struct loom_img_prep_params {
    int tile_size; /* 336 */
    int max_tiles; /* 16: canvases with h_tiles*w_tiles <= max_tiles are considered */
    int use_simd;  /* 1 (default): AVX2 resize when the CPU has it; results are identical to the scalar path */
} loom_img_prep_params;

loom_img_prep_params loom_img_prep_default_params(void);

/* Where an H x W image goes: the canvas grid and the size it is resized to before padding. */
typedef struct loom_img_plan {
    int h_tiles, w_tiles;     /* canvas = (h_tiles*tile, w_tiles*tile) */
    int resized_h, resized_w; /* the image is resized to this, then padded at the right/bottom */
    int n_tiles;              /* h_tiles*w_tiles, plus 1 for the thumbnail when that product is > 1 */
} loom_img_plan;

/* Steps 1-3 of the transform, without pixels (for prompt building and tests). LOOM_ERR_INVALID for
 * non-positive sizes or params out of range. */
loom_status loom_img_plan_make(loom_img_plan *plan, int h, int w, const loom_img_prep_params *params,
                               loom_err *err);

typedef struct loom_img_tiles {
    int    h_tiles, w_tiles;     /* the grid the prompt describes (<|tile_x_separator|> etc.) */
    int    n_tiles;              /* h*w grid tiles, then the thumbnail when h*w > 1 */
    int    has_thumbnail;        /* 1 when data holds the global thumbnail as the last tile */
    int    tile_size;            /* S (336) */
    int    resized_h, resized_w; /* size of the image inside the padded canvas */
    float *data;                 /* [n_tiles, 3, S, S] f32, RGB, CHW, values in [-1, 1]; owned */
} loom_img_tiles;

/* Preprocesses an RGB image (img->c == 3) into tiles; free with loom_img_tiles_free. params may be NULL. */
loom_status loom_img_preprocess(loom_img_tiles **out, const loom_image *img, const loom_img_prep_params *params,
                                loom_err *err);
void        loom_img_tiles_free(loom_img_tiles *t); /* NULL is a no-op */

/* PIL-exact bilinear (antialiased when shrinking) resize of an image with c = 1..4 channels into a new
 * w x h image (free with loom_image_free). Same size gives a copy. */
loom_status loom_img_resize(loom_image **out, const loom_image *img, int w, int h, loom_err *err);

/* ============================================================================================================
 * ==== loom_vit_: the ViT encoder (to be added) ====
 */

#endif
