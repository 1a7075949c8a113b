/* text/tok_encode.c — text -> token ids, with Meta's Llama 4 (tiktoken) semantics.
 *
 * Pipeline for one loom_tok_encode call:
 *   1. Meta's chunking (llama_models Tokenizer.encode): 400,000-character chunks, each cut further wherever a
 *      run of whitespace or of non-whitespace characters exceeds 25,000. This bounds every regex piece and
 *      matches Meta's output on huge inputs exactly.
 *   2. With LOOM_TOK_PARSE_SPECIAL: special-token texts are matched as whole strings (longest first) and emitted
 *      as their ids; the text between them goes on.
 *   3. Pre-tokenization with Meta's o200k-style regex (below) through PCRE2 (UTF + UCP, JIT when available).
 *   4. Each piece: its id when the piece is one token (tiktoken's shortcut), otherwise byte-pair merging by
 *      merge rank: the adjacent pair with the lowest rank first, leftmost on ties. A binary heap with lazy
 *      deletion makes that O(n log n) per piece instead of tiktoken's O(n^2).
 *
 * The regex is Meta's pattern with `\s` spelled out as Unicode White_Space, which is what the Rust regex crate
 * (tiktoken) means by `\s`; PCRE2's own `\s` under UCP also takes U+180E (MONGOLIAN VOWEL SEPARATOR, no longer
 * White_Space since Unicode 6.3), so "!\u180E!" would split differently.
 * PCRE2 supports the `\s+(?!\S)` look-ahead natively, with the same backtracking semantics as fancy-regex.
 * Invalid UTF-8 is tolerated (PCRE2_MATCH_INVALID_UTF): bytes no alternative can match are BPE'd as their own
 * piece, so encode/decode still round-trips arbitrary bytes.
 */
#include <string.h>

#include "core/alloc.h"
#include "text/text_int.h"

#if LOOM_WITH_PCRE2
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#endif

/* ==== the pre-tokenizer regex ==== */

#define WS "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
#define CONTRACTIONS "(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
static const char tok_pattern[] =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+" CONTRACTIONS
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*" CONTRACTIONS
    "|\\p{N}{1,3}"
    "| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n/]*"
    "|[" WS "]*[\\r\\n]+"
    "|[" WS "]+(?![^" WS "])"
    "|[" WS "]+";

/* Meta's chunking constants (llama_models/llama4/tokenizer.py). */
#define META_MAX_ENCODE_CHARS  400000
#define META_MAX_RUN_CHARS     25000

#if LOOM_WITH_PCRE2
static void *re_malloc(size_t n, void *ud) {
    (void)ud;
    return loom_malloc(n ? n : 1);
}
static void re_free(void *p, void *ud) {
    (void)ud;
    loom_free(p);
}
#endif

loom_status tok_compile_regex(loom_tok *t, loom_err *err) {
#if LOOM_WITH_PCRE2
    pcre2_general_context *gctx = pcre2_general_context_create(re_malloc, re_free, NULL);
    pcre2_compile_context *cctx = gctx ? pcre2_compile_context_create(gctx) : NULL;
    if (!cctx) {
        pcre2_general_context_free(gctx);
        return LOOM_FAIL(err, LOOM_ERR_NOMEM, "tokenizer: out of memory (regex context)");
    }
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)tok_pattern, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &ec, &eo, cctx);
    pcre2_compile_context_free(cctx);
    if (!re) {
        PCRE2_UCHAR msg[128];
        pcre2_get_error_message(ec, msg, sizeof msg);
        pcre2_general_context_free(gctx);
        return LOOM_FAIL(err, ec == PCRE2_ERROR_HEAP_FAILED ? LOOM_ERR_NOMEM : LOOM_ERR_UNSUPPORTED,
                         "tokenizer: pre-tokenizer regex: %s at %zu", (char *)msg,
                         (size_t)eo);
    }
    t->re = re;
    t->gctx = gctx;
    t->re_jit = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0;
    return LOOM_OK;
#else
    (void)t;
    return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "tokenizer: loom was built without PCRE2");
#endif
}

void tok_free_regex(loom_tok *t) {
#if LOOM_WITH_PCRE2
    pcre2_code_free(t->re);
    pcre2_general_context_free(t->gctx);
#endif
    t->re = t->gctx = NULL;
}

/* ==== byte-pair merging ==== */

typedef struct bpe_sym {
    int32_t id;
    int32_t prev, next; /* -1 at the ends */
} bpe_sym;

typedef struct bpe_cand {
    int32_t rank;
    int32_t left, right; /* symbol indices */
    int32_t lid, rid;    /* their ids when queued: a stale candidate no longer matches */
} bpe_cand;

/* Per-call scratch, grown as pieces get longer. */
typedef struct enc_scratch {
    bpe_sym  *syms;
    bpe_cand *heap;
    size_t    cap; /* syms capacity; heap has 3 * cap */
#if LOOM_WITH_PCRE2
    pcre2_match_data *md;
#endif
} enc_scratch;

static int cand_less(const bpe_cand *a, const bpe_cand *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(bpe_cand *h, size_t *n, bpe_cand c) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(&c, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

static bpe_cand heap_pop(bpe_cand *h, size_t *n) {
    bpe_cand top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && cand_less(&h[c + 1], &h[c])) c++;
        if (!cand_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = last;
    return top;
}

static void try_pair(const loom_tok *t, bpe_sym *s, int32_t l, bpe_cand *h, size_t *hn) {
    int32_t r = s[l].next;
    if (r < 0) return;
    uint64_t key = (uint64_t)(uint32_t)s[l].id << 32 | (uint32_t)s[r].id;
    const tok_pairmap *m = &t->merges;
    for (uint32_t i = (uint32_t)((key * 0x9e3779b97f4a7c15ULL) >> 32) & m->mask;; i = (i + 1) & m->mask) {
        if (m->slots[i].key == key) {
            heap_push(h, hn, (bpe_cand){m->slots[i].rank, l, r, s[l].id, s[r].id});
            return;
        }
        if (m->slots[i].key == TOK_PAIR_EMPTY) return;
    }
}

static loom_status scratch_reserve(enc_scratch *sc, size_t n, loom_err *err) {
    if (n <= sc->cap) return LOOM_OK;
    size_t cap = sc->cap ? sc->cap : 256;
    while (cap < n) cap *= 2;
    bpe_sym *s = loom_realloc(sc->syms, cap * sizeof *s);
    if (s) sc->syms = s;
    bpe_cand *h = s ? loom_realloc(sc->heap, 3 * cap * sizeof *h) : NULL;
    if (!s || !h) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "tokenizer: out of memory (piece of %zu bytes)", n);
    sc->heap = h;
    sc->cap = cap;
    return LOOM_OK;
}

static loom_status bpe_piece(const loom_tok *t, const char *p, size_t n, enc_scratch *sc, loom_tok_ids *out,
                             loom_err *err) {
    int32_t whole = tok_strmap_get(t, &t->normal, p, n);
    if (whole >= 0) return loom_tok_ids_push(out, whole, err);
    if (n > INT32_MAX) return LOOM_FAIL(err, LOOM_ERR_LIMIT, "tokenizer: piece of %zu bytes", n);
    loom_status st = scratch_reserve(sc, n, err);
    if (st) return st;
    bpe_sym *s = sc->syms;
    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_tok[(uint8_t)p[i]];
        if (id < 0)
            return LOOM_FAIL(err, LOOM_ERR_INVALID, "tokenizer: byte 0x%02x has no token in this vocabulary",
                             (uint8_t)p[i]);
        s[i] = (bpe_sym){id, (int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1};
    }
    size_t hn = 0;
    for (size_t i = 0; i + 1 < n; i++) try_pair(t, s, (int32_t)i, sc->heap, &hn);
    while (hn) {
        bpe_cand c = heap_pop(sc->heap, &hn);
        bpe_sym *l = &s[c.left], *r = &s[c.right];
        /* Symbols only grow, so a candidate whose ids or adjacency changed since it was queued is stale. */
        if (l->id < 0 || l->next != c.right || l->id != c.lid || r->id != c.rid) continue;
        uint64_t key = (uint64_t)(uint32_t)c.lid << 32 | (uint32_t)c.rid;
        const tok_pairmap *m = &t->merges;
        uint32_t i = (uint32_t)((key * 0x9e3779b97f4a7c15ULL) >> 32) & m->mask;
        while (m->slots[i].key != key) i = (i + 1) & m->mask;
        l->id = m->slots[i].result;
        l->next = r->next;
        if (r->next >= 0) s[r->next].prev = c.left;
        r->id = -1;
        if (l->prev >= 0) try_pair(t, s, l->prev, sc->heap, &hn);
        try_pair(t, s, c.left, sc->heap, &hn);
    }
    for (int32_t i = 0; i >= 0; i = s[i].next)
        if ((st = loom_tok_ids_push(out, s[i].id, err))) return st;
    return LOOM_OK;
}

/* ==== pre-tokenization ==== */

/* Runs the pre-tokenizer regex over text[0..len) and hands every piece to fn, in order. */
typedef loom_status (*piece_fn)(const loom_tok *t, const char *p, size_t n, enc_scratch *sc, void *ud, loom_err *err);

static loom_status for_each_piece(const loom_tok *t, const char *text, size_t len, enc_scratch *sc, piece_fn fn,
                                  void *ud, loom_err *err) {
#if LOOM_WITH_PCRE2
    const pcre2_code *re = t->re;
    size_t off = 0;
    loom_status st;
    while (off < len) {
        int rc = pcre2_match(re, (PCRE2_SPTR)text, len, off, 0, sc->md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT) rc = pcre2_match(re, (PCRE2_SPTR)text, len, off, PCRE2_NO_JIT, sc->md, NULL);
        size_t s, e;
        if (rc == PCRE2_ERROR_NOMATCH) {
            s = e = len;
        } else if (rc < 0) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return LOOM_FAIL(err, rc == PCRE2_ERROR_NOMEMORY ? LOOM_ERR_NOMEM : LOOM_ERR_LIMIT,
                             "tokenizer: pre-tokenizer regex at byte %zu: %s", off, (char *)msg);
        } else {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(sc->md);
            s = ov[0];
            e = ov[1];
            if (e <= s) e = s + 1; /* no alternative matches empty; never loop on one */
        }
        /* Bytes no alternative matched (invalid UTF-8) become a piece of their own. */
        if (s > off && (st = fn(t, text + off, s - off, sc, ud, err))) return st;
        if (s < len && (st = fn(t, text + s, e - s, sc, ud, err))) return st;
        off = e;
    }
    return LOOM_OK;
#else
    (void)t, (void)text, (void)len, (void)sc, (void)fn, (void)ud;
    return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "tokenizer: loom was built without PCRE2");
#endif
}

static loom_status bpe_piece_fn(const loom_tok *t, const char *p, size_t n, enc_scratch *sc, void *ud, loom_err *err) {
    return bpe_piece(t, p, n, sc, ud, err);
}

static loom_status encode_plain(const loom_tok *t, const char *text, size_t len, enc_scratch *sc, loom_tok_ids *out,
                                loom_err *err) {
    return for_each_piece(t, text, len, sc, bpe_piece_fn, out, err);
}

/* Splits at special-token texts (longest match at each position) when asked, BPE-encoding the text between. */
static loom_status encode_chunk(const loom_tok *t, const char *text, size_t len, unsigned flags, enc_scratch *sc,
                                loom_tok_ids *out, loom_err *err) {
    if (!(flags & LOOM_TOK_PARSE_SPECIAL) || t->n_special_lens == 0) return encode_plain(t, text, len, sc, out, err);
    size_t start = 0, i = 0;
    loom_status st;
    while (i < len) {
        int32_t id = -1;
        uint32_t l = 0;
        if (t->special_first[(uint8_t)text[i]]) {
            for (int32_t k = 0; k < t->n_special_lens && id < 0; k++) {
                l = t->special_lens[k];
                if (l <= len - i) id = tok_strmap_get(t, &t->special, text + i, l);
            }
        }
        if (id < 0) {
            i++;
            continue;
        }
        if (i > start && (st = encode_plain(t, text + start, i - start, sc, out, err))) return st;
        if ((st = loom_tok_ids_push(out, id, err))) return st;
        i += l;
        start = i;
    }
    return start < len ? encode_plain(t, text + start, len - start, sc, out, err) : LOOM_OK;
}

/* Python's str.isspace() (Meta's chunking uses it): bidi WS/B/S or category Zs. */
static int py_isspace(uint32_t c) {
    return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

loom_status loom_tok_encode(const loom_tok *t, const char *text, size_t len, unsigned flags, loom_tok_ids *out,
                            loom_err *err) {
    if (!t || !out || (!text && len)) return LOOM_FAIL(err, LOOM_ERR_INVALID, "loom_tok_encode: NULL argument");
    if (len > LOOM_TOK_MAX_TEXT)
        return LOOM_FAIL(err, LOOM_ERR_LIMIT, "tokenizer: text of %zu bytes (limit %zu)", len, LOOM_TOK_MAX_TEXT);
    size_t n0 = out->n;
    loom_status st = LOOM_OK;
    if (flags & LOOM_TOK_ADD_BOS) {
        if (t->bos < 0) return LOOM_FAIL(err, LOOM_ERR_INVALID, "tokenizer: this vocabulary has no BOS token");
        if ((st = loom_tok_ids_push(out, t->bos, err))) return st;
    }
    if (!len) return LOOM_OK;

    enc_scratch sc = {0};
#if LOOM_WITH_PCRE2
    sc.md = pcre2_match_data_create(1, t->gctx);
    if (!sc.md) {
        out->n = n0;
        return LOOM_FAIL(err, LOOM_ERR_NOMEM, "tokenizer: out of memory (match data)");
    }
#endif
    /* Meta's chunking: a new slice at every 400,000th character, and inside one wherever a run of
     * whitespace / non-whitespace would exceed 25,000 characters. Invalid bytes count as one character. */
    const uint8_t *s = (const uint8_t *)text;
    size_t slice = 0, chunk_chars = 0, run = 0, i = 0;
    int run_space = 0;
    while (i < len && !st) {
        uint32_t cp = 0xfffd;
        int l = tok_utf8_next(s + i, len - i, &cp);
        if (!l) l = 1;
        int sp = py_isspace(cp);
        if (chunk_chars == META_MAX_ENCODE_CHARS) {
            st = encode_chunk(t, text + slice, i - slice, flags, &sc, out, err);
            slice = i;
            chunk_chars = 0;
        }
        if (chunk_chars == 0) {
            run_space = sp;
            run = 1;
        } else if (sp != run_space) {
            run_space = sp;
            run = 1;
        } else if (++run > META_MAX_RUN_CHARS) {
            if (!st) st = encode_chunk(t, text + slice, i - slice, flags, &sc, out, err);
            slice = i;
            run = 1;
        }
        chunk_chars++;
        i += (size_t)l;
    }
    if (!st && slice < len) st = encode_chunk(t, text + slice, len - slice, flags, &sc, out, err);

#if LOOM_WITH_PCRE2
    pcre2_match_data_free(sc.md);
#endif
    loom_free(sc.syms);
    loom_free(sc.heap);
    if (st) out->n = n0;
    return st;
}

/* ==== white-box: the pre-tokenizer alone ==== */

typedef struct split_ctx {
    void (*fn)(void *ud, const char *piece, size_t n);
    void *ud;
} split_ctx;

static loom_status split_fn(const loom_tok *t, const char *p, size_t n, enc_scratch *sc, void *ud, loom_err *err) {
    (void)t, (void)sc, (void)err;
    split_ctx *c = ud;
    c->fn(c->ud, p, n);
    return LOOM_OK;
}

loom_status tok_pretokenize(const loom_tok *t, const char *text, size_t len,
                            void (*fn)(void *ud, const char *piece, size_t n), void *ud, loom_err *err) {
    enc_scratch sc = {0};
#if LOOM_WITH_PCRE2
    sc.md = pcre2_match_data_create(1, t->gctx);
    if (!sc.md) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "tokenizer: out of memory (match data)");
#endif
    split_ctx c = {fn, ud};
    loom_status st = for_each_piece(t, text, len, &sc, split_fn, &c, err);
#if LOOM_WITH_PCRE2
    pcre2_match_data_free(sc.md);
#endif
    return st;
}
