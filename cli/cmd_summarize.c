/* cli/cmd_summarize.c — `loom summarize`: a video clip in, a summary out.
 *
 * Llama 4 has no video modality (LLAMA4.md §7): the clip is sampled into frames and each frame becomes one
 * image block of the user turn, preceded by its timestamp as text ("Frame 3 at 00:07.5:"), then the
 * instruction. Frames are downscaled while decoding so a frame costs one tile (147 tokens) by default.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "core/alloc.h"
#include "core/gguf.h"
#include "core/log.h"
#include "video/video.h"

#define DEFAULT_SUMMARY_PROMPT "Summarize what happens in this video."

static void summarize_usage(FILE *f) {
    fprintf(f, "usage: loom summarize CLIP -m MODEL.gguf --mmproj MMPROJ.gguf [options]\n\n"
               "Samples frames from a video (any container/codec FFmpeg reads) and asks the model about them.\n\n"
               "  --frames N              N frames spread uniformly over the clip (default 8)\n"
               "  --fps F                 sample F frames per second instead\n"
               "  --max-frames N          cap on sampled frames (default 64)\n"
               "  --frame-tiles N         tiles per frame, 1..16 (default 1: each frame is one 336x336 tile)\n"
               "  -p, --prompt TEXT       instruction after the frames (default: \"" DEFAULT_SUMMARY_PROMPT "\")\n"
               "  --list-frames           print the chosen timestamps and the prompt's token count; no model run\n"
               "  --timeout S             give up on a clip after S seconds of decoding (default 30)\n"
               "  --json                  machine-readable output\n"
               "  --dump-prompt-ids FILE  write the expanded prompt ids (int32)\n"
               "  --dump-tiles FILE       write the preprocessed tiles ([T, 3, 336, 336] float32)\n"
               "  --dump-embeddings FILE  write the projected image embeddings ([rows, d_model] float32)\n");
    cli_gen_opts_help(f);
}

static void format_time(char *buf, size_t n, double t) {
    if (t < 0) t = 0;
    int minutes = (int)(t / 60.0);
    double sec = t - 60.0 * minutes;
    if (sec >= 59.95) { /* keep "00:60.0" from appearing after rounding */
        minutes++;
        sec = 0;
    }
    snprintf(buf, n, "%02d:%04.1f", minutes, sec);
}

typedef struct frame_list {
    loom_image **imgs;
    double      *t;
    int          n, cap;
} frame_list;

static loom_status keep_frame(void *user, loom_vid_frame *f) {
    frame_list *fl = user;
    if (fl->n == fl->cap) {
        loom_image_free(f->img);
        return LOOM_ERR_LIMIT;
    }
    fl->imgs[fl->n] = f->img;
    fl->t[fl->n] = f->t_s;
    fl->n++;
    return LOOM_OK;
}

/* Token count of the prompt without decoding any frame: the tokenizer only needs the model's metadata. */
static loom_status count_prompt_tokens(const char *model, const double *times, int n, int grid_h, int grid_w,
                                       const char *prompt, const char *system, int64_t *out, loom_err *err) {
    loom_gguf *g = NULL;
    loom_gguf_params gp = {.metadata_only = true};
    loom_status st = loom_gguf_open(&g, model, &gp, err);
    if (st) return st;
    loom_tok *tok = NULL;
    if ((st = loom_tok_new_from_gguf(&tok, g, err))) {
        loom_gguf_close(g);
        return st;
    }
    loom_chat_item *items = loom_calloc((size_t)2 * n + 1, sizeof *items);
    char (*labels)[48] = loom_calloc((size_t)n + 1, sizeof *labels);
    loom_tok_ids ids = {0};
    if (!items || !labels) {
        st = LOOM_FAIL(err, LOOM_ERR_NOMEM, "out of memory");
        goto done;
    }
    int k = 0;
    for (int i = 0; i < n; i++) {
        char ts[16];
        format_time(ts, sizeof ts, times[i]);
        snprintf(labels[i], sizeof labels[i], "Frame %d at %s:", i + 1, ts);
        items[k++] = (loom_chat_item){LOOM_CHAT_TEXT, labels[i], 0, NULL};
        items[k++] = (loom_chat_item){LOOM_CHAT_IMAGE, NULL, 0, NULL};
    }
    if (prompt[0]) items[k++] = (loom_chat_item){LOOM_CHAT_TEXT, prompt, 0, NULL};
    loom_chat_msg msgs[2];
    size_t nm = 0;
    loom_chat_item sys = {LOOM_CHAT_TEXT, system, 0, NULL};
    if (system) msgs[nm++] = (loom_chat_msg){"system", &sys, 1};
    msgs[nm++] = (loom_chat_msg){"user", items, (size_t)k};
    if ((st = loom_chat_build(tok, msgs, nm, NULL, NULL, NULL, &ids, err))) goto done;
    /* each bare <|image|> placeholder stands for the frame's full token run */
    *out = (int64_t)ids.n + (int64_t)n * ((int64_t)loom_chat_image_n_tokens(grid_h, grid_w, 144) - 1);
done:
    loom_tok_ids_release(&ids);
    loom_free(items);
    loom_free(labels);
    loom_tok_free(tok);
    loom_gguf_close(g);
    return st;
}

int cmd_summarize(int argc, char **argv) {
    cli_gen_opts o;
    cli_gen_opts_init(&o);
    const char *clip = NULL, *prompt = DEFAULT_SUMMARY_PROMPT, *dump_ids = NULL, *dump_tiles = NULL, *dump_embd = NULL;
    bool list_frames = false;
    int frame_tiles = 1;
    double timeout = 30;
    loom_vid_sample_params vsp = loom_vid_default_sample_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_parse_gen_opt(&o, "summarize", argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        long long iv;
        double fv;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            summarize_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--list-frames")) {
            list_frames = true;
        } else if (a[0] == '-' && a[1] && i + 1 < argc) {
            const char *v = argv[++i];
            if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) prompt = v;
            else if (!strcmp(a, "--dump-prompt-ids")) dump_ids = v;
            else if (!strcmp(a, "--dump-tiles")) dump_tiles = v;
            else if (!strcmp(a, "--dump-embeddings")) dump_embd = v;
            else if (!strcmp(a, "--frames") && cli_parse_int(v, 1, LOOM_VID_MAX_FRAMES, &iv)) vsp.n_frames = (int)iv;
            else if (!strcmp(a, "--max-frames") && cli_parse_int(v, 1, LOOM_VID_MAX_FRAMES, &iv)) vsp.max_frames = (int)iv;
            else if (!strcmp(a, "--frame-tiles") && cli_parse_int(v, 1, 16, &iv)) frame_tiles = (int)iv;
            else if (!strcmp(a, "--fps") && cli_parse_float(v, 1e-6, 1000, &fv)) vsp.fps = fv;
            else if (!strcmp(a, "--timeout") && cli_parse_float(v, 0, 86400, &fv)) timeout = fv;
            else {
                cli_error("summarize", "unknown option or bad value: %s %s (see --help)", a, v);
                return 2;
            }
        } else if (a[0] == '-' && a[1]) {
            cli_error("summarize", "unknown option or missing value: %s (see --help)", a);
            return 2;
        } else if (!clip) {
            clip = a;
        } else {
            cli_error("summarize", "one clip at a time (got '%s' and '%s')", clip, a);
            return 2;
        }
    }
    if (!clip) {
        cli_error("summarize", "no clip given (see --help)");
        return 2;
    }
    if (!list_frames && (!o.model || !o.mmproj)) {
        cli_error("summarize", "pass the model files: -m MODEL.gguf --mmproj MMPROJ.gguf (see --help)");
        return 2;
    }
    /* one tile per frame unless asked: downscale while decoding so the frame fits a 336 tile */
    vsp.max_side = frame_tiles == 1 ? 336 : 336 * 4;

    int rc = 1;
    loom_err err = {0};
    loom_vid *v = NULL;
    loom_model *m = NULL;
    loom_session *s = NULL;
    frame_list fl = {0};
    loom_item *items = NULL;
    char (*labels)[48] = NULL;
    cli_sink out = {0};
    double *times = loom_malloc(sizeof(double) * LOOM_VID_MAX_FRAMES);
    loom_vid_open_params op = loom_vid_default_open_params();
    op.timeout_s = timeout;
    if (!times) goto done;
    if (loom_vid_open(&v, clip, &op, &err)) {
        cli_error("summarize", "%s", err.msg);
        goto done;
    }
    const loom_vid_info *info = loom_vid_get_info(v);
    int n_times = 0;
    if (loom_vid_plan(v, &vsp, times, LOOM_VID_MAX_FRAMES, &n_times, &err)) {
        cli_error("summarize", "%s", err.msg);
        goto done;
    }
    if (list_frames) {
        /* the frame size after max_side decides the tile grid, hence the token count */
        double sc = fmax(info->width, info->height) > vsp.max_side ? (double)vsp.max_side / fmax(info->width, info->height) : 1.0;
        int fw = (int)fmax(1, floor(info->width * sc + 0.5)), fh = (int)fmax(1, floor(info->height * sc + 0.5));
        loom_img_prep_params pp = loom_img_prep_default_params();
        pp.max_tiles = frame_tiles;
        loom_img_plan plan;
        int64_t n_tok = -1;
        if (loom_img_plan_make(&plan, fh, fw, &pp, &err) == LOOM_OK && o.model &&
            count_prompt_tokens(o.model, times, n_times, plan.h_tiles, plan.w_tiles, prompt, o.system, &n_tok, &err)) {
            cli_error("summarize", "%s", err.msg);
            goto done;
        }
        if (o.json) {
            json_t *arr = json_array();
            for (int i = 0; i < n_times; i++) json_array_append_new(arr, json_pack("{s:i, s:f}", "index", i, "t", times[i]));
            json_t *obj = json_pack("{s:o, s:o}", "frames", arr, "prompt_tokens", n_tok >= 0 ? json_integer(n_tok) : json_null());
            char *js = json_dumps(obj, JSON_COMPACT);
            printf("%s\n", js ? js : "{}");
            free(js);
            json_decref(obj);
        } else {
            printf("%s: %.2f s, %dx%d, %s, %d frame(s)\n", clip, info->duration_s, info->width, info->height, info->codec,
                   n_times);
            for (int i = 0; i < n_times; i++) {
                char ts[16];
                format_time(ts, sizeof ts, times[i]);
                printf("frame %d at %s (%.3f s)\n", i + 1, ts, times[i]);
            }
            if (n_tok >= 0) printf("prompt tokens: %lld\n", (long long)n_tok);
            else printf("prompt tokens: pass -m MODEL.gguf to count them\n");
        }
        rc = 0;
        goto done;
    }
    fl.cap = n_times;
    fl.imgs = loom_calloc((size_t)n_times, sizeof(loom_image *));
    fl.t = loom_calloc((size_t)n_times, sizeof(double));
    if (!fl.imgs || !fl.t) goto done;
    if (loom_vid_extract(v, &vsp, keep_frame, &fl, &err)) {
        cli_error("summarize", "%s", err.msg);
        goto done;
    }
    if (loom_vid_broken_frames(v)) LOOM_WARN("%s: %lld broken frame(s) skipped", clip, (long long)loom_vid_broken_frames(v));
    loom_vid_close(v);
    v = NULL;

    loom_model_params mp = {o.no_mmap, o.mlock};
    if (loom_model_open(&m, o.model, o.mmproj, &mp, &err)) {
        cli_error("summarize", "%s", err.msg);
        goto done;
    }
    loom_session_params sp = loom_session_default_params();
    sp.n_ctx = o.n_ctx;
    sp.n_threads = o.n_threads;
    sp.max_tiles = frame_tiles;
    sp.keep_tiles = dump_tiles != NULL;
    if (loom_session_new(&s, m, &sp, &err)) {
        cli_error("summarize", "%s", err.msg);
        goto done;
    }
    items = loom_calloc((size_t)2 * fl.n + 1, sizeof *items);
    labels = loom_calloc((size_t)fl.n + 1, sizeof *labels);
    if (!items || !labels) goto done;
    int k = 0;
    for (int i = 0; i < fl.n; i++) {
        char ts[16];
        format_time(ts, sizeof ts, fl.t[i]);
        snprintf(labels[i], sizeof labels[i], "Frame %d at %s:", i + 1, ts);
        items[k++] = (loom_item){.kind = LOOM_ITEM_TEXT, .text = labels[i]};
        items[k++] = (loom_item){.kind = LOOM_ITEM_IMAGE, .image = fl.imgs[i]};
    }
    if (prompt[0]) items[k++] = (loom_item){.kind = LOOM_ITEM_TEXT, .text = prompt};
    loom_prompt_params pp = {o.system, o.parse_special};
    if (loom_session_set_chat(s, items, (size_t)k, &pp, &err)) {
        cli_error("summarize", "%s", err.msg);
        goto done;
    }
    if (!cli_dump_prompt("summarize", s, m, dump_ids, dump_tiles, dump_embd)) goto done;
    loom_gen_params gp = cli_gen_params(&o);
    out.print_ids = o.print_ids;
    out.stream = !o.json;
    loom_gen_stats st;
    if (loom_session_generate(s, &gp, cli_sink_token, &out, &st, &err)) {
        cli_error("summarize", "%s", err.msg);
        goto done;
    }
    if (o.json) {
        json_t *arr = json_array();
        for (int i = 0; i < fl.n; i++) json_array_append_new(arr, json_pack("{s:i, s:f}", "index", i, "t", fl.t[i]));
        json_t *obj = json_pack("{s:s, s:o, s:o, s:I, s:I}", "file", clip, "frames", arr, "summary",
                                cli_json_text(out.text, out.len), "prompt_tokens", (json_int_t)st.n_prompt, "generated_tokens",
                                (json_int_t)st.n_gen);
        char *js = obj ? json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
        printf("%s\n", js ? js : "{}");
        free(js);
        json_decref(obj);
    } else {
        printf("\n");
    }
    if (!o.quiet) cli_print_timings(&st);
    rc = 0;
done:
    cli_sink_release(&out);
    loom_free(items);
    loom_free(labels);
    for (int i = 0; i < fl.n; i++) loom_image_free(fl.imgs[i]);
    loom_free(fl.imgs);
    loom_free(fl.t);
    loom_free(times);
    loom_session_free(s);
    loom_model_close(m);
    loom_vid_close(v);
    return rc;
}
