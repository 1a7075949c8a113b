/* video/plan.c — the FFmpeg-free half of video/: default parameters, the sampling plan, output sizing and
 * the rotation of decoded RGB frames.
 *
 * These compile in every build (with or without FFmpeg), so the arithmetic that decides which instants of
 * a clip the model sees, and how big each frame is, is tested everywhere. See video.h for the contract.
 */
#include <math.h>
#include <string.h>

#include "video/video.h"
#include "video/video_int.h"

loom_vid_open_params loom_vid_default_open_params(void) {
    loom_vid_open_params p;
    memset(&p, 0, sizeof p);
    p.timeout_s = 30.0;
    p.max_dim = 16384;
    p.max_pixels = (int64_t)8192 * 8192;
    p.threads = 0;
    return p;
}

loom_vid_sample_params loom_vid_default_sample_params(void) {
    loom_vid_sample_params p;
    memset(&p, 0, sizeof p);
    p.n_frames = 8;
    p.fps = 0.0;
    p.max_frames = 64;
    p.max_side = 0;
    p.max_pixels = (int64_t)4096 * 4096;
    return p;
}

/* ==== sampling plan ==== */

loom_status vid_check_sample_params(const loom_vid_sample_params *p, loom_err *err) {
    if (!p) return LOOM_FAIL(err, LOOM_ERR_INVALID, "video: sample parameters are NULL");
    if (!isfinite(p->fps) || p->fps < 0)
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "video: sampling rate %g is not a rate >= 0", p->fps);
    if (p->fps == 0 && p->n_frames < 1)
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "video: frame count %d must be at least 1", p->n_frames);
    if (p->max_frames < 1 || p->max_frames > LOOM_VID_MAX_FRAMES)
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "video: max_frames %d is outside 1..%d", p->max_frames,
                         LOOM_VID_MAX_FRAMES);
    if (p->max_side < 0) return LOOM_FAIL(err, LOOM_ERR_INVALID, "video: max_side %d is negative", p->max_side);
    if (p->max_pixels < 0)
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "video: max_pixels %lld is negative", (long long)p->max_pixels);
    return LOOM_OK;
}

/* Both plans put samples at segment centres rather than at segment starts (t_i = i*D/n): the first frame of
 * a clip is often black or a title card, and a time equal to D has no frame at all. */
loom_status vid_plan_times(double duration_s, const loom_vid_sample_params *p, double *times, int cap, int *n,
                           loom_err *err) {
    *n = 0;
    loom_status s = vid_check_sample_params(p, err);
    if (s != LOOM_OK) return s;
    if (!isfinite(duration_s) || duration_s <= 0)
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "video: cannot plan samples over a duration of %g s", duration_s);

    int count;
    double step; /* seconds between samples */
    if (p->fps > 0) {
        /* Samples (i + 0.5) / fps strictly inside the clip; the product is compared in double before any
         * integer conversion so an absurd rate cannot overflow. */
        double c = duration_s * p->fps;
        if (c - 0.5 > (double)p->max_frames) {
            count = p->max_frames; /* too many: spread the cap over the whole clip instead of truncating */
            step = duration_s / count;
        } else {
            count = (int)ceil(c - 0.5);
            if (count < 1) count = 1;
            step = 1.0 / p->fps;
            if (count > p->max_frames) { /* rounding at the boundary */
                count = p->max_frames;
                step = duration_s / count;
            }
            if (count == 1 && 0.5 * step >= duration_s) step = duration_s; /* clip shorter than half a period */
        }
    } else {
        count = p->n_frames < p->max_frames ? p->n_frames : p->max_frames;
        step = duration_s / count;
    }
    if (count > cap)
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "video: the plan has %d frames but the caller's array holds %d",
                         count, cap);
    for (int i = 0; i < count; i++) times[i] = (i + 0.5) * step;
    *n = count;
    return LOOM_OK;
}

/* ==== output size and rotation ==== */

loom_status vid_output_size(int fw, int fh, double sar, int rot, int max_side, int64_t max_pixels, int *sw, int *sh,
                            int *ow, int *oh, loom_err *err) {
    if (fw <= 0 || fh <= 0) return LOOM_FAIL(err, LOOM_ERR_FORMAT, "video: decoded frame is %dx%d", fw, fh);
    /* Anamorphic clips store fewer columns than they show; stretch the width, but never by an absurd factor
     * taken from a hostile header. */
    if (!(sar >= 0.1 && sar <= 10.0)) sar = 1.0;
    double dw = fw * sar, dh = fh;
    if (rot == 90 || rot == 270) {
        double t = dw;
        dw = dh;
        dh = t;
    }
    double scale = 1.0, longer = dw > dh ? dw : dh;
    if (max_side > 0 && longer > max_side) scale = max_side / longer;
    double wd = floor(dw * scale + 0.5), hd = floor(dh * scale + 0.5);
    if (wd < 1) wd = 1;
    if (hd < 1) hd = 1;
    if (wd > 65536 || hd > 65536)
        return LOOM_FAIL(err, LOOM_ERR_LIMIT, "video: output frame %.0fx%.0f is too large", wd, hd);
    int w = (int)wd, h = (int)hd;
    if (max_pixels > 0 && (int64_t)w * h > max_pixels)
        return LOOM_FAIL(err, LOOM_ERR_LIMIT, "video: output frame %dx%d = %lld pixels is above the limit of %lld "
                         "(set a smaller max side)", w, h, (long long)w * h, (long long)max_pixels);
    *ow = w;
    *oh = h;
    if (rot == 90 || rot == 270) {
        *sw = h;
        *sh = w;
    } else {
        *sw = w;
        *sh = h;
    }
    return LOOM_OK;
}

void vid_rotate_rgb(uint8_t *dst, const uint8_t *src, int sw, int sh, int rot) {
    size_t row = (size_t)sw * 3;
    if (rot == 90) { /* clockwise: the left column becomes the top row; dst is sh wide, sw high */
        for (int y = 0; y < sh; y++)
            for (int x = 0; x < sw; x++) {
                const uint8_t *s = src + y * row + (size_t)x * 3;
                uint8_t *d = dst + ((size_t)x * sh + (size_t)(sh - 1 - y)) * 3;
                d[0] = s[0], d[1] = s[1], d[2] = s[2];
            }
    } else if (rot == 270) { /* counter-clockwise: the left column becomes the bottom row */
        for (int y = 0; y < sh; y++)
            for (int x = 0; x < sw; x++) {
                const uint8_t *s = src + y * row + (size_t)x * 3;
                uint8_t *d = dst + ((size_t)(sw - 1 - x) * sh + (size_t)y) * 3;
                d[0] = s[0], d[1] = s[1], d[2] = s[2];
            }
    } else if (rot == 180) {
        for (int y = 0; y < sh; y++)
            for (int x = 0; x < sw; x++) {
                const uint8_t *s = src + y * row + (size_t)x * 3;
                uint8_t *d = dst + ((size_t)(sh - 1 - y) * sw + (size_t)(sw - 1 - x)) * 3;
                d[0] = s[0], d[1] = s[1], d[2] = s[2];
            }
    } else {
        memcpy(dst, src, row * (size_t)sh);
    }
}
