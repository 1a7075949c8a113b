/* tests/cli/test_jobs.c — the three jobs end to end through the `loom` binary, on the tiny reference models.
 *
 *   run:       greedy ids and dumped prompt logits equal Meta's reference; context and option errors
 *   caption:   Meta's reference chat prompt (img3 + "Describe this image."): expanded ids, tiles, embeddings and
 *              the greedy continuation; a directory with --json; a corrupt image is an error naming the file
 *   summarize: a two-frame clip made at test time gives exactly the prompt ids (and embeddings) of the same
 *              two frames passed to `caption` as images with the timestamp text; --list-frames --json
 */
#include <jansson.h>
#include <math.h>
#include <png.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "tests/cli/cli_util.h"
#include "video/video.h"

#define TINY "testdata/llama4-tiny/"

static char tmpdir[64];

static void setup(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/loom_jobs_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

static const char *tpath(const char *name) {
    static char buf[8][160];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", tmpdir, name);
    return b;
}

static json_t *manifest(void) {
    char path[512];
    LOOM_SHARED_PATH(path, TINY "manifest.json");
    json_t *m = json_load_file(path, 0, NULL);
    cr_assert_not_null(m);
    return m;
}

/* Space-separated ids printed by --print-ids, compared with a JSON array. */
static void expect_ids(const char *text, json_t *want, const char *what) {
    const char *p = text;
    for (size_t k = 0; k < json_array_size(want); k++) {
        char *end;
        long v = strtol(p, &end, 10);
        cr_assert(end != p, "%s: only %zu ids in output '%s'", what, k, text);
        cr_expect_eq(v, json_integer_value(json_array_get(want, k)), "%s: id %zu is %ld, want %lld", what, k, v,
                     (long long)json_integer_value(json_array_get(want, k)));
        p = end;
    }
}

static bool files_equal(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    void *x = loom_test_read_file(a, &na), *y = loom_test_read_file(b, &nb);
    bool eq = x && y && na == nb && memcmp(x, y, na) == 0;
    loom_free(x);
    loom_free(y);
    return eq;
}

Test(cli_run, greedy_ids_and_prompt_logits_match_meta, .init = setup, .fini = teardown) {
    CLI_BIN(bin);
    char model[512], ref[512];
    LOOM_SHARED_PATH(model, TINY "models/scout-like-c16.gguf");
    LOOM_SHARED_PATH(ref, TINY "text/scout-like-c16/p3.logits.f32");
    json_t *m = manifest();
    json_t *ids = json_object_get(json_array_get(json_object_get(m, "prompts"), 3), "ids");
    char list[4096] = "";
    for (size_t i = 0; i < json_array_size(ids); i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%lld", i ? "," : "",
                 (long long)json_integer_value(json_array_get(ids, i)));
    const char *dump = tpath("logits.f32");
    char *argv[] = {(char *)bin, "run", "-m", model, "--prompt-ids", list, "-n", "16", "--temp", "0", "--print-ids",
                    "--dump-logits", (char *)dump, "-t", "2", NULL};
    cli_result r = cli_run(argv);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "loom run failed: %s", r.err);
    cr_assert(strstr(r.err, "tokens/s"), "timings on stderr: %s", r.err);
    expect_ids(r.out, json_object_get(json_object_get(json_object_get(json_object_get(json_object_get(m, "models"),
                                                                                          "scout-like-c16"),
                                                                      "prompts"),
                                                      "p3"),
                                      "greedy"),
               "run p3");
    size_t na = 0, nb = 0;
    float *got = loom_test_read_file(dump, &na), *want = loom_test_read_file(ref, &nb);
    cr_assert(got && want && na == nb, "dumped %zu bytes, reference %zu", na, nb);
    float max_ref = 0, max_d = 0;
    for (size_t i = 0; i < nb / 4; i++) {
        max_ref = fmaxf(max_ref, fabsf(want[i]));
        max_d = fmaxf(max_d, fabsf(got[i] - want[i]));
    }
    cr_expect(max_d <= 1e-4f * max_ref, "dumped logits: max|Δ| %g vs max|ref| %g", max_d, max_ref);
    loom_free(got);
    loom_free(want);
    cli_result_free(&r);
    json_decref(m);
}

Test(cli_run, errors_are_clear_and_nonzero) {
    CLI_BIN(bin);
    char model[512];
    LOOM_SHARED_PATH(model, TINY "models/scout-like.gguf");
    struct {
        const char *args[8];
        int         rc;
        const char *needle;
    } cases[] = {
        {{"run", "-m", model, "-p", "The quick brown fox jumps over the lazy dog.", "-c", "5", NULL}, 1, "context"},
        {{"run", "-m", model, "--prompt-ids", "1,2,99999", NULL}, 1, "vocabulary"},
        {{"run", "-m", model, "--prompt-ids", "1,x", NULL}, 2, "prompt-ids"},
        {{"run", "-m", model, "-p", "hi", "--temp", "-1", NULL}, 2, "--temp"},
        {{"run", "-p", "hi", NULL}, 2, "-m"},
        {{"run", "-m", "/nonexistent.gguf", "-p", "hi", NULL}, 1, "nonexistent"},
        {{"run", "-m", model, "-p", "hi", "--bogus", NULL}, 2, "--bogus"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char *argv[10] = {(char *)bin};
        for (int k = 0; cases[c].args[k]; k++) argv[k + 1] = (char *)cases[c].args[k];
        cli_result r = cli_run(argv);
        cr_expect(WIFEXITED(r.status) && WEXITSTATUS(r.status) == cases[c].rc, "case %zu: status %d, want exit %d (%s)",
                  c, r.status, cases[c].rc, r.err);
        cr_expect(strstr(r.err, cases[c].needle), "case %zu: stderr '%s' lacks '%s'", c, r.err, cases[c].needle);
        cli_result_free(&r);
    }
}

Test(cli_caption, reference_chat_prompt_end_to_end, .init = setup, .fini = teardown) {
    CLI_BIN(bin);
    char model[512], mmproj[512], img[512], ref_ids[512], ref_tiles[512], ref_embd[512];
    LOOM_SHARED_PATH(model, TINY "models/maverick-like-c16.gguf");
    LOOM_SHARED_PATH(mmproj, TINY "models/mmproj-tiny-llama4.gguf");
    LOOM_SHARED_PATH(img, TINY "images/img3_480x640.png");
    LOOM_SHARED_PATH(ref_ids, TINY "chat/prompt_ids.i32");
    LOOM_SHARED_PATH(ref_tiles, TINY "vision/img3_480x640.tiles.f32");
    LOOM_SHARED_PATH(ref_embd, TINY "vision/img3_480x640.embd.f32");
    const char *ids = tpath("ids.i32"), *tiles = tpath("tiles.f32"), *embd = tpath("embd.f32");
    char *argv[] = {(char *)bin, "caption", img, "-m", model, "--mmproj", mmproj, "-p", "Describe this image.", "-n",
                    "16", "--temp", "0", "--print-ids", "--dump-prompt-ids", (char *)ids, "--dump-tiles", (char *)tiles,
                    "--dump-embeddings", (char *)embd, NULL};
    cli_result r = cli_run(argv);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "caption failed: %s", r.err);
    cr_expect(files_equal(ids, ref_ids), "expanded prompt ids differ from Meta's");
    cr_expect(files_equal(tiles, ref_tiles), "tiles differ from Meta's (PNG input: exact expected)");
    size_t na = 0, nb = 0;
    float *got = loom_test_read_file(embd, &na), *want = loom_test_read_file(ref_embd, &nb);
    cr_assert(got && want && na == nb);
    float max_ref = 0, max_d = 0;
    for (size_t i = 0; i < nb / 4; i++) {
        max_ref = fmaxf(max_ref, fabsf(want[i]));
        max_d = fmaxf(max_d, fabsf(got[i] - want[i]));
    }
    cr_expect(max_d <= 1e-4f * max_ref, "embeddings: max|Δ| %g vs max|ref| %g", max_d, max_ref);
    cr_expect(strstr(r.err, "image encode"), "encode time reported: %s", r.err);
    json_t *m = manifest();
    expect_ids(r.out,
               json_object_get(json_object_get(json_object_get(json_object_get(m, "models"), "maverick-like-c16"), "chat"),
                               "greedy"),
               "caption greedy");
    json_decref(m);
    loom_free(got);
    loom_free(want);
    cli_result_free(&r);
}

Test(cli_caption, directory_json_and_bad_files, .init = setup, .fini = teardown) {
    CLI_BIN(bin);
    char model[512], mmproj[512], img1[512], img2[512];
    LOOM_SHARED_PATH(model, TINY "models/scout-like.gguf");
    LOOM_SHARED_PATH(mmproj, TINY "models/mmproj-tiny-llama4.gguf");
    LOOM_SHARED_PATH(img1, TINY "images/img1_200x300.jpg");
    LOOM_SHARED_PATH(img2, TINY "images/img2_336x336_gray.png");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s/a.jpg' && cp '%s' '%s/b.png' && echo notanimage > '%s/c.png'", img1, tmpdir,
             img2, tmpdir, tmpdir);
    cr_assert_eq(system(cmd), 0);
    char *argv[] = {(char *)bin, "caption", tmpdir, "-m", model, "--mmproj", mmproj, "-n", "3", "--temp", "0", "--json",
                    NULL};
    cli_result r = cli_run(argv);
    /* one unreadable file: the others are still captioned, and the exit status reports the failure */
    cr_expect(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 1, "status %d: %s", r.status, r.err);
    cr_expect(strstr(r.err, "c.png"), "error names the bad file: %s", r.err);
    int lines = 0, ok = 0;
    for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *o = json_loads(line, 0, NULL);
        cr_assert_not_null(o, "not JSON: %s", line);
        lines++;
        if (json_object_get(o, "caption")) {
            ok++;
            cr_expect(json_integer_value(json_object_get(o, "generated_tokens")) >= 1);
            cr_expect_eq(json_array_size(json_object_get(o, "ids")), 3);
        }
        json_decref(o);
    }
    cr_expect_eq(lines, 3, "one JSON object per file");
    cr_expect_eq(ok, 2, "two images captioned");
    cli_result_free(&r);

    char *argv2[] = {(char *)bin, "caption", img1, "-m", model, "--mmproj", mmproj, "-p", "<image>and<image>?", NULL};
    r = cli_run(argv2);
    cr_expect(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 2 && strstr(r.err, "marker"), "%s", r.err);
    cli_result_free(&r);
}

#if LOOM_WITH_FFMPEG
#include "tests/video/clipgen.h"

static void write_png(const char *path, const loom_image *img) {
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    pi.width = (png_uint_32)img->w;
    pi.height = (png_uint_32)img->h;
    pi.format = PNG_FORMAT_RGB;
    cr_assert(png_image_write_to_file(&pi, path, 0, img->data, img->w * 3, NULL), "cannot write %s", path);
}

static loom_status save_frame(void *user, loom_vid_frame *f) {
    char name[32];
    snprintf(name, sizeof name, "frame%d.png", f->index);
    write_png(tpath(name), f->img);
    double *t = user;
    t[f->index] = f->t_s;
    loom_image_free(f->img);
    return LOOM_OK;
}

Test(cli_summarize, two_frame_prompt_equals_frames_as_images, .init = setup, .fini = teardown) {
    CLI_BIN(bin);
    char model[512], mmproj[512];
    LOOM_SHARED_PATH(model, TINY "models/scout-like.gguf");
    LOOM_SHARED_PATH(mmproj, TINY "models/mmproj-tiny-llama4.gguf");
    const char *clip = tpath("clip.mkv");
    clip_spec spec = {.path = clip, .muxer = "matroska", .codec = "ffv1", .w = 64, .h = 48, .tb = {1, 10}, .n = 20,
                      .gop = 5};
    write_clip(&spec);

    char *list[] = {(char *)bin, "summarize", (char *)clip, "-m", model, "--frames", "2", "--list-frames", "--json", NULL};
    cli_result r = cli_run(list);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "list-frames: %s", r.err);
    json_t *lj = json_loads(r.out, 0, NULL);
    cr_assert_not_null(lj, "list-frames output is JSON: %s", r.out);
    json_t *frames = json_object_get(lj, "frames");
    cr_assert_eq(json_array_size(frames), 2);
    cr_expect_float_eq(json_real_value(json_object_get(json_array_get(frames, 0), "t")), 0.5, 1e-6);
    cr_expect_float_eq(json_real_value(json_object_get(json_array_get(frames, 1), "t")), 1.5, 1e-6);
    json_int_t listed_tokens = json_integer_value(json_object_get(lj, "prompt_tokens"));
    json_decref(lj);
    cli_result_free(&r);

    const char *sum_ids = tpath("sum.i32"), *sum_embd = tpath("sum.f32");
    char *sum[] = {(char *)bin, "summarize", (char *)clip, "-m", model, "--mmproj", mmproj, "--frames", "2", "-n", "4",
                   "--temp", "0", "--print-ids", "--dump-prompt-ids", (char *)sum_ids, "--dump-embeddings",
                   (char *)sum_embd, NULL};
    r = cli_run(sum);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "summarize: %s", r.err);
    cr_expect(strlen(r.out) > 1, "summarize generated tokens");
    cli_result_free(&r);

    /* the same two frames, decoded by the library, saved losslessly and captioned with the timestamp text */
    loom_vid *v;
    loom_err err = {0};
    cr_assert_eq(loom_vid_open(&v, clip, NULL, &err), LOOM_OK, "%s", err.msg);
    loom_vid_sample_params sp = loom_vid_default_sample_params();
    sp.n_frames = 2;
    sp.max_side = 336;
    double t[2] = {0};
    cr_assert_eq(loom_vid_extract(v, &sp, save_frame, t, &err), LOOM_OK, "%s", err.msg);
    loom_vid_close(v);
    char prompt[256];
    snprintf(prompt, sizeof prompt, "Frame 1 at 00:%04.1f:<image>Frame 2 at 00:%04.1f:<image>Summarize what happens in this video.",
             t[0], t[1]);
    const char *cap_ids = tpath("cap.i32"), *cap_embd = tpath("cap.f32");
    char *f0 = loom_strdup(tpath("frame0.png")), *f1 = loom_strdup(tpath("frame1.png"));
    char *cap[] = {(char *)bin, "caption", f0, f1, "-m", model, "--mmproj", mmproj, "-p", prompt, "-n", "1",
                   "--dump-prompt-ids", (char *)cap_ids, "--dump-embeddings", (char *)cap_embd, NULL};
    r = cli_run(cap);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "caption: %s", r.err);
    cli_result_free(&r);
    cr_expect(files_equal(sum_ids, cap_ids), "summarize prompt ids differ from the frames captioned as images");
    cr_expect(files_equal(sum_embd, cap_embd), "summarize image embeddings differ from the frames as images");
    size_t n_bytes = 0;
    void *ids = loom_test_read_file(sum_ids, &n_bytes);
    cr_expect_eq((json_int_t)(n_bytes / 4), listed_tokens, "--list-frames counted %lld tokens, prompt has %zu",
                 (long long)listed_tokens, n_bytes / 4);
    loom_free(ids);
    loom_free(f0);
    loom_free(f1);
}

Test(cli_summarize, bad_clips_fail_cleanly, .init = setup, .fini = teardown) {
    CLI_BIN(bin);
    char model[512];
    LOOM_SHARED_PATH(model, TINY "models/scout-like.gguf");
    const char *txt = tpath("notes.mp4");
    FILE *f = fopen(txt, "w");
    fputs("this is not a video\n", f);
    fclose(f);
    char *argv[] = {(char *)bin, "summarize", (char *)txt, "--list-frames", NULL};
    cli_result r = cli_run(argv);
    cr_expect(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 1, "status %d: %s", r.status, r.err);
    cr_expect(strstr(r.err, "notes.mp4"), "error names the file: %s", r.err);
    cli_result_free(&r);
}
#endif
