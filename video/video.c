/* video/video.c — demux, seek and decode with FFmpeg; timestamped RGB frames out (see video.h).
 *
 * Pipeline for one sample time T (seconds from the stream's first frame):
 *
 *   av_seek_frame(BACKWARD) to the keyframe at or before T ──► decode forward (send/receive) keeping the
 *   last two frames, `prev` and `cur`, until cur.pts > T ──► prev is the frame on screen at T ──► swscale to
 *   RGB24 at the output size ──► rotate by the display matrix ──► loom_image
 *
 * Invariants and choices:
 *  - Memory is bounded by the decoder's own reference frames plus prev/cur and one RGB buffer: nothing
 *    grows with the clip's length.
 *  - Timestamps are best_effort_timestamp in the stream's time base; a frame without one gets the previous
 *    frame's plus one frame period. A stream whose first frame has no timestamp is decoded sequentially
 *    (seeking would lose track of where we are).
 *  - Seeking is skipped when the target's keyframe (from the demuxer index) is not ahead of what is already
 *    decoded: decoding on is then cheaper than seeking back. A seek that lands after T (a bad index) is retried
 *    further back, then from the start.
 *  - Every FFmpeg call that can block on I/O sees an AVIOInterruptCB with the clip's deadline, and the decode
 *    loops check the same deadline, so a hostile file cannot hang the caller beyond timeout_s.
 *  - FFmpeg's own log lines are routed to loom's debug log: the errors that matter come back as loom_err
 *    messages, and broken frames as counted warnings. This replaces av_log's process-wide callback once.
 *  - Built without FFmpeg (LOOM_WITH_FFMPEG unset) every entry point returns LOOM_ERR_UNSUPPORTED.
 */
#include "video/video.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/log.h"
#include "video/video_int.h"

#if LOOM_WITH_FFMPEG

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
#include <math.h>
#include <pthread.h>

/* Consecutive packets that fail to decode before the clip is declared unreadable. */
#define VID_MAX_CONSECUTIVE_BAD 512
/* Warnings printed for broken frames before the rest go to the debug log only. */
#define VID_MAX_WARNINGS        5
/* Without an index entry, decode on rather than seek when the target is at most this far ahead. */
#define VID_FORWARD_WINDOW_S    1.0

struct loom_vid {
    AVFormatContext   *fmt;
    AVCodecContext    *dec;
    AVStream          *st;
    int                si; /* index of st in fmt */
    AVPacket          *pkt;
    AVFrame           *prev, *cur; /* the last two frames out of the decoder, in presentation order */
    int                has_prev, has_cur;
    int                pos_valid;  /* prev/cur describe the decoder's current position */
    int                demux_eof;  /* av_read_frame hit the end; the decoder is being drained */
    int                dec_eof;    /* the decoder returned AVERROR_EOF: no more frames until a seek */
    struct SwsContext *sws;

    loom_vid_info      info;
    loom_vid_open_params op;
    char               name[64];   /* file name for messages (last path component, truncated) */

    double             tb;          /* seconds per tick of st->time_base */
    int64_t            first_pts;   /* pts of the first frame: time 0 */
    int64_t            last_pts;    /* pts of the last frame out of the decoder (to synthesize missing ones) */
    int64_t            period;      /* one frame period in ticks (>= 1) */
    int                no_pts;      /* stream has no timestamps: pts are synthesized, no seeking */
    int                can_seek;
    double             sar;         /* sample aspect ratio (width stretch) */

    double             budget_s;    /* time left for this clip; < 0 means no limit */
    double             deadline;    /* absolute loom_time_s() deadline while a call runs; 0 outside calls */
    double             call_start;

    int64_t            target;      /* the tick vid_advance is heading for (AV_NOPTS_VALUE when none) */
    int64_t            seen_max;    /* highest packet pts <= target sent since the last seek */

    int64_t            broken;      /* frames skipped because they failed to decode */
    int64_t            n_decoded;   /* frames out of the decoder, for tests that check seeking pays off */
    int                bad_run;     /* consecutive failures, to give up on garbage */
};

/* ==== FFmpeg glue: logging, errors, deadline ==== */

static void vid_av_log(void *avcl, int level, const char *fmt, va_list vl) {
    (void)avcl;
    if (level > AV_LOG_WARNING || loom_log_get_level() > LOOM_LOG_DEBUG) return;
    char line[512];
    vsnprintf(line, sizeof line, fmt, vl);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
    if (n) LOOM_DEBUG("ffmpeg: %s", line);
}

static pthread_once_t vid_log_once = PTHREAD_ONCE_INIT;
static void vid_log_init(void) { av_log_set_callback(vid_av_log); }

static const char *vid_averr(int code, char *buf, size_t n) {
    if (av_strerror(code, buf, n) < 0) snprintf(buf, n, "FFmpeg error %d", code);
    return buf;
}

static int vid_interrupt(void *opaque) {
    const loom_vid *v = opaque;
    return v->deadline > 0 && loom_time_s() > v->deadline;
}

static int vid_timed_out(const loom_vid *v) { return v->deadline > 0 && loom_time_s() > v->deadline; }

static loom_status vid_fail_timeout(loom_vid *v, loom_err *err) {
    return LOOM_FAIL(err, LOOM_ERR_LIMIT, "%s: the time limit of %g s for this clip ran out", v->name,
                     v->op.timeout_s);
}

/* The clock runs only inside loom_vid calls (and not during the caller's frame callback), so a slow model
 * between frames does not eat the clip's budget. */
static loom_status vid_clock_start(loom_vid *v, loom_err *err) {
    v->call_start = loom_time_s();
    if (v->budget_s < 0) {
        v->deadline = 0;
        return LOOM_OK;
    }
    if (v->budget_s <= 0) return vid_fail_timeout(v, err);
    v->deadline = v->call_start + v->budget_s;
    return LOOM_OK;
}

static void vid_clock_stop(loom_vid *v) {
    if (v->budget_s >= 0) {
        v->budget_s -= loom_time_s() - v->call_start;
        if (v->budget_s < 0) v->budget_s = 0;
    }
    v->deadline = 0;
}

/* Maps an FFmpeg error from demuxing to a loom status with the av_strerror text. */
static loom_status vid_fail_av(loom_vid *v, loom_err *err, int code, const char *what) {
    char b[128];
    if (code == AVERROR_EXIT || vid_timed_out(v)) return vid_fail_timeout(v, err);
    if (code == AVERROR(ENOMEM)) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "%s: out of memory %s", v->name, what);
    if (code == AVERROR(EIO) || code == AVERROR(EACCES) || code == AVERROR(ENOENT))
        return LOOM_FAIL(err, LOOM_ERR_IO, "%s: %s: %s", v->name, what, vid_averr(code, b, sizeof b));
    return LOOM_FAIL(err, LOOM_ERR_FORMAT, "%s: %s: %s", v->name, what, vid_averr(code, b, sizeof b));
}

/* Timestamps come from the file: saturate instead of overflowing on hostile values. */
static int64_t vid_add(int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* Stream ticks to seconds from the first frame (in double: the difference of two hostile int64s may overflow). */
static double vid_secs(const loom_vid *v, int64_t ts) { return ((double)ts - (double)v->first_pts) * v->tb; }

static void vid_broken(loom_vid *v, const char *why) {
    v->broken++;
    v->bad_run++;
    if (v->broken <= VID_MAX_WARNINGS)
        LOOM_WARN("%s: skipping a broken video frame (%s)%s", v->name, why,
                  v->broken == VID_MAX_WARNINGS ? "; further ones are only counted" : "");
    else
        LOOM_DEBUG("%s: skipping a broken video frame (%s)", v->name, why);
}

/* ==== decoding ==== */

/* Receives the next frame in presentation order into f, reading and sending packets as needed.
 * Returns 1 with a frame (f->pts set to its timestamp, never AV_NOPTS_VALUE), 0 at the end of the stream,
 * or -1 with err filled. Broken packets and frames are skipped and counted. */
static int vid_decode_next(loom_vid *v, AVFrame *f, loom_err *err) {
    char b[128];
    for (;;) {
        if (vid_timed_out(v)) return vid_fail_timeout(v, err), -1;
        if (v->bad_run > VID_MAX_CONSECUTIVE_BAD) {
            LOOM_FAIL(err, LOOM_ERR_FORMAT, "%s: %d consecutive video packets failed to decode; the clip is "
                      "corrupt", v->name, v->bad_run);
            return -1;
        }
        if (v->dec_eof) return 0;
        int r = avcodec_receive_frame(v->dec, f);
        if (r == 0) {
            if ((f->flags & AV_FRAME_FLAG_CORRUPT) || f->decode_error_flags) {
                av_frame_unref(f);
                vid_broken(v, "decoder flagged it corrupt");
                continue;
            }
            if (f->width <= 0 || f->height <= 0 || f->width > v->op.max_dim || f->height > v->op.max_dim ||
                (v->op.max_pixels > 0 && (int64_t)f->width * f->height > v->op.max_pixels)) {
                LOOM_FAIL(err, LOOM_ERR_LIMIT, "%s: a frame is %dx%d, outside the limits (max side %d, %lld "
                          "pixels)", v->name, f->width, f->height, v->op.max_dim, (long long)v->op.max_pixels);
                av_frame_unref(f);
                return -1;
            }
            int64_t pts = v->no_pts ? AV_NOPTS_VALUE : f->best_effort_timestamp;
            if (pts == AV_NOPTS_VALUE) pts = v->last_pts == AV_NOPTS_VALUE ? 0 : vid_add(v->last_pts, v->period);
            f->pts = pts;
            v->last_pts = pts;
            v->n_decoded++;
            v->bad_run = 0;
            return 1;
        }
        if (r == AVERROR_EOF) {
            v->dec_eof = 1;
            return 0;
        }
        if (r != AVERROR(EAGAIN)) {
            if (r == AVERROR(ENOMEM)) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "%s: out of memory decoding", v->name), -1;
            vid_broken(v, vid_averr(r, b, sizeof b));
            continue;
        }
        /* The decoder wants input. */
        if (v->demux_eof) { /* already drained; a decoder that says EAGAIN here is confused */
            v->dec_eof = 1;
            return 0;
        }
        r = av_read_frame(v->fmt, v->pkt);
        if (r < 0) {
            if (r == AVERROR_EXIT || vid_timed_out(v)) return vid_fail_timeout(v, err), -1;
            if (r != AVERROR_EOF)
                LOOM_WARN("%s: reading stopped early (%s); using the frames before it", v->name,
                          vid_averr(r, b, sizeof b));
            v->demux_eof = 1;
            r = avcodec_send_packet(v->dec, NULL); /* drain the frames still inside the decoder */
            if (r < 0 && r != AVERROR_EOF) v->dec_eof = 1;
            continue;
        }
        if (v->pkt->stream_index != v->si) {
            av_packet_unref(v->pkt);
            continue;
        }
        /* A packet whose pts is below one already sent, itself not past the target, cannot be the frame on
         * screen at the target nor lie between it and the next one: if no other frame needs it (AVDISCARD_NONREF
         * lets the decoder judge that), it need not be decoded. This skips most B-frames on the way from the
         * keyframe to the target. */
        int64_t pp = v->pkt->pts;
        int skip = pp != AV_NOPTS_VALUE && v->seen_max != AV_NOPTS_VALUE && pp < v->seen_max;
        if (pp != AV_NOPTS_VALUE && v->target != AV_NOPTS_VALUE && pp <= v->target &&
            (v->seen_max == AV_NOPTS_VALUE || pp > v->seen_max))
            v->seen_max = pp;
        v->dec->skip_frame = skip ? AVDISCARD_NONREF : AVDISCARD_DEFAULT;
        r = avcodec_send_packet(v->dec, v->pkt);
        av_packet_unref(v->pkt);
        if (r < 0 && r != AVERROR(EAGAIN) && r != AVERROR_EOF) {
            if (r == AVERROR(ENOMEM)) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "%s: out of memory decoding", v->name), -1;
            vid_broken(v, vid_averr(r, b, sizeof b));
        }
    }
}

static void vid_reset_position(loom_vid *v) {
    av_frame_unref(v->prev);
    av_frame_unref(v->cur);
    v->has_prev = v->has_cur = 0;
    v->demux_eof = v->dec_eof = 0;
    v->last_pts = AV_NOPTS_VALUE;
    v->seen_max = AV_NOPTS_VALUE;
    avcodec_flush_buffers(v->dec);
}

/* Seeks to the keyframe at or before ts (stream ticks). Returns 0 on success; on failure the position is
 * left invalid only if FFmpeg may have moved, which we cannot know, so the caller treats it as lost. */
static int vid_seek(loom_vid *v, int64_t ts) {
    int r = av_seek_frame(v->fmt, v->si, ts, AVSEEK_FLAG_BACKWARD);
    if (r < 0) r = avformat_seek_file(v->fmt, v->si, INT64_MIN, ts, ts, 0);
    vid_reset_position(v);
    v->pos_valid = r >= 0;
    return r;
}

/* Back to the first frame, for sequential decoding. Tries a timestamp seek, then a byte seek to 0. */
static int vid_rewind(loom_vid *v) {
    int r = av_seek_frame(v->fmt, v->si, v->first_pts, AVSEEK_FLAG_BACKWARD);
    if (r < 0) r = av_seek_frame(v->fmt, -1, 0, AVSEEK_FLAG_BYTE);
    vid_reset_position(v);
    v->pos_valid = r >= 0;
    return r;
}

/* Is decoding on from the current position to ts at least as cheap as seeking? */
static int vid_can_continue(loom_vid *v, int64_t ts) {
    if (!v->pos_valid) return 0;
    if (v->has_prev && v->prev->pts > ts) return 0;                            /* target is behind us */
    if (!v->has_prev && v->has_cur && v->cur->pts > ts) return v->cur->pts <= v->first_pts; /* clip start */
    if (!v->has_prev && !v->has_cur) return !v->dec_eof;                       /* just seeked/rewound */
    if (!v->can_seek) return 1;
    int64_t frontier = v->has_cur ? v->cur->pts : v->prev->pts;
    if (v->dec_eof) return 1; /* everything up to the end is decoded: prev is the last frame */
    const AVIndexEntry *e = avformat_index_get_entry_from_timestamp(v->st, ts, AVSEEK_FLAG_BACKWARD);
    if (e && e->timestamp != AV_NOPTS_VALUE) return e->timestamp <= frontier;
    return ((double)ts - (double)frontier) * v->tb <= VID_FORWARD_WINDOW_S;
}

/* Decodes on until cur is past ts. Afterwards prev (if any) is the last frame with pts <= ts.
 * Returns LOOM_OK, or an error status with err filled. */
static loom_status vid_advance(loom_vid *v, int64_t ts, loom_err *err) {
    for (;;) {
        if (!v->has_cur) {
            v->target = ts;
            int r = vid_decode_next(v, v->cur, err);
            v->target = AV_NOPTS_VALUE;
            if (r < 0) return err ? err->code : LOOM_ERR_FORMAT;
            if (r == 0) return LOOM_OK;
            v->has_cur = 1;
        }
        if (v->cur->pts > ts) return LOOM_OK;
        av_frame_unref(v->prev);
        av_frame_move_ref(v->prev, v->cur);
        v->has_prev = 1;
        v->has_cur = 0;
        if (v->prev->pts == ts) return LOOM_OK; /* exact hit: no need to look at the next frame */
    }
}

/* Positions prev/cur around ts and returns the frame on screen at ts in *out (a pointer to prev or cur). */
static loom_status vid_locate(loom_vid *v, int64_t ts, AVFrame **out, loom_err *err) {
    *out = NULL;
    loom_status s;
    if (!vid_can_continue(v, ts)) {
        int ok = 0;
        if (v->can_seek) {
            /* A seek should land at or before ts; if the index is wrong and it lands after, step back
             * further (0.5 s, 1 s, 2 s, ...) before giving up and decoding from the start. */
            double back = 0.0;
            for (int attempt = 0; attempt < 6 && !ok; attempt++) {
                int64_t seek_ts = vid_add(ts, -(int64_t)(back / v->tb));
                if (seek_ts < v->first_pts) seek_ts = v->first_pts;
                if (vid_seek(v, seek_ts) < 0) {
                    LOOM_WARN("%s: seeking failed; decoding sequentially instead", v->name);
                    v->can_seek = 0;
                    break;
                }
                s = vid_advance(v, ts, err);
                if (s != LOOM_OK) return s;
                /* Landed well: a frame at or before ts, or the clip's first frame, or nowhere earlier to go. */
                ok = v->has_prev || (v->has_cur && v->cur->pts <= v->first_pts) || seek_ts == v->first_pts;
                back = back == 0 ? 0.5 : back * 2;
            }
        }
        if (!ok && vid_rewind(v) < 0)
            return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "%s: cannot go back in this stream to %.3f s", v->name,
                             vid_secs(v, ts));
    }
    s = vid_advance(v, ts, err); /* returns at once when the seek loop already got there */
    if (s != LOOM_OK) return s;
    if (v->has_prev) *out = v->prev;
    else if (v->has_cur) *out = v->cur; /* ts is before the first frame */
    else return LOOM_FAIL(err, LOOM_ERR_FORMAT, "%s: no decodable frame at %.3f s", v->name,
                          vid_secs(v, ts));
    return LOOM_OK;
}

/* ==== conversion to RGB ==== */

static loom_status vid_to_image(loom_vid *v, const AVFrame *f, const loom_vid_sample_params *p, loom_image **out,
                                loom_err *err) {
    *out = NULL;
    int sw, sh, ow, oh;
    loom_status s = vid_output_size(f->width, f->height, v->sar, v->info.rotation, p->max_side, p->max_pixels, &sw,
                                    &sh, &ow, &oh, err);
    if (s != LOOM_OK) return loom_err_prefix(err, "%s: ", v->name), s;
    enum AVPixelFormat pf = (enum AVPixelFormat)f->format;
    int shrink = (int64_t)sw * sh < (int64_t)f->width * f->height;
    v->sws = sws_getCachedContext(v->sws, f->width, f->height, pf, sw, sh, AV_PIX_FMT_RGB24,
                                  (shrink ? SWS_AREA : SWS_BICUBIC) | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, NULL,
                                  NULL, NULL);
    if (!v->sws) {
        const char *name = av_get_pix_fmt_name(pf);
        return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "%s: cannot convert pixel format %s to RGB", v->name,
                         name ? name : "?");
    }
    /* swscale assumes BT.601 limited range; HD clips are usually BT.709 and JPEG-style ones full range. */
    int full = f->color_range == AVCOL_RANGE_JPEG || pf == AV_PIX_FMT_YUVJ420P || pf == AV_PIX_FMT_YUVJ422P ||
               pf == AV_PIX_FMT_YUVJ444P || pf == AV_PIX_FMT_YUVJ440P || pf == AV_PIX_FMT_YUVJ411P;
    int cs = f->colorspace == AVCOL_SPC_UNSPECIFIED ? (f->height >= 720 ? SWS_CS_ITU709 : SWS_CS_DEFAULT)
                                                    : (int)f->colorspace;
    int *inv, *tbl, src_range, dst_range, bri, con, sat;
    if (sws_getColorspaceDetails(v->sws, &inv, &src_range, &tbl, &dst_range, &bri, &con, &sat) >= 0)
        sws_setColorspaceDetails(v->sws, sws_getCoefficients(cs), full, tbl, 1, bri, con, sat);

    loom_image *img;
    s = loom_image_new(&img, ow, oh, 3, p->max_pixels, err);
    if (s != LOOM_OK) return s;
    uint8_t *tmp = NULL, *dst = img->data;
    if (v->info.rotation) {
        size_t bytes = (size_t)sw * sh * 3;
        tmp = loom_malloc(bytes);
        if (!tmp) {
            loom_image_free(img);
            return LOOM_FAIL(err, LOOM_ERR_NOMEM, "%s: out of memory for a %dx%d frame", v->name, sw, sh);
        }
        dst = tmp;
    }
    uint8_t *planes[4] = {dst, NULL, NULL, NULL};
    int strides[4] = {sw * 3, 0, 0, 0};
    int r = sws_scale(v->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, planes, strides);
    if (r <= 0) {
        loom_free(tmp);
        loom_image_free(img);
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "%s: converting a %dx%d frame to RGB failed", v->name, f->width,
                         f->height);
    }
    if (tmp) {
        vid_rotate_rgb(img->data, tmp, sw, sh, v->info.rotation);
        loom_free(tmp);
    }
    *out = img;
    return LOOM_OK;
}

/* ==== opening ==== */

static void vid_free_all(loom_vid *v) {
    if (!v) return;
    sws_freeContext(v->sws);
    av_frame_free(&v->prev);
    av_frame_free(&v->cur);
    av_packet_free(&v->pkt);
    avcodec_free_context(&v->dec);
    avformat_close_input(&v->fmt);
    loom_free(v);
}

/* Clockwise display rotation from the stream's display matrix (0 when absent or not a multiple of 90).
 * av_display_rotation_get returns the counter-clockwise angle, hence the sign flip (as ffmpeg's CLI does). */
static int vid_rotation(AVStream *st) {
    size_t size = 0;
    const uint8_t *m = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
    if (!m || size < 9 * sizeof(int32_t)) return 0;
    double a = av_display_rotation_get((const int32_t *)m);
    if (isnan(a)) return 0;
    int cw = (int)lround(-a) % 360;
    if (cw < 0) cw += 360;
    cw = (cw + 45) / 90 * 90 % 360; /* round to the nearest quarter turn */
    return cw;
}

/* Duration from the packets themselves when the headers do not give one (raw streams, some broken files):
 * demux only, no decoding, then back to the start. Without timestamps the packets are counted, matching the
 * frame-count timestamps vid_decode_next makes up for such streams. Returns < 0 if the start is lost. */
static double vid_scan_duration(loom_vid *v) {
    int64_t end = AV_NOPTS_VALUE, count = 0;
    if (vid_rewind(v) < 0) return -1.0; /* opening decoded a few packets already: count from the start */
    while (!vid_timed_out(v) && av_read_frame(v->fmt, v->pkt) >= 0) {
        if (v->pkt->stream_index == v->si) {
            count++;
            int64_t t = v->pkt->pts != AV_NOPTS_VALUE ? v->pkt->pts : v->pkt->dts;
            if (t != AV_NOPTS_VALUE) {
                t = vid_add(t, v->pkt->duration > 0 ? v->pkt->duration : v->period);
                if (end == AV_NOPTS_VALUE || t > end) end = t;
            }
        }
        av_packet_unref(v->pkt);
    }
    if (vid_rewind(v) < 0) return -1.0;
    if (v->no_pts || end == AV_NOPTS_VALUE) return (double)count * v->period * v->tb;
    return vid_secs(v, end);
}

static void vid_copy_name(char *dst, size_t n, const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(dst, n, "%s", base);
}

static loom_status vid_open_stream(loom_vid *v, const char *path, loom_err *err) {
    char b[128];
    v->fmt = avformat_alloc_context();
    if (!v->fmt) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "%s: out of memory", v->name);
    v->fmt->interrupt_callback.callback = vid_interrupt;
    v->fmt->interrupt_callback.opaque = v;
    int r = avformat_open_input(&v->fmt, path, NULL, NULL);
    if (r < 0) { /* avformat_open_input frees the context on failure */
        if (r == AVERROR_EXIT || vid_timed_out(v)) return vid_fail_timeout(v, err);
        if (r == AVERROR(ENOENT) || r == AVERROR(EACCES) || r == AVERROR(EIO))
            return LOOM_FAIL(err, LOOM_ERR_IO, "%s: cannot open: %s", v->name, vid_averr(r, b, sizeof b));
        if (r == AVERROR_EOF)
            return LOOM_FAIL(err, LOOM_ERR_FORMAT, "%s: the file ends before any video data (empty or truncated)",
                             v->name);
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "%s: not a video file FFmpeg can read (%s)", v->name,
                         vid_averr(r, b, sizeof b));
    }
    r = avformat_find_stream_info(v->fmt, NULL);
    if (r < 0 && (r == AVERROR_EXIT || vid_timed_out(v))) return vid_fail_timeout(v, err);
    if (r < 0) LOOM_DEBUG("%s: stream probing was incomplete (%s)", v->name, vid_averr(r, b, sizeof b));

    const AVCodec *codec = NULL;
    int si = av_find_best_stream(v->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    /* A cover picture in an audio file is a one-frame "video" stream: not a clip. */
    if (si >= 0 && (v->fmt->streams[si]->disposition & AV_DISPOSITION_ATTACHED_PIC)) {
        si = AVERROR_STREAM_NOT_FOUND;
        for (unsigned i = 0; i < v->fmt->nb_streams; i++) {
            AVStream *st = v->fmt->streams[i];
            if (st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO && !(st->disposition & AV_DISPOSITION_ATTACHED_PIC)) {
                si = (int)i;
                codec = avcodec_find_decoder(st->codecpar->codec_id);
                if (!codec) si = AVERROR_DECODER_NOT_FOUND;
                break;
            }
        }
    }
    if (si == AVERROR_DECODER_NOT_FOUND) {
        int vi = av_find_best_stream(v->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
        const char *cn = vi >= 0 ? avcodec_get_name(v->fmt->streams[vi]->codecpar->codec_id) : "?";
        return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "%s: this FFmpeg has no decoder for the %s video codec", v->name,
                         cn);
    }
    if (si < 0) {
        int n_audio = 0;
        for (unsigned i = 0; i < v->fmt->nb_streams; i++)
            n_audio += v->fmt->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO;
        if (n_audio)
            return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "%s: no video stream (audio only: %d audio stream%s)",
                             v->name, n_audio, n_audio == 1 ? "" : "s");
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "%s: no video stream (%u stream%s, none of them video)", v->name,
                         v->fmt->nb_streams, v->fmt->nb_streams == 1 ? "" : "s");
    }
    enum AVCodecID cid = v->fmt->streams[si]->codecpar->codec_id;
    if (cid == AV_CODEC_ID_ANSI || cid == AV_CODEC_ID_BINTEXT || cid == AV_CODEC_ID_XBIN || cid == AV_CODEC_ID_IDF)
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "%s: a text file (FFmpeg would render it as ANSI art), not a video",
                         v->name);
    v->si = si;
    v->st = v->fmt->streams[si];
    for (unsigned i = 0; i < v->fmt->nb_streams; i++)
        if ((int)i != si) v->fmt->streams[i]->discard = AVDISCARD_ALL; /* the demuxer may skip them */

    AVCodecParameters *cp = v->st->codecpar;
    if (cp->width < 0 || cp->height < 0 || cp->width > v->op.max_dim || cp->height > v->op.max_dim ||
        (v->op.max_pixels > 0 && (int64_t)cp->width * cp->height > v->op.max_pixels))
        return LOOM_FAIL(err, LOOM_ERR_LIMIT, "%s: video is %dx%d, outside the limits (max side %d, %lld pixels)",
                         v->name, cp->width, cp->height, v->op.max_dim, (long long)v->op.max_pixels);
    if (v->st->time_base.num <= 0 || v->st->time_base.den <= 0)
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "%s: video stream has an invalid time base %d/%d", v->name,
                         v->st->time_base.num, v->st->time_base.den);
    v->tb = av_q2d(v->st->time_base);

    v->dec = avcodec_alloc_context3(codec);
    if (!v->dec) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "%s: out of memory for the decoder", v->name);
    r = avcodec_parameters_to_context(v->dec, cp);
    if (r < 0) return vid_fail_av(v, err, r, "bad codec parameters");
    v->dec->pkt_timebase = v->st->time_base;
    v->dec->thread_count = v->op.threads;
    if (v->op.max_pixels > 0) v->dec->max_pixels = v->op.max_pixels;
    r = avcodec_open2(v->dec, codec, NULL);
    if (r < 0) return vid_fail_av(v, err, r, "cannot open the video decoder");
    return LOOM_OK;
}

loom_status loom_vid_open(loom_vid **out, const char *path, const loom_vid_open_params *params, loom_err *err) {
    loom_err local = {0};
    if (!err) err = &local; /* internal steps read the status back from err */
    if (!out) return LOOM_FAIL(err, LOOM_ERR_INVALID, "video: out is NULL");
    *out = NULL;
    if (!path || !*path) return LOOM_FAIL(err, LOOM_ERR_INVALID, "video: no file name");
    loom_vid_open_params op = params ? *params : loom_vid_default_open_params();
    if (!isfinite(op.timeout_s) || op.timeout_s < 0 || op.max_dim < 1 || op.max_pixels < 0 || op.threads < 0)
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "video: bad open parameters (timeout %g, max_dim %d, max_pixels "
                         "%lld, threads %d)", op.timeout_s, op.max_dim, (long long)op.max_pixels, op.threads);
    pthread_once(&vid_log_once, vid_log_init);

    /* Catch the plain cases ourselves: FFmpeg would call an empty file "invalid data". */
    struct stat sb;
    if (stat(path, &sb) != 0) return LOOM_FAIL(err, LOOM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return LOOM_FAIL(err, LOOM_ERR_IO, "%s: is a directory, not a video", path);
    if (S_ISREG(sb.st_mode) && sb.st_size == 0) return LOOM_FAIL(err, LOOM_ERR_FORMAT, "%s: file is empty", path);

    loom_vid *v = loom_calloc(1, sizeof *v);
    if (!v) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "video: out of memory");
    v->op = op;
    v->budget_s = op.timeout_s > 0 ? op.timeout_s : -1.0;
    v->first_pts = v->last_pts = AV_NOPTS_VALUE;
    v->target = v->seen_max = AV_NOPTS_VALUE;
    vid_copy_name(v->name, sizeof v->name, path);
    loom_status s = vid_clock_start(v, err);
    if (s == LOOM_OK) s = vid_open_stream(v, path, err);
    if (s != LOOM_OK) goto fail;

    v->pkt = av_packet_alloc();
    v->prev = av_frame_alloc();
    v->cur = av_frame_alloc();
    if (!v->pkt || !v->prev || !v->cur) {
        s = LOOM_FAIL(err, LOOM_ERR_NOMEM, "%s: out of memory", v->name);
        goto fail;
    }

    /* Frame period: from the average rate, else the guessed one; used for missing timestamps. */
    AVRational fr = v->st->avg_frame_rate;
    if (fr.num <= 0 || fr.den <= 0) fr = v->st->r_frame_rate;
    double fps = fr.num > 0 && fr.den > 0 ? av_q2d(fr) : 0.0;
    if (!(fps > 0 && fps < 1e6)) fps = 0.0;
    double period_s = fps > 0 ? 1.0 / fps : 0.04;
    v->period = (int64_t)(period_s / v->tb + 0.5);
    if (v->period < 1) v->period = 1;
    v->info.fps = fps;

    /* Decode the first frame: proves the stream is usable and fixes time 0. */
    v->pos_valid = 1;
    int r = vid_decode_next(v, v->cur, err);
    if (r < 0) {
        s = err ? err->code : LOOM_ERR_FORMAT;
        goto fail;
    }
    if (r == 0) {
        s = LOOM_FAIL(err, LOOM_ERR_FORMAT, "%s: the video stream has no decodable frame (empty, truncated or "
                      "corrupt)", v->name);
        goto fail;
    }
    v->has_cur = 1;
    if (v->cur->best_effort_timestamp == AV_NOPTS_VALUE) v->no_pts = 1;
    v->first_pts = v->cur->pts;
    v->can_seek = !v->no_pts && v->fmt->pb && (v->fmt->pb->seekable & AVIO_SEEKABLE_NORMAL);

    AVRational sar = v->cur->sample_aspect_ratio;
    if (sar.num <= 0 || sar.den <= 0) sar = v->st->sample_aspect_ratio;
    if (sar.num <= 0 || sar.den <= 0) sar = v->dec->sample_aspect_ratio;
    v->sar = sar.num > 0 && sar.den > 0 ? av_q2d(sar) : 1.0;

    loom_vid_info *in = &v->info;
    in->rotation = vid_rotation(v->st);
    in->coded_width = v->cur->width;
    in->coded_height = v->cur->height;
    int sw, sh;
    s = vid_output_size(in->coded_width, in->coded_height, v->sar, in->rotation, 0, 0, &sw, &sh, &in->width,
                        &in->height, err);
    if (s != LOOM_OK) goto fail;
    snprintf(in->codec, sizeof in->codec, "%s", v->dec->codec->name);
    snprintf(in->container, sizeof in->container, "%s", v->fmt->iformat->name);
    in->n_frames = v->st->nb_frames > 0 ? v->st->nb_frames : 0;

    /* Duration: the stream's own, else the container's (unless only guessed from the bitrate), else measured
     * from the packets, else frames / rate, else the bitrate guess. */
    double dur = 0.0;
    int seekable_io = v->fmt->pb && (v->fmt->pb->seekable & AVIO_SEEKABLE_NORMAL);
    int have_fmt_dur = v->fmt->duration != AV_NOPTS_VALUE && v->fmt->duration > 0;
    if (v->st->duration != AV_NOPTS_VALUE && v->st->duration > 0 && !v->no_pts) {
        int64_t st0 = v->st->start_time != AV_NOPTS_VALUE ? v->st->start_time : v->first_pts;
        dur = ((double)v->st->duration - ((double)v->first_pts - (double)st0)) * v->tb;
    } else if (have_fmt_dur && v->fmt->duration_estimation_method != AVFMT_DURATION_FROM_BITRATE && !v->no_pts) {
        dur = (double)v->fmt->duration / AV_TIME_BASE;
    } else if (seekable_io) {
        dur = vid_scan_duration(v);
        if (dur < 0) {
            s = LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "%s: cannot return to the start of the clip after measuring "
                          "its length", v->name);
            goto fail;
        }
    }
    if (dur <= 0 && in->n_frames > 0 && fps > 0) dur = (double)in->n_frames / fps;
    if (dur <= 0 && have_fmt_dur) dur = (double)v->fmt->duration / AV_TIME_BASE;
    if (vid_timed_out(v)) {
        s = vid_fail_timeout(v, err);
        goto fail;
    }
    if (!isfinite(dur) || dur < period_s) dur = period_s; /* a single picture still lasts one frame */
    in->duration_s = dur;
    vid_clock_stop(v);
    LOOM_DEBUG("%s: %s in %s, %dx%d (coded %dx%d, rotation %d), %.3f s at %.3f fps, seek %s", v->name, in->codec,
               in->container, in->width, in->height, in->coded_width, in->coded_height, in->rotation, in->duration_s,
               in->fps, v->can_seek ? "yes" : "no");
    *out = v;
    return LOOM_OK;

fail:
    vid_free_all(v);
    return s;
}

void loom_vid_close(loom_vid *v) { vid_free_all(v); }

const loom_vid_info *loom_vid_get_info(const loom_vid *v) { return v ? &v->info : NULL; }

int64_t loom_vid_broken_frames(const loom_vid *v) { return v ? v->broken : 0; }

int64_t vid_decoded_frames(const loom_vid *v) { return v ? v->n_decoded : 0; }

/* ==== planning and extraction ==== */

loom_status loom_vid_plan(const loom_vid *v, const loom_vid_sample_params *p, double *times, int cap, int *n,
                          loom_err *err) {
    if (!v || !times || !n) {
        if (n) *n = 0;
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "video: loom_vid_plan needs a clip, a times array and a count");
    }
    loom_vid_sample_params d = loom_vid_default_sample_params();
    return vid_plan_times(v->info.duration_s, p ? p : &d, times, cap, n, err);
}

static loom_status vid_frame_at(loom_vid *v, double t, const loom_vid_sample_params *p, loom_vid_frame *out,
                                loom_err *err) {
    if (!isfinite(t)) return LOOM_FAIL(err, LOOM_ERR_INVALID, "video: sample time %g is not a number", t);
    if (t < 0) t = 0;
    /* Past the end only means "the last frame"; clamping keeps the tick arithmetic far from overflow. */
    if (t > v->info.duration_s + 3600.0) t = v->info.duration_s + 3600.0;
    double ticks = floor(t / v->tb + 1e-6); /* + eps: 0.2 s is 239999.99... ticks of 1/1200000 */
    int64_t ts = vid_add(v->first_pts, ticks < 4e18 ? (int64_t)ticks : INT64_MAX);
    AVFrame *f;
    loom_status s = vid_locate(v, ts, &f, err);
    if (s != LOOM_OK) return s;
    s = vid_to_image(v, f, p, &out->img, err);
    if (s != LOOM_OK) return s;
    out->t_s = vid_secs(v, f->pts);
    out->target_s = t;
    out->index = 0;
    return LOOM_OK;
}

loom_status loom_vid_frame_at(loom_vid *v, double t_s, const loom_vid_sample_params *p, loom_vid_frame *out,
                              loom_err *err) {
    loom_err local = {0};
    if (!err) err = &local;
    if (!v || !out) return LOOM_FAIL(err, LOOM_ERR_INVALID, "video: loom_vid_frame_at needs a clip and an output");
    memset(out, 0, sizeof *out);
    loom_vid_sample_params d = loom_vid_default_sample_params();
    if (!p) p = &d;
    loom_status s = vid_check_sample_params(p, err);
    if (s != LOOM_OK) return s;
    s = vid_clock_start(v, err);
    if (s != LOOM_OK) return s;
    s = vid_frame_at(v, t_s, p, out, err);
    vid_clock_stop(v);
    return s;
}

loom_status loom_vid_extract(loom_vid *v, const loom_vid_sample_params *p, loom_vid_frame_fn fn, void *user,
                             loom_err *err) {
    loom_err local = {0};
    if (!err) err = &local;
    if (!v || !fn) return LOOM_FAIL(err, LOOM_ERR_INVALID, "video: loom_vid_extract needs a clip and a callback");
    loom_vid_sample_params d = loom_vid_default_sample_params();
    if (!p) p = &d;
    double times[LOOM_VID_MAX_FRAMES];
    int n;
    loom_status s = loom_vid_plan(v, p, times, LOOM_VID_MAX_FRAMES, &n, err);
    if (s != LOOM_OK) return s;

    int delivered = 0;
    double last_t = -1.0;
    loom_err ferr = {0};
    for (int i = 0; i < n; i++) {
        s = vid_clock_start(v, err);
        if (s != LOOM_OK) return s;
        loom_vid_frame fr = {0};
        s = vid_frame_at(v, times[i], p, &fr, &ferr);
        vid_clock_stop(v);
        if (s == LOOM_ERR_FORMAT) { /* one bad spot in the clip: skip it, keep the others */
            v->broken++;
            LOOM_WARN("%s: no frame for %.3f s: %s", v->name, times[i], ferr.msg);
            continue;
        }
        if (s != LOOM_OK) {
            if (err) *err = ferr;
            return s;
        }
        /* Two planned times on one frame (a clip with fewer frames than samples, a held VFR frame): deliver
         * it once, the model gains nothing from a duplicate. */
        if (delivered > 0 && fr.t_s == last_t) {
            loom_image_free(fr.img);
            continue;
        }
        fr.index = i;
        last_t = fr.t_s;
        delivered++;
        s = fn(user, &fr);
        if (s != LOOM_OK) return LOOM_FAIL(err, s, "%s: frame callback stopped extraction (%s)", v->name,
                                           loom_status_str(s));
    }
    if (delivered == 0) {
        if (err && ferr.code != LOOM_OK) *err = ferr;
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "%s: none of the %d planned frames could be decoded", v->name, n);
    }
    return LOOM_OK;
}

#else /* !LOOM_WITH_FFMPEG: omit stubs (sqlite style), so callers link and get a clear error. */

#define VID_NO_FFMPEG "video support is not built in: loom was compiled without the FFmpeg libraries " \
                      "(install libavformat-dev libavcodec-dev libswscale-dev libavutil-dev and rebuild)"

loom_status loom_vid_open(loom_vid **out, const char *path, const loom_vid_open_params *params, loom_err *err) {
    (void)path, (void)params;
    if (out) *out = NULL;
    return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, VID_NO_FFMPEG);
}
void                 loom_vid_close(loom_vid *v) { (void)v; }
const loom_vid_info *loom_vid_get_info(const loom_vid *v) { (void)v; return NULL; }
int64_t              loom_vid_broken_frames(const loom_vid *v) { (void)v; return 0; }
int64_t              vid_decoded_frames(const loom_vid *v) { (void)v; return 0; }
loom_status loom_vid_plan(const loom_vid *v, const loom_vid_sample_params *p, double *times, int cap, int *n,
                          loom_err *err) {
    (void)v, (void)p, (void)times, (void)cap;
    if (n) *n = 0;
    return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, VID_NO_FFMPEG);
}
loom_status loom_vid_frame_at(loom_vid *v, double t_s, const loom_vid_sample_params *p, loom_vid_frame *out,
                              loom_err *err) {
    (void)v, (void)t_s, (void)p;
    if (out) memset(out, 0, sizeof *out);
    return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, VID_NO_FFMPEG);
}
loom_status loom_vid_extract(loom_vid *v, const loom_vid_sample_params *p, loom_vid_frame_fn fn, void *user,
                             loom_err *err) {
    (void)v, (void)p, (void)fn, (void)user;
    return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, VID_NO_FFMPEG);
}

#endif
