/* cli/cli_common.c — see cli_common.h. */
#include "cli/cli_common.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/alloc.h"

void cli_error(const char *cmd, const char *fmt, ...) {
    fprintf(stderr, "loom %s: ", cmd);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

bool cli_parse_int(const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

bool cli_parse_float(const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) return false;
    *out = v;
    return true;
}

void cli_gen_opts_init(cli_gen_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_ctx = 4096;
    o->n_predict = 128;
    o->n_threads = 0;
    /* Meta's shipped generation config for Llama 4 Instruct: temperature 0.6, top_p 0.9 */
    o->temp = 0.6f;
    o->top_p = 0.9f;
    o->top_k = 0;
    o->min_p = 0.0f;
    o->repeat_penalty = 1.0f;
    o->repeat_last_n = 64;
}

void cli_gen_opts_help(FILE *f) {
    fprintf(f,
            "model:\n"
            "  -m, --model FILE      text model GGUF (llama4)\n"
            "  --no-mmap             read weights into memory instead of mapping the file\n"
            "  --mlock               keep weights in RAM\n"
            "generation:\n"
            "  -n, --n-predict N     tokens to generate (default 128)\n"
            "  -c, --ctx-size N      context positions, prompt + output (default 4096)\n"
            "  -t, --threads N       CPU threads (default: all cores)\n"
            "  --temp T              temperature, 0 = greedy (default 0.6)\n"
            "  --top-k K             keep the K most likely tokens (default 0 = off)\n"
            "  --top-p P             nucleus sampling (default 0.9)\n"
            "  --min-p P             drop tokens below P x the best probability (default 0 = off)\n"
            "  --repeat-penalty X    penalise the last --repeat-last-n tokens (default 1 = off)\n"
            "  --repeat-last-n N     window of the repetition penalty (default 64)\n"
            "  --seed S              RNG seed (default: random)\n"
            "  --ignore-eos          keep generating past end-of-turn tokens\n"
            "  --system TEXT         system message (chat format)\n"
            "  --parse-special       treat special-token text in the prompt as control tokens\n"
            "output:\n"
            "  --print-ids           print generated token ids instead of text\n"
            "  -q, --quiet           no timings on stderr\n");
}

#define NEED_VALUE()                                                                                                   \
    do {                                                                                                               \
        if (*i + 1 >= argc) {                                                                                          \
            cli_error(cmd, "option %s needs a value", a);                                                              \
            return -1;                                                                                                 \
        }                                                                                                              \
        v = argv[++*i];                                                                                                \
    } while (0)

int cli_parse_gen_opt(cli_gen_opts *o, const char *cmd, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v = NULL;
    long long n;
    double x;
    if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
        NEED_VALUE();
        o->model = v;
    } else if (!strcmp(a, "--mmproj")) {
        NEED_VALUE();
        o->mmproj = v;
    } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
        NEED_VALUE();
        if (!cli_parse_int(v, 0, 1 << 24, &n)) goto bad;
        o->n_predict = (int)n;
    } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
        NEED_VALUE();
        if (!cli_parse_int(v, 1, 1LL << 26, &n)) goto bad;
        o->n_ctx = n;
    } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
        NEED_VALUE();
        if (!cli_parse_int(v, 1, 512, &n)) goto bad;
        o->n_threads = (int)n;
    } else if (!strcmp(a, "--temp")) {
        NEED_VALUE();
        if (!cli_parse_float(v, 0, 100, &x)) goto bad;
        o->temp = (float)x;
    } else if (!strcmp(a, "--top-k")) {
        NEED_VALUE();
        if (!cli_parse_int(v, 0, 1 << 30, &n)) goto bad;
        o->top_k = (int)n;
    } else if (!strcmp(a, "--top-p")) {
        NEED_VALUE();
        if (!cli_parse_float(v, 0, 1, &x)) goto bad;
        o->top_p = (float)x;
    } else if (!strcmp(a, "--min-p")) {
        NEED_VALUE();
        if (!cli_parse_float(v, 0, 1, &x)) goto bad;
        o->min_p = (float)x;
    } else if (!strcmp(a, "--repeat-penalty")) {
        NEED_VALUE();
        if (!cli_parse_float(v, 0.01, 100, &x)) goto bad;
        o->repeat_penalty = (float)x;
    } else if (!strcmp(a, "--repeat-last-n")) {
        NEED_VALUE();
        if (!cli_parse_int(v, 0, 1 << 20, &n)) goto bad;
        o->repeat_last_n = (int)n;
    } else if (!strcmp(a, "--seed")) {
        NEED_VALUE();
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 10);
        if (errno || *end || end == v) goto bad;
        o->seed = s;
        o->seed_set = true;
    } else if (!strcmp(a, "--system")) {
        NEED_VALUE();
        o->system = v;
    } else if (!strcmp(a, "--no-mmap")) {
        o->no_mmap = true;
    } else if (!strcmp(a, "--mlock")) {
        o->mlock = true;
    } else if (!strcmp(a, "--print-ids")) {
        o->print_ids = true;
    } else if (!strcmp(a, "--json")) {
        o->json = true;
    } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
        o->quiet = true;
    } else if (!strcmp(a, "--ignore-eos")) {
        o->ignore_eos = true;
    } else if (!strcmp(a, "--parse-special")) {
        o->parse_special = true;
    } else {
        return 0;
    }
    return 1;
bad:
    cli_error(cmd, "invalid value '%s' for %s", v, a);
    return -1;
}

void cli_sampler_from_opts(const cli_gen_opts *o, loom_sampler_params *sp) {
    *sp = loom_sampler_default_params();
    sp->temperature = o->temp;
    sp->top_k = o->top_k;
    sp->top_p = o->top_p;
    sp->min_p = o->min_p;
    sp->repeat_penalty = o->repeat_penalty;
    sp->repeat_last_n = o->repeat_last_n;
    if (o->seed_set) {
        sp->seed = o->seed;
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        sp->seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20);
    }
}

bool cli_write_file(const char *cmd, const char *path, const void *data, size_t size, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        cli_error(cmd, "cannot write %s: %s", path, strerror(errno));
        return false;
    }
    bool ok = n == 0 || fwrite(data, size, n, f) == n;
    if (fclose(f) != 0) ok = false;
    if (!ok) cli_error(cmd, "error writing %s", path);
    return ok;
}

void cli_print_timings(const loom_gen_stats *st) {
    if (st->n_tiles_encoded || st->t_encode_s > 0)
        fprintf(stderr, "loom: image encode: %d tiles in %.1f ms (%.1f ms/tile)\n", st->n_tiles_encoded,
                st->t_encode_s * 1e3, st->n_tiles_encoded ? st->t_encode_s * 1e3 / st->n_tiles_encoded : 0.0);
    if (st->n_images_cached) fprintf(stderr, "loom: %d image(s) reused from the session cache\n", st->n_images_cached);
    fprintf(stderr, "loom: prompt: %lld tokens in %.1f ms (%.2f tokens/s)\n", (long long)st->n_prompt,
            st->t_prompt_s * 1e3, st->t_prompt_s > 0 ? st->n_prompt / st->t_prompt_s : 0.0);
    fprintf(stderr, "loom: generation: %lld tokens in %.1f ms (%.2f tokens/s)\n", (long long)st->n_gen,
            st->t_gen_s * 1e3, st->t_gen_s > 0 && st->n_gen > 1 ? (st->n_gen - 1) / st->t_gen_s : 0.0);
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when the bytes there are not one. */
static size_t utf8_seq_len(const unsigned char *p, size_t left) {
    unsigned c = p[0];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!n || n > left) return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    unsigned cp = n == 1 ? c : n == 2 ? ((c & 31u) << 6 | (p[1] & 63u))
                 : n == 3 ? ((c & 15u) << 12 | (p[1] & 63u) << 6 | (p[2] & 63u))
                          : ((c & 7u) << 18 | (p[1] & 63u) << 12 | (p[2] & 63u) << 6 | (p[3] & 63u));
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0)
        return 0;
    return n;
}

struct json_t *cli_json_text(const char *text, size_t len) {
    if (!text) return json_string("");
    char *buf = loom_malloc(len * 3 + 1);
    if (!buf) return json_string("");
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq_len(p + i, len - i);
        if (n) {
            memcpy(buf + o, p + i, n);
            o += n;
            i += n;
        } else {
            memcpy(buf + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    json_t *s = json_stringn(buf, o);
    loom_free(buf);
    return s ? s : json_string("");
}

bool cli_dump_prompt(const char *cmd, const loom_session *s, const loom_model *m, const char *ids_path,
                     const char *tiles_path, const char *embd_path) {
    if (ids_path) {
        size_t n;
        const int32_t *ids = loom_session_prompt_ids(s, &n);
        if (!cli_write_file(cmd, ids_path, ids, sizeof(int32_t), n)) return false;
    }
    if (tiles_path) {
        size_t n;
        const float *tiles = loom_session_prompt_tiles(s, &n);
        if (!cli_write_file(cmd, tiles_path, tiles, sizeof(float), n * 3 * LOOM_IMG_TILE_SIZE * LOOM_IMG_TILE_SIZE))
            return false;
    }
    if (embd_path) {
        size_t rows;
        const float *e = loom_session_patch_embeddings(s, &rows);
        size_t d = (size_t)loom_lm_get_hparams(loom_model_lm(m))->d_model;
        if (!cli_write_file(cmd, embd_path, e, sizeof(float), rows * d)) return false;
    }
    return true;
}

loom_gen_params cli_gen_params(const cli_gen_opts *o) {
    loom_gen_params gp = loom_gen_default_params();
    gp.n_predict = o->n_predict;
    gp.ignore_eog = o->ignore_eos;
    cli_sampler_from_opts(o, &gp.sampler);
    return gp;
}

int cli_sink_token(void *user, int32_t id, const char *piece, size_t len) {
    cli_sink *k = user;
    if (!k->ids) k->ids = json_array();
    if (id >= 0) json_array_append_new(k->ids, json_integer(id));
    if (k->stream) {
        if (k->print_ids) {
            if (id >= 0) printf("%s%d", json_array_size(k->ids) > 1 ? " " : "", id);
        } else if (k->one_line) {
            for (size_t i = 0; i < len; i++) putchar(piece[i] == '\n' ? ' ' : piece[i]);
        } else {
            fwrite(piece, 1, len, stdout);
        }
        fflush(stdout);
    }
    if (k->len + len + 1 > k->cap) {
        size_t cap = k->cap ? k->cap : 256;
        while (cap < k->len + len + 1) cap *= 2;
        char *nt = loom_realloc(k->text, cap);
        if (!nt) return 1;
        k->text = nt;
        k->cap = cap;
    }
    memcpy(k->text + k->len, piece, len);
    k->len += len;
    k->text[k->len] = 0;
    return 0;
}

void cli_sink_release(cli_sink *k) {
    loom_free(k->text);
    json_decref(k->ids);
    memset(k, 0, sizeof *k);
}
