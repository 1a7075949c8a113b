/* cli/cmd_tokenize.c — `loom tokenize`: stdin text -> token ids with a model's vocabulary.
 *
 * Only the tokenizer.* keys of the GGUF are read (metadata-only open), so a vocab-only file works. Plain mode
 * tokenizes all of stdin as one text (its final newline included) and prints the ids space-separated on one
 * line; --jsonl reads one JSON object per line and prints the JSON array of the ids of its "text" field.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "core/alloc.h"
#include "core/gguf.h"
#include "text/text.h"

#if LOOM_WITH_JANSSON
#include <jansson.h>
#endif

static void tokenize_usage(FILE *f) {
    fprintf(f,
            "usage: loom tokenize -m MODEL.gguf [--jsonl] [--no-parse-special] [--bos] < text\n"
            "  -m, --model FILE      GGUF with a tokenizer (tokenizer.ggml.model = gpt2; tensors are not needed)\n"
            "      --jsonl           each input line is {\"text\": ...}; each output line the JSON array of its ids\n"
            "      --no-parse-special  treat <|...|> special-token texts as plain text (default: parse them)\n"
            "      --bos             prepend the BOS token (default: none)\n");
}

/* Reads all of f into a loom_malloc'd buffer (NUL-terminated for convenience). */
static char *read_all(FILE *f, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = loom_malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > LOOM_TOK_MAX_TEXT) break;
            char *p = loom_realloc(buf, cap * 2);
            if (!p) break;
            buf = p;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) break;
            buf[n] = 0;
            *len = n;
            return buf;
        }
    }
    loom_free(buf);
    return NULL;
}

static void print_ids(const loom_tok_ids *ids, int json) {
    if (json) putchar('[');
    for (size_t i = 0; i < ids->n; i++) printf(i ? (json ? ",%d" : " %d") : "%d", ids->ids[i]);
    if (json) putchar(']');
    putchar('\n');
}

int cmd_tokenize(int argc, char **argv) {
    static const struct option opts[] = {{"model", required_argument, 0, 'm'}, {"jsonl", no_argument, 0, 'j'},
                                         {"no-parse-special", no_argument, 0, 'n'}, {"bos", no_argument, 0, 'b'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *model = NULL;
    int jsonl = 0, parse_special = 1, bos = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'j': jsonl = 1; break;
        case 'n': parse_special = 0; break;
        case 'b': bos = 1; break;
        case 'h': tokenize_usage(stdout); return 0;
        default: tokenize_usage(stderr); return 2;
        }
    }
    if (!model || optind != argc) {
        fprintf(stderr, "loom tokenize: %s\n", model ? "unexpected argument" : "missing -m MODEL.gguf");
        tokenize_usage(stderr);
        return 2;
    }
#if !LOOM_WITH_JANSSON
    if (jsonl) {
        fprintf(stderr, "loom tokenize: --jsonl needs jansson, which this build lacks\n");
        return 2;
    }
#endif

    loom_err err = {0};
    loom_gguf *g = NULL;
    loom_tok *tok = NULL;
    loom_gguf_params gp = {.metadata_only = true};
    if (loom_gguf_open(&g, model, &gp, &err) || loom_tok_new_from_gguf(&tok, g, &err)) {
        /* name the file once, whether or not the message already does */
        if (strstr(err.msg, model)) fprintf(stderr, "loom tokenize: %s\n", err.msg);
        else fprintf(stderr, "loom tokenize: %s: %s\n", model, err.msg);
        loom_gguf_close(g);
        return 1;
    }
    loom_gguf_close(g); /* the tokenizer keeps its own copy */

    unsigned flags = (parse_special ? LOOM_TOK_PARSE_SPECIAL : 0) | (bos ? LOOM_TOK_ADD_BOS : 0);
    size_t len = 0;
    char *text = read_all(stdin, &len);
    int rc = 0;
    if (!text) {
        fprintf(stderr, "loom tokenize: cannot read stdin (error or more than %zu bytes)\n", LOOM_TOK_MAX_TEXT);
        loom_tok_free(tok);
        return 1;
    }
    loom_tok_ids ids = {0};
    if (!jsonl) {
        if (loom_tok_encode(tok, text, len, flags, &ids, &err)) {
            fprintf(stderr, "loom tokenize: %s\n", err.msg);
            rc = 1;
        } else {
            print_ids(&ids, 0);
        }
    }
#if LOOM_WITH_JANSSON
    else {
        size_t line_no = 0;
        for (char *line = text, *end; line < text + len && !rc; line = end + 1) {
            end = memchr(line, '\n', (size_t)(text + len - line));
            if (!end) end = text + len;
            line_no++;
            size_t ll = (size_t)(end - line);
            if (ll && line[ll - 1] == '\r') ll--;
            if (ll == 0) continue;
            json_error_t je;
            json_t *obj = json_loadb(line, ll, JSON_ALLOW_NUL, &je);
            json_t *jt = obj ? json_object_get(obj, "text") : NULL;
            if (!jt || !json_is_string(jt)) {
                fprintf(stderr, "loom tokenize: stdin line %zu: %s\n", line_no,
                        obj ? "no string field \"text\"" : je.text);
                rc = 1;
            } else {
                ids.n = 0;
                if (loom_tok_encode(tok, json_string_value(jt), json_string_length(jt), flags, &ids, &err)) {
                    fprintf(stderr, "loom tokenize: stdin line %zu: %s\n", line_no, err.msg);
                    rc = 1;
                } else {
                    print_ids(&ids, 1);
                }
            }
            json_decref(obj);
        }
    }
#endif
    loom_tok_ids_release(&ids);
    loom_free(text);
    loom_tok_free(tok);
    return rc;
}
