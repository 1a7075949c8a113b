/* tests/vision/test_preprocess.c — Llama 4 preprocessing against Meta's reference tiles, the worked examples
 * of LLAMA4.md §3, the AVX2 resample kernels against the scalar ones, and the speed of the whole path. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "tests/testutil.h"
#include "vision/vision.h"
#include "vision/vision_int.h"

/* ==== reference images (../shared/testdata/llama4-tiny, README "Images and preprocessing") ==== */

typedef struct ref_case {
    const char *name;
    const char *ext;
    int h, w, gh, gw, n_tiles;
    double max_mad; /* PNG: exact pipeline, JPEG: decoder differences of 1 LSB are possible */
} ref_case;

static const ref_case REF[] = {
    {"img1_200x300", "jpg", 200, 300, 1, 1, 1, 0.02},
    {"img2_336x336_gray", "png", 336, 336, 1, 1, 1, 1e-6},
    {"img3_480x640", "png", 480, 640, 2, 2, 5, 1e-6},
    {"img4_337x336_rgba", "png", 337, 336, 2, 1, 3, 1e-6},
    {"img5_1000x700", "jpg", 1000, 700, 3, 3, 10, 0.02},
};

static void check_reference(const ref_case *rc, int use_simd) {
    char ipath[512], tpath[512], rel[256];
    snprintf(rel, sizeof rel, "testdata/llama4-tiny/images/%s.%s", rc->name, rc->ext);
    LOOM_SHARED_PATH(ipath, rel);
    snprintf(rel, sizeof rel, "testdata/llama4-tiny/vision/%s.tiles.f32", rc->name);
    LOOM_SHARED_PATH(tpath, rel);

    loom_err err = {0};
    loom_image *img = NULL;
    loom_img_decode_params dp = loom_img_decode_default_params();
    dp.apply_exif_orientation = 0; /* Meta's path */
    loom_status ds = loom_img_decode_file(&img, ipath, &dp, &err);
    if (ds == LOOM_ERR_UNSUPPORTED) cr_skip_test("%s", err.msg); /* built without that format's library */
    cr_assert_eq(ds, LOOM_OK, "%s", err.msg);
    cr_assert_eq(img->h, rc->h);
    cr_assert_eq(img->w, rc->w);

    loom_img_prep_params pp = loom_img_prep_default_params();
    pp.use_simd = use_simd;
    loom_img_tiles *t = NULL;
    cr_assert_eq(loom_img_preprocess(&t, img, &pp, &err), LOOM_OK, "%s", err.msg);
    cr_assert_eq(t->h_tiles, rc->gh, "%s: grid h %d != %d", rc->name, t->h_tiles, rc->gh);
    cr_assert_eq(t->w_tiles, rc->gw, "%s: grid w %d != %d", rc->name, t->w_tiles, rc->gw);
    cr_assert_eq(t->n_tiles, rc->n_tiles);
    cr_assert_eq(t->has_thumbnail, rc->n_tiles > 1);

    size_t n = (size_t)t->n_tiles * 3 * 336 * 336, bytes = 0;
    float *ref = loom_test_read_file(tpath, &bytes);
    cr_assert_not_null(ref);
    cr_assert_eq(bytes, n * sizeof(float), "%s: reference has %zu bytes, expected %zu", rc->name, bytes, n * 4);
    double sum = 0, maxd = 0;
    size_t n_diff = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)t->data[i] - (double)ref[i]);
        sum += d;
        if (d > 0) n_diff++;
        if (d > maxd) maxd = d;
    }
    double mad = sum / (double)n;
    /* per-tile detail for the report */
    for (int k = 0; k < t->n_tiles; k++) {
        size_t m = (size_t)3 * 336 * 336;
        double s = 0, mx = 0;
        for (size_t i = 0; i < m; i++) {
            double d = fabs((double)t->data[k * m + i] - (double)ref[k * m + i]);
            s += d;
            if (d > mx) mx = d;
        }
        cr_log_info("%s tile %d%s: MAD %.3g max %.3g", rc->name, k, t->has_thumbnail && k == t->n_tiles - 1 ? " (thumb)" : "",
                    s / (double)m, mx);
    }
    cr_log_info("%s (simd=%d): grid %dx%d, %d tiles, MAD %.3g, max abs diff %.3g, %zu of %zu values differ",
                rc->name, use_simd, t->h_tiles, t->w_tiles, t->n_tiles, mad, maxd, n_diff, n);
    cr_assert(mad <= rc->max_mad, "%s: MAD %g > %g (max %g)", rc->name, mad, rc->max_mad, maxd);
    loom_free(ref);
    loom_img_tiles_free(t);
    loom_image_free(img);
}

Test(llama4_ref, img1_jpeg_upscale) { check_reference(&REF[0], 1); }
Test(llama4_ref, img2_png_gray) { check_reference(&REF[1], 1); }
Test(llama4_ref, img3_png_rgb_2x2) { check_reference(&REF[2], 1); }
Test(llama4_ref, img4_png_rgba_on_white) { check_reference(&REF[3], 1); }
Test(llama4_ref, img5_jpeg_3x3) { check_reference(&REF[4], 1); }
Test(llama4_ref, all_scalar) {
    for (size_t i = 0; i < sizeof REF / sizeof REF[0]; i++) check_reference(&REF[i], 0);
}

/* ==== plan: LLAMA4.md §3 worked examples and §11's tie-break ==== */

Test(plan, worked_examples) {
    static const struct { int h, w, gh, gw, rh, rw, n; } ex[] = {
        {200, 300, 1, 1, 224, 336, 1},     {336, 336, 1, 1, 336, 336, 1},     {337, 336, 2, 1, 337, 336, 3},
        {480, 640, 2, 2, 480, 640, 5},     {768, 1024, 3, 4, 768, 1024, 13}, {1080, 1920, 3, 5, 945, 1680, 16},
        {2000, 2000, 4, 4, 1344, 1344, 17}, {1500, 2000, 3, 4, 1008, 1344, 13}, {1000, 700, 3, 3, 1000, 700, 10},
    };
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
        loom_img_plan p;
        loom_err err = {0};
        cr_assert_eq(loom_img_plan_make(&p, ex[i].h, ex[i].w, NULL, &err), LOOM_OK, "%s", err.msg);
        cr_expect(p.h_tiles == ex[i].gh && p.w_tiles == ex[i].gw && p.resized_h == ex[i].rh &&
                      p.resized_w == ex[i].rw && p.n_tiles == ex[i].n,
                  "%dx%d -> grid %dx%d resized %dx%d n %d; expected %dx%d %dx%d %d", ex[i].h, ex[i].w, p.h_tiles,
                  p.w_tiles, p.resized_h, p.resized_w, p.n_tiles, ex[i].gh, ex[i].gw, ex[i].rh, ex[i].rw, ex[i].n);
    }
}

Test(plan, invariants_over_many_sizes) {
    /* for every size: the grid fits max_tiles, the resized image fits the canvas, keeps the aspect within a
     * pixel and never grows past max(side, 336) */
    static const int sizes[] = {1, 2, 13, 100, 335, 336, 337, 671, 672, 673, 1000, 1344, 3000, 5377, 20000};
    const int ns = (int)(sizeof sizes / sizeof sizes[0]);
    for (int i = 0; i < ns; i++)
        for (int j = 0; j < ns; j++) {
            int h = sizes[i], w = sizes[j];
            loom_img_plan p;
            cr_assert_eq(loom_img_plan_make(&p, h, w, NULL, NULL), LOOM_OK);
            cr_assert(p.h_tiles * p.w_tiles <= 16 && p.h_tiles >= 1 && p.w_tiles >= 1);
            cr_assert(p.resized_h >= 1 && p.resized_w >= 1);
            cr_assert(p.resized_h <= p.h_tiles * 336 && p.resized_w <= p.w_tiles * 336, "%dx%d", h, w);
            cr_assert(p.resized_h <= (h > 336 ? h : 336) && p.resized_w <= (w > 336 ? w : 336));
            cr_assert(p.resized_h == p.h_tiles * 336 || p.resized_w == p.w_tiles * 336 || (p.resized_h == h && p.resized_w == w) ||
                          p.resized_h == (h > 336 ? h : 336) || p.resized_w == (w > 336 ? w : 336),
                      "%dx%d: resized %dx%d in canvas %dx%d touches no bound", h, w, p.resized_h, p.resized_w,
                      p.h_tiles, p.w_tiles);
        }
    loom_img_plan p;
    loom_err err = {0};
    cr_assert_eq(loom_img_plan_make(&p, 0, 10, NULL, &err), LOOM_ERR_INVALID);
    loom_img_prep_params bad = loom_img_prep_default_params();
    bad.max_tiles = 0;
    cr_assert_eq(loom_img_plan_make(&p, 10, 10, &bad, &err), LOOM_ERR_INVALID);
}

/* ==== resample kernels: AVX2 == scalar, bit for bit ==== */

static void fill_random(uint8_t *p, size_t n, uint64_t *seed) {
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(loom_test_rand_u64(seed) >> 56);
}

Test(resize, avx2_matches_scalar_on_awkward_sizes) {
    if (!vis_cpu_has_avx2()) cr_skip_test("no AVX2 on this CPU");
    static const int sz[][4] = {
        /* w, h -> ow, oh */
        {1, 1, 1, 7},      {1, 1, 9, 1},     {17, 5, 336, 336}, {5, 17, 3, 2},     {1000, 3, 5, 700},
        {3, 1000, 700, 5}, {33, 31, 8, 9},   {336, 337, 336, 336}, {999, 701, 336, 336}, {640, 480, 336, 336},
        {200, 300, 224, 336}, {7, 7, 1, 1},  {1024, 768, 1023, 769}, {2, 2, 1000, 999},
    };
    uint64_t seed = 12345;
    for (size_t t = 0; t < sizeof sz / sizeof sz[0]; t++) {
        int w = sz[t][0], h = sz[t][1], ow = sz[t][2], oh = sz[t][3];
        size_t in_n = (size_t)w * h * 4, out_n = (size_t)ow * oh * 4;
        uint8_t *src = loom_malloc(in_n), *a = loom_malloc(out_n), *b = loom_malloc(out_n);
        fill_random(src, in_n, &seed);
        for (size_t i = 3; i < in_n; i += 4) src[i] = 0; /* X channel as in real use (also tested random below) */
        cr_assert_eq(vis_resize_rgbx(a, ow, oh, src, w, h, 0, NULL), LOOM_OK);
        cr_assert_eq(vis_resize_rgbx(b, ow, oh, src, w, h, 1, NULL), LOOM_OK);
        cr_assert(memcmp(a, b, out_n) == 0, "%dx%d -> %dx%d: AVX2 differs from scalar", w, h, ow, oh);

        /* the kernels alone, each pass, with random data in all four bytes */
        fill_random(src, in_n, &seed);
        vis_coeffs c;
        cr_assert_eq(vis_coeffs_init(&c, w, ow, NULL), LOOM_OK);
        uint8_t *ha = loom_malloc((size_t)ow * h * 4), *hb = loom_malloc((size_t)ow * h * 4);
        vis_resample_h_scalar(ha, (size_t)ow * 4, src, (size_t)w * 4, h, &c);
        vis_resample_h_avx2(hb, (size_t)ow * 4, src, (size_t)w * 4, h, &c);
        cr_assert(memcmp(ha, hb, (size_t)ow * h * 4) == 0, "h pass %d -> %d differs", w, ow);
        vis_coeffs_release(&c);
        cr_assert_eq(vis_coeffs_init(&c, h, oh, NULL), LOOM_OK);
        uint8_t *va = loom_malloc((size_t)w * oh * 4), *vb = loom_malloc((size_t)w * oh * 4);
        vis_resample_v_scalar(va, src, (size_t)w * 4, &c);
        vis_resample_v_avx2(vb, src, (size_t)w * 4, &c);
        cr_assert(memcmp(va, vb, (size_t)w * oh * 4) == 0, "v pass %d -> %d differs", h, oh);
        vis_coeffs_release(&c);
        loom_free(ha), loom_free(hb), loom_free(va), loom_free(vb);
        loom_free(src), loom_free(a), loom_free(b);
    }
}

Test(resize, pil_properties) {
    /* a constant image stays constant at any scale; the coefficients of each output sum to ~2^22 */
    loom_image *img = NULL, *o = NULL;
    cr_assert_eq(loom_image_new(&img, 97, 53, 3, 0, NULL), LOOM_OK);
    for (size_t i = 0; i < (size_t)97 * 53 * 3; i++) img->data[i] = (uint8_t)(i % 3 == 0 ? 200 : i % 3 == 1 ? 17 : 255);
    static const int to[][2] = {{336, 336}, {13, 7}, {1, 1}, {500, 40}};
    for (int t = 0; t < 4; t++) {
        cr_assert_eq(loom_img_resize(&o, img, to[t][0], to[t][1], NULL), LOOM_OK);
        for (size_t i = 0; i < (size_t)o->w * o->h * 3; i++)
            cr_assert_eq(o->data[i], img->data[i % 3], "constant image changed at %zu for %dx%d", i, o->w, o->h);
        loom_image_free(o);
    }
    vis_coeffs c;
    cr_assert_eq(vis_coeffs_init(&c, 1000, 336, NULL), LOOM_OK);
    cr_assert_eq(c.ksize, 2 * 3 + 1); /* support 1000/336 = 2.98 -> ceil 3 */
    for (int i = 0; i < c.out_size; i++) {
        int64_t s = 0;
        for (int j = 0; j < c.ksize; j++) s += c.k[i * c.ksize + j];
        cr_assert(llabs(s - (1 << 22)) <= c.ksize, "row %d sums to %lld", i, (long long)s);
    }
    vis_coeffs_release(&c);
    /* a 2x upscale of a 2-pixel ramp: PIL gives 0, 64, 191, 255 for inputs 0, 255 (weights 3/4, 1/4) */
    loom_image *g = NULL;
    cr_assert_eq(loom_image_new(&g, 2, 1, 1, 0, NULL), LOOM_OK);
    g->data[0] = 0;
    g->data[1] = 255;
    cr_assert_eq(loom_img_resize(&o, g, 4, 1, NULL), LOOM_OK);
    cr_assert(o->data[0] == 0 && o->data[1] == 64 && o->data[2] == 191 && o->data[3] == 255, "%d %d %d %d",
              o->data[0], o->data[1], o->data[2], o->data[3]);
    loom_image_free(o);
    loom_image_free(g);
    loom_image_free(img);
}

Test(preprocess, padding_and_layout) {
    /* 200x300 of one colour: the 224x336 resized region holds the colour, the rest is -1; CHW order */
    loom_image *img = NULL;
    cr_assert_eq(loom_image_new(&img, 300, 200, 3, 0, NULL), LOOM_OK);
    for (size_t i = 0; i < (size_t)300 * 200; i++) {
        img->data[i * 3] = 255;
        img->data[i * 3 + 1] = 0;
        img->data[i * 3 + 2] = 51;
    }
    loom_img_tiles *t = NULL;
    cr_assert_eq(loom_img_preprocess(&t, img, NULL, NULL), LOOM_OK);
    cr_assert_eq(t->n_tiles, 1);
    cr_assert_eq(t->resized_h, 224);
    const float b = (51.0f / 255.0f - 0.5f) / 0.5f;
    for (int y = 0; y < 336; y++)
        for (int x = 0; x < 336; x++) {
            float r = t->data[(0 * 336 + y) * 336 + x], g = t->data[(1 * 336 + y) * 336 + x],
                  bl = t->data[(2 * 336 + y) * 336 + x];
            if (y < 224) cr_assert(r == 1.0f && g == -1.0f && bl == b, "(%d,%d) %f %f %f", x, y, r, g, bl);
            else cr_assert(r == -1.0f && g == -1.0f && bl == -1.0f);
        }
    loom_img_tiles_free(t);
    loom_image_free(img);
}

/* ==== speed: a 1000x700 JPEG into 10 tiles must take milliseconds ==== */

Test(preprocess, jpeg_1000x700_to_10_tiles, .timeout = 60) {
    char path[512];
    LOOM_SHARED_PATH(path, "testdata/llama4-tiny/images/img5_1000x700.jpg");
    size_t len = 0;
    void *buf = loom_test_read_file(path, &len);
    cr_assert_not_null(buf);
    double best_dec = 1e9, best_pre = 1e9, best_pre_scalar = 1e9;
    for (int it = 0; it < 5; it++) {
        loom_image *img = NULL;
        loom_img_tiles *t = NULL;
        double t0 = loom_time_s();
        loom_err err = {0};
        loom_status ds = loom_img_decode_memory(&img, buf, len, NULL, &err);
        if (ds == LOOM_ERR_UNSUPPORTED) cr_skip_test("%s", err.msg);
        cr_assert_eq(ds, LOOM_OK, "%s", err.msg);
        double t1 = loom_time_s();
        cr_assert_eq(loom_img_preprocess(&t, img, NULL, NULL), LOOM_OK);
        double t2 = loom_time_s();
        cr_assert_eq(t->n_tiles, 10);
        loom_img_tiles_free(t);
        loom_img_prep_params sp = loom_img_prep_default_params();
        sp.use_simd = 0;
        double t3 = loom_time_s();
        cr_assert_eq(loom_img_preprocess(&t, img, &sp, NULL), LOOM_OK);
        double t4 = loom_time_s();
        loom_img_tiles_free(t);
        loom_image_free(img);
        if (t1 - t0 < best_dec) best_dec = t1 - t0;
        if (t2 - t1 < best_pre) best_pre = t2 - t1;
        if (t4 - t3 < best_pre_scalar) best_pre_scalar = t4 - t3;
    }
    loom_free(buf);
    cr_log_info("1000x700 JPEG: decode %.2f ms, preprocess (10 tiles) %.2f ms (scalar resize %.2f ms)",
                best_dec * 1e3, best_pre * 1e3, best_pre_scalar * 1e3);
}

Test(preprocess, downscale_1920x1080_simd_and_scalar, .timeout = 60) {
    /* a real canvas downscale (1080x1920 -> 945x1680, 3x5 grid) plus the thumbnail */
    loom_image *img = NULL;
    cr_assert_eq(loom_image_new(&img, 1920, 1080, 3, 0, NULL), LOOM_OK);
    uint64_t seed = 5;
    fill_random(img->data, (size_t)1920 * 1080 * 3, &seed);
    double best[2] = {1e9, 1e9};
    for (int it = 0; it < 3; it++)
        for (int simd = 0; simd < 2; simd++) {
            loom_img_prep_params pp = loom_img_prep_default_params();
            pp.use_simd = simd;
            loom_img_tiles *t = NULL;
            double t0 = loom_time_s();
            cr_assert_eq(loom_img_preprocess(&t, img, &pp, NULL), LOOM_OK);
            double dt = loom_time_s() - t0;
            cr_assert(t->h_tiles == 3 && t->w_tiles == 5 && t->n_tiles == 16 && t->resized_h == 945);
            if (dt < best[simd]) best[simd] = dt;
            loom_img_tiles_free(t);
        }
    cr_log_info("1920x1080 -> 3x5 tiles + thumbnail: %.2f ms AVX2, %.2f ms scalar", best[1] * 1e3, best[0] * 1e3);
    loom_image_free(img);
}
