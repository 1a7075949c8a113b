/* tests/vision/test_decode.c — the decoder corpus: files generated here with libpng / TurboJPEG / libwebp
 * from known pixel arrays, decoded by loom, and checked pixel by pixel (exact for lossless formats, a
 * tolerance for JPEG and lossy WebP), following PIL's conversion rules documented in vision/vision.h. */
#include <criterion/criterion.h>

#if LOOM_WITH_PNG && LOOM_WITH_TURBOJPEG && LOOM_WITH_WEBP
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "tests/testutil.h"
#include "tests/vision/vis_encode.h"
#include "vision/vision.h"
#include "vision/vision_int.h"

static loom_image *decode_ok(const void *buf, size_t len, int apply_exif) {
    loom_err err = {0};
    loom_image *img = NULL;
    loom_img_decode_params p = loom_img_decode_default_params();
    p.apply_exif_orientation = apply_exif;
    loom_status st = loom_img_decode_memory(&img, buf, len, &p, &err);
    cr_assert_eq(st, LOOM_OK, "decode failed: %s", err.msg);
    cr_assert_eq(img->c, 3);
    return img;
}

static uint8_t pil_over_white(int v, int a) {
    unsigned t = 255u * (255u - (unsigned)a) + (unsigned)v * (unsigned)a + 128u;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

/* ==== PNG: every colour type and bit depth, plain and interlaced ==== */

typedef struct png_case {
    int ctype, depth, trns;
} png_case;

static void run_png_case(int w, int h, png_case pc, int interlace, uint64_t *seed) {
    const int ch = pc.ctype == 0 || pc.ctype == 3 ? 1 : pc.ctype == 4 ? 2 : pc.ctype == 2 ? 3 : 4;
    const int maxv = (1 << pc.depth) - 1;
    png_color pal[16];
    uint8_t pal_a[16];
    const int n_pal = pc.ctype == 3 ? (pc.depth >= 4 ? 16 : 1 << pc.depth) : 0;
    for (int i = 0; i < n_pal; i++) {
        pal[i].red = (uint8_t)(loom_test_rand_u64(seed) >> 56);
        pal[i].green = (uint8_t)(loom_test_rand_u64(seed) >> 56);
        pal[i].blue = (uint8_t)(loom_test_rand_u64(seed) >> 56);
        pal_a[i] = i % 3 == 0 ? 0 : (uint8_t)(i * 16);
    }
    int *samp = malloc(sizeof(int) * (size_t)w * h * ch);
    for (int i = 0; i < w * h * ch; i++) {
        uint64_t r = loom_test_rand_u64(seed) >> 20;
        samp[i] = pc.ctype == 3 ? (int)(r % (uint64_t)n_pal) : (int)(r % (uint64_t)(maxv + 1));
    }
    /* a fully transparent and a fully opaque pixel whenever there is alpha */
    if (ch == 4 || ch == 2) {
        samp[ch - 1] = 0;
        if (w * h > 1) samp[2 * ch - 1] = maxv;
    }
    size_t rb = png_rowbytes(w, pc.ctype, pc.depth);
    uint8_t *rows = calloc(rb * h, 1);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < ch; c++) {
                int v = samp[(y * w + x) * ch + c];
                size_t bit = ((size_t)x * ch + c) * pc.depth;
                uint8_t *row = rows + rb * y;
                if (pc.depth == 16) {
                    row[bit / 8] = (uint8_t)(v >> 8);
                    row[bit / 8 + 1] = (uint8_t)v;
                } else if (pc.depth == 8) {
                    row[bit / 8] = (uint8_t)v;
                } else {
                    row[bit / 8] |= (uint8_t)(v << (8 - pc.depth - bit % 8));
                }
            }
    png_color_16 tc = {0};
    png_spec s = {.w = w, .h = h, .color_type = pc.ctype, .depth = pc.depth, .interlace = interlace, .rows = rows};
    if (pc.ctype == 3) {
        s.palette = pal;
        s.n_palette = n_pal;
        if (pc.trns) {
            s.trans = pal_a;
            s.n_trans = n_pal;
        }
    } else if (pc.trns) {
        tc.gray = (png_uint_16)samp[0];
        tc.red = (png_uint_16)samp[0];
        tc.green = (png_uint_16)(ch >= 3 ? samp[1] : 0);
        tc.blue = (png_uint_16)(ch >= 3 ? samp[2] : 0);
        s.trans_color = &tc;
    }
    size_t len = 0;
    uint8_t *file = png_encode(&s, &len);
    cr_assert_not_null(file);
    loom_image *img = decode_ok(file, len, 1);
    cr_assert(img->w == w && img->h == h);
    for (int i = 0; i < w * h; i++) {
        const int *sp = samp + i * ch;
#define TO8(v) (pc.depth == 16 ? (v) >> 8 : pc.depth == 8 ? (v) : (v) * 255 / maxv)
        uint8_t e[3];
        switch (pc.ctype) {
        case 0:
        case 4: e[0] = e[1] = e[2] = (uint8_t)TO8(sp[0]); break; /* LA drops alpha */
        case 2: e[0] = (uint8_t)TO8(sp[0]), e[1] = (uint8_t)TO8(sp[1]), e[2] = (uint8_t)TO8(sp[2]); break;
        case 3: e[0] = pal[sp[0]].red, e[1] = pal[sp[0]].green, e[2] = pal[sp[0]].blue; break; /* no compositing */
        default:
            for (int c = 0; c < 3; c++) e[c] = pil_over_white(TO8(sp[c]), TO8(sp[3]));
        }
#undef TO8
        const uint8_t *g = img->data + i * 3;
        cr_assert(g[0] == e[0] && g[1] == e[1] && g[2] == e[2],
                  "png %dx%d ctype %d depth %d trns %d interlace %d pixel %d: got %d,%d,%d want %d,%d,%d", w, h,
                  pc.ctype, pc.depth, pc.trns, interlace, i, g[0], g[1], g[2], e[0], e[1], e[2]);
    }
    loom_image_free(img);
    free(file);
    free(rows);
    free(samp);
}

Test(png, every_color_type_and_depth) {
    static const png_case cases[] = {
        {0, 1, 0}, {0, 2, 0}, {0, 4, 0}, {0, 8, 0}, {0, 16, 0}, {0, 8, 1}, {0, 16, 1}, /* gray (+tRNS) */
        {2, 8, 0}, {2, 16, 0}, {2, 8, 1},                                                /* RGB (+tRNS) */
        {3, 1, 0}, {3, 2, 0}, {3, 4, 0}, {3, 8, 0}, {3, 8, 1}, {3, 4, 1},                /* palette (+tRNS) */
        {4, 8, 0}, {4, 16, 0},                                                           /* gray + alpha */
        {6, 8, 0}, {6, 16, 0},                                                           /* RGBA */
    };
    static const int sizes[][2] = {{1, 1}, {17, 5}, {5, 17}, {64, 3}};
    uint64_t seed = 7;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            for (int il = 0; il < 2; il++) run_png_case(sizes[s][0], sizes[s][1], cases[c], il, &seed);
}

Test(png, exif_orientation_chunk) {
    uint8_t rgb[3 * 3 * 2]; /* 3 wide, 2 high */
    for (int i = 0; i < 18; i++) rgb[i] = (uint8_t)(i * 10);
    uint8_t tiff[26];
    exif_tiff(tiff, 6, 0);
    png_spec s = {.w = 3, .h = 2, .color_type = 2, .depth = 8, .rows = rgb, .exif = tiff, .exif_len = 26};
    size_t len = 0;
    uint8_t *f = png_encode(&s, &len);
    loom_image *a = decode_ok(f, len, 0), *b = decode_ok(f, len, 1);
    cr_assert(a->w == 3 && a->h == 2 && b->w == 2 && b->h == 3);
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 2; x++) /* 6 = quarter turn clockwise: out(x, y) = in(y, H-1-x) */
            cr_assert(memcmp(b->data + (y * 2 + x) * 3, a->data + ((1 - x) * 3 + y) * 3, 3) == 0);
    loom_image_free(a), loom_image_free(b), free(f);
}

/* ==== JPEG ==== */

static uint8_t *smooth_rgb(int w, int h) {
    uint8_t *p = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *q = p + ((size_t)y * w + x) * 3;
            q[0] = (uint8_t)(40 + 170 * x / (w > 1 ? w - 1 : 1));
            q[1] = (uint8_t)(30 + 180 * y / (h > 1 ? h - 1 : 1));
            q[2] = (uint8_t)(128 + 60 * ((x + y) % 2 ? 0 : 0));
        }
    return p;
}

static void diff_stats(const uint8_t *a, const uint8_t *b, size_t n, double *mad, int *maxd) {
    double s = 0;
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        s += d;
        if (d > m) m = d;
    }
    *mad = s / (double)n;
    *maxd = m;
}

Test(jpeg, baseline_progressive_and_odd_sizes) {
    static const struct { int w, h, subsamp, flags; } cs[] = {
        {64, 48, TJSAMP_444, 0}, {64, 48, TJSAMP_420, TJFLAG_PROGRESSIVE}, {17, 5, TJSAMP_420, 0},
        {1, 1, TJSAMP_444, 0},   {5, 17, TJSAMP_422, TJFLAG_PROGRESSIVE},  {33, 9, TJSAMP_440, 0},
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        uint8_t *src = smooth_rgb(cs[i].w, cs[i].h);
        size_t len = 0;
        uint8_t *jpg = jpeg_encode(src, cs[i].w, cs[i].h, TJPF_RGB, cs[i].subsamp, 95, cs[i].flags, &len);
        cr_assert_not_null(jpg);
        loom_image *img = decode_ok(jpg, len, 1);
        cr_assert(img->w == cs[i].w && img->h == cs[i].h);
        double mad;
        int maxd;
        diff_stats(img->data, src, (size_t)cs[i].w * cs[i].h * 3, &mad, &maxd);
        /* chroma subsampling of a steep colour ramp on a tiny image costs a few LSB more than 4:4:4 */
        const double tol = cs[i].subsamp == TJSAMP_444 ? 3.0 : 8.0;
        cr_assert(mad < tol && maxd < 40, "jpeg %dx%d case %zu: MAD %.2f max %d", cs[i].w, cs[i].h, i, mad, maxd);
        /* TurboJPEG's own decode with the same defaults must agree exactly: loom adds no processing */
        uint8_t *ref = malloc((size_t)cs[i].w * cs[i].h * 3);
        tjhandle tj = tjInitDecompress();
        cr_assert_eq(tjDecompress2(tj, jpg, len, ref, cs[i].w, 0, cs[i].h, TJPF_RGB, 0), 0);
        tjDestroy(tj);
        cr_assert(memcmp(ref, img->data, (size_t)cs[i].w * cs[i].h * 3) == 0);
        free(ref);
        loom_image_free(img);
        tjFree(jpg);
        free(src);
    }
}

Test(jpeg, grayscale) {
    int w = 23, h = 11;
    uint8_t *g = malloc((size_t)w * h);
    for (int i = 0; i < w * h; i++) g[i] = (uint8_t)(20 + (i % w) * 9);
    size_t len = 0;
    uint8_t *jpg = jpeg_encode(g, w, h, TJPF_GRAY, TJSAMP_GRAY, 95, 0, &len);
    cr_assert_not_null(jpg);
    loom_image *img = decode_ok(jpg, len, 1);
    double s = 0;
    for (int i = 0; i < w * h; i++) {
        const uint8_t *p = img->data + i * 3;
        cr_assert(p[0] == p[1] && p[1] == p[2], "gray JPEG pixel %d not replicated", i);
        s += abs((int)p[0] - g[i]);
    }
    cr_assert(s / (w * h) < 2.0, "gray MAD %.2f", s / (w * h));
    loom_image_free(img);
    tjFree(jpg);
    free(g);
}

Test(jpeg, cmyk_adobe_inverted) {
    /* stored values as TurboJPEG writes and returns them; PIL reads them inverted (Adobe) */
    int w = 32, h = 16;
    uint8_t *cmyk = malloc((size_t)w * h * 4);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = cmyk + ((size_t)y * w + x) * 4;
            if (x < 8) { /* stored all 255: no ink -> white */
                p[0] = p[1] = p[2] = p[3] = 255;
            } else if (x < 16) { /* full cyan ink (stored C = 0), no black -> (0, 255, 255) */
                p[0] = 0, p[1] = 255, p[2] = 255, p[3] = 255;
            } else { /* a smooth mix */
                p[0] = (uint8_t)(100 + 4 * x), p[1] = (uint8_t)(200 - 3 * y), p[2] = 180, p[3] = (uint8_t)(150 + 3 * y);
            }
        }
    size_t len = 0;
    uint8_t *jpg = jpeg_encode(cmyk, w, h, TJPF_CMYK, TJSAMP_444, 98, 0, &len);
    cr_assert_not_null(jpg);
    loom_image *img = decode_ok(jpg, len, 1);
    double s = 0;
    int maxd = 0;
    for (int i = 0; i < w * h; i++) {
        const uint8_t *p = cmyk + i * 4;
        int nk = p[3];
        for (int c = 0; c < 3; c++) {
            int cc = 255 - p[c], t = cc * nk + 128;
            int e = nk - (((t >> 8) + t) >> 8);
            int d = abs(e - img->data[i * 3 + c]);
            s += d;
            if (d > maxd) maxd = d;
        }
    }
    cr_assert(s / (w * h * 3) < 2.0 && maxd < 16, "CMYK MAD %.2f max %d", s / (w * h * 3), maxd);
    const uint8_t *white = img->data + (4 * w + 3) * 3, *cyan = img->data + (4 * w + 12) * 3;
    cr_assert(white[0] > 245 && white[1] > 245 && white[2] > 245);
    cr_assert(cyan[0] < 10 && cyan[1] > 245 && cyan[2] > 245, "cyan %d %d %d", cyan[0], cyan[1], cyan[2]);
    loom_image_free(img);
    tjFree(jpg);
    free(cmyk);
}

/* Four 8x8 quadrants (JPEG blocks, so colours stay clean): red TL, green TR, blue BL, white BR; 16 wide x 24
 * high (bottom half split at row 16 so the image is not square). */
static void quad_pixel(int x, int y, uint8_t *p) {
    int right = x >= 8, bottom = y >= 16;
    static const uint8_t col[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}};
    memcpy(p, col[bottom * 2 + right], 3);
}

static int near_color(const uint8_t *p, const uint8_t *c) {
    return abs(p[0] - c[0]) < 40 && abs(p[1] - c[1]) < 40 && abs(p[2] - c[2]) < 40;
}

Test(jpeg, exif_orientation_all_values) {
    const int W = 16, H = 24;
    uint8_t *src = malloc((size_t)W * H * 3);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) quad_pixel(x, y, src + ((size_t)y * W + x) * 3);
    size_t n0 = 0;
    uint8_t *jpg = jpeg_encode(src, W, H, TJPF_RGB, TJSAMP_444, 95, 0, &n0);
    static const uint8_t RED[3] = {255, 0, 0}, GREEN[3] = {0, 255, 0}, BLUE[3] = {0, 0, 255};
    for (int be = 0; be < 2; be++)
        for (int o = 1; o <= 8; o++) {
            size_t n;
            uint8_t *f = jpeg_add_exif(jpg, n0, o, be, &n);
            loom_image *st = decode_ok(f, n, 0), *ap = decode_ok(f, n, 1);
            cr_assert(st->w == W && st->h == H, "ignoring EXIF must keep the stored pixels");
            int swap = o >= 5;
            cr_assert(ap->w == (swap ? H : W) && ap->h == (swap ? W : H), "orientation %d: %dx%d", o, ap->w, ap->h);
            for (int y = 0; y < ap->h; y++)
                for (int x = 0; x < ap->w; x++) {
                    int sx, sy;
                    switch (o) {
                    case 1: sx = x, sy = y; break;
                    case 2: sx = W - 1 - x, sy = y; break;
                    case 3: sx = W - 1 - x, sy = H - 1 - y; break;
                    case 4: sx = x, sy = H - 1 - y; break;
                    case 5: sx = y, sy = x; break;
                    case 6: sx = y, sy = H - 1 - x; break;
                    case 7: sx = W - 1 - y, sy = H - 1 - x; break;
                    default: sx = W - 1 - y, sy = x; break;
                    }
                    cr_assert(memcmp(ap->data + ((size_t)y * ap->w + x) * 3, st->data + ((size_t)sy * W + sx) * 3, 3) == 0,
                              "orientation %d (%s) mismatch at %d,%d", o, be ? "MM" : "II", x, y);
                }
            /* what a viewer shows: 3 = upside down, 6 = turned clockwise, 8 = counter-clockwise */
            const uint8_t *tl = ap->data + (1 * ap->w + 1) * 3, *tr = ap->data + (1 * ap->w + ap->w - 2) * 3;
            const uint8_t *bl = ap->data + ((size_t)(ap->h - 2) * ap->w + 1) * 3;
            if (o == 3) cr_assert(near_color(tr, BLUE) && near_color(bl, GREEN));
            if (o == 6) cr_assert(near_color(tr, RED) && near_color(tl, BLUE), "6: tr %d,%d,%d", tr[0], tr[1], tr[2]);
            if (o == 8) cr_assert(near_color(bl, RED) && near_color(tl, GREEN), "8: bl %d,%d,%d", bl[0], bl[1], bl[2]);
            loom_image_free(st);
            loom_image_free(ap);
            free(f);
        }
    tjFree(jpg);
    free(src);
}

Test(exif, parser_bounds) {
    uint8_t t[26];
    exif_tiff(t, 6, 0);
    cr_assert_eq(vis_exif_orientation(t, 26), 6);
    exif_tiff(t, 8, 1);
    cr_assert_eq(vis_exif_orientation(t, 26), 8);
    for (size_t n = 0; n < 20; n++) cr_assert_eq(vis_exif_orientation(t, n), 1, "short block of %zu", n);
    exif_tiff(t, 9, 0);
    cr_assert_eq(vis_exif_orientation(t, 26), 1); /* out of range: ignored like PIL */
    exif_tiff(t, 3, 0);
    t[4] = 0xF0; /* IFD offset past the end */
    cr_assert_eq(vis_exif_orientation(t, 26), 1);
    exif_tiff(t, 3, 0);
    t[8] = 0xFF, t[9] = 0xFF; /* 65535 entries claimed */
    cr_assert_eq(vis_exif_orientation(t, 26), 3); /* the first entry is still in bounds */
    t[10] = 0x13; /* first entry no longer orientation: the scan must stop at the end */
    cr_assert_eq(vis_exif_orientation(t, 26), 1);
    uint8_t withhdr[32];
    memcpy(withhdr, "Exif\0\0", 6);
    exif_tiff(withhdr + 6, 5, 1);
    cr_assert_eq(vis_exif_orientation(withhdr, 32), 5);
    cr_assert_eq(vis_exif_orientation(NULL, 0), 1);
}

/* ==== WebP ==== */

Test(webp, lossless_rgb_rgba_and_lossy) {
    int w = 17, h = 5;
    uint64_t seed = 99;
    uint8_t *rgba = malloc((size_t)w * h * 4), *rgb = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h; i++) {
        for (int c = 0; c < 4; c++) rgba[i * 4 + c] = (uint8_t)(loom_test_rand_u64(&seed) >> 56);
        if (i == 0) rgba[3] = 0;
        if (i == 1) rgba[7] = 255;
        memcpy(rgb + i * 3, rgba + i * 4, 3);
    }
    uint8_t *out = NULL;
    size_t n = WebPEncodeLosslessRGB(rgb, w, h, w * 3, &out);
    cr_assert(n > 0);
    loom_image *img = decode_ok(out, n, 1);
    cr_assert(img->w == w && img->h == h);
    cr_assert(memcmp(img->data, rgb, (size_t)w * h * 3) == 0, "lossless RGB WebP not exact");
    loom_image_free(img);
    WebPFree(out);

    n = WebPEncodeLosslessRGBA(rgba, w, h, w * 4, &out);
    cr_assert(n > 0);
    img = decode_ok(out, n, 1);
    for (int i = 0; i < w * h; i++)
        for (int c = 0; c < 3; c++) {
            uint8_t e = pil_over_white(rgba[i * 4 + c], rgba[i * 4 + 3]);
            cr_assert_eq(img->data[i * 3 + c], e, "RGBA WebP pixel %d ch %d: %d want %d", i, c, img->data[i * 3 + c], e);
        }
    loom_image_free(img);
    WebPFree(out);

    int lw = 64, lh = 48;
    uint8_t *sm = smooth_rgb(lw, lh);
    n = WebPEncodeRGB(sm, lw, lh, lw * 3, 95.0f, &out);
    cr_assert(n > 0);
    img = decode_ok(out, n, 1);
    double mad;
    int maxd;
    diff_stats(img->data, sm, (size_t)lw * lh * 3, &mad, &maxd);
    cr_assert(mad < 3.0, "lossy WebP MAD %.2f", mad);
    loom_image_free(img);
    WebPFree(out);
    free(sm), free(rgba), free(rgb);
}

/* ==== files and formats ==== */

Test(decode, file_errors_name_the_file) {
    loom_err err = {0};
    loom_image *img = (loom_image *)1;
    cr_assert_eq(loom_img_decode_file(&img, "/nonexistent/dir/cat.png", NULL, &err), LOOM_ERR_IO);
    cr_assert_null(img);
    cr_assert(strstr(err.msg, "/nonexistent/dir/cat.png"), "%s", err.msg);

    char path[] = "/tmp/loom_vis_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    const char gif[] = "GIF89a\x01\x00\x01\x00";
    cr_assert_eq(write(fd, gif, sizeof gif), (ssize_t)sizeof gif);
    close(fd);
    cr_assert_eq(loom_img_decode_file(&img, path, NULL, &err), LOOM_ERR_UNSUPPORTED);
    cr_assert(strstr(err.msg, path) && strstr(err.msg, "GIF"), "%s", err.msg);

    /* a truncated PNG: the message names the file and the format */
    uint8_t px[3] = {1, 2, 3};
    png_spec s = {.w = 1, .h = 1, .color_type = 2, .depth = 8, .rows = px};
    size_t len = 0;
    uint8_t *f = png_encode(&s, &len);
    FILE *fp = fopen(path, "wb");
    fwrite(f, 1, len - 5, fp);
    fclose(fp);
    cr_assert_eq(loom_img_decode_file(&img, path, NULL, &err), LOOM_ERR_FORMAT);
    cr_assert(strstr(err.msg, path) && strstr(err.msg, "png:"), "%s", err.msg);
    fp = fopen(path, "wb");
    fwrite(f, 1, len, fp);
    fclose(fp);
    loom_img_decode_params p = loom_img_decode_default_params();
    p.max_file_bytes = 10;
    cr_assert_eq(loom_img_decode_file(&img, path, &p, &err), LOOM_ERR_LIMIT);
    cr_assert_eq(loom_img_decode_file(&img, path, NULL, &err), LOOM_OK, "%s", err.msg);
    cr_assert(img->w == 1 && img->data[0] == 1 && img->data[2] == 3);
    loom_image_free(img);
    unlink(path);
    free(f);

    cr_assert_eq(loom_img_detect_format("\xFF\xD8\xFF", 3), LOOM_IMG_FORMAT_JPEG);
    cr_assert_eq(loom_img_detect_format("RIFF\0\0\0\0WEBP", 12), LOOM_IMG_FORMAT_WEBP);
    cr_assert_eq(loom_img_detect_format("RIFF", 4), LOOM_IMG_FORMAT_UNKNOWN);
    cr_assert_eq(loom_img_decode_memory(&img, "", 0, NULL, &err), LOOM_ERR_FORMAT);
}

Test(jpeg, extraneous_bytes_are_tolerated_other_warnings_are_not) {
    uint8_t *src = smooth_rgb(32, 16);
    size_t len = 0;
    uint8_t *jpg = jpeg_encode(src, 32, 16, TJPF_RGB, TJSAMP_444, 90, 0, &len);
    cr_assert(len > 4 && jpg[len - 2] == 0xFF && jpg[len - 1] == 0xD9);
    loom_image *ref = decode_ok(jpg, len, 1);
    /* junk between the scan data and EOI: libjpeg warns "3 extraneous bytes before marker 0xd9" */
    uint8_t *j2 = malloc(len + 3);
    memcpy(j2, jpg, len - 2);
    memcpy(j2 + len - 2, "\x00\x11\x22\xFF\xD9", 5);
    loom_image *img = decode_ok(j2, len + 3, 1);
    cr_assert(memcmp(img->data, ref->data, (size_t)32 * 16 * 3) == 0);
    loom_image_free(img);
    /* EOI missing: "Premature end of JPEG file" is a truncation, an error like PIL's */
    loom_err err = {0};
    cr_assert_eq(loom_img_decode_memory(&img, jpg, len - 2, NULL, &err), LOOM_ERR_FORMAT);
    cr_assert(strstr(err.msg, "jpeg:") && strstr(err.msg, "Premature end"), "%s", err.msg);
    loom_image_free(ref);
    free(j2);
    tjFree(jpg);
    free(src);
}

#else /* the corpus is built with the encoders of all three libraries */

Test(decode, needs_image_libraries) { cr_skip_test("built without libpng, libturbojpeg or libwebp"); }

#endif
