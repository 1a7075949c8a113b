/* core/image.c — see image.h. */
#include "core/image.h"

#include "core/alloc.h"

loom_status loom_image_new(loom_image **out, int w, int h, int c, int64_t max_pixels, loom_err *err) {
    *out = NULL;
    if (w <= 0 || h <= 0 || c <= 0 || c > 4)
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "image size %dx%dx%d is not valid", w, h, c);
    int64_t pixels = (int64_t)w * h;
    if (max_pixels > 0 && pixels > max_pixels)
        return LOOM_FAIL(err, LOOM_ERR_LIMIT, "image is %dx%d = %lld pixels, above the limit of %lld", w, h,
                         (long long)pixels, (long long)max_pixels);
    size_t bytes;
    if (!loom_size_mul((size_t)pixels, (size_t)c, &bytes))
        return LOOM_FAIL(err, LOOM_ERR_LIMIT, "image %dx%d is too large", w, h);
    loom_image *img = loom_calloc(1, sizeof *img);
    if (!img) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "out of memory for image header");
    img->data = loom_calloc(1, bytes);
    if (!img->data) {
        loom_free(img);
        return LOOM_FAIL(err, LOOM_ERR_NOMEM, "out of memory for a %dx%d image", w, h);
    }
    img->w = w;
    img->h = h;
    img->c = c;
    *out = img;
    return LOOM_OK;
}

void loom_image_free(loom_image *img) {
    if (!img) return;
    loom_free(img->data);
    loom_free(img);
}
