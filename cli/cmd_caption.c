/* cli/cmd_caption.c — `loom caption`: images (files or directories) in, text out.
 *
 * Without <image> markers in the prompt each image is captioned on its own (one line or one JSON object per
 * file); with markers, all images go into one prompt at the marked places, in the order given.
 */
#include <dirent.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "core/alloc.h"
#include "core/log.h"

#define DEFAULT_CAPTION_PROMPT "Describe this image in one sentence."
#define MAX_IMAGES 4096

static void caption_usage(FILE *f) {
    fprintf(f, "usage: loom caption IMAGE_OR_DIR... -m MODEL.gguf --mmproj MMPROJ.gguf [options]\n\n"
               "Captions JPEG/PNG/WebP images. A directory captions every image in it. The user turn is\n"
               "[image, prompt] in Llama 4's chat format; place several images yourself with <image> markers:\n"
               "  loom caption a.jpg b.jpg -p \"<image>and<image>What differs?\" -m ... --mmproj ...\n\n"
               "  --mmproj FILE           vision projector GGUF (required)\n"
               "  -p, --prompt TEXT       instruction (default: \"" DEFAULT_CAPTION_PROMPT "\")\n"
               "  --max-tiles N           tiles per image, 1..16 (default 16)\n"
               "  --json                  one JSON object per image (or per prompt) on stdout\n"
               "  --no-exif               ignore EXIF orientation (Meta's reference does; HF applies it)\n"
               "  --dump-prompt-ids FILE  write the expanded prompt ids (int32)\n"
               "  --dump-tiles FILE       write the preprocessed tiles ([T, 3, 336, 336] float32)\n"
               "  --dump-embeddings FILE  write the projected image embeddings ([rows, d_model] float32)\n");
    cli_gen_opts_help(f);
}

static bool is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return false;
    return !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png") ||
           !strcasecmp(dot, ".webp");
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Expands directories (sorted, image extensions only, not recursive); plain files are taken as given. */
static bool collect_images(char **args, int n_args, char ***out, int *n_out) {
    char **list = loom_calloc(MAX_IMAGES, sizeof(char *));
    int n = 0;
    if (!list) return false;
    for (int i = 0; i < n_args; i++) {
        struct stat st;
        if (stat(args[i], &st) != 0) {
            cli_error("caption", "%s: no such file or directory", args[i]);
            goto fail;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (n == MAX_IMAGES) goto too_many;
            list[n++] = loom_strdup(args[i]);
            continue;
        }
        DIR *d = opendir(args[i]);
        if (!d) {
            cli_error("caption", "%s: cannot open directory", args[i]);
            goto fail;
        }
        int first = n;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.' || !is_image_name(e->d_name)) continue;
            if (n == MAX_IMAGES) {
                closedir(d);
                goto too_many;
            }
            size_t len = strlen(args[i]) + strlen(e->d_name) + 2;
            list[n] = loom_malloc(len);
            if (!list[n]) {
                closedir(d);
                goto fail;
            }
            snprintf(list[n], len, "%s/%s", args[i], e->d_name);
            n++;
        }
        closedir(d);
        qsort(list + first, (size_t)(n - first), sizeof(char *), cmp_str);
        if (n == first) LOOM_WARN("%s: no .jpg/.jpeg/.png/.webp files in this directory", args[i]);
    }
    *out = list;
    *n_out = n;
    return true;
too_many:
    cli_error("caption", "more than %d images; caption them in batches", MAX_IMAGES);
fail:
    for (int i = 0; i < n; i++) loom_free(list[i]);
    loom_free(list);
    return false;
}

/* Splits the prompt at <image> markers into items; images[] fill the markers in order. */
static int build_items(const char *prompt, char **images, int n_images, loom_item *items, int max_items) {
    int n = 0, img = 0;
    const char *p = prompt;
    for (;;) {
        const char *mk = strstr(p, "<image>");
        size_t len = mk ? (size_t)(mk - p) : strlen(p);
        if (len) {
            if (n == max_items) return -1;
            items[n++] = (loom_item){.kind = LOOM_ITEM_TEXT, .text = p, .len = len};
        }
        if (!mk) break;
        if (img == n_images || n == max_items) return -1;
        items[n++] = (loom_item){.kind = LOOM_ITEM_IMAGE_FILE, .path = images[img++]};
        p = mk + 7;
    }
    return img == n_images ? n : -1;
}

static int count_markers(const char *p) {
    int n = 0;
    while ((p = strstr(p, "<image>"))) {
        n++;
        p += 7;
    }
    return n;
}

int cmd_caption(int argc, char **argv) {
    cli_gen_opts o;
    cli_gen_opts_init(&o);
    const char *prompt = DEFAULT_CAPTION_PROMPT, *dump_ids = NULL, *dump_tiles = NULL, *dump_embd = NULL;
    int max_tiles = 16;
    bool no_exif = false;
    char **args = loom_calloc((size_t)argc + 1, sizeof(char *));
    int n_args = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_parse_gen_opt(&o, "caption", argc, argv, &i);
        if (r < 0) goto usage_fail;
        if (r > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            caption_usage(stdout);
            loom_free(args);
            return 0;
        } else if (!strcmp(a, "--no-exif")) {
            no_exif = true;
        } else if ((!strcmp(a, "-p") || !strcmp(a, "--prompt") || !strcmp(a, "--max-tiles") ||
                    !strcmp(a, "--dump-prompt-ids") || !strcmp(a, "--dump-tiles") || !strcmp(a, "--dump-embeddings")) &&
                   i + 1 < argc) {
            const char *v = argv[++i];
            if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) prompt = v;
            else if (!strcmp(a, "--dump-prompt-ids")) dump_ids = v;
            else if (!strcmp(a, "--dump-tiles")) dump_tiles = v;
            else if (!strcmp(a, "--dump-embeddings")) dump_embd = v;
            else {
                long long t;
                if (!cli_parse_int(v, 1, 16, &t)) {
                    cli_error("caption", "--max-tiles expects 1..16, got '%s'", v);
                    goto usage_fail;
                }
                max_tiles = (int)t;
            }
        } else if (a[0] == '-' && a[1]) {
            cli_error("caption", "unknown option or missing value: %s (see --help)", a);
            goto usage_fail;
        } else {
            args[n_args++] = argv[i];
        }
    }
    if (!o.model || !o.mmproj) {
        cli_error("caption", "pass the model files: -m MODEL.gguf --mmproj MMPROJ.gguf (see --help)");
        goto usage_fail;
    }
    if (!n_args) {
        cli_error("caption", "no images given (files or directories)");
        goto usage_fail;
    }
    char **images = NULL;
    int n_images = 0;
    if (!collect_images(args, n_args, &images, &n_images)) {
        loom_free(args);
        return 1;
    }
    loom_free(args);
    int markers = count_markers(prompt);
    if (markers && markers != n_images) {
        cli_error("caption", "the prompt has %d <image> marker(s) but %d image(s) were given", markers, n_images);
        for (int i = 0; i < n_images; i++) loom_free(images[i]);
        loom_free(images);
        return 2;
    }
    bool single_prompt = markers > 0;
    if ((dump_ids || dump_tiles || dump_embd) && !single_prompt && n_images != 1) {
        cli_error("caption", "--dump-* options need one prompt: one image, or <image> markers");
        for (int i = 0; i < n_images; i++) loom_free(images[i]);
        loom_free(images);
        return 2;
    }

    int rc = 1, failures = 0;
    loom_err err = {0};
    loom_model *m = NULL;
    loom_session *s = NULL;
    loom_model_params mp = {o.no_mmap, o.mlock};
    if (loom_model_open(&m, o.model, o.mmproj, &mp, &err)) {
        cli_error("caption", "%s", err.msg);
        goto done;
    }
    loom_session_params sp = loom_session_default_params();
    sp.n_ctx = o.n_ctx;
    sp.n_threads = o.n_threads;
    sp.max_tiles = max_tiles;
    sp.keep_tiles = dump_tiles != NULL;
    if (no_exif) sp.decode.apply_exif_orientation = 0;
    if (loom_session_new(&s, m, &sp, &err)) {
        cli_error("caption", "%s", err.msg);
        goto done;
    }
    int n_jobs = single_prompt ? 1 : n_images;
    loom_progress prog;
    bool show_progress = n_jobs > 1 && isatty(STDERR_FILENO) && !isatty(STDOUT_FILENO);
    if (show_progress) loom_progress_begin(&prog, "caption", n_jobs);
    loom_gen_stats total = {0};
    for (int job = 0; job < n_jobs; job++) {
        loom_item items[64];
        int n_items;
        if (single_prompt) {
            n_items = build_items(prompt, images, n_images, items, 64);
        } else {
            items[0] = (loom_item){.kind = LOOM_ITEM_IMAGE_FILE, .path = images[job]};
            n_items = 1 + (prompt[0] ? 1 : 0);
            items[1] = (loom_item){.kind = LOOM_ITEM_TEXT, .text = prompt};
        }
        if (n_items < 0) {
            cli_error("caption", "too many <image> markers or text pieces in the prompt");
            goto done;
        }
        const char *label = single_prompt ? "prompt" : images[job];
        loom_prompt_params pp = {o.system, o.parse_special};
        if (loom_session_set_chat(s, items, (size_t)n_items, &pp, &err)) {
            cli_error("caption", "%s", err.msg);
            failures++;
            if (o.json) {
                json_t *obj = json_pack("{s:s, s:s}", "file", label, "error", err.msg);
                char *js = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII);
                if (js) printf("%s\n", js);
                free(js);
                json_decref(obj);
            }
            continue;
        }
        if (!cli_dump_prompt("caption", s, m, dump_ids, dump_tiles, dump_embd)) goto done;
        loom_gen_params gp = cli_gen_params(&o);
        cli_sink out = {.print_ids = o.print_ids, .stream = !o.json, .one_line = true, .ids = json_array()};
        if (!o.json && !single_prompt && n_images > 1) printf("%s: ", label);
        loom_gen_stats st;
        loom_status gs = loom_session_generate(s, &gp, cli_sink_token, &out, &st, &err);
        if (!o.json) printf("\n");
        if (gs) {
            cli_error("caption", "%s: %s", label, err.msg);
            failures++;
        } else if (o.json) {
            json_t *obj = json_pack("{s:s, s:o, s:O, s:I, s:I, s:f, s:f, s:f}", "file", label, "caption",
                                    cli_json_text(out.text, out.len), "ids", out.ids, "prompt_tokens", (json_int_t)st.n_prompt,
                                    "generated_tokens", (json_int_t)st.n_gen, "encode_ms", st.t_encode_s * 1e3,
                                    "prompt_ms", st.t_prompt_s * 1e3, "gen_ms", st.t_gen_s * 1e3);
            char *js = obj ? json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
            if (js) printf("%s\n", js);
            free(js);
            json_decref(obj);
        }
        fflush(stdout);
        cli_sink_release(&out);
        total.n_prompt += st.n_prompt;
        total.n_gen += st.n_gen;
        total.t_prompt_s += st.t_prompt_s;
        total.t_gen_s += st.t_gen_s;
        total.t_encode_s += st.t_encode_s;
        total.n_tiles_encoded += st.n_tiles_encoded;
        total.n_images_cached += st.n_images_cached;
        if (show_progress) loom_progress_update(&prog, job + 1);
    }
    if (show_progress) loom_progress_end(&prog);
    if (!o.quiet && total.n_prompt > 0) cli_print_timings(&total);
    rc = failures ? 1 : 0;
done:
    loom_session_free(s);
    loom_model_close(m);
    for (int i = 0; i < n_images; i++) loom_free(images[i]);
    loom_free(images);
    return rc;
usage_fail:
    loom_free(args);
    return 2;
}
