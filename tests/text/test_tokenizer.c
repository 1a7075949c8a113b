/* tests/text/test_tokenizer.c — the byte-level BPE tokenizer against tiktoken / Meta ids, decoding and streaming,
 * hostile vocabularies, long inputs. Reference data: $LOOM_SHARED/testdata/tokenizer and llama4-tiny. */
#include <jansson.h>
#include <string.h>
#include <time.h>

#include "core/gguf.h"
#include "tests/testutil.h"
#include "tests/text/load_tok.h"
#include "text/text.h"
#include "text/text_int.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void expect_ids(const loom_tok *t, const char *text, size_t len, unsigned flags, const int32_t *want,
                       size_t n_want) {
    loom_tok_ids ids = {0};
    loom_err err = {0};
    cr_assert_eq(loom_tok_encode(t, text, len, flags, &ids, &err), LOOM_OK, "%s", err.msg);
    int same = ids.n == n_want && (!n_want || !memcmp(ids.ids, want, n_want * sizeof *want));
    if (!same) {
        fprintf(stderr, "text %.*s\n got:", (int)len, text);
        for (size_t i = 0; i < ids.n; i++) fprintf(stderr, " %d", ids.ids[i]);
        fprintf(stderr, "\nwant:");
        for (size_t i = 0; i < n_want; i++) fprintf(stderr, " %d", want[i]);
        fprintf(stderr, "\n");
    }
    cr_assert(same, "ids differ for \"%.*s\"", (int)len, text);
    loom_tok_ids_release(&ids);
}

/* ==== reference ids ==== */

Test(tokenizer, llama4_public_jsonl_matches_tiktoken) {
    double t0 = now_s();
    loom_tok *t = load_tok("testdata/tokenizer/llama4-vocab.gguf");
    double t_load = now_s() - t0;
    cr_assert_eq(loom_tok_n_vocab(t), 202048);
    char path[1024];
    LOOM_SHARED_PATH(path, "testdata/tokenizer/llama4_public.jsonl");
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    char line[65536];
    int n = 0;
    double t1 = now_s();
    while (fgets(line, sizeof line, f)) {
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        cr_assert_not_null(o, "line %d: %s", n + 1, je.text);
        json_t *jt = json_object_get(o, "text"), *ji = json_object_get(o, "ids");
        size_t len = json_string_length(jt);
        const char *text = json_string_value(jt);
        int32_t want[4096];
        size_t nw = json_array_size(ji);
        cr_assert(nw < 4096);
        for (size_t i = 0; i < nw; i++) want[i] = (int32_t)json_integer_value(json_array_get(ji, i));
        expect_ids(t, text, len, LOOM_TOK_PARSE_SPECIAL, want, nw);
        char *back = NULL;
        size_t blen = 0;
        loom_err err = {0};
        cr_assert_eq(loom_tok_decode(t, want, nw, LOOM_TOK_DECODE_SPECIAL, &back, &blen, &err), LOOM_OK);
        cr_assert(blen == len && !memcmp(back, text, len), "decode differs for line %d", n + 1);
        loom_free(back);
        json_decref(o);
        n++;
    }
    fclose(f);
    double t_enc = now_s() - t1;
    fprintf(stderr, "llama4 vocab: load %.1f ms, %d strings %.2f ms\n", 1e3 * t_load, n, 1e3 * t_enc);
    cr_assert_eq(n, 30);
    /* "well under a second" in an optimised build; ASan/UBSan builds are several times slower */
    cr_assert(t_load + t_enc < 3.0, "load + encode took %.2f s", t_load + t_enc);
    loom_tok_free(t);
}

Test(tokenizer, llama4_edge_cases_need_meta_regex) {
    loom_tok *t = load_tok("testdata/tokenizer/llama4-vocab.gguf");
    /* combining marks stay in the word; accented capitals are upper case (llama.cpp's rewrite differs here) */
    expect_ids(t, " के", strlen(" के"), 0, (int32_t[]){3035}, 1);
    expect_ids(t, "ÇÃO", strlen("ÇÃO"), 0, (int32_t[]){22674}, 1);
    expect_ids(t, "ACIÓN", strlen("ACIÓN"), 0, (int32_t[]){47500}, 1);
    expect_ids(t, "नमस्ते दुनिया", strlen("नमस्ते दुनिया"), 0, (int32_t[]){1479, 2511, 23194, 790, 106801}, 5);
    loom_tok_free(t);
}

Test(tokenizer, llama4_specials_and_lookup) {
    loom_tok *t = load_tok("testdata/tokenizer/llama4-vocab.gguf");
    cr_assert_eq(loom_tok_bos(t), 200000);
    cr_assert_eq(loom_tok_eos(t), 200008);
    cr_assert_eq(loom_tok_eot(t), 200008);
    cr_assert_eq(loom_tok_eom(t), 200007); /* no key in the file: found by name */
    cr_assert_eq(loom_tok_pad(t), 200018);
    cr_assert(loom_tok_is_eog(t, 200007) && loom_tok_is_eog(t, 200008) && !loom_tok_is_eog(t, 200000));
    cr_assert_eq(loom_tok_find(t, "<|patch|>", 0), 200092);
    cr_assert_eq(loom_tok_find(t, "<|image_start|>", 0), 200080);
    cr_assert_eq(loom_tok_find(t, "<|tile_y_separator|>", 0), 200085);
    cr_assert_eq(loom_tok_find(t, "<|no_such_token|>", 0), -1);
    cr_assert_eq(loom_tok_find(t, "\n\n", 0), 368);
    cr_assert(loom_tok_is_special(t, 200092) && !loom_tok_is_special(t, 368));
    cr_assert_eq(loom_tok_type_of(t, 200092), LOOM_TOK_CONTROL);
    cr_assert_eq(loom_tok_type_of(t, 202048), 0);

    /* parse_special on: one id; off: plain characters (Meta's encode, §11) */
    int32_t a = loom_tok_find(t, "a", 1), b = loom_tok_find(t, "b", 1);
    cr_assert(a >= 0 && b >= 0);
    expect_ids(t, "a<|eot|>b", 9, LOOM_TOK_PARSE_SPECIAL, (int32_t[]){a, 200008, b}, 3);
    loom_tok_ids ids = {0};
    loom_err err = {0};
    cr_assert_eq(loom_tok_encode(t, "a<|eot|>b", 9, 0, &ids, &err), LOOM_OK);
    cr_assert_gt(ids.n, 3);
    for (size_t i = 0; i < ids.n; i++) cr_assert_lt(ids.ids[i], 200000);
    char *back;
    size_t blen;
    cr_assert_eq(loom_tok_decode(t, ids.ids, ids.n, 0, &back, &blen, &err), LOOM_OK);
    cr_assert_str_eq(back, "a<|eot|>b");
    loom_free(back);

    /* longest match among specials sharing a prefix; BOS flag */
    ids.n = 0;
    cr_assert_eq(loom_tok_encode(t, "<|image|><|image_start|>", 24, LOOM_TOK_PARSE_SPECIAL | LOOM_TOK_ADD_BOS, &ids,
                                 &err), LOOM_OK);
    cr_assert_eq(ids.n, 3);
    cr_assert(ids.ids[0] == 200000 && ids.ids[1] == 200090 && ids.ids[2] == 200080);

    /* specials decode to nothing by default */
    size_t l;
    loom_tok_piece(t, 200008, 0, &l);
    cr_assert_eq(l, 0);
    const char *p = loom_tok_piece(t, 200008, LOOM_TOK_DECODE_SPECIAL, &l);
    cr_assert(l == 7 && !memcmp(p, "<|eot|>", 7));
    cr_assert_null(loom_tok_piece(t, -1, 0, &l));
    cr_assert_eq(loom_tok_decode(t, (int32_t[]){5, 999999}, 2, 0, &back, &blen, &err), LOOM_ERR_INVALID);
    loom_tok_ids_release(&ids);
    loom_tok_free(t);
}

Test(tokenizer, tiny_model_prompts_match_meta) {
    loom_tok *t = load_tok("testdata/llama4-tiny/models/scout-like.gguf");
    cr_assert_eq(loom_tok_n_vocab(t), 2013);
    cr_assert_eq(loom_tok_find(t, "<|patch|>", 0), 2012);
    cr_assert_eq(loom_tok_find(t, "<|image_start|>", 0), 2007);
    cr_assert_eq(loom_tok_bos(t), 2000);
    cr_assert_eq(loom_tok_eom(t), 2004);
    char path[1024];
    LOOM_SHARED_PATH(path, "testdata/llama4-tiny/manifest.json");
    json_error_t je;
    json_t *m = json_load_file(path, 0, &je);
    cr_assert_not_null(m, "%s", je.text);
    json_t *prompts = json_object_get(m, "prompts");
    cr_assert_eq(json_array_size(prompts), 4);
    for (size_t k = 0; k < 4; k++) {
        json_t *p = json_array_get(prompts, k);
        json_t *jt = json_object_get(p, "text"), *ji = json_object_get(p, "ids");
        int32_t want[256];
        size_t nw = json_array_size(ji);
        cr_assert(nw < 256);
        for (size_t i = 0; i < nw; i++) want[i] = (int32_t)json_integer_value(json_array_get(ji, i));
        expect_ids(t, json_string_value(jt), json_string_length(jt), LOOM_TOK_ADD_BOS | LOOM_TOK_PARSE_SPECIAL, want,
                   nw);
    }
    json_decref(m);
    loom_tok_free(t);
}

/* ==== robustness ==== */

Test(tokenizer, invalid_utf8_round_trips) {
    loom_tok *t = load_tok("testdata/tokenizer/llama4-vocab.gguf");
    const char text[] = "ok \xff\xfe bad \xe2\x82 cut \xc3 end\x80\xf0\x9f\xa6\x99 llama \xed\xa0\x80 sur";
    size_t len = sizeof text - 1;
    loom_tok_ids ids = {0};
    loom_err err = {0};
    cr_assert_eq(loom_tok_encode(t, text, len, LOOM_TOK_PARSE_SPECIAL, &ids, &err), LOOM_OK, "%s", err.msg);
    char *back;
    size_t blen;
    cr_assert_eq(loom_tok_decode(t, ids.ids, ids.n, 0, &back, &blen, &err), LOOM_OK);
    cr_assert(blen == len && !memcmp(back, text, len));
    loom_free(back);
    loom_tok_ids_release(&ids);
    loom_tok_free(t);
}

/* A 1 MB prompt of each shape round-trips; the Criterion timeout catches quadratic BPE or regex backtracking
 * (timings are printed, not asserted: speed belongs to benchmarks). */
Test(tokenizer, megabyte_prompts_are_linear, .timeout = 60) {
    loom_tok *t = load_tok("testdata/tokenizer/llama4-vocab.gguf");
    const size_t N = 1 << 20;
    char *buf = loom_malloc(N + 8);
    const char *unit[] = {"Hello world, the quick brown fox 123456 jumps! ", " ", "a", "中文测试多模态模型", "\n \n",
                          "🦙", "!?", "ACIÓN", "x'll"};
    for (size_t u = 0; u < sizeof unit / sizeof unit[0]; u++) {
        size_t ul = strlen(unit[u]), len = 0;
        while (len + ul <= N) memcpy(buf + len, unit[u], ul), len += ul;
        loom_tok_ids ids = {0};
        loom_err err = {0};
        double t0 = now_s();
        cr_assert_eq(loom_tok_encode(t, buf, len, LOOM_TOK_PARSE_SPECIAL, &ids, &err), LOOM_OK, "%s", err.msg);
        double dt = now_s() - t0;
        fprintf(stderr, "1 MB of \"%s\": %zu tokens in %.1f ms\n", unit[u], ids.n, 1e3 * dt);
        char *back;
        size_t blen;
        cr_assert_eq(loom_tok_decode(t, ids.ids, ids.n, 0, &back, &blen, &err), LOOM_OK);
        cr_assert(blen == len && !memcmp(back, buf, len));
        loom_free(back);
        loom_tok_ids_release(&ids);
    }
    loom_free(buf);
    loom_tok_free(t);
}

/* Meta cuts runs of more than 25,000 whitespace / non-whitespace characters: 25,001 'a's are two pieces. */
Test(tokenizer, meta_run_split) {
    loom_tok *t = load_tok("testdata/tokenizer/llama4-vocab.gguf");
    size_t n = 25001;
    char *buf = loom_malloc(n);
    memset(buf, 'a', n);
    loom_tok_ids whole = {0}, a = {0}, b = {0};
    loom_err err = {0};
    cr_assert_eq(loom_tok_encode(t, buf, n, 0, &whole, &err), LOOM_OK);
    cr_assert_eq(loom_tok_encode(t, buf, 25000, 0, &a, &err), LOOM_OK);
    cr_assert_eq(loom_tok_encode(t, buf, 1, 0, &a, &err), LOOM_OK);
    cr_assert_eq(whole.n, a.n);
    cr_assert(!memcmp(whole.ids, a.ids, a.n * sizeof(int32_t)));
    (void)b;
    loom_tok_ids_release(&whole);
    loom_tok_ids_release(&a);
    loom_free(buf);
    loom_tok_free(t);
}

/* ==== streaming decode ==== */

Test(tokenizer, stream_never_splits_utf8) {
    loom_tok *t = load_tok("testdata/tokenizer/llama4-vocab.gguf");
    const char *text = "emoji 🦙🔥👍🏽 mixed 日本語 <|eot|>";
    loom_tok_ids ids = {0};
    loom_err err = {0};
    cr_assert_eq(loom_tok_encode(t, text, strlen(text), LOOM_TOK_PARSE_SPECIAL, &ids, &err), LOOM_OK);
    loom_tok_stream *s;
    cr_assert_eq(loom_tok_stream_new(&s, t, 0, &err), LOOM_OK);
    char out[256];
    size_t o = 0;
    int held = 0;
    for (size_t i = 0; i < ids.n; i++) {
        const char *p;
        size_t l;
        cr_assert_eq(loom_tok_stream_push(s, ids.ids[i], &p, &l, &err), LOOM_OK);
        /* every chunk handed out is whole UTF-8 */
        for (size_t k = 0; k < l;) {
            unsigned char c = (unsigned char)p[k];
            size_t cl = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
            cr_assert(k + cl <= l, "chunk ends inside a character");
            k += cl;
        }
        size_t piece;
        loom_tok_piece(t, ids.ids[i], 0, &piece);
        if (l < piece) held = 1;
        memcpy(out + o, p, l);
        o += l;
    }
    cr_assert(held, "this text has tokens that end inside a character");
    const char *p;
    size_t l;
    loom_tok_stream_flush(s, &p, &l);
    cr_assert_eq(l, 0);
    cr_assert(o == strlen(text) - strlen("<|eot|>") && !memcmp(out, text, o));
    /* an unfinished sequence comes out at flush; an invalid id is refused */
    int32_t llama_first = ids.ids[2];
    cr_assert_eq(loom_tok_stream_push(s, 999999, &p, &l, &err), LOOM_ERR_INVALID);
    cr_assert_eq(loom_tok_stream_push(s, 80484, &p, &l, &err), LOOM_OK);
    (void)llama_first;
    loom_tok_stream_free(s);
    loom_tok_ids_release(&ids);
    loom_tok_free(t);
}

Test(tokenizer, stream_flush_returns_incomplete_tail) {
    /* byte vocabulary: every byte is a token, so a 4-byte emoji arrives one byte at a time */
    static char names[256][4];
    const char *toks[256];
    for (int b = 0; b < 256; b++) {
        /* GPT-2 map: printable bytes stand for themselves, others are U+0100.. */
        int self = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae);
        unsigned cp = (unsigned)b;
        if (!self) {
            unsigned k = 0;
            for (int i = 0; i < b; i++) k += !((i >= 0x21 && i <= 0x7e) || (i >= 0xa1 && i <= 0xac) || (i >= 0xae));
            cp = 256 + k;
        }
        if (cp < 0x80) names[b][0] = (char)cp, names[b][1] = 0;
        else names[b][0] = (char)(0xc0 | (cp >> 6)), names[b][1] = (char)(0x80 | (cp & 0x3f)), names[b][2] = 0;
        toks[b] = names[b];
    }
    loom_tok_vocab v = {toks, NULL, 256, NULL, 0, -1, -1, -1, -1, -1};
    loom_tok *t;
    loom_err err = {0};
    cr_assert_eq(loom_tok_new(&t, &v, &err), LOOM_OK, "%s", err.msg);
    loom_tok_stream *s;
    cr_assert_eq(loom_tok_stream_new(&s, t, 0, &err), LOOM_OK);
    const unsigned char llama[] = {0xf0, 0x9f, 0xa6, 0x99};
    const char *p;
    size_t l;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(loom_tok_stream_push(s, llama[i], &p, &l, &err), LOOM_OK);
        cr_assert_eq(l, 0);
    }
    cr_assert_eq(loom_tok_stream_push(s, llama[3], &p, &l, &err), LOOM_OK);
    cr_assert(l == 4 && !memcmp(p, llama, 4));
    /* a lead byte then an ASCII byte: both come out at once (the lead can never complete) */
    loom_tok_stream_push(s, 0xe2, &p, &l, &err);
    cr_assert_eq(l, 0);
    loom_tok_stream_push(s, 'x', &p, &l, &err);
    cr_assert(l == 2 && (unsigned char)p[0] == 0xe2 && p[1] == 'x');
    /* E0 80 can never be valid (overlong): not held */
    loom_tok_stream_push(s, 0xe0, &p, &l, &err);
    loom_tok_stream_push(s, 0x80, &p, &l, &err);
    cr_assert_eq(l, 2);
    loom_tok_stream_push(s, 0xf0, &p, &l, &err);
    loom_tok_stream_push(s, 0x9f, &p, &l, &err);
    cr_assert_eq(l, 0);
    loom_tok_stream_flush(s, &p, &l);
    cr_assert(l == 2 && (unsigned char)p[0] == 0xf0);

    /* byte-only vocab: encode is one id per byte */
    loom_tok_ids ids = {0};
    cr_assert_eq(loom_tok_encode(t, "hi 🦙", 7, 0, &ids, &err), LOOM_OK);
    cr_assert_eq(ids.n, 7);
    cr_assert(ids.ids[0] == 'h' && ids.ids[3] == 0xf0);
    loom_tok_ids_release(&ids);
    loom_tok_stream_free(s);
    loom_tok_free(t);
}

/* ==== BPE on a hand-made vocabulary ==== */

/* bytes a, b, c, space(Ġ) + merges; checks rank order, leftmost ties and hostile variants */
static const char *mini_tokens[] = {"a", "b", "c", "Ġ", "aa", "ab", "aab", "Ġa", "<|s|>", "<|s|>x"};
static const int32_t mini_types[] = {1, 1, 1, 1, 1, 1, 1, 1, 3, 3};
static const char *mini_merges[] = {"a a", "a b", "aa b", "Ġ a"};

static loom_tok *mini(loom_status *st, const char **tokens, const int32_t *types, int32_t n, const char **merges,
                      int32_t nm, int32_t bos) {
    loom_tok_vocab v = {tokens, types, n, merges, nm, bos, -1, -1, -1, -1};
    loom_tok *t = NULL;
    loom_err err = {0};
    *st = loom_tok_new(&t, &v, &err);
    if (*st) cr_assert(err.msg[0], "a failure must say why");
    return t;
}

Test(tokenizer, bpe_rank_order_and_ties) {
    loom_status st;
    loom_tok *t = mini(&st, mini_tokens, mini_types, 10, mini_merges, 4, -1);
    cr_assert_eq(st, LOOM_OK);
    /* "aaa": (a a) has rank 0 at positions 0 and 1: leftmost first -> aa a */
    expect_ids(t, "aaa", 3, 0, (int32_t[]){4, 0}, 2);
    /* "aab": a a (rank 0) first, then aa b (rank 2) -> aab, not a ab */
    expect_ids(t, "aab", 3, 0, (int32_t[]){6}, 1);
    /* "abab" is one regex piece: ab ab */
    expect_ids(t, "abab", 4, 0, (int32_t[]){5, 5}, 2);
    expect_ids(t, " a", 2, 0, (int32_t[]){7}, 1);
    /* longest special wins; specials off -> bytes */
    expect_ids(t, "<|s|>xa", 7, LOOM_TOK_PARSE_SPECIAL, (int32_t[]){9, 0}, 2);
    loom_tok_ids ids = {0};
    loom_err err = {0};
    cr_assert_eq(loom_tok_encode(t, "<|s|>", 5, 0, &ids, &err), LOOM_ERR_INVALID); /* '<' has no token */
    cr_assert_eq(ids.n, 0);
    cr_assert_eq(loom_tok_encode(t, "a", 1, LOOM_TOK_ADD_BOS, &ids, &err), LOOM_ERR_INVALID); /* no BOS */
    cr_assert_eq(loom_tok_find(t, "<|s|>", 0), 8);
    cr_assert_eq(loom_tok_find(t, " a", 0), 7);
    cr_assert_eq(loom_tok_max_piece(t), 6);
    loom_tok_free(t);
}

Test(tokenizer, hostile_vocabularies_are_format_errors) {
    loom_status st;
    loom_tok *t;
    /* unmapped character (a raw space is not in the GPT-2 map) */
    const char *bad_char[] = {"a", "b", "a b"};
    t = mini(&st, bad_char, NULL, 3, NULL, 0, -1);
    cr_assert_eq(st, LOOM_ERR_FORMAT);
    cr_assert_null(t);
    /* not UTF-8 */
    const char *bad_utf8[] = {"a", "\xc3"};
    mini(&st, bad_utf8, NULL, 2, NULL, 0, -1);
    cr_assert_eq(st, LOOM_ERR_FORMAT);
    /* duplicate normal tokens, duplicate specials */
    const char *dup[] = {"a", "b", "a"};
    mini(&st, dup, NULL, 3, NULL, 0, -1);
    cr_assert_eq(st, LOOM_ERR_FORMAT);
    const char *dups[] = {"a", "<x>", "<x>"};
    mini(&st, dups, (int32_t[]){1, 3, 3}, 3, NULL, 0, -1);
    cr_assert_eq(st, LOOM_ERR_FORMAT);
    /* empty tokens */
    const char *empty[] = {"a", ""};
    mini(&st, empty, NULL, 2, NULL, 0, -1);
    cr_assert_eq(st, LOOM_ERR_FORMAT);
    /* bad type */
    mini(&st, mini_tokens, (int32_t[]){1, 1, 1, 1, 1, 1, 1, 1, 3, 7}, 10, mini_merges, 4, -1);
    cr_assert_eq(st, LOOM_ERR_FORMAT);
    /* merges: unknown half, result not a token, no space, two spaces, empty half, NULL */
    const char *m1[] = {"a z"}, *m2[] = {"b c"}, *m3[] = {"ab"}, *m4[] = {"a b c"}, *m5[] = {"a "}, *m6[] = {NULL},
               *m7[] = {"a \xff"};
    const char **ms[] = {m1, m2, m3, m4, m5, m6, m7};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        t = mini(&st, mini_tokens, mini_types, 10, ms[i], 1, -1);
        cr_assert_eq(st, LOOM_ERR_FORMAT, "merge case %zu", i);
        cr_assert_null(t);
    }
    /* out-of-range special ids */
    mini(&st, mini_tokens, mini_types, 10, mini_merges, 4, 10);
    cr_assert_eq(st, LOOM_ERR_FORMAT);
    mini(&st, mini_tokens, mini_types, 10, mini_merges, 4, -5);
    cr_assert_eq(st, LOOM_ERR_FORMAT);
    /* sizes */
    mini(&st, mini_tokens, mini_types, 0, NULL, 0, -1);
    cr_assert_eq(st, LOOM_ERR_FORMAT);
    mini(&st, mini_tokens, mini_types, 10, mini_merges, -1, -1);
    cr_assert_eq(st, LOOM_ERR_FORMAT);
    /* over-long token */
    char *longtok = loom_malloc(LOOM_TOK_MAX_TOKEN_LEN + 2);
    memset(longtok, 'a', LOOM_TOK_MAX_TOKEN_LEN + 1);
    longtok[LOOM_TOK_MAX_TOKEN_LEN + 1] = 0;
    const char *lt[] = {"a", longtok};
    mini(&st, lt, NULL, 2, NULL, 0, -1);
    cr_assert_eq(st, LOOM_ERR_FORMAT);
    loom_free(longtok);
    /* a repeated merge keeps its first rank (llama.cpp); not an error */
    const char *rep[] = {"a a", "a b", "a a"};
    t = mini(&st, mini_tokens, mini_types, 10, rep, 3, -1);
    cr_assert_eq(st, LOOM_OK);
    loom_tok_free(t);
}

Test(tokenizer, allocation_failures_are_clean) {
    int64_t base = loom_alloc_live_bytes();
    int ok = 0;
    for (int64_t k = 0; k < 200 && !ok; k++) {
        loom_alloc_fail_after(k);
        loom_status st;
        loom_tok *t = mini(&st, mini_tokens, mini_types, 10, mini_merges, 4, -1);
        loom_tok_ids ids = {0};
        loom_err err = {0};
        if (st == LOOM_OK) {
            st = loom_tok_encode(t, "aab aaa <|s|>", 13, LOOM_TOK_PARSE_SPECIAL, &ids, &err);
            if (st == LOOM_OK) ok = 1;
            else cr_assert_eq(st, LOOM_ERR_NOMEM, "k=%lld: %s", (long long)k, err.msg);
        } else {
            cr_assert_eq(st, LOOM_ERR_NOMEM, "k=%lld", (long long)k);
        }
        loom_alloc_fail_after(-1);
        loom_tok_ids_release(&ids);
        loom_tok_free(t);
        cr_assert_eq(loom_alloc_live_bytes(), base, "leak after failing at allocation %lld", (long long)k);
    }
    cr_assert(ok);
}

/* ==== hostile GGUF vocabularies (written in memory with the GGUF writer) ==== */

typedef enum { V_OK, V_MODEL, V_NO_TOKENS, V_TOKENS_NOT_STR, V_TYPES_SHORT, V_TYPES_F32, V_MERGES_U32, V_BOS_RANGE,
               V_BOS_STR, V_BAD_MERGE, V_MODEL_U32 } variant;

static loom_status tok_from_variant(variant v, loom_tok **out, loom_err *err) {
    const char *tokens[] = {"a", "b", "ab", "Ġ", "<|begin_of_text|>", "<|eot|>"};
    int32_t types[] = {1, 1, 1, 1, 3, 3};
    const char *merges[] = {"a b"}, *bad_merges[] = {"a c"};
    loom_gguf_writer *w;
    cr_assert_eq(loom_gguf_writer_new(&w, NULL), LOOM_OK);
    loom_gguf_writer_set_str(w, "general.architecture", "llama4");
    if (v == V_MODEL_U32) loom_gguf_writer_set_u32(w, "tokenizer.ggml.model", 2);
    else loom_gguf_writer_set_str(w, "tokenizer.ggml.model", v == V_MODEL ? "llama" : "gpt2");
    if (v == V_TOKENS_NOT_STR) loom_gguf_writer_set_arr(w, "tokenizer.ggml.tokens", LOOM_GGUF_I32, types, 6);
    else if (v != V_NO_TOKENS) loom_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tokens, 6);
    if (v == V_TYPES_F32) loom_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", LOOM_GGUF_F32, types, 6);
    else loom_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", LOOM_GGUF_I32, types, v == V_TYPES_SHORT ? 5 : 6);
    if (v == V_MERGES_U32) loom_gguf_writer_set_arr(w, "tokenizer.ggml.merges", LOOM_GGUF_U32, types, 1);
    else loom_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", v == V_BAD_MERGE ? bad_merges : merges, 1);
    if (v == V_BOS_STR) loom_gguf_writer_set_str(w, "tokenizer.ggml.bos_token_id", "4");
    else loom_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", v == V_BOS_RANGE ? 6 : 4);
    loom_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 5);
    void *buf;
    size_t size;
    cr_assert_eq(loom_gguf_writer_write_memory(w, &buf, &size, NULL), LOOM_OK);
    loom_gguf_writer_free(w);
    loom_gguf *g;
    cr_assert_eq(loom_gguf_open_memory(&g, buf, size, NULL), LOOM_OK);
    loom_status st = loom_tok_new_from_gguf(out, g, err);
    loom_gguf_close(g);
    loom_free(buf);
    return st;
}

Test(tokenizer, gguf_vocab_keys_are_validated) {
    loom_tok *t = NULL;
    loom_err err = {0};
    cr_assert_eq(tok_from_variant(V_OK, &t, &err), LOOM_OK, "%s", err.msg);
    expect_ids(t, "ab<|eot|>", 9, LOOM_TOK_PARSE_SPECIAL | LOOM_TOK_ADD_BOS, (int32_t[]){4, 2, 5}, 3);
    cr_assert_eq(loom_tok_eot(t), 5); /* no eot key: found by name */
    loom_tok_free(t);
    struct {
        variant v;
        loom_status want;
        const char *in_msg;
    } cases[] = {
        {V_MODEL, LOOM_ERR_UNSUPPORTED, "llama"},
        {V_MODEL_U32, LOOM_ERR_FORMAT, "tokenizer.ggml.model"},
        {V_NO_TOKENS, LOOM_ERR_FORMAT, "tokenizer.ggml.tokens"},
        {V_TOKENS_NOT_STR, LOOM_ERR_FORMAT, "tokenizer.ggml.tokens"},
        {V_TYPES_SHORT, LOOM_ERR_FORMAT, "token_type"},
        {V_TYPES_F32, LOOM_ERR_FORMAT, "token_type"},
        {V_MERGES_U32, LOOM_ERR_FORMAT, "merges"},
        {V_BOS_RANGE, LOOM_ERR_FORMAT, "bos"},
        {V_BOS_STR, LOOM_ERR_FORMAT, "bos"},
        {V_BAD_MERGE, LOOM_ERR_FORMAT, "merges[0]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        t = NULL;
        err = (loom_err){0};
        cr_assert_eq(tok_from_variant(cases[i].v, &t, &err), cases[i].want, "case %zu: %s", i, err.msg);
        cr_assert_null(t);
        cr_assert(strstr(err.msg, cases[i].in_msg), "case %zu: \"%s\" should name %s", i, err.msg, cases[i].in_msg);
    }
}

/* Random small vocabularies (random strings, types, merges, ids): loading gives OK or FORMAT, never a crash;
 * a vocabulary that loads encodes random bytes (OK, or INVALID for a byte without a token) and round-trips. */
Test(tokenizer, random_vocabularies_fuzz) {
    uint64_t rs = 2024;
    static const char *alphabet[] = {"a", "b", "Ġ", "Ċ", "<", "|", ">", "é", "\xc4", "ab", " ", "Ã", "\xff", "Āa"};
    const int na = sizeof alphabet / sizeof alphabet[0];
    int n_ok = 0;
    for (int iter = 0; iter < 3000; iter++) {
        char tokbuf[24][16], mbuf[16][40];
        const char *toks[24], *merges[16];
        int32_t types[24];
        int nt = 1 + (int)(loom_test_rand_u64(&rs) % 24), nm = (int)(loom_test_rand_u64(&rs) % 16);
        if (iter % 2) nm = 0;
        int clean = iter % 3 != 0; /* two thirds: only mapped characters, unique tokens */
        for (int i = 0; i < nt; i++) {
            tokbuf[i][0] = 0;
            int parts = 1 + (int)(loom_test_rand_u64(&rs) % 3);
            for (int k = 0; k < parts; k++)
                strcat(tokbuf[i], alphabet[loom_test_rand_u64(&rs) % (uint64_t)(clean ? 8 : na)]);
            if (clean && i > 0) strcat(tokbuf[i], (char[]){(char)('A' + i), 0}); /* unique */
            toks[i] = tokbuf[i];
            uint64_t r = loom_test_rand_u64(&rs) % 10;
            types[i] = r < 7 || clean ? (r < 8 ? 1 : 3) : r < 9 ? 3 : (int32_t)(loom_test_rand_u64(&rs) % 9) - 1;
        }
        for (int i = 0; i < nm; i++) {
            snprintf(mbuf[i], sizeof mbuf[i], "%s%s%s", toks[loom_test_rand_u64(&rs) % (uint64_t)nt],
                     loom_test_rand_u64(&rs) % 8 ? " " : "", toks[loom_test_rand_u64(&rs) % (uint64_t)nt]);
            merges[i] = mbuf[i];
        }
        int32_t bos = (int32_t)(loom_test_rand_u64(&rs) % (uint64_t)(nt + 2)) - 1;
        loom_tok_vocab v = {toks, types, nt, merges, nm, bos, -1, -1, -1, -1};
        loom_tok *t = NULL;
        loom_err err = {0};
        loom_status st = loom_tok_new(&t, &v, &err);
        cr_assert(st == LOOM_OK || st == LOOM_ERR_FORMAT, "iter %d: status %d (%s)", iter, st, err.msg);
        if (st) continue;
        n_ok++;
        char text[32];
        size_t len = loom_test_rand_u64(&rs) % sizeof text;
        for (size_t i = 0; i < len; i++) text[i] = "ab <|>\n\xc3\xa9\xff"[loom_test_rand_u64(&rs) % 11];
        loom_tok_ids ids = {0};
        st = loom_tok_encode(t, text, len, LOOM_TOK_PARSE_SPECIAL, &ids, &err);
        cr_assert(st == LOOM_OK || st == LOOM_ERR_INVALID, "iter %d: encode status %d (%s)", iter, st, err.msg);
        if (st == LOOM_OK) {
            char *back;
            size_t blen;
            cr_assert_eq(loom_tok_decode(t, ids.ids, ids.n, LOOM_TOK_DECODE_SPECIAL, &back, &blen, &err), LOOM_OK);
            cr_assert(blen == len && !memcmp(back, text, len), "iter %d: round trip", iter);
            loom_free(back);
        }
        loom_tok_ids_release(&ids);
        loom_tok_free(t);
    }
    cr_assert_gt(n_ok, 100, "the fuzz must reach the encoder (%d vocabularies loaded)", n_ok);
}

/* The pre-tokenizer pieces, checked directly (text_int.h white-box). */
typedef struct pieces {
    char buf[256];
    size_t n;
} pieces;

static void collect(void *ud, const char *p, size_t n) {
    pieces *c = ud;
    cr_assert(c->n + n + 1 < sizeof c->buf);
    memcpy(c->buf + c->n, p, n);
    c->n += n;
    c->buf[c->n++] = '|';
    c->buf[c->n] = 0;
}

static void expect_split(const loom_tok *t, const char *text, const char *want) {
    pieces c = {{0}, 0};
    loom_err err = {0};
    cr_assert_eq(tok_pretokenize(t, text, strlen(text), collect, &c, &err), LOOM_OK);
    cr_assert_str_eq(c.buf, want, "split of \"%s\"", text);
}

Test(tokenizer, pretokenizer_pieces) {
    loom_tok *t = load_tok("testdata/tokenizer/llama4-vocab.gguf");
    /* \s+(?!\S): a run of spaces before a word leaves its last space to the word; at the end it is one piece */
    expect_split(t, "a   b", "a|  | b|");
    expect_split(t, "a   ", "a|   |");
    expect_split(t, "  two  spaces", " | two| | spaces|");
    /* \s*[\r\n]+ takes spaces up to and including the newlines */
    expect_split(t, "a  \n\n b", "a|  \n\n| b|");
    /* Unicode White_Space: U+3000, U+0085 are spaces; U+180E is not (PCRE2's own \s would split "!\u180E!") */
    expect_split(t, "x\xe3\x80\x80\xe3\x80\x80y", "x|\xe3\x80\x80|\xe3\x80\x80y|");
    expect_split(t, "!\xe1\xa0\x8e!", "!\xe1\xa0\x8e!|");
    expect_split(t, "!\xc2\x85!", "!|\xc2\x85|!|");
    /* contractions: case-insensitive, attached to the word; digits in threes */
    expect_split(t, "WE'LL we'Re", "WE'LL| we'Re|");
    expect_split(t, "1'll 1234567", "1|'ll| |123|456|7|");
    /* combining marks stay in the word; accented capitals count as upper case */
    expect_split(t, " के ÇÃO", " के| ÇÃO|");
    expect_split(t, "HTTPServer", "HTTPServer|");
    expect_split(t, "a/b\n/c", "a|/b|\n|/c|");
    /* invalid UTF-8 is a piece of its own */
    expect_split(t, "ab\xff" "cd", "ab|\xff|cd|");
    loom_tok_free(t);
}
