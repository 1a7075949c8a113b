/* tests/fuzz/fuzz_video.c — libFuzzer target for video probing, planning and frame extraction (FFmpeg).
 *
 * loom_vid_open takes a path, so each input is written to one temporary file per process. Byte 0 picks the
 * plan (uniform or a rate, frame count, output size); tight limits (2 s of wall time per clip, 256-pixel sides,
 * small frames) keep a run fast, and they are part of what is tested: a clip must never run past its time limit
 * by much, and every delivered frame must have the promised size. Built without FFmpeg, open fails cleanly.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/image.h"
#include "core/log.h"
#include "video/video.h"

typedef struct seen {
    int    n, max_side;
    double last_t;
} seen;

static loom_status on_frame(void *user, loom_vid_frame *f) {
    seen *s = user;
    const loom_image *img = f->img;
    if (!img || img->c != 3 || img->w < 1 || img->h < 1) abort();
    if (s->max_side > 0 && (img->w > s->max_side || img->h > s->max_side)) abort();
    volatile uint8_t x = img->data[(size_t)img->w * img->h * 3 - 1];
    (void)x;
    if (f->index < s->n) abort(); /* plan order */
    s->n = f->index + 1;
    loom_image_free(f->img);
    return LOOM_OK;
}

static char path[64];
static void remove_tmp(void) { unlink(path); }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!path[0]) {
        loom_log_set_level(LOOM_LOG_NONE);
        snprintf(path, sizeof path, "/tmp/loom-fuzz-video-%d", (int)getpid());
        atexit(remove_tmp);
    }
    if (size < 1) return 0;
    const uint8_t opt = data[0];
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data + 1, 1, size - 1, f);
    fclose(f);

    loom_vid_open_params op = loom_vid_default_open_params();
    op.timeout_s = 2.0;
    op.max_dim = 256;
    op.max_pixels = 256 * 256;
    op.threads = 1;
    loom_vid *v = NULL;
    loom_err  err = {0};
    double    t0 = now_s();
    if (loom_vid_open(&v, path, &op, &err) == LOOM_OK) {
        const loom_vid_info *info = loom_vid_get_info(v);
        if (!info || !(info->duration_s >= 0) || info->width < 1 || info->height < 1) abort();
        loom_vid_sample_params sp = loom_vid_default_sample_params();
        sp.n_frames = 1 + (opt & 7);
        sp.fps = (opt & 8) ? 0.5 * (1 + ((opt >> 4) & 7)) : 0;
        sp.max_frames = 4;
        sp.max_side = (opt & 128) ? 16 : 48;
        sp.max_pixels = 48 * 48;
        double times[8];
        int    n = 0;
        if (loom_vid_plan(v, &sp, times, 8, &n, &err) == LOOM_OK) {
            if (n < 0 || n > sp.max_frames) abort();
            for (int i = 1; i < n; i++)
                if (!(times[i] >= times[i - 1])) abort();
        }
        seen s = {0, sp.max_side, 0};
        (void)loom_vid_extract(v, &sp, on_frame, &s, &err);
        loom_vid_close(v);
    } else if (v || !err.msg[0]) {
        abort();
    }
    /* the time limit covers open, seeks and decoding; allow slack for sanitizer overhead and a loaded machine */
    if (now_s() - t0 > 2.0 * 4 + 2) abort();
    return 0;
}
