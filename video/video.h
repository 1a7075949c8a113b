/* video/video.h — clips in, timestamped RGB frames out (prefix loom_vid_).
 *
 * video/ demuxes and decodes a clip in process with the system FFmpeg libraries (libavformat, libavcodec,
 * libswscale, libavutil; Debian 12 ships FFmpeg 5.1), picks sample times, and hands back each sampled frame
 * as a core/ loom_image (RGB, top row first, rotation metadata applied) with its timestamp. It knows nothing
 * of models: the caller feeds the frames to the session like any image (Llama 4 has no video modality,
 * LLAMA4.md §7: frames-as-images; max_side 336 makes each frame a single tile).
 *
 * Usage:
 *
 *   loom_vid *v; loom_err err = {0};
 *   loom_vid_open_params op = loom_vid_default_open_params();      // 30 s time limit, size limits
 *   if (loom_vid_open(&v, "clip.mp4", &op, &err) != LOOM_OK) { fprintf(stderr, "%s\n", err.msg); ... }
 *   const loom_vid_info *info = loom_vid_get_info(v);              // duration, fps, w/h after rotation, codec
 *
 *   loom_vid_sample_params sp = loom_vid_default_sample_params();  // 8 frames, uniform
 *   sp.max_side = 336;
 *   double t[LOOM_VID_MAX_FRAMES]; int n;
 *   loom_vid_plan(v, &sp, t, LOOM_VID_MAX_FRAMES, &n, &err);       // times only, no decoding (--list-frames)
 *
 *   loom_vid_extract(v, &sp, on_frame, user, &err);                // seek + decode each planned frame in turn
 *   // static loom_status on_frame(void *user, loom_vid_frame *f) { use f->img, f->t_s; loom_image_free(f->img); }
 *   loom_vid_close(v);
 *
 * Memory stays bounded by a few decoded frames however long the clip is: each sample time is reached by
 * seeking to the keyframe at or before it and decoding forward, never by decoding the whole clip.
 *
 * Time: every time is in seconds from the start of the chosen video stream (its first timestamp is 0).
 * Threads: a loom_vid is used by one thread at a time; separate clips may be used from separate threads.
 *
 * Errors (the message in err says which file and why):
 *   LOOM_ERR_IO           the file cannot be opened or read
 *   LOOM_ERR_FORMAT       empty file, not a media file, corrupt or truncated beyond use, no decodable frame
 *   LOOM_ERR_UNSUPPORTED  no video stream (audio-only file, cover art only), a codec FFmpeg lacks, or loom built
 *                         without FFmpeg (every function then returns this)
 *   LOOM_ERR_LIMIT        the clip's time limit ran out, or a frame exceeds max_dim / max_pixels
 *   LOOM_ERR_INVALID      bad parameters (n_frames < 1, fps < 0, NULL path, ...)
 *   LOOM_ERR_NOMEM        allocation failed
 */
#ifndef LOOM_VIDEO_VIDEO_H
#define LOOM_VIDEO_VIDEO_H

#include <stdint.h>

#include "core/err.h"
#include "core/image.h"

/* Hard ceiling on frames per plan: a caller can size its time array with it. */
#define LOOM_VID_MAX_FRAMES 1024

typedef struct loom_vid loom_vid; /* an open clip; opaque */

/* ==== opening ==== */

typedef struct loom_vid_open_params {
    double  timeout_s;  /* total wall-clock time loom_vid may spend on this clip (open, seeks, decoding), summed
                           over all calls; the caller's frame callback is not counted. 0 = no limit. Default 30. */
    int     max_dim;    /* reject a stream whose coded width or height exceeds this. Default 16384. */
    int64_t max_pixels; /* reject a stream whose coded width*height exceeds this. Default 8192*8192. */
    int     threads;    /* decoder threads; 0 = FFmpeg chooses (one per core). Default 0. */
} loom_vid_open_params;

loom_vid_open_params loom_vid_default_open_params(void);

typedef struct loom_vid_info {
    double  duration_s;           /* stream (else container) duration; estimated from the last packet if both
                                     are missing; at least one frame's duration */
    double  fps;                  /* average frame rate; 0 when the file does not say */
    int     width, height;        /* displayed size: after rotation and sample aspect ratio, before any max_side */
    int     coded_width, coded_height; /* as decoded, before rotation */
    int     rotation;             /* clockwise degrees applied to decoded frames for display: 0, 90, 180, 270 */
    char    codec[32];            /* FFmpeg decoder name, e.g. "h264" */
    char    container[32];        /* FFmpeg demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2" (truncated) */
    int64_t n_frames;             /* frame count from the container header; 0 when unknown */
} loom_vid_info;

/* Opens path and chooses its best video stream (av_find_best_stream; attached cover pictures are not video).
 * Decodes the first frame to prove the stream is usable, so a clip that opens has at least one frame.
 * params may be NULL for the defaults. On success *out is set; close it with loom_vid_close. */
loom_status loom_vid_open(loom_vid **out, const char *path, const loom_vid_open_params *params, loom_err *err);
void        loom_vid_close(loom_vid *v); /* NULL is a no-op */

/* Valid until loom_vid_close. */
const loom_vid_info *loom_vid_get_info(const loom_vid *v);

/* Broken frames met so far: packets that failed to decode, frames the decoder flagged corrupt, and planned
 * samples that could not be produced. The first few each log a warning. A broken frame decoded twice (two
 * samples behind one keyframe) counts twice: this says how damaged the clip looks, not an exact census. */
int64_t loom_vid_broken_frames(const loom_vid *v);

/* ==== sampling plan ==== */

typedef struct loom_vid_sample_params {
    int     n_frames;   /* uniform plan: this many frames (used when fps == 0). Default 8. */
    double  fps;        /* > 0: sample at this rate instead (t_i = (i + 0.5) / fps while t_i < duration) */
    int     max_frames; /* cap on either plan (1..LOOM_VID_MAX_FRAMES). A rate plan that would exceed it
                           becomes a uniform plan of max_frames over the whole clip, so the cap never cuts
                           the end of the clip off. Default 64. */
    int     max_side;   /* > 0: downscale (never upscale) so the longer output side is <= max_side,
                           keeping the displayed aspect ratio. 0 = displayed size. Default 0. */
    int64_t max_pixels; /* > 0: refuse (LOOM_ERR_LIMIT) an output frame above this many pixels, checked before
                           allocating. Default 4096*4096. */
} loom_vid_sample_params;

loom_vid_sample_params loom_vid_default_sample_params(void);

/* Writes the planned sample times, ascending, to times[0..*n) without decoding anything.
 * Uniform plan: the centres of n equal segments of the duration, t_i = (i + 0.5) * D / n, so a sample never
 * sits on the first frame (often black or a title) nor past the last one. n is min(n_frames, max_frames).
 * times must hold cap entries; LOOM_ERR_INVALID if the plan needs more. */
loom_status loom_vid_plan(const loom_vid *v, const loom_vid_sample_params *p, double *times, int cap, int *n,
                          loom_err *err);

/* ==== frame extraction ==== */

typedef struct loom_vid_frame {
    loom_image *img;      /* [h, w, 3] u8 RGB, top row first, rotation applied; owned by the receiver:
                             free with loom_image_free */
    double      t_s;      /* timestamp of the decoded frame (seconds from stream start) */
    double      target_s; /* the time that was asked for */
    int         index;    /* position in the plan (0 for loom_vid_frame_at) */
} loom_vid_frame;

/* The frame on screen at time t_s: the last frame whose timestamp is <= t_s (the first frame when t_s is
 * before it, the last frame when t_s is past the end). This is the right frame for variable-frame-rate
 * clips, where a frame may be held for seconds. Seeks backward to the keyframe at or before t_s and decodes
 * forward; falls back to decoding from the current position when the file cannot seek. Only max_side and
 * max_pixels of p are used (p may be NULL for the defaults). On success out->img is a new image. */
loom_status loom_vid_frame_at(loom_vid *v, double t_s, const loom_vid_sample_params *p, loom_vid_frame *out,
                              loom_err *err);

/* Called once per planned frame, in time order. The callback owns f->img (free with loom_image_free,
 * or keep it). Returning anything but LOOM_OK stops extraction and loom_vid_extract returns that status. */
typedef loom_status (*loom_vid_frame_fn)(void *user, loom_vid_frame *f);

/* Plans with loom_vid_plan and delivers each frame to fn. Frames that cannot be decoded are skipped with a
 * warning (see loom_vid_broken_frames); if none of the planned frames could be produced the call fails. */
loom_status loom_vid_extract(loom_vid *v, const loom_vid_sample_params *p, loom_vid_frame_fn fn, void *user,
                             loom_err *err);

#endif
