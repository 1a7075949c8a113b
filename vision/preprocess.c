/* vision/preprocess.c — Llama 4 image preprocessing: RGB pixels to normalised 336x336 tiles.
 *
 * This is Meta's VariableSizeImageTransform plus the global thumbnail (ResizeNormalizeImageTransform), as
 * ../shared/design/LLAMA4.md §3 describes and the reference tiles in ../shared/testdata/llama4-tiny check:
 *
 *   plan      candidate canvases (a, n/a) for n = max_tiles..1, grouped by aspect ratio in first-seen order;
 *             best fit by the float32 scale min(Hc/H, Wc/W) (smallest >= 1, else largest), smallest area on
 *             ties; resize target limited to max(side, 336) per side, aspect kept with Python's floor(side *
 *             (target/other)) in double
 *   resize    PIL Image.resize(BILINEAR) on 8-bit pixels, bit-exact (below)
 *   tiles     pad right/bottom with 0, (u8/255 - 0.5)/0.5 in f32, cut row-major, thumbnail last if > 1 tile
 *
 * PIL's resample (libImaging/Resample.c), reproduced here: for each axis, output pixel i covers the input
 * interval centred at (i + 0.5) * scale; the triangle filter is widened by max(scale, 1) (so shrinking
 * averages, i.e. antialiasing), taps are [round(center - support), round(center + support)) clipped to the
 * image, weights normalised to sum 1 in double, then rounded to int32 with 22 fractional bits. The
 * horizontal pass runs first (only over the rows the vertical pass will read), its result is rounded to u8
 * (add 2^21, shift, clamp), then the vertical pass. Integer arithmetic makes the AVX2 kernels
 * (resize_avx2.c) bit-identical to the scalar ones here; pixels are processed as RGBX like PIL's layout.
 */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "vision/vision.h"
#include "vision/vision_int.h"

/* ==== parameters and plan ==== */

loom_img_prep_params loom_img_prep_default_params(void) {
    loom_img_prep_params p = {.tile_size = LOOM_IMG_TILE_SIZE, .max_tiles = LOOM_IMG_MAX_TILES, .use_simd = 1};
    return p;
}

#define MAX_CANDIDATES 1024

/* Meta's find_supported_resolutions: (h_tiles, w_tiles) pairs in its dict order. Returns the count. */
static int candidate_grids(int max_tiles, int (*grid)[2]) {
    int n_keys = 0, count = 0;
    int key_a[MAX_CANDIDATES], key_b[MAX_CANDIDATES]; /* ratio of each key as a/b */
    int pair_key[MAX_CANDIDATES], pa[MAX_CANDIDATES], pb[MAX_CANDIDATES];
    int np = 0;
    for (int n = max_tiles; n >= 1; n--) {
        for (int a = 1; a <= n; a++) {
            if (n % a) continue;
            int b = n / a, k;
            /* the dict key is the float a/b; equal rationals give equal doubles */
            for (k = 0; k < n_keys; k++)
                if ((long)key_a[k] * b == (long)a * key_b[k]) break;
            if (k == n_keys) {
                key_a[n_keys] = a;
                key_b[n_keys] = b;
                n_keys++;
            }
            pair_key[np] = k;
            pa[np] = a;
            pb[np] = b;
            np++;
        }
    }
    for (int k = 0; k < n_keys; k++)
        for (int i = 0; i < np; i++)
            if (pair_key[i] == k) {
                grid[count][0] = pa[i];
                grid[count][1] = pb[i];
                count++;
            }
    return count;
}

loom_status loom_img_plan_make(loom_img_plan *plan, int h, int w, const loom_img_prep_params *params,
                               loom_err *err) {
    loom_img_prep_params p = params ? *params : loom_img_prep_default_params();
    if (h <= 0 || w <= 0) return LOOM_FAIL(err, LOOM_ERR_INVALID, "preprocess: bad image size %dx%d", w, h);
    /* the number of (a, n/a) pairs grows like n log n; 64 tiles keep it well under MAX_CANDIDATES */
    if (p.tile_size < 1 || p.tile_size > 4096 || p.max_tiles < 1 || p.max_tiles > 64)
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "preprocess: tile_size %d / max_tiles %d out of range", p.tile_size,
                         p.max_tiles);
    const int S = p.tile_size;
    int grid[MAX_CANDIDATES][2];
    int n = candidate_grids(p.max_tiles, grid);

    /* torch: int64 / int64 is a float32 true division; the selection compares those float32 values */
    float scale[MAX_CANDIDATES];
    float best_up = INFINITY, best_down = -INFINITY;
    for (int i = 0; i < n; i++) {
        float sh = (float)(grid[i][0] * S) / (float)h;
        float sw = (float)(grid[i][1] * S) / (float)w;
        scale[i] = sw > sh ? sh : sw;
        if (scale[i] >= 1.0f) {
            if (scale[i] < best_up) best_up = scale[i];
        } else if (scale[i] > best_down) {
            best_down = scale[i];
        }
    }
    const float sel = isfinite(best_up) ? best_up : best_down;
    int best = -1;
    for (int i = 0; i < n; i++) {
        if (scale[i] != sel) continue;
        if (best < 0 || grid[i][0] * grid[i][1] < grid[best][0] * grid[best][1]) best = i;
    }
    if (LOOM_NEVER(best < 0)) return LOOM_FAIL(err, LOOM_ERR_INVALID, "preprocess: no canvas for %dx%d", w, h);
    const int ht = grid[best][0], wt = grid[best][1];
    const int Hc = ht * S, Wc = wt * S;

    /* resize_without_distortion with max_upscaling_size = S, then _get_max_res_without_distortion */
    const int tw = (w > S ? w : S) < Wc ? (w > S ? w : S) : Wc;
    const int th = (h > S ? h : S) < Hc ? (h > S ? h : S) : Hc;
    const double scale_w = (double)tw / w, scale_h = (double)th / h;
    int nw, nh;
    if (scale_w < scale_h) {
        nw = tw;
        double f = floor((double)h * scale_w);
        nh = f < th ? (int)f : th;
    } else {
        nh = th;
        double f = floor((double)w * scale_h);
        nw = f < tw ? (int)f : tw;
    }
    if (nw < 1) nw = 1; /* a 1-pixel sliver would floor to 0; PIL cannot resize to 0 either */
    if (nh < 1) nh = 1;
    plan->h_tiles = ht;
    plan->w_tiles = wt;
    plan->resized_h = nh;
    plan->resized_w = nw;
    plan->n_tiles = ht * wt + (ht * wt > 1);
    return LOOM_OK;
}

/* ==== resample coefficients (PIL precompute_coeffs + normalize_coeffs_8bpc, bilinear filter) ==== */

static double bilinear_filter(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

loom_status vis_coeffs_init(vis_coeffs *c, int in_size, int out_size, loom_err *err) {
    memset(c, 0, sizeof *c);
    if (in_size <= 0 || out_size <= 0)
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "resize: bad sizes %d -> %d", in_size, out_size);
    /* PIL: (double)(in1 - in0) / outSize with float box corners; exact for any int size */
    double scale = (double)((float)in_size - 0.0f) / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale;
    double ks = ceil(support) * 2 + 1;
    if (ks > 1e6) return LOOM_FAIL(err, LOOM_ERR_LIMIT, "resize: %d -> %d needs too wide a filter", in_size, out_size);
    int ksize = (int)ks;
    size_t nk;
    if (!loom_size_mul((size_t)out_size, (size_t)ksize, &nk) || nk > ((size_t)1 << 28))
        return LOOM_FAIL(err, LOOM_ERR_LIMIT, "resize: %d -> %d coefficient table too large", in_size, out_size);
    double *kd = loom_malloc(sizeof(double) * (size_t)ksize);
    c->k = loom_malloc(sizeof(int32_t) * nk);
    c->bounds = loom_malloc(sizeof(int) * 2 * (size_t)out_size);
    if (!kd || !c->k || !c->bounds) {
        loom_free(kd);
        vis_coeffs_release(c);
        return LOOM_FAIL(err, LOOM_ERR_NOMEM, "resize: out of memory for coefficients");
    }
    const double ss = 1.0 / filterscale;
    for (int xx = 0; xx < out_size; xx++) {
        double center = 0.0 + (xx + 0.5) * scale;
        double ww = 0.0;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        if (xmax > ksize) xmax = ksize; /* cannot happen: the window is at most 2*ceil(support)+1 wide */
        for (int x = 0; x < xmax; x++) {
            double wgt = bilinear_filter((x + xmin - center + 0.5) * ss);
            kd[x] = wgt;
            ww += wgt;
        }
        int32_t *k = c->k + (size_t)xx * ksize;
        for (int x = 0; x < ksize; x++) {
            double v = 0.0;
            if (x < xmax) v = ww != 0.0 ? kd[x] / ww : kd[x];
            k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << VIS_PRECISION_BITS)) : (int32_t)(0.5 + v * (1 << VIS_PRECISION_BITS));
        }
        c->bounds[xx * 2] = xmin;
        c->bounds[xx * 2 + 1] = xmax < 0 ? 0 : xmax;
    }
    loom_free(kd);
    c->out_size = out_size;
    c->ksize = ksize;
    return LOOM_OK;
}

void vis_coeffs_release(vis_coeffs *c) {
    loom_free(c->k);
    loom_free(c->bounds);
    c->k = NULL;
    c->bounds = NULL;
}

/* ==== scalar kernels (the reference for resize_avx2.c) ==== */

static inline uint8_t clip8(int32_t v) {
    v >>= VIS_PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

void vis_resample_h_scalar(uint8_t *dst, size_t dst_stride, const uint8_t *src, size_t src_stride, int rows,
                           const vis_coeffs *c) {
    for (int r = 0; r < rows; r++) {
        const uint8_t *s = src + (size_t)r * src_stride;
        uint8_t *d = dst + (size_t)r * dst_stride;
        for (int xx = 0; xx < c->out_size; xx++) {
            const int xmin = c->bounds[xx * 2], cnt = c->bounds[xx * 2 + 1];
            const int32_t *k = c->k + (size_t)xx * c->ksize;
            int32_t s0 = 1 << (VIS_PRECISION_BITS - 1), s1 = s0, s2 = s0, s3 = s0;
            for (int x = 0; x < cnt; x++) {
                const uint8_t *p = s + (size_t)(xmin + x) * 4;
                s0 += p[0] * k[x];
                s1 += p[1] * k[x];
                s2 += p[2] * k[x];
                s3 += p[3] * k[x];
            }
            d[xx * 4 + 0] = clip8(s0);
            d[xx * 4 + 1] = clip8(s1);
            d[xx * 4 + 2] = clip8(s2);
            d[xx * 4 + 3] = clip8(s3);
        }
    }
}

void vis_resample_v_scalar(uint8_t *dst, const uint8_t *src, size_t row_bytes, const vis_coeffs *c) {
    for (int yy = 0; yy < c->out_size; yy++) {
        const int ymin = c->bounds[yy * 2], cnt = c->bounds[yy * 2 + 1];
        const int32_t *k = c->k + (size_t)yy * c->ksize;
        const uint8_t *base = src + (size_t)ymin * row_bytes;
        uint8_t *d = dst + (size_t)yy * row_bytes;
        for (size_t i = 0; i < row_bytes; i++) {
            int32_t s = 1 << (VIS_PRECISION_BITS - 1);
            for (int y = 0; y < cnt; y++) s += base[(size_t)y * row_bytes + i] * k[y];
            d[i] = clip8(s);
        }
    }
}

int vis_cpu_has_avx2(void) {
#if defined(__x86_64__) || defined(__i386__)
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") ? 1 : 0;
    }
    return cached;
#else
    return 0;
#endif
}

/* ==== two-pass resize (PIL ImagingResampleInner) ==== */

loom_status vis_resize_rgbx(uint8_t *dst, int ow, int oh, const uint8_t *src, int w, int h, int simd,
                            loom_err *err) {
    const int avx2 = simd && vis_cpu_has_avx2();
    const int need_h = ow != w, need_v = oh != h;
    if (!need_h && !need_v) {
        memcpy(dst, src, (size_t)w * h * 4);
        return LOOM_OK;
    }
    vis_coeffs cv, ch = {0};
    loom_status st = vis_coeffs_init(&cv, h, oh, err);
    if (st != LOOM_OK) return st;
    /* the rows the vertical pass reads: the horizontal pass skips the others */
    const int yfirst = cv.bounds[0];
    const int ylast = cv.bounds[(oh - 1) * 2] + cv.bounds[(oh - 1) * 2 + 1];
    uint8_t *tmp = NULL;
    const uint8_t *vsrc = src;
    if (need_h) {
        st = vis_coeffs_init(&ch, w, ow, err);
        if (st != LOOM_OK) goto done;
        uint8_t *hdst = dst;
        if (need_v) {
            tmp = loom_malloc((size_t)ow * 4 * (size_t)(ylast - yfirst));
            if (!tmp) {
                st = LOOM_FAIL(err, LOOM_ERR_NOMEM, "resize: out of memory for %dx%d", ow, ylast - yfirst);
                goto done;
            }
            hdst = tmp;
            for (int i = 0; i < oh; i++) cv.bounds[i * 2] -= yfirst;
        }
        (avx2 ? vis_resample_h_avx2 : vis_resample_h_scalar)(hdst, (size_t)ow * 4, src + (size_t)yfirst * w * 4,
                                                             (size_t)w * 4, ylast - yfirst, &ch);
        vsrc = tmp;
    }
    if (need_v) (avx2 ? vis_resample_v_avx2 : vis_resample_v_scalar)(dst, vsrc, (size_t)ow * 4, &cv);
done:
    loom_free(tmp);
    vis_coeffs_release(&ch);
    vis_coeffs_release(&cv);
    return st;
}

static loom_status to_rgbx(uint8_t **out, const loom_image *img, loom_err *err) {
    size_t n = (size_t)img->w * (size_t)img->h;
    uint8_t *b = loom_calloc(n, 4);
    *out = b;
    if (!b) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "resize: out of memory for %dx%d", img->w, img->h);
    const int c = img->c;
    for (size_t i = 0; i < n; i++) memcpy(b + i * 4, img->data + i * c, (size_t)c);
    return LOOM_OK;
}

loom_status loom_img_resize(loom_image **out, const loom_image *img, int w, int h, loom_err *err) {
    *out = NULL;
    if (!img || !img->data || img->c < 1 || img->c > 4 || img->w <= 0 || img->h <= 0)
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "resize: invalid source image");
    if (w <= 0 || h <= 0) return LOOM_FAIL(err, LOOM_ERR_INVALID, "resize: bad target size %dx%d", w, h);
    loom_image *o = NULL;
    loom_status st = loom_image_new(&o, w, h, img->c, 0, err);
    if (st != LOOM_OK) return st;
    uint8_t *src = NULL, *dst = loom_malloc((size_t)w * h * 4);
    if (!dst) {
        st = LOOM_FAIL(err, LOOM_ERR_NOMEM, "resize: out of memory for %dx%d", w, h);
        goto done;
    }
    if ((st = to_rgbx(&src, img, err)) != LOOM_OK) goto done;
    if ((st = vis_resize_rgbx(dst, w, h, src, img->w, img->h, 1, err)) != LOOM_OK) goto done;
    for (size_t i = 0; i < (size_t)w * h; i++) memcpy(o->data + i * img->c, dst + i * 4, (size_t)img->c);
done:
    loom_free(src);
    loom_free(dst);
    if (st != LOOM_OK) {
        loom_image_free(o);
        return st;
    }
    *out = o;
    return LOOM_OK;
}

/* ==== tiles ==== */

/* torchvision to_tensor (u8 / 255 in f32) then Normalize((x - 0.5) / 0.5): the same two float ops. */
static void norm_lut(float lut[256]) {
    for (int v = 0; v < 256; v++) lut[v] = ((float)v / 255.0f - 0.5f) / 0.5f;
}

/* Writes tile (ty, tx) of the zero-padded canvas holding pix [ph, pw, 4] at its top-left. */
static void write_tile(float *t, /* [3, S, S] f32 */ const uint8_t *pix, int pw, int ph, int ty, int tx, int S,
                       const float lut[256]) {
    for (int c = 0; c < 3; c++) {
        for (int y = 0; y < S; y++) {
            float *o = t + ((size_t)c * S + y) * S;
            const int Y = ty * S + y;
            int x = 0;
            if (Y < ph) {
                const uint8_t *row = pix + (size_t)Y * pw * 4;
                const int x0 = tx * S, xn = pw - x0 < S ? pw - x0 : S;
                for (; x < xn; x++) o[x] = lut[row[(size_t)(x0 + x) * 4 + c]];
            }
            for (; x < S; x++) o[x] = lut[0];
        }
    }
}

loom_status loom_img_preprocess(loom_img_tiles **out, const loom_image *img, const loom_img_prep_params *params,
                                loom_err *err) {
    if (!out) return LOOM_FAIL(err, LOOM_ERR_INVALID, "preprocess: no output pointer");
    *out = NULL;
    if (!img || !img->data || img->c != 3 || img->w <= 0 || img->h <= 0)
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "preprocess: expects an RGB image (c = 3)");
    loom_img_prep_params p = params ? *params : loom_img_prep_default_params();
    loom_img_plan plan;
    loom_status st = loom_img_plan_make(&plan, img->h, img->w, &p, err);
    if (st != LOOM_OK) return st;
    const int S = p.tile_size;
    const size_t tile_floats = (size_t)3 * S * S;

    loom_img_tiles *t = loom_calloc(1, sizeof *t);
    uint8_t *src = NULL, *rs = NULL;
    if (!t) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "preprocess: out of memory");
    t->h_tiles = plan.h_tiles;
    t->w_tiles = plan.w_tiles;
    t->n_tiles = plan.n_tiles;
    t->has_thumbnail = plan.n_tiles > plan.h_tiles * plan.w_tiles;
    t->tile_size = S;
    t->resized_h = plan.resized_h;
    t->resized_w = plan.resized_w;
    t->data = loom_malloc(sizeof(float) * tile_floats * (size_t)plan.n_tiles);
    if (!t->data) {
        st = LOOM_FAIL(err, LOOM_ERR_NOMEM, "preprocess: out of memory for %d tiles", plan.n_tiles);
        goto done;
    }
    if ((st = to_rgbx(&src, img, err)) != LOOM_OK) goto done;

    float lut[256];
    norm_lut(lut);
    /* canvas: resize (PIL returns a copy for the same size, which the identity path here matches) */
    const uint8_t *canvas = src;
    if (plan.resized_w != img->w || plan.resized_h != img->h) {
        rs = loom_malloc((size_t)plan.resized_w * plan.resized_h * 4);
        if (!rs) {
            st = LOOM_FAIL(err, LOOM_ERR_NOMEM, "preprocess: out of memory for %dx%d", plan.resized_w, plan.resized_h);
            goto done;
        }
        st = vis_resize_rgbx(rs, plan.resized_w, plan.resized_h, src, img->w, img->h, p.use_simd, err);
        if (st != LOOM_OK) goto done;
        canvas = rs;
    }
    for (int ty = 0; ty < plan.h_tiles; ty++)
        for (int tx = 0; tx < plan.w_tiles; tx++)
            write_tile(t->data + (size_t)(ty * plan.w_tiles + tx) * tile_floats, canvas, plan.resized_w,
                       plan.resized_h, ty, tx, S, lut);

    if (t->has_thumbnail) { /* the original image squashed to S x S */
        loom_free(rs);
        rs = loom_malloc((size_t)S * S * 4);
        if (!rs) {
            st = LOOM_FAIL(err, LOOM_ERR_NOMEM, "preprocess: out of memory for the thumbnail");
            goto done;
        }
        st = vis_resize_rgbx(rs, S, S, src, img->w, img->h, p.use_simd, err);
        if (st != LOOM_OK) goto done;
        write_tile(t->data + (size_t)(plan.n_tiles - 1) * tile_floats, rs, S, S, 0, 0, S, lut);
    }
done:
    loom_free(src);
    loom_free(rs);
    if (st != LOOM_OK) {
        loom_img_tiles_free(t);
        return st;
    }
    *out = t;
    return LOOM_OK;
}

void loom_img_tiles_free(loom_img_tiles *t) {
    if (!t) return;
    loom_free(t->data);
    loom_free(t);
}
