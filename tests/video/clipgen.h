/* tests/video/clipgen.h — writes tiny test clips with libavcodec/libavformat encoders (shared by the video and
 * CLI tests). Every frame i is a solid PALETTE[i % 8] colour (or a left/right split) at a known timestamp, so a
 * decoded frame's colour says which frame it is. Include only where LOOM_WITH_FFMPEG is set. */
#ifndef LOOM_TESTS_VIDEO_CLIPGEN_H
#define LOOM_TESTS_VIDEO_CLIPGEN_H

#include <criterion/criterion.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
#include <stdlib.h>
#include <string.h>

/* ==== clip writer ==== */

static const uint8_t PALETTE[8][3] = {{220, 30, 30},  {30, 200, 40},   {40, 40, 220},  {230, 220, 40},
                                      {210, 40, 200}, {40, 210, 210}, {235, 235, 235}, {20, 20, 20}};

typedef struct clip_spec {
    const char    *path;
    const char    *muxer;  /* "mp4", "matroska", "avi" */
    const char    *codec;  /* "libx264", "mpeg4", "ffv1", "mjpeg" */
    int            w, h;
    AVRational     tb;     /* encoder time base; pts below are in it */
    int            n;
    const int64_t *pts;    /* NULL: 0, 1, 2, ... */
    int            gop;
    int            split;  /* frame i: left half PALETTE[i%8], right half PALETTE[(i+2)%8] */
    double         rotate;     /* display matrix angle as av_display_rotation_set takes it; 0 = none */
    int            bframes;    /* libx264 only: B-frames (frame reordering, dts != pts) */
    int            damage_every; /* > 0: garble the payload of every damage_every-th packet (container intact) */
} clip_spec;

static void paint(uint8_t *rgb, int w, int h, int i, int split) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const uint8_t *c = PALETTE[(split && x >= w / 2 ? i + 2 : i) % 8];
            memcpy(rgb + (y * w + x) * 3, c, 3);
        }
}

/* Each packet lasts until the next frame (the last one a tenth of a second), so muxers that derive a track's
 * length from packet durations (MP4) get it right for variable frame rates too. */
static int64_t frame_duration(const clip_spec *c, int64_t pts) {
    if (!c->pts) return 1;
    for (int i = 0; i + 1 < c->n; i++)
        if (c->pts[i] == pts) return c->pts[i + 1] - pts;
    return c->tb.den / c->tb.num / 10 > 0 ? c->tb.den / c->tb.num / 10 : 1;
}

static int encode_and_write(const clip_spec *c, AVCodecContext *enc, AVFormatContext *oc, AVStream *st, AVFrame *fr,
                            AVPacket *pkt, int *n_pkt) {
    int r = avcodec_send_frame(enc, fr);
    if (r < 0) return r;
    for (;;) {
        r = avcodec_receive_packet(enc, pkt);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return 0;
        if (r < 0) return r;
        if (pkt->duration <= 0) pkt->duration = frame_duration(c, pkt->pts);
        av_packet_rescale_ts(pkt, enc->time_base, st->time_base);
        pkt->stream_index = st->index;
        if (c->damage_every > 0 && ++*n_pkt % c->damage_every == 0 && pkt->size > 8) {
            uint32_t x = 2463534242u;
            for (int i = pkt->size / 4; i < pkt->size; i++) x ^= x << 13, x ^= x >> 17, x ^= x << 5, pkt->data[i] = (uint8_t)x;
        }
        r = av_interleaved_write_frame(oc, pkt);
        if (r < 0) return r;
    }
}

static void write_clip(const clip_spec *c) {
    const AVCodec *codec = avcodec_find_encoder_by_name(c->codec);
    if (!codec) cr_skip_test("encoder %s not available in this FFmpeg", c->codec);
    AVFormatContext *oc = NULL;
    cr_assert_geq(avformat_alloc_output_context2(&oc, NULL, c->muxer, c->path), 0);
    AVStream *st = avformat_new_stream(oc, NULL);
    AVCodecContext *enc = avcodec_alloc_context3(codec);
    cr_assert(st && enc);
    enc->width = c->w;
    enc->height = c->h;
    enc->time_base = c->tb;
    enc->framerate = (AVRational){c->tb.den, c->tb.num};
    enc->gop_size = c->gop;
    enc->pix_fmt = !strcmp(c->codec, "mjpeg") ? AV_PIX_FMT_YUVJ420P : AV_PIX_FMT_YUV420P;
    enc->thread_count = 1;
    if (!strcmp(c->codec, "libx264")) {
        av_opt_set(enc->priv_data, "preset", "veryfast", 0);
        av_opt_set(enc->priv_data, "crf", "12", 0);
        /* Colour changes every frame would make each one a scene cut (an I-frame); keep real GOPs with B-frames. */
        char x264[64];
        snprintf(x264, sizeof x264, "scenecut=0:bframes=%d", c->bframes);
        av_opt_set(enc->priv_data, "x264-params", x264, 0);
        enc->keyint_min = c->gop;
    } else if (!strcmp(c->codec, "mpeg4") || !strcmp(c->codec, "mjpeg")) {
        enc->flags |= AV_CODEC_FLAG_QSCALE;
        enc->global_quality = FF_QP2LAMBDA * 2;
    }
    if (oc->oformat->flags & AVFMT_GLOBALHEADER) enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    cr_assert_geq(avcodec_open2(enc, codec, NULL), 0, "cannot open encoder %s", c->codec);
    cr_assert_geq(avcodec_parameters_from_context(st->codecpar, enc), 0);
    st->time_base = c->tb;
    if (!c->pts) st->avg_frame_rate = enc->framerate;
    if (c->rotate != 0) {
        uint8_t *sd = av_stream_new_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, 9 * sizeof(int32_t));
        cr_assert_not_null(sd);
        av_display_rotation_set((int32_t *)sd, c->rotate);
    }
    cr_assert_geq(avio_open(&oc->pb, c->path, AVIO_FLAG_WRITE), 0);
    cr_assert_geq(avformat_write_header(oc, NULL), 0);

    AVFrame *fr = av_frame_alloc();
    AVPacket *pkt = av_packet_alloc();
    fr->format = enc->pix_fmt;
    fr->width = c->w;
    fr->height = c->h;
    cr_assert_geq(av_frame_get_buffer(fr, 0), 0);
    struct SwsContext *sws = sws_getContext(c->w, c->h, AV_PIX_FMT_RGB24, c->w, c->h, enc->pix_fmt, SWS_POINT, NULL,
                                            NULL, NULL);
    uint8_t *rgb = malloc((size_t)c->w * c->h * 3);
    int n_pkt = 0;
    for (int i = 0; i < c->n; i++) {
        cr_assert_geq(av_frame_make_writable(fr), 0);
        paint(rgb, c->w, c->h, i, c->split);
        const uint8_t *src[1] = {rgb};
        int stride[1] = {c->w * 3};
        sws_scale(sws, src, stride, 0, c->h, fr->data, fr->linesize);
        fr->pts = c->pts ? c->pts[i] : i;
        cr_assert_geq(encode_and_write(c, enc, oc, st, fr, pkt, &n_pkt), 0);
    }
    cr_assert_geq(encode_and_write(c, enc, oc, st, NULL, pkt, &n_pkt), 0);
    cr_assert_geq(av_write_trailer(oc), 0);
    free(rgb);
    sws_freeContext(sws);
    av_packet_free(&pkt);
    av_frame_free(&fr);
    avcodec_free_context(&enc);
    avio_closep(&oc->pb);
    avformat_free_context(oc);
}

#endif
