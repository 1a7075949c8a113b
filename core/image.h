/* core/image.h — an 8-bit image in memory: the currency between decoders (vision/, video/) and preprocessing.
 *
 * Pixels are interleaved, row-major, top row first: data[(y * w + x) * c + k], with c = 3 (RGB) unless a
 * function says otherwise. The struct is a plain data carrier (public fields, like stb's buffers).
 * Create with loom_image_new, free with loom_image_free.
 */
#ifndef LOOM_CORE_IMAGE_H
#define LOOM_CORE_IMAGE_H

#include <stdint.h>

#include "core/err.h"

typedef struct loom_image {
    int      w, h, c; /* width, height, channels (3 = RGB) */
    uint8_t *data;    /* [h, w, c] u8, owned by the image */
} loom_image;

/* Allocates a zeroed w x h x c image; LOOM_ERR_LIMIT when w*h exceeds max_pixels (0 = no limit beyond
 * overflow checks), so a hostile header is rejected before any large allocation. */
loom_status loom_image_new(loom_image **out, int w, int h, int c, int64_t max_pixels, loom_err *err);
void        loom_image_free(loom_image *img); /* NULL is a no-op */

#endif
