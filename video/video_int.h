/* video/video_int.h — declarations private to video/ (and its white-box tests).
 *
 * The pieces here need no FFmpeg, so they build and are tested in every configuration: the sampling plan
 * (pure arithmetic on the duration) and the 90/180/270-degree rotation of an RGB buffer.
 */
#ifndef LOOM_VIDEO_VIDEO_INT_H
#define LOOM_VIDEO_VIDEO_INT_H

#include <stdint.h>

#include "core/err.h"
#include "video/video.h"

/* Validates p and fills times[0..*n) for a clip of duration_s seconds (see loom_vid_plan for the rules). */
loom_status vid_plan_times(double duration_s, const loom_vid_sample_params *p, double *times, int cap, int *n,
                           loom_err *err);

/* Checks the fields of p that every entry point uses (ranges of n_frames, fps, max_frames, max_side...). */
loom_status vid_check_sample_params(const loom_vid_sample_params *p, loom_err *err);

/* Rotates a packed RGB24 image clockwise by rot degrees (0, 90, 180 or 270).
 * src: [sh, sw, 3] u8; dst: [sw, sh, 3] for 90/270, [sh, sw, 3] for 0/180. dst and src must not overlap. */
void vid_rotate_rgb(uint8_t *dst, const uint8_t *src, int sw, int sh, int rot);

/* Output size for a decoded frame of fw x fh pixels with sample aspect ratio sar (width stretch, 1 = square
 * pixels) and clockwise rotation rot: the displayed size, shrunk (never grown) so its longer side fits
 * max_side when max_side > 0. Writes the scaled pre-rotation size (*sw, *sh) and the final size (*ow, *oh).
 * LOOM_ERR_LIMIT when the result exceeds max_pixels (> 0). */
loom_status vid_output_size(int fw, int fh, double sar, int rot, int max_side, int64_t max_pixels, int *sw, int *sh,
                            int *ow, int *oh, loom_err *err);

/* Frames the decoder has produced since open (white-box tests check that sampling seeks instead of
 * decoding everything). */
int64_t vid_decoded_frames(const loom_vid *v);

#endif
