/* tests/video/test_video.c — video/ against clips made at test time.
 *
 * Each test writes its own tiny clips (64x48, a handful of frames) with libavcodec/libavformat encoders into a
 * fresh temp dir: every frame is a known solid colour (or a left/right split) at a known timestamp, so a
 * returned frame's colour says which frame it is. Containers/codecs: MP4/H.264 (libx264, with B-frames and
 * short GOPs so seeking matters), MP4/MPEG-4 part 2, MKV/FFV1 (lossless), AVI/MJPEG. Also: variable frame
 * rate, display-matrix rotation, and hostile inputs (text, audio-only, empty, truncated, corrupted).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "video/video.h"
#include "video/video_int.h"

#if LOOM_WITH_FFMPEG

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>

#include "tests/video/clipgen.h"

/* ==== temp dir and small helpers ==== */

static char tmpdir[64];

static void setup(void) {
    av_log_set_level(AV_LOG_ERROR);   /* libx264 prints its settings at INFO */
    loom_log_set_level(LOOM_LOG_ERROR); /* broken-frame warnings are expected here */
    snprintf(tmpdir, sizeof tmpdir, "/tmp/loom_vid_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void teardown(void) {
    if (getenv("LOOM_TEST_KEEP")) return; /* leave the clips for inspection */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

static const char *tpath(const char *name) {
    static char buf[4][128];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, 128, "%s/%s", tmpdir, name);
    return b;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    if (n) cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static long file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

/* Copies the first keep bytes of src to dst; with garble, overwrites [garble_at, +garble_len) with junk. */
static void copy_damaged(const char *src, const char *dst, long keep, long garble_at, long garble_len) {
    long n = file_size(src);
    if (keep > n) keep = n;
    uint8_t *b = malloc((size_t)n);
    FILE *f = fopen(src, "rb");
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    uint64_t s = 0x9E3779B97F4A7C15ULL;
    for (long i = garble_at; i < garble_at + garble_len && i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        b[i] = (uint8_t)s;
    }
    write_bytes(dst, b, (size_t)keep);
    free(b);
}

/* Mean colour of a 5x5 patch centred at (x, y). */
static void patch(const loom_image *img, int x, int y, int rgb[3]) {
    int acc[3] = {0}, cnt = 0;
    for (int dy = -2; dy <= 2; dy++)
        for (int dx = -2; dx <= 2; dx++) {
            int xx = x + dx, yy = y + dy;
            if (xx < 0 || yy < 0 || xx >= img->w || yy >= img->h) continue;
            for (int k = 0; k < 3; k++) acc[k] += img->data[(yy * img->w + xx) * 3 + k];
            cnt++;
        }
    for (int k = 0; k < 3; k++) rgb[k] = acc[k] / cnt;
}

static int colour_close(const int rgb[3], const uint8_t want[3], int tol) {
    for (int k = 0; k < 3; k++)
        if (abs(rgb[k] - want[k]) > tol) return 0;
    return 1;
}

/* Which palette entry is the patch at (x, y)? -1 if none is within tol. */
static int which_colour(const loom_image *img, int x, int y, int tol) {
    int rgb[3];
    patch(img, x, y, rgb);
    for (int i = 0; i < 8; i++)
        if (colour_close(rgb, PALETTE[i], tol)) return i;
    return -1;
}

static loom_vid *open_ok(const char *path) {
    loom_vid *v = NULL;
    loom_err e = {0};
    loom_status s = loom_vid_open(&v, path, NULL, &e);
    cr_assert_eq(s, LOOM_OK, "open %s: %s (%s)", path, e.msg, loom_status_str(s));
    return v;
}

/* Frame at t must be frame `want` (its colour and its timestamp). */
static void expect_frame_at(loom_vid *v, double t, int want, double want_t, int tol) {
    loom_vid_frame f;
    loom_err e = {0};
    loom_vid_sample_params p = loom_vid_default_sample_params();
    loom_status s = loom_vid_frame_at(v, t, &p, &f, &e);
    cr_assert_eq(s, LOOM_OK, "frame_at %.3f: %s", t, e.msg);
    int got = which_colour(f.img, f.img->w / 2, f.img->h / 2, tol);
    cr_expect_eq(got, want % 8, "at t=%.3f got colour %d (frame t=%.4f), want frame %d (colour %d)", t, got, f.t_s,
                 want, want % 8);
    cr_expect_float_eq(f.t_s, want_t, 1e-3, "at t=%.3f got timestamp %.4f, want %.4f", t, f.t_s, want_t);
    loom_image_free(f.img);
}

typedef struct collected {
    int    n;
    int    colour[64];
    double t[64];
    int    index[64];
    int    w, h;
    int    tol;
} collected;

static loom_status collect(void *user, loom_vid_frame *f) {
    collected *c = user;
    if (c->n < 64) {
        c->colour[c->n] = which_colour(f->img, f->img->w / 2, f->img->h / 2, c->tol);
        c->t[c->n] = f->t_s;
        c->index[c->n] = f->index;
        c->w = f->img->w;
        c->h = f->img->h;
        c->n++;
    }
    loom_image_free(f->img);
    return LOOM_OK;
}

/* ==== containers and codecs: uniform plans land on the expected frames ==== */

/* 20 frames at `fps`; uniform 4-frame plan at t = (k + 0.5) * 5 / fps -> frames 2, 7, 12, 17. */
static void check_uniform_cfr(const char *name, const char *muxer, const char *codec, int fps, int tol) {
    clip_spec c = {.path = tpath(name), .muxer = muxer, .codec = codec, .w = 64, .h = 48, .tb = {1, fps}, .n = 20,
                   .gop = 5, .bframes = 2};
    write_clip(&c);
    int64_t live = loom_alloc_live_bytes();
    loom_vid *v = open_ok(c.path);
    const loom_vid_info *in = loom_vid_get_info(v);
    double T = 1.0 / fps; /* one frame period */
    cr_expect_float_eq(in->duration_s, 20 * T, 1.1 * T, "%s duration %.3f", name, in->duration_s);
    cr_expect_float_eq(in->fps, fps, 0.01, "%s fps %.3f", name, in->fps);
    cr_expect(in->width == 64 && in->height == 48 && in->rotation == 0);

    loom_vid_sample_params p = loom_vid_default_sample_params();
    p.n_frames = 4;
    double t[8];
    int n;
    cr_assert_eq(loom_vid_plan(v, &p, t, 8, &n, NULL), LOOM_OK);
    cr_assert_eq(n, 4);
    collected got = {.tol = tol};
    loom_err e = {0};
    cr_assert_eq(loom_vid_extract(v, &p, collect, &got, &e), LOOM_OK, "%s", e.msg);
    cr_assert_eq(got.n, 4);
    static const int want[4] = {2, 7, 12, 17};
    for (int i = 0; i < 4; i++) {
        cr_expect_eq(got.colour[i], want[i] % 8, "%s sample %d: colour %d, want %d", name, i, got.colour[i],
                     want[i] % 8);
        cr_expect_float_eq(got.t[i], want[i] * T, 1e-3, "%s sample %d at %.3f", name, i, got.t[i]);
        cr_expect_eq(got.index[i], i);
    }
    cr_expect(got.w == 64 && got.h == 48);
    /* Random access both ways: backward to the start, past the end, exact frame times, between frames. */
    expect_frame_at(v, 0.0, 0, 0.0, tol);
    expect_frame_at(v, 99.0, 19, 19 * T, tol);
    expect_frame_at(v, 5 * T, 5, 5 * T, tol);
    expect_frame_at(v, 0.4 * T, 0, 0.0, tol);
    expect_frame_at(v, 13.9 * T, 13, 13 * T, tol);
    expect_frame_at(v, 14 * T, 14, 14 * T, tol);
    cr_expect_eq(loom_vid_broken_frames(v), 0);
    loom_vid_close(v);
    cr_expect_eq(loom_alloc_live_bytes(), live, "loom allocations leaked");
}

TestSuite(vid, .init = setup, .fini = teardown);

Test(vid, mp4_h264) { check_uniform_cfr("a.mp4", "mp4", "libx264", 10, 40); }
Test(vid, mp4_mpeg4) { check_uniform_cfr("b.mp4", "mp4", "mpeg4", 10, 40); }
Test(vid, mkv_ffv1) { check_uniform_cfr("c.mkv", "matroska", "ffv1", 10, 12); }
Test(vid, avi_mjpeg) { check_uniform_cfr("d.avi", "avi", "mjpeg", 10, 40); }
/* A raw H.264 stream has no container: no timestamps, no duration, no index. Timestamps come from counting
 * frames, the duration from counting packets, and access is sequential. */
Test(vid, raw_h264_without_timestamps) { check_uniform_cfr("e.h264", "h264", "libx264", 25, 40); }

Test(vid, info_names_codec_and_container) {
    clip_spec c = {.path = tpath("a.mp4"), .muxer = "mp4", .codec = "libx264", .w = 64, .h = 48, .tb = {1, 25},
                   .n = 5, .gop = 5};
    write_clip(&c);
    loom_vid *v = open_ok(c.path);
    const loom_vid_info *in = loom_vid_get_info(v);
    cr_expect_str_eq(in->codec, "h264");
    cr_expect(strstr(in->container, "mp4") != NULL, "%s", in->container);
    cr_expect_eq(in->n_frames, 5);
    cr_expect(in->coded_width == 64 && in->coded_height == 48);
    loom_vid_close(v);
}

/* A rate plan, and a clip with fewer frames than samples: each frame is delivered once. */
Test(vid, rate_plan_and_no_duplicates) {
    clip_spec c = {.path = tpath("c.mkv"), .muxer = "matroska", .codec = "ffv1", .w = 64, .h = 48, .tb = {1, 10},
                   .n = 12, .gop = 4};
    write_clip(&c);
    loom_vid *v = open_ok(c.path);
    loom_vid_sample_params p = loom_vid_default_sample_params();
    p.fps = 2.0; /* 1.2 s: t = 0.25, 0.75 -> frames 2, 7 */
    collected got = {.tol = 12};
    cr_assert_eq(loom_vid_extract(v, &p, collect, &got, NULL), LOOM_OK);
    cr_assert_eq(got.n, 2);
    cr_expect(got.colour[0] == 2 && got.colour[1] == 7, "%d %d", got.colour[0], got.colour[1]);
    p.fps = 0;
    p.n_frames = 40; /* 40 samples over 12 frames: 12 distinct frames, in order */
    got = (collected){.tol = 12};
    cr_assert_eq(loom_vid_extract(v, &p, collect, &got, NULL), LOOM_OK);
    cr_assert_eq(got.n, 12);
    for (int i = 0; i < 12; i++) cr_expect_eq(got.colour[i], i % 8, "frame %d colour %d", i, got.colour[i]);
    loom_vid_close(v);
}

/* 300 frames with a keyframe every 10: four samples must cost a few GOPs of decoding, not the whole clip. */
Test(vid, sampling_seeks_instead_of_decoding_everything) {
    clip_spec c = {.path = tpath("long.mp4"), .muxer = "mp4", .codec = "libx264", .w = 64, .h = 48, .tb = {1, 30},
                   .n = 300, .gop = 10, .bframes = 2};
    write_clip(&c);
    loom_vid *v = open_ok(c.path);
    loom_vid_sample_params p = loom_vid_default_sample_params();
    p.n_frames = 4; /* t = 1.25, 3.75, 6.25, 8.75 s -> frames 37, 112, 187, 262 */
    collected got = {.tol = 40};
    cr_assert_eq(loom_vid_extract(v, &p, collect, &got, NULL), LOOM_OK);
    cr_assert_eq(got.n, 4);
    static const int want[4] = {37, 112, 187, 262};
    for (int i = 0; i < 4; i++) cr_expect_eq(got.colour[i], want[i] % 8, "sample %d colour %d", i, got.colour[i]);
    int64_t dec = vid_decoded_frames(v);
    cr_expect(dec < 80, "decoded %lld of 300 frames for 4 samples", (long long)dec);
    loom_vid_close(v);
}

/* ==== variable frame rate: the frame on screen at t ==== */

/* No B-frames here: x264 derives dts for reordered VFR frames from earlier pts, and the MP4 muxer then writes
 * a track (and edit list) shorter than the last pts, which FFmpeg honours by dropping the last frame. Phones
 * write VFR without that mismatch. */
static void check_vfr(const char *name, const char *muxer, const char *codec, int bframes, int tol) {
    static const int64_t pts[] = {0, 100, 150, 1000, 1050, 2500}; /* ms */
    clip_spec c = {.path = tpath(name), .muxer = muxer, .codec = codec, .w = 64, .h = 48, .tb = {1, 1000},
                   .n = 6, .pts = pts, .gop = 3, .bframes = bframes};
    write_clip(&c);
    loom_vid *v = open_ok(c.path);
    cr_expect(loom_vid_get_info(v)->duration_s >= 2.5 && loom_vid_get_info(v)->duration_s < 3.0, "duration %.3f",
              loom_vid_get_info(v)->duration_s);
    expect_frame_at(v, 0.12, 1, 0.100, tol);
    expect_frame_at(v, 0.15, 2, 0.150, tol);
    expect_frame_at(v, 0.90, 2, 0.150, tol); /* held for 0.85 s */
    expect_frame_at(v, 1.02, 3, 1.000, tol);
    expect_frame_at(v, 2.00, 4, 1.050, tol);
    expect_frame_at(v, 2.60, 5, 2.500, tol);
    expect_frame_at(v, 0.05, 0, 0.000, tol); /* and back */
    expect_frame_at(v, 1.00, 3, 1.000, tol);
    loom_vid_close(v);
}

Test(vid, vfr_mp4_h264) { check_vfr("v.mp4", "mp4", "libx264", 0, 40); }
Test(vid, vfr_mkv_h264_bframes) { check_vfr("w.mkv", "matroska", "libx264", 2, 40); } /* MKV stores pts as is */
Test(vid, vfr_mkv_ffv1) { check_vfr("v.mkv", "matroska", "ffv1", 0, 12); }

/* ==== rotation from the display matrix ==== */

/* Frame 0 is left half red (palette 0), right half blue (palette 2). */
Test(vid, rotation_metadata_turns_frames) {
    /* FFmpeg 5.1's av_display_rotation_set takes the clockwise angle (its doc says so; av_display_rotation_get
     * returns the counter-clockwise one), and players turn the picture by that much clockwise. */
    static const struct {
        double set;
        int    cw, ow, oh;
        int    lx, ly, rx, ry; /* where the left half (palette 0) and right half (palette 2) land */
    } cases[] = {
        {90, 90, 48, 64, 24, 12, 24, 52},   /* clockwise: left half on top */
        {-90, 270, 48, 64, 24, 52, 24, 12}, /* counter-clockwise: left half at the bottom */
        {180, 180, 64, 48, 52, 24, 12, 24}, /* upside down: left half on the right */
    };
    for (unsigned k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char name[32];
        snprintf(name, sizeof name, "rot%u.mp4", k);
        clip_spec c = {.path = tpath(name), .muxer = "mp4", .codec = "libx264", .w = 64, .h = 48, .tb = {1, 10},
                       .n = 3, .gop = 3, .split = 1, .rotate = cases[k].set};
        write_clip(&c);
        loom_vid *v = open_ok(c.path);
        const loom_vid_info *in = loom_vid_get_info(v);
        cr_expect_eq(in->rotation, cases[k].cw, "case %u: rotation %d", k, in->rotation);
        cr_expect(in->width == cases[k].ow && in->height == cases[k].oh, "case %u: %dx%d", k, in->width, in->height);
        loom_vid_frame f;
        loom_err e = {0};
        cr_assert_eq(loom_vid_frame_at(v, 0.0, NULL, &f, &e), LOOM_OK, "%s", e.msg);
        cr_expect(f.img->w == cases[k].ow && f.img->h == cases[k].oh, "case %u: frame %dx%d", k, f.img->w, f.img->h);
        cr_expect_eq(which_colour(f.img, cases[k].lx, cases[k].ly, 40), 0, "case %u: left half misplaced", k);
        cr_expect_eq(which_colour(f.img, cases[k].rx, cases[k].ry, 40), 2, "case %u: right half misplaced", k);
        loom_image_free(f.img);
        loom_vid_close(v);
    }
}

/* ==== size limits ==== */

Test(vid, max_side_and_pixel_limits) {
    clip_spec c = {.path = tpath("c.mkv"), .muxer = "matroska", .codec = "ffv1", .w = 64, .h = 48, .tb = {1, 10},
                   .n = 4, .gop = 2, .split = 1};
    write_clip(&c);
    loom_vid *v = open_ok(c.path);
    loom_vid_sample_params p = loom_vid_default_sample_params();
    p.max_side = 32;
    loom_vid_frame f;
    loom_err e = {0};
    cr_assert_eq(loom_vid_frame_at(v, 0.0, &p, &f, &e), LOOM_OK, "%s", e.msg);
    cr_expect(f.img->w == 32 && f.img->h == 24, "%dx%d", f.img->w, f.img->h);
    cr_expect_eq(which_colour(f.img, 6, 12, 12), 0); /* the split survives downscaling */
    cr_expect_eq(which_colour(f.img, 26, 12, 12), 2);
    loom_image_free(f.img);
    p.max_side = 0;
    p.max_pixels = 1000; /* 64x48 = 3072 */
    cr_assert_eq(loom_vid_frame_at(v, 0.0, &p, &f, &e), LOOM_ERR_LIMIT);
    cr_assert_null(f.img);
    loom_vid_close(v);

    loom_vid_open_params op = loom_vid_default_open_params();
    op.max_pixels = 1000;
    cr_assert_eq(loom_vid_open(&v, c.path, &op, &e), LOOM_ERR_LIMIT);
    cr_assert_null(v);
    op = loom_vid_default_open_params();
    op.max_dim = 50;
    cr_assert_eq(loom_vid_open(&v, c.path, &op, &e), LOOM_ERR_LIMIT);
    cr_assert(strstr(e.msg, "64x48"), "%s", e.msg);
}

Test(vid, time_limit) {
    clip_spec c = {.path = tpath("c.mkv"), .muxer = "matroska", .codec = "ffv1", .w = 64, .h = 48, .tb = {1, 10},
                   .n = 4, .gop = 2};
    write_clip(&c);
    loom_vid_open_params op = loom_vid_default_open_params();
    op.timeout_s = 1e-9;
    loom_vid *v;
    loom_err e = {0};
    cr_assert_eq(loom_vid_open(&v, c.path, &op, &e), LOOM_ERR_LIMIT, "%s", e.msg);
    cr_assert(strstr(e.msg, "time limit"), "%s", e.msg);
}

/* ==== hostile input: errors, never crashes ==== */

static void expect_open_fails(const char *path, loom_status want, const char *needle) {
    loom_vid *v = (loom_vid *)&v;
    loom_err e = {0};
    int64_t live = loom_alloc_live_bytes();
    loom_status s = loom_vid_open(&v, path, NULL, &e);
    cr_expect_eq(s, want, "%s: got %s (%s), want %s", path, loom_status_str(s), e.msg, loom_status_str(want));
    cr_expect_null(v);
    if (needle) cr_expect(strstr(e.msg, needle) != NULL, "%s: message '%s' lacks '%s'", path, e.msg, needle);
    cr_expect_eq(loom_alloc_live_bytes(), live);
    if (s == LOOM_OK) loom_vid_close(v);
}

Test(vid, missing_empty_and_not_video) {
    expect_open_fails(tpath("nope.mp4"), LOOM_ERR_IO, "nope.mp4");
    expect_open_fails(tmpdir, LOOM_ERR_IO, "directory");
    write_bytes(tpath("empty.mp4"), "", 0);
    expect_open_fails(tpath("empty.mp4"), LOOM_ERR_FORMAT, "empty");
    const char *text = "This is a plain text file, not a video.\nIt has two lines.\n";
    write_bytes(tpath("notes.mp4"), text, strlen(text));
    expect_open_fails(tpath("notes.mp4"), LOOM_ERR_FORMAT, NULL);
    write_bytes(tpath("notes.nfo"), text, strlen(text)); /* FFmpeg's tty demuxer would "play" this */
    expect_open_fails(tpath("notes.nfo"), LOOM_ERR_FORMAT, "text");
    uint8_t junk[4096];
    uint64_t s = 42;
    for (size_t i = 0; i < sizeof junk; i++) s ^= s << 13, s ^= s >> 7, s ^= s << 17, junk[i] = (uint8_t)s;
    write_bytes(tpath("junk.bin"), junk, sizeof junk);
    expect_open_fails(tpath("junk.bin"), LOOM_ERR_FORMAT, NULL);
}

/* Valid containers whose video stream has no frames at all. */
Test(vid, zero_frame_clips) {
    clip_spec c = {.path = tpath("zero.mkv"), .muxer = "matroska", .codec = "ffv1", .w = 64, .h = 48,
                   .tb = {1, 10}, .n = 0, .gop = 5};
    write_clip(&c);
    expect_open_fails(c.path, LOOM_ERR_FORMAT, "empty");
    clip_spec m = {.path = tpath("zero.mp4"), .muxer = "mp4", .codec = "libx264", .w = 64, .h = 48, .tb = {1, 10},
                   .n = 0, .gop = 5};
    write_clip(&m);
    expect_open_fails(m.path, LOOM_ERR_FORMAT, NULL);
}

/* A 0.25 s mono 8 kHz PCM WAV: a real media file with no video. */
Test(vid, audio_only_is_unsupported) {
    uint8_t wav[44 + 4000];
    uint32_t data = 4000, riff = 36 + data, fmt_len = 16, rate = 8000, byte_rate = 16000;
    uint16_t pcm = 1, ch = 1, align = 2, bits = 16;
    memcpy(wav, "RIFF", 4), memcpy(wav + 4, &riff, 4), memcpy(wav + 8, "WAVEfmt ", 8);
    memcpy(wav + 16, &fmt_len, 4), memcpy(wav + 20, &pcm, 2), memcpy(wav + 22, &ch, 2), memcpy(wav + 24, &rate, 4);
    memcpy(wav + 28, &byte_rate, 4), memcpy(wav + 32, &align, 2), memcpy(wav + 34, &bits, 2);
    memcpy(wav + 36, "data", 4), memcpy(wav + 40, &data, 4);
    for (int i = 0; i < 2000; i++) {
        int16_t smp = (int16_t)(8000 * sin(i * 0.3));
        memcpy(wav + 44 + 2 * i, &smp, 2);
    }
    write_bytes(tpath("tone.wav"), wav, sizeof wav);
    expect_open_fails(tpath("tone.wav"), LOOM_ERR_UNSUPPORTED, "audio");
}

Test(vid, truncated_and_corrupted_clips) {
    clip_spec c = {.path = tpath("a.mp4"), .muxer = "mp4", .codec = "libx264", .w = 64, .h = 48, .tb = {1, 10},
                   .n = 20, .gop = 5};
    write_clip(&c);
    long n = file_size(c.path);
    /* MP4 writes its index (moov) last: half a file has none. */
    copy_damaged(c.path, tpath("half.mp4"), n / 2, 0, 0);
    expect_open_fails(tpath("half.mp4"), LOOM_ERR_FORMAT, NULL);
    copy_damaged(c.path, tpath("head.mp4"), 40, 0, 0);
    expect_open_fails(tpath("head.mp4"), LOOM_ERR_FORMAT, NULL);

    /* MKV cut in the middle: the header survives, the first frames decode, the rest is gone. */
    clip_spec k = {.path = tpath("c.mkv"), .muxer = "matroska", .codec = "ffv1", .w = 64, .h = 48, .tb = {1, 10},
                   .n = 20, .gop = 5};
    write_clip(&k);
    long kn = file_size(k.path);
    copy_damaged(k.path, tpath("cut.mkv"), kn * 6 / 10, 0, 0);
    loom_vid *v = open_ok(tpath("cut.mkv"));
    collected got = {.tol = 12};
    loom_err e = {0};
    loom_status s = loom_vid_extract(v, NULL, collect, &got, &e);
    cr_expect_eq(s, LOOM_OK, "%s", e.msg);
    cr_expect(got.n >= 1, "no frame from the part that is left");
    for (int i = 0; i < got.n; i++) cr_expect_neq(got.colour[i], -1, "frame %d has a colour from nowhere", i);
    loom_vid_close(v);

    /* Garbage over the middle of the MKV: skipped or concealed frames, never a crash, and still frames out. */
    copy_damaged(k.path, tpath("bad.mkv"), kn, kn / 3, kn / 4);
    v = NULL;
    s = loom_vid_open(&v, tpath("bad.mkv"), NULL, &e);
    cr_assert(s == LOOM_OK || s == LOOM_ERR_FORMAT, "%s", e.msg);
    if (v) {
        got = (collected){.tol = 12};
        s = loom_vid_extract(v, NULL, collect, &got, &e);
        cr_expect(s == LOOM_OK || s == LOOM_ERR_FORMAT, "%s", e.msg);
        loom_vid_close(v);
    }

    /* Same for H.264 in MKV, where damage hits inter-predicted frames. */
    clip_spec h = {.path = tpath("h.mkv"), .muxer = "matroska", .codec = "libx264", .w = 64, .h = 48,
                   .tb = {1, 10}, .n = 20, .gop = 5};
    write_clip(&h);
    long hn = file_size(h.path);
    copy_damaged(h.path, tpath("hbad.mkv"), hn, hn / 4, hn / 3);
    v = NULL;
    s = loom_vid_open(&v, tpath("hbad.mkv"), NULL, &e);
    cr_assert(s == LOOM_OK || s == LOOM_ERR_FORMAT, "%s", e.msg);
    if (v) {
        got = (collected){.tol = 255};
        s = loom_vid_extract(v, NULL, collect, &got, &e);
        cr_expect(s == LOOM_OK || s == LOOM_ERR_FORMAT, "%s", e.msg);
        loom_vid_close(v);
    }
}

/* Damaged frame data inside an intact container: broken frames are skipped (and counted) or concealed, the
 * clip still yields frames, nothing crashes. */
static void check_damaged(const char *name, const char *muxer, const char *codec) {
    clip_spec c = {.path = tpath(name), .muxer = muxer, .codec = codec, .w = 64, .h = 48, .tb = {1, 10}, .n = 30,
                   .gop = 5, .damage_every = 3};
    write_clip(&c);
    loom_vid *v = NULL;
    loom_err e = {0};
    loom_status s = loom_vid_open(&v, c.path, NULL, &e);
    cr_assert_eq(s, LOOM_OK, "%s: %s", name, e.msg);
    loom_vid_sample_params p = loom_vid_default_sample_params();
    p.n_frames = 12;
    collected got = {.tol = 255};
    s = loom_vid_extract(v, &p, collect, &got, &e);
    cr_expect_eq(s, LOOM_OK, "%s: %s", name, e.msg);
    cr_expect(got.n >= 4, "%s: only %d frames", name, got.n);
    for (int i = 1; i < got.n; i++) cr_expect(got.t[i] > got.t[i - 1], "%s: timestamps out of order", name);
    cr_expect(loom_vid_broken_frames(v) > 0, "%s: damage went unnoticed", name);
    loom_vid_close(v);
}

Test(vid, damaged_frames_mjpeg) { check_damaged("m.avi", "avi", "mjpeg"); }
Test(vid, damaged_frames_h264) { check_damaged("h.mkv", "matroska", "libx264"); }
Test(vid, damaged_frames_ffv1) { check_damaged("f.mkv", "matroska", "ffv1"); }

/* A callback that says stop: extraction stops and returns its status. */
static loom_status stop_after_one(void *user, loom_vid_frame *f) {
    int *calls = user;
    loom_image_free(f->img);
    return ++*calls == 1 ? LOOM_ERR_LIMIT : LOOM_OK;
}

Test(vid, callback_can_stop_extraction) {
    clip_spec c = {.path = tpath("c.mkv"), .muxer = "matroska", .codec = "ffv1", .w = 64, .h = 48, .tb = {1, 10},
                   .n = 10, .gop = 5};
    write_clip(&c);
    loom_vid *v = open_ok(c.path);
    int calls = 0;
    cr_expect_eq(loom_vid_extract(v, NULL, stop_after_one, &calls, NULL), LOOM_ERR_LIMIT);
    cr_expect_eq(calls, 1);
    loom_vid_close(v);
}

#endif
