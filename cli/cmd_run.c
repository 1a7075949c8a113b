/* cli/cmd_run.c — `loom run`: text generation from a prompt (plain, chat, or raw ids), streaming to stdout. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "core/alloc.h"

static void run_usage(FILE *f) {
    fprintf(f, "usage: loom run -m MODEL.gguf (-p TEXT | -f FILE | --prompt-ids 1,2,3) [options]\n\n"
               "Generates text. -p/-f add BOS and use the text as is; --chat wraps it in Llama 4's chat format;\n"
               "--prompt-ids feeds the ids exactly as given (no BOS added).\n\n"
               "prompt:\n"
               "  -p, --prompt TEXT     prompt text\n"
               "  -f, --file FILE       read the prompt text from FILE\n"
               "  --prompt-ids LIST     comma-separated token ids\n"
               "  --chat                use the chat template (user turn + assistant header)\n"
               "  --dump-logits FILE    write float32 logits of every prompt position ([n_prompt, n_vocab])\n");
    cli_gen_opts_help(f);
}

typedef struct run_out {
    bool print_ids;
    int  n;
} run_out;

static int on_token(void *user, int32_t id, const char *piece, size_t len) {
    run_out *o = user;
    if (o->print_ids) {
        if (id >= 0) printf("%s%d", o->n++ ? " " : "", id);
    } else {
        fwrite(piece, 1, len, stdout);
    }
    fflush(stdout);
    return 0;
}

static bool parse_ids(const char *s, int32_t **out, size_t *n) {
    size_t cap = 16, k = 0;
    int32_t *ids = loom_malloc(cap * sizeof(int32_t));
    if (!ids) return false;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            loom_free(ids);
            return false;
        }
        if (k == cap) {
            cap *= 2;
            int32_t *ni = loom_realloc(ids, cap * sizeof(int32_t));
            if (!ni) {
                loom_free(ids);
                return false;
            }
            ids = ni;
        }
        ids[k++] = (int32_t)v;
        p = *end ? end + 1 : end;
    }
    *out = ids;
    *n = k;
    return k > 0;
}

static char *read_text_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = loom_malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
        if (n + 1 == cap) {
            if (cap > ((size_t)1 << 30)) { /* 1 GiB of prompt is surely a mistake */
                loom_free(buf);
                buf = NULL;
                break;
            }
            char *nb = loom_realloc(buf, cap * 2);
            if (!nb) {
                loom_free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) buf[n] = 0;
    return buf;
}

int cmd_run(int argc, char **argv) {
    cli_gen_opts o;
    cli_gen_opts_init(&o);
    const char *prompt = NULL, *prompt_file = NULL, *ids_arg = NULL, *dump_logits = NULL;
    bool chat = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_parse_gen_opt(&o, "run", argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            run_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--chat")) {
            chat = true;
        } else if ((!strcmp(a, "-p") || !strcmp(a, "--prompt") || !strcmp(a, "-f") || !strcmp(a, "--file") ||
                    !strcmp(a, "--prompt-ids") || !strcmp(a, "--dump-logits")) && i + 1 < argc) {
            const char *v = argv[++i];
            if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) prompt = v;
            else if (!strcmp(a, "-f") || !strcmp(a, "--file")) prompt_file = v;
            else if (!strcmp(a, "--prompt-ids")) ids_arg = v;
            else dump_logits = v;
        } else {
            cli_error("run", a[0] == '-' ? "unknown option or missing value: %s (see --help)" : "unexpected argument: %s",
                      a);
            return 2;
        }
    }
    if (!o.model) {
        cli_error("run", "no model: pass -m MODEL.gguf (see --help)");
        return 2;
    }
    if (!!prompt + !!prompt_file + !!ids_arg != 1) {
        cli_error("run", "give exactly one of -p TEXT, -f FILE or --prompt-ids LIST");
        return 2;
    }
    if (ids_arg && chat) {
        cli_error("run", "--chat needs text (-p or -f), not --prompt-ids");
        return 2;
    }
    int32_t *ids = NULL;
    size_t n_ids = 0;
    if (ids_arg && !parse_ids(ids_arg, &ids, &n_ids)) {
        cli_error("run", "--prompt-ids expects comma-separated non-negative integers, got '%s'", ids_arg);
        return 2;
    }
    char *file_text = NULL;
    if (prompt_file) {
        file_text = read_text_file(prompt_file);
        if (!file_text) {
            cli_error("run", "cannot read prompt file %s: %s", prompt_file, errno ? strerror(errno) : "too large");
            loom_free(ids);
            return 1;
        }
        prompt = file_text;
    }

    int rc = 1;
    loom_err err = {0};
    loom_model *m = NULL;
    loom_session *s = NULL;
    float *prompt_logits = NULL;
    loom_model_params mp = {o.no_mmap, o.mlock};
    if (loom_model_open(&m, o.model, o.mmproj, &mp, &err)) goto fail;
    loom_session_params sp = loom_session_default_params();
    sp.n_ctx = o.n_ctx;
    sp.n_threads = o.n_threads;
    if (loom_session_new(&s, m, &sp, &err)) goto fail;
    loom_status st;
    if (ids) {
        st = loom_session_set_ids(s, ids, n_ids, &err);
    } else if (chat) {
        loom_item item = {.kind = LOOM_ITEM_TEXT, .text = prompt};
        loom_prompt_params pp = {o.system, o.parse_special};
        st = loom_session_set_chat(s, &item, 1, &pp, &err);
    } else {
        st = loom_session_set_text(s, prompt, o.parse_special, &err);
    }
    if (st) goto fail;
    loom_gen_params gp = cli_gen_params(&o);
    size_t n_prompt;
    loom_session_prompt_ids(s, &n_prompt);
    size_t V = (size_t)loom_lm_get_hparams(loom_model_lm(m))->n_vocab;
    if (dump_logits) {
        prompt_logits = loom_malloc(n_prompt * V * sizeof(float));
        if (!prompt_logits) {
            LOOM_FAIL(&err, LOOM_ERR_NOMEM, "out of memory for %zu x %zu logits", n_prompt, V);
            goto fail;
        }
        gp.prompt_logits = prompt_logits;
    }
    run_out out = {o.print_ids, 0};
    loom_gen_stats stats;
    if (loom_session_generate(s, &gp, on_token, &out, &stats, &err)) goto fail;
    printf("\n");
    if (dump_logits && !cli_write_file("run", dump_logits, prompt_logits, sizeof(float), n_prompt * V)) goto done;
    if (!o.quiet) cli_print_timings(&stats);
    rc = 0;
    goto done;
fail:
    cli_error("run", "%s", err.msg);
done:
    loom_free(prompt_logits);
    loom_session_free(s);
    loom_model_close(m);
    loom_free(ids);
    loom_free(file_text);
    return rc;
}
