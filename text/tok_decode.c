/* text/tok_decode.c — token ids -> bytes, whole or streamed.
 *
 * A normal token's piece is its decoded bytes, which may end in the middle of a UTF-8 sequence (byte-level BPE
 * splits characters freely: "🦙" is two tokens). The streaming decoder holds such a tail back until the next
 * token completes it, so a caller printing each chunk never prints half a character. Special, unknown and
 * unused tokens decode to nothing unless LOOM_TOK_DECODE_SPECIAL asks for their text.
 */
#include <string.h>

#include "core/alloc.h"
#include "text/text_int.h"

const char *loom_tok_piece(const loom_tok *t, int32_t id, unsigned flags, size_t *len) {
    if (!t || id < 0 || id >= t->n_vocab) {
        if (len) *len = 0;
        return NULL;
    }
    int ty = t->types[id];
    size_t n = t->off[id + 1] - t->off[id];
    if (ty != LOOM_TOK_NORMAL && ty != LOOM_TOK_BYTE && !(flags & LOOM_TOK_DECODE_SPECIAL)) n = 0;
    if (len) *len = n;
    return t->bytes + t->off[id];
}

loom_status loom_tok_decode(const loom_tok *t, const int32_t *ids, size_t n, unsigned flags, char **out,
                            size_t *out_len, loom_err *err) {
    if (!t || !out || (!ids && n)) return LOOM_FAIL(err, LOOM_ERR_INVALID, "loom_tok_decode: NULL argument");
    *out = NULL;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l;
        if (!loom_tok_piece(t, ids[i], flags, &l))
            return LOOM_FAIL(err, LOOM_ERR_INVALID, "decode: id %d at %zu is outside the vocabulary (%d)", ids[i], i,
                             t->n_vocab);
        total += l; /* each piece <= LOOM_TOK_MAX_TOKEN_LEN: no overflow before memory runs out */
    }
    char *buf = loom_malloc(total + 1);
    if (!buf) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "decode: out of memory (%zu bytes)", total + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l;
        const char *p = loom_tok_piece(t, ids[i], flags, &l);
        memcpy(buf + o, p, l);
        o += l;
    }
    buf[o] = 0;
    *out = buf;
    if (out_len) *out_len = o;
    return LOOM_OK;
}

/* ==== streaming ==== */

struct loom_tok_stream {
    const loom_tok *t;
    unsigned        flags;
    size_t          n;   /* bytes in buf: held-back tail, then (during a push) the new piece */
    size_t          out; /* bytes of buf handed out by the last call, dropped at the next one */
    char           *buf; /* max_piece + 4 */
};

loom_status loom_tok_stream_new(loom_tok_stream **out, const loom_tok *t, unsigned decode_flags, loom_err *err) {
    if (!out || !t) return LOOM_FAIL(err, LOOM_ERR_INVALID, "loom_tok_stream_new: NULL argument");
    loom_tok_stream *s = loom_calloc(1, sizeof *s);
    if (s) s->buf = loom_malloc(t->max_piece + 8);
    if (!s || !s->buf) {
        loom_free(s);
        return LOOM_FAIL(err, LOOM_ERR_NOMEM, "token stream: out of memory");
    }
    s->t = t;
    s->flags = decode_flags;
    *out = s;
    return LOOM_OK;
}

void loom_tok_stream_free(loom_tok_stream *s) {
    if (!s) return;
    loom_free(s->buf);
    loom_free(s);
}

/* Length of the prefix of b[0..n) that can be emitted: everything except a trailing sequence that is still a
 * valid beginning of a multi-byte character (lead byte, then fewer continuation bytes than it needs, each in
 * the range UTF-8 allows at that place). */
static size_t complete_prefix(const uint8_t *b, size_t n) {
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        size_t i = n - back;
        uint8_t c = b[i];
        if ((c & 0xc0) == 0x80) continue; /* continuation: look further back for the lead */
        size_t need = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        if (need <= back) return n; /* ASCII, invalid lead, or a sequence already complete */
        if (back >= 2) {             /* the second byte's range depends on the lead */
            uint8_t c1 = b[i + 1];
            uint8_t lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
            uint8_t hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
            if (c1 < lo || c1 > hi) return n;
        }
        return i;
    }
    return n;
}

loom_status loom_tok_stream_push(loom_tok_stream *s, int32_t id, const char **text, size_t *len, loom_err *err) {
    size_t l;
    const char *p = loom_tok_piece(s->t, id, s->flags, &l);
    if (!p) {
        *text = s->buf;
        *len = 0;
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "token stream: id %d is outside the vocabulary (%d)", id,
                         s->t->n_vocab);
    }
    /* drop what the previous call handed out; the held-back tail (<= 3 bytes) moves to the front */
    memmove(s->buf, s->buf + s->out, s->n - s->out);
    s->n -= s->out;
    memcpy(s->buf + s->n, p, l);
    s->n += l;
    s->out = complete_prefix((const uint8_t *)s->buf, s->n);
    *text = s->buf;
    *len = s->out;
    return LOOM_OK;
}

void loom_tok_stream_flush(loom_tok_stream *s, const char **text, size_t *len) {
    /* everything not yet handed out */
    *text = s->buf + s->out;
    *len = s->n - s->out;
    s->n = 0;
    s->out = 0;
}
