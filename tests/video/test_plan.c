/* tests/video/test_plan.c — the FFmpeg-free parts of video/: sampling plans, output sizing, rotation, and the
 * stubs a build without FFmpeg gets. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "video/video.h"
#include "video/video_int.h"

Test(vid_plan, uniform_uses_segment_centres) {
    loom_vid_sample_params p = loom_vid_default_sample_params();
    double t[LOOM_VID_MAX_FRAMES];
    int n;
    cr_assert_eq(vid_plan_times(10.0, &p, t, LOOM_VID_MAX_FRAMES, &n, NULL), LOOM_OK);
    cr_assert_eq(n, 8);
    for (int i = 0; i < n; i++) cr_assert_float_eq(t[i], (i + 0.5) * 10.0 / 8, 1e-12);
    p.n_frames = 1;
    cr_assert_eq(vid_plan_times(3.0, &p, t, LOOM_VID_MAX_FRAMES, &n, NULL), LOOM_OK);
    cr_assert_eq(n, 1);
    cr_assert_float_eq(t[0], 1.5, 1e-12);
    p.n_frames = 500; /* capped by max_frames (64) */
    cr_assert_eq(vid_plan_times(3.0, &p, t, LOOM_VID_MAX_FRAMES, &n, NULL), LOOM_OK);
    cr_assert_eq(n, 64);
    cr_assert(t[63] < 3.0 && t[0] > 0);
}

Test(vid_plan, rate_plan_and_its_cap) {
    loom_vid_sample_params p = loom_vid_default_sample_params();
    double t[LOOM_VID_MAX_FRAMES];
    int n;
    p.fps = 2.0; /* 0.25, 0.75, ... while < 3.1 */
    cr_assert_eq(vid_plan_times(3.1, &p, t, LOOM_VID_MAX_FRAMES, &n, NULL), LOOM_OK);
    cr_assert_eq(n, 6);
    cr_assert_float_eq(t[0], 0.25, 1e-12);
    cr_assert_float_eq(t[5], 2.75, 1e-12);
    p.fps = 0.1; /* a 2 s clip at one frame per 10 s: still one frame, inside the clip */
    cr_assert_eq(vid_plan_times(2.0, &p, t, LOOM_VID_MAX_FRAMES, &n, NULL), LOOM_OK);
    cr_assert_eq(n, 1);
    cr_assert(t[0] > 0 && t[0] < 2.0);
    p.fps = 30.0; /* a 10-minute clip at 30 fps: 18000 samples, capped to 10 spread over the whole clip */
    p.max_frames = 10;
    cr_assert_eq(vid_plan_times(600.0, &p, t, LOOM_VID_MAX_FRAMES, &n, NULL), LOOM_OK);
    cr_assert_eq(n, 10);
    cr_assert_float_eq(t[0], 30.0, 1e-9);
    cr_assert_float_eq(t[9], 570.0, 1e-9);
    p.fps = 1e300; /* absurd rate: no overflow, still capped */
    cr_assert_eq(vid_plan_times(600.0, &p, t, LOOM_VID_MAX_FRAMES, &n, NULL), LOOM_OK);
    cr_assert_eq(n, 10);
}

Test(vid_plan, rejects_bad_parameters) {
    loom_vid_sample_params p = loom_vid_default_sample_params();
    double t[4];
    int n = 99;
    loom_err e = {0};
    cr_assert_eq(vid_plan_times(10.0, &p, t, 4, &n, &e), LOOM_ERR_INVALID); /* 8 frames, room for 4 */
    cr_assert_eq(n, 0);
    cr_assert(strstr(e.msg, "holds 4"), "%s", e.msg);
    p.n_frames = 0;
    cr_assert_eq(vid_plan_times(10.0, &p, t, 4, &n, NULL), LOOM_ERR_INVALID);
    p = loom_vid_default_sample_params();
    p.fps = -1;
    cr_assert_eq(vid_plan_times(10.0, &p, t, 4, &n, NULL), LOOM_ERR_INVALID);
    p.fps = NAN;
    cr_assert_eq(vid_plan_times(10.0, &p, t, 4, &n, NULL), LOOM_ERR_INVALID);
    p = loom_vid_default_sample_params();
    p.max_frames = LOOM_VID_MAX_FRAMES + 1;
    cr_assert_eq(vid_plan_times(10.0, &p, t, 4, &n, NULL), LOOM_ERR_INVALID);
    p = loom_vid_default_sample_params();
    p.n_frames = 2;
    cr_assert_eq(vid_plan_times(0.0, &p, t, 4, &n, NULL), LOOM_ERR_INVALID);
    cr_assert_eq(vid_plan_times(INFINITY, &p, t, 4, &n, NULL), LOOM_ERR_INVALID);
}

Test(vid_size, fits_max_side_keeps_aspect_and_rotates) {
    int sw, sh, ow, oh;
    cr_assert_eq(vid_output_size(1920, 1080, 1.0, 0, 336, 0, &sw, &sh, &ow, &oh, NULL), LOOM_OK);
    cr_assert(ow == 336 && oh == 189 && sw == 336 && sh == 189, "%dx%d", ow, oh);
    cr_assert_eq(vid_output_size(1920, 1080, 1.0, 90, 336, 0, &sw, &sh, &ow, &oh, NULL), LOOM_OK);
    cr_assert(ow == 189 && oh == 336 && sw == 336 && sh == 189, "%dx%d from %dx%d", ow, oh, sw, sh);
    cr_assert_eq(vid_output_size(64, 48, 1.0, 0, 336, 0, &sw, &sh, &ow, &oh, NULL), LOOM_OK); /* never upscaled */
    cr_assert(ow == 64 && oh == 48);
    cr_assert_eq(vid_output_size(720, 480, 32.0 / 27, 0, 0, 0, &sw, &sh, &ow, &oh, NULL), LOOM_OK); /* anamorphic */
    cr_assert(ow == 853 && oh == 480, "%dx%d", ow, oh);
    cr_assert_eq(vid_output_size(720, 480, 1000.0, 0, 0, 0, &sw, &sh, &ow, &oh, NULL), LOOM_OK); /* absurd SAR */
    cr_assert(ow == 720 && oh == 480);
    cr_assert_eq(vid_output_size(4000, 1, 1.0, 0, 100, 0, &sw, &sh, &ow, &oh, NULL), LOOM_OK); /* >= 1 pixel */
    cr_assert(ow == 100 && oh == 1);
    loom_err e = {0};
    cr_assert_eq(vid_output_size(1920, 1080, 1.0, 0, 0, 1000, &sw, &sh, &ow, &oh, &e), LOOM_ERR_LIMIT);
    cr_assert(strstr(e.msg, "limit"), "%s", e.msg);
}

/* 3x2 source, pixel value = 10*y + x in every channel. */
static void make_src(uint8_t *s) {
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 3; x++) memset(s + (y * 3 + x) * 3, 10 * y + x, 3);
}

Test(vid_rotate, quarter_turns_move_pixels_where_expected) {
    uint8_t s[18], d[18];
    make_src(s);
    /* src:  0  1  2       90 cw (2 wide, 3 high):  10  0      270 cw:  2 12      180:  12 11 10
     *      10 11 12                                11  1               1 11             2  1  0
     *                                              12  2               0 10 */
    static const uint8_t r90[6] = {10, 0, 11, 1, 12, 2}, r270[6] = {2, 12, 1, 11, 0, 10},
                         r180[6] = {12, 11, 10, 2, 1, 0};
    vid_rotate_rgb(d, s, 3, 2, 90);
    for (int i = 0; i < 6; i++) cr_assert_eq(d[i * 3], r90[i], "90: pixel %d is %d", i, d[i * 3]);
    vid_rotate_rgb(d, s, 3, 2, 270);
    for (int i = 0; i < 6; i++) cr_assert_eq(d[i * 3], r270[i], "270: pixel %d is %d", i, d[i * 3]);
    vid_rotate_rgb(d, s, 3, 2, 180);
    for (int i = 0; i < 6; i++) cr_assert_eq(d[i * 3], r180[i], "180: pixel %d is %d", i, d[i * 3]);
    vid_rotate_rgb(d, s, 3, 2, 0);
    cr_assert_eq(memcmp(d, s, 18), 0);
}

Test(vid_api, null_arguments_are_errors_not_crashes) {
    loom_err e = {0};
    cr_assert_neq(loom_vid_open(NULL, "x.mp4", NULL, &e), LOOM_OK);
    loom_vid *v = (loom_vid *)1;
    cr_assert_neq(loom_vid_open(&v, NULL, NULL, &e), LOOM_OK);
    cr_assert_null(v);
    loom_vid_close(NULL);
    cr_assert_null(loom_vid_get_info(NULL));
    int n = 5;
    double t[8];
    cr_assert_neq(loom_vid_plan(NULL, NULL, t, 8, &n, &e), LOOM_OK);
    cr_assert_eq(n, 0);
}

#if !LOOM_WITH_FFMPEG
Test(vid_api, without_ffmpeg_everything_is_unsupported) {
    loom_err e = {0};
    loom_vid *v;
    cr_assert_eq(loom_vid_open(&v, "clip.mp4", NULL, &e), LOOM_ERR_UNSUPPORTED);
    cr_assert(strstr(e.msg, "FFmpeg"), "%s", e.msg);
}
#endif
