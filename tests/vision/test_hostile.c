/* tests/vision/test_hostile.c — bad input never crashes, hangs or allocates unboundedly: every truncation of
 * small PNG/JPEG/WebP files, random byte flips, headers claiming huge sizes (LOOM_ERR_LIMIT before any
 * allocation), and allocation failures injected at every point of decode + preprocess (no leaks). Run this
 * binary under ASan too (make CONFIG=asan OPT=-O1 build/asan/tests/test_vision). */
#include <criterion/criterion.h>

#if LOOM_WITH_PNG && LOOM_WITH_TURBOJPEG && LOOM_WITH_WEBP
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "tests/testutil.h"
#include "tests/vision/vis_encode.h"
#include "vision/vision.h"

typedef struct sample_file {
    uint8_t *p;
    size_t   n;
    const char *what;
} sample_file;

static uint8_t *gen_rgba(int w, int h, uint64_t seed) {
    uint8_t *p = malloc((size_t)w * h * 4);
    for (int i = 0; i < w * h * 4; i++) p[i] = (uint8_t)(loom_test_rand_u64(&seed) >> 56);
    return p;
}

/* The corpus: a plain PNG, an interlaced RGBA PNG, a palette PNG, baseline and progressive JPEG, lossless and
 * lossy WebP. Buffers are malloc'd copies (freed by free_samples). */
static int make_samples(sample_file *s) {
    int n = 0;
    uint8_t *px = gen_rgba(17, 5, 1);
    png_spec ps = {.w = 17, .h = 5, .color_type = 6, .depth = 8, .interlace = 1, .rows = px};
    s[n].p = png_encode(&ps, &s[n].n), s[n++].what = "png rgba interlaced";
    uint8_t rgb[17 * 5 * 3];
    for (int i = 0; i < 17 * 5; i++) memcpy(rgb + i * 3, px + i * 4, 3);
    png_spec p2 = {.w = 17, .h = 5, .color_type = 2, .depth = 8, .rows = rgb};
    s[n].p = png_encode(&p2, &s[n].n), s[n++].what = "png rgb";
    png_color pal[4] = {{1, 2, 3}, {40, 50, 60}, {200, 100, 0}, {9, 9, 9}};
    uint8_t idx[6 * 3];
    for (int i = 0; i < 18; i++) idx[i] = (uint8_t)(i % 4);
    png_spec p3 = {.w = 6, .h = 3, .color_type = 3, .depth = 8, .rows = idx, .palette = pal, .n_palette = 4};
    s[n].p = png_encode(&p3, &s[n].n), s[n++].what = "png palette";
    size_t len = 0;
    uint8_t *j = jpeg_encode(rgb, 17, 5, TJPF_RGB, TJSAMP_420, 90, 0, &len);
    s[n].p = malloc(len), memcpy(s[n].p, j, len), s[n].n = len, s[n++].what = "jpeg baseline", tjFree(j);
    uint8_t *big = gen_rgba(24, 16, 2);
    uint8_t big3[24 * 16 * 3];
    for (int i = 0; i < 24 * 16; i++) memcpy(big3 + i * 3, big + i * 4, 3);
    j = jpeg_encode(big3, 24, 16, TJPF_RGB, TJSAMP_444, 80, TJFLAG_PROGRESSIVE, &len);
    s[n].p = malloc(len), memcpy(s[n].p, j, len), s[n].n = len, s[n++].what = "jpeg progressive", tjFree(j);
    uint8_t *w = NULL;
    len = WebPEncodeLosslessRGBA(px, 17, 5, 17 * 4, &w);
    s[n].p = malloc(len), memcpy(s[n].p, w, len), s[n].n = len, s[n++].what = "webp lossless", WebPFree(w);
    len = WebPEncodeRGB(big3, 24, 16, 24 * 3, 80.0f, &w);
    s[n].p = malloc(len), memcpy(s[n].p, w, len), s[n].n = len, s[n++].what = "webp lossy", WebPFree(w);
    free(px);
    free(big);
    for (int i = 0; i < n; i++) cr_assert(s[i].p && s[i].n > 0, "could not build %s", s[i].what);
    return n;
}

static void free_samples(sample_file *s, int n) {
    for (int i = 0; i < n; i++) free(s[i].p);
}

Test(hostile, every_truncation_is_an_error) {
    sample_file s[8];
    int n = make_samples(s);
    int64_t base = loom_alloc_live_bytes();
    for (int f = 0; f < n; f++) {
        loom_image *img = NULL;
        loom_err err = {0};
        cr_assert_eq(loom_img_decode_memory(&img, s[f].p, s[f].n, NULL, &err), LOOM_OK, "%s: %s", s[f].what, err.msg);
        loom_image_free(img);
        for (size_t len = 0; len < s[f].n; len++) {
            uint8_t *cut = malloc(len ? len : 1); /* exact-size copy so ASan sees any over-read */
            memcpy(cut, s[f].p, len);
            img = (loom_image *)1;
            loom_status st = loom_img_decode_memory(&img, cut, len, NULL, &err);
            cr_assert_neq(st, LOOM_OK, "%s cut to %zu of %zu bytes decoded", s[f].what, len, s[f].n);
            cr_assert_null(img);
            cr_assert(err.msg[0], "no message");
            free(cut);
        }
        cr_assert_eq(loom_alloc_live_bytes(), base, "%s: leak", s[f].what);
    }
    free_samples(s, n);
}

Test(hostile, random_byte_flips_never_crash) {
    sample_file s[8];
    int n = make_samples(s);
    uint64_t seed = 2024;
    int64_t base = loom_alloc_live_bytes();
    int n_ok = 0, n_err = 0;
    for (int f = 0; f < n; f++) {
        uint8_t *buf = malloc(s[f].n);
        for (int it = 0; it < 300; it++) {
            memcpy(buf, s[f].p, s[f].n);
            int flips = 1 + (int)(loom_test_rand_u64(&seed) % 4);
            for (int k = 0; k < flips; k++) {
                uint64_t r = loom_test_rand_u64(&seed);
                /* half the flips land in the first 64 bytes, where the headers are */
                size_t pos = (r & 1) ? (size_t)(r >> 8) % (s[f].n < 64 ? s[f].n : 64) : (size_t)(r >> 8) % s[f].n;
                buf[pos] ^= (uint8_t)(1 + (r >> 40) % 255);
            }
            loom_image *img = NULL;
            loom_err err = {0};
            loom_img_decode_params p = loom_img_decode_default_params();
            p.max_pixels = 1 << 20; /* keep a flipped size field from asking for gigabytes */
            if (loom_img_decode_memory(&img, buf, s[f].n, &p, &err) == LOOM_OK) {
                cr_assert(img->w > 0 && img->h > 0 && (int64_t)img->w * img->h <= (1 << 20) && img->c == 3);
                n_ok++;
            } else {
                cr_assert_null(img);
                n_err++;
            }
            loom_image_free(img);
        }
        free(buf);
        cr_assert_eq(loom_alloc_live_bytes(), base, "%s: leak after flips", s[f].what);
    }
    cr_log_info("byte flips: %d decoded, %d rejected", n_ok, n_err);
    free_samples(s, n);
}

/* ==== huge sizes: LOOM_ERR_LIMIT from the header, before allocating ==== */

static uint32_t crc32_png(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return ~c;
}

static void be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

Test(hostile, huge_png_header_is_a_limit_error) {
    /* signature + IHDR(100000 x 100000, 8-bit RGB) + a tiny IDAT + IEND, CRCs valid */
    uint8_t f[8 + 25 + 12 + 1 + 12];
    memcpy(f, "\x89PNG\r\n\x1a\n", 8);
    uint8_t *c = f + 8;
    be32(c, 13);
    memcpy(c + 4, "IHDR", 4);
    be32(c + 8, 100000);
    be32(c + 12, 100000);
    c[16] = 8, c[17] = 2, c[18] = 0, c[19] = 0, c[20] = 0;
    be32(c + 21, crc32_png(c + 4, 17));
    c += 25;
    be32(c, 1);
    memcpy(c + 4, "IDAT", 4);
    c[8] = 0x78;
    be32(c + 9, crc32_png(c + 4, 5));
    c += 13;
    be32(c, 0);
    memcpy(c + 4, "IEND", 4);
    be32(c + 8, crc32_png(c + 4, 4));
    int64_t base = loom_alloc_live_bytes();
    loom_image *img = NULL;
    loom_err err = {0};
    cr_assert_eq(loom_img_decode_memory(&img, f, sizeof f, NULL, &err), LOOM_ERR_LIMIT, "%s", err.msg);
    cr_assert(strstr(err.msg, "100000x100000"), "%s", err.msg);
    cr_assert_null(img);
    cr_assert_eq(loom_alloc_live_bytes(), base);
}

Test(hostile, huge_jpeg_and_webp_headers_fail_before_any_allocation) {
    uint8_t rgb[16 * 8 * 3] = {0};
    size_t len = 0;
    uint8_t *j = jpeg_encode(rgb, 16, 8, TJPF_RGB, TJSAMP_420, 90, 0, &len);
    size_t sof = 0;
    for (size_t i = 2; i + 9 < len; i++)
        if (j[i] == 0xFF && j[i + 1] == 0xC0) {
            sof = i;
            break;
        }
    cr_assert(sof > 0);
    j[sof + 5] = 0xFD, j[sof + 6] = 0xE8; /* height 65000 */
    j[sof + 7] = 0xFD, j[sof + 8] = 0xE8; /* width 65000 */

    uint8_t *w = NULL;
    size_t wl = WebPEncodeLosslessRGB(rgb, 16, 8, 16 * 3, &w);
    cr_assert(wl > 25 && memcmp(w + 12, "VP8L", 4) == 0);
    /* VP8L header after the 0x2f signature: 14 bits width-1, 14 bits height-1, LSB first */
    uint32_t bits = (uint32_t)w[21] | (uint32_t)w[22] << 8 | (uint32_t)w[23] << 16 | (uint32_t)w[24] << 24;
    bits = (bits & ~0x0FFFFFFFu) | 16383u | 16383u << 14;
    w[21] = (uint8_t)bits, w[22] = (uint8_t)(bits >> 8), w[23] = (uint8_t)(bits >> 16), w[24] = (uint8_t)(bits >> 24);

    /* with every loom allocation failing, reaching LIMIT (not NOMEM) shows nothing was allocated first */
    loom_alloc_fail_after(0);
    loom_image *img = NULL;
    loom_err err = {0};
    loom_status sj = loom_img_decode_memory(&img, j, len, NULL, &err);
    char mj[256];
    memcpy(mj, err.msg, sizeof mj);
    loom_status sw = loom_img_decode_memory(&img, w, wl, NULL, &err);
    loom_alloc_fail_after(-1);
    cr_assert_eq(sj, LOOM_ERR_LIMIT, "jpeg: %s", mj);
    cr_assert_eq(sw, LOOM_ERR_LIMIT, "webp: %s", err.msg);
    cr_assert(strstr(err.msg, "16384x16384"), "%s", err.msg);
    tjFree(j);
    WebPFree(w);
}

Test(hostile, max_pixels_is_configurable) {
    uint8_t rgb[17 * 5 * 3] = {0};
    png_spec ps = {.w = 17, .h = 5, .color_type = 2, .depth = 8, .rows = rgb};
    size_t len = 0;
    uint8_t *f = png_encode(&ps, &len);
    loom_img_decode_params p = loom_img_decode_default_params();
    loom_image *img = NULL;
    p.max_pixels = 84;
    cr_assert_eq(loom_img_decode_memory(&img, f, len, &p, NULL), LOOM_ERR_LIMIT);
    p.max_pixels = 85;
    cr_assert_eq(loom_img_decode_memory(&img, f, len, &p, NULL), LOOM_OK);
    loom_image_free(img);
    free(f);
}

/* ==== allocation failures at every point ==== */

Test(hostile, allocation_failures_everywhere) {
    sample_file s[8];
    int n = make_samples(s);
    int64_t base = loom_alloc_live_bytes();
    for (int f = 0; f < n; f++) {
        int succeeded = 0;
        for (int k = 0; k < 200 && !succeeded; k++) {
            loom_alloc_fail_after(k);
            loom_image *img = NULL;
            loom_img_tiles *t = NULL;
            loom_err err = {0};
            loom_status st = loom_img_decode_memory(&img, s[f].p, s[f].n, NULL, &err);
            if (st == LOOM_OK) st = loom_img_preprocess(&t, img, NULL, &err);
            loom_alloc_fail_after(-1);
            cr_assert(st == LOOM_OK || st == LOOM_ERR_NOMEM, "%s, fail after %d: status %d (%s)", s[f].what, k, st,
                      err.msg);
            succeeded = st == LOOM_OK;
            loom_img_tiles_free(t);
            loom_image_free(img);
            cr_assert_eq(loom_alloc_live_bytes(), base, "%s: leak with failure after %d allocations", s[f].what, k);
        }
        cr_assert(succeeded, "%s never succeeded", s[f].what);
    }
    free_samples(s, n);
}

#else /* the corpus is built with the encoders of all three libraries */

Test(hostile, needs_image_libraries) { cr_skip_test("built without libpng, libturbojpeg or libwebp"); }

#endif
