/* tests/fuzz/fuzz_tokenizer.c — libFuzzer target for the tokenizer.
 *
 * Byte 0 chooses the vocabulary (the small one, the real Llama 4 one when present, or one built from the input
 * itself to fuzz loom_tok_new's validation) and the flags. Text inputs must round-trip: without special-token
 * parsing, decode(encode(x)) == x byte for byte, and the streaming decoder's pieces concatenate to the same
 * bytes. The input read as int32 ids (out-of-range ones included) must decode or fail cleanly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "tests/fuzz/fuzz_vocab.h"
#include "text/text.h"

static volatile uint64_t sink;

/* A vocabulary from the input: lines are tokens until an empty line, then merges; a line's first byte picks the
 * token type. Exercises loom_tok_new's checks; when it is accepted, the rest of the target runs on it. */
static loom_tok *vocab_from_input(const uint8_t *d, size_t n) {
    enum { MAX = 512 };
    char *copy = malloc(n + 1);
    if (!copy) return NULL;
    memcpy(copy, d, n);
    copy[n] = 0;
    const char *tokens[MAX], *merges[MAX];
    int32_t     types[MAX];
    int         nt = 0, nm = 0, in_merges = 0;
    for (char *line = copy, *next; line && nt < MAX && nm < MAX; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        if (!*line) {
            in_merges = 1;
            continue;
        }
        if (in_merges) merges[nm++] = line;
        else {
            types[nt] = (uint8_t)line[0] % 8; /* includes invalid types 0 and 7 */
            tokens[nt++] = line + 1;
        }
    }
    loom_tok_vocab v = {.tokens = tokens, .types = types, .n_tokens = nt, .merges = merges, .n_merges = nm,
                        .bos = nt ? (int32_t)(d[0] % (nt + 1)) - 1 : -1, .eos = -1, .eot = nt > 2 ? 2 : -1,
                        .eom = -1, .pad = nt > 300 ? 300 : -1};
    loom_tok *t = NULL;
    loom_err  err = {0};
    if (loom_tok_new(&t, &v, &err) != LOOM_OK) {
        if (t || !err.msg[0]) abort();
        t = NULL;
    }
    free(copy);
    return t;
}

static void check_text(const loom_tok *t, const char *text, size_t len, unsigned flags) {
    loom_tok_ids ids = {0};
    loom_err     err = {0};
    if (loom_tok_encode(t, text, len, flags, &ids, &err) != LOOM_OK) {
        if (ids.n || !err.msg[0]) abort();
        loom_tok_ids_release(&ids); /* the storage may have grown before the failure */
        return;
    }
    for (size_t i = 0; i < ids.n; i++)
        if (ids.ids[i] < 0 || ids.ids[i] >= loom_tok_n_vocab(t)) abort();
    unsigned dflags = flags & LOOM_TOK_PARSE_SPECIAL ? LOOM_TOK_DECODE_SPECIAL : 0;
    char    *out = NULL;
    size_t   out_len = 0;
    if (loom_tok_decode(t, ids.ids, ids.n, dflags, &out, &out_len, &err) != LOOM_OK) abort();
    if (out[out_len] != 0) abort();
    /* round trip: compare past BOS, whose text decode emits as loom_tok_piece says */
    const char *body = out;
    size_t      body_len = out_len;
    if (flags & LOOM_TOK_ADD_BOS) {
        size_t bl = 0;
        loom_tok_piece(t, loom_tok_bos(t), dflags, &bl);
        body += bl, body_len -= bl;
    }
    if (body_len != len || memcmp(body, text, len)) abort();

    loom_tok_stream *s = NULL;
    if (loom_tok_stream_new(&s, t, dflags, &err) != LOOM_OK) abort();
    char  *acc = loom_malloc(out_len + 1);
    size_t n = 0;
    for (size_t i = 0; i < ids.n; i++) {
        const char *p;
        size_t      pl;
        if (loom_tok_stream_push(s, ids.ids[i], &p, &pl, &err) != LOOM_OK || n + pl > out_len) abort();
        memcpy(acc + n, p, pl), n += pl;
    }
    const char *p;
    size_t      pl;
    loom_tok_stream_flush(s, &p, &pl);
    if (n + pl != out_len) abort();
    memcpy(acc + n, p, pl), n += pl;
    if (memcmp(acc, out, out_len)) abort();
    loom_free(acc);
    loom_tok_stream_free(s);
    loom_free(out);
    loom_tok_ids_release(&ids);
}

static void check_ids(const loom_tok *t, const uint8_t *d, size_t n) {
    size_t   k = n / 4 < 256 ? n / 4 : 256;
    int32_t  ids[256];
    loom_err err = {0};
    for (size_t i = 0; i < k; i++) {
        memcpy(&ids[i], d + 4 * i, 4);
        if (d[4 * i] & 1) ids[i] = (int32_t)((uint32_t)ids[i] % (uint32_t)(loom_tok_n_vocab(t) + 2)) - 1;
    }
    for (unsigned f = 0; f < 2; f++) {
        char  *out = NULL;
        size_t len = 0;
        if (loom_tok_decode(t, ids, k, f, &out, &len, &err) == LOOM_OK) {
            if (strlen(out) > len) abort();
            loom_free(out);
        }
        loom_tok_stream *s = NULL;
        if (loom_tok_stream_new(&s, t, f, &err) != LOOM_OK) abort();
        for (size_t i = 0; i < k; i++) {
            const char *p;
            size_t      pl;
            if (loom_tok_stream_push(s, ids[i], &p, &pl, &err) == LOOM_OK && pl) sink += (uint8_t)p[pl - 1];
            size_t plen = 0;
            const char *piece = loom_tok_piece(t, ids[i], f, &plen);
            if (piece && plen > loom_tok_max_piece(t)) abort();
            sink += loom_tok_is_eog(t, ids[i]) + loom_tok_is_special(t, ids[i]) + loom_tok_type_of(t, ids[i]);
        }
        const char *p;
        size_t      pl;
        loom_tok_stream_flush(s, &p, &pl);
        loom_tok_stream_free(s);
    }
    if (n) { /* len 0 would mean strlen */
        int32_t id = loom_tok_find(t, (const char *)d, n < 64 ? n : 64);
        if (id < -1 || id >= loom_tok_n_vocab(t)) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int once;
    if (!once) {
        loom_log_set_level(LOOM_LOG_NONE);
        once = 1;
    }
    if (size < 1) return 0;
    const uint8_t mode = data[0];
    data++, size--;
    loom_tok *own = NULL, *t;
    switch (mode & 3) {
    case 0: t = fuzz_small_vocab(); break;
    case 1: t = fuzz_real_vocab(); break;
    case 2: t = own = vocab_from_input(data, size); break;
    default: t = fuzz_small_vocab(); break;
    }
    if (!t) t = fuzz_small_vocab();
    char *text = malloc(size ? size : 1); /* exact-size copy: overreads are ASan reports */
    if (!text) return 0;
    memcpy(text, data, size);
    unsigned flags = (mode >> 2) & (LOOM_TOK_ADD_BOS | LOOM_TOK_PARSE_SPECIAL);
    if ((flags & LOOM_TOK_ADD_BOS) && loom_tok_bos(t) < 0) flags &= ~(unsigned)LOOM_TOK_ADD_BOS;
    check_text(t, text, size, flags);
    check_ids(t, data, size);
    free(text);
    loom_tok_free(own);
    return 0;
}
