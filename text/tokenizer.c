/* text/tokenizer.c — building and validating the byte-level BPE vocabulary (GGUF "gpt2" tokenizer model).
 *
 * GGUF keys read (llama.cpp's converter writes them):
 *
 *   | key                              | type          | use                                                  |
 *   |----------------------------------|---------------|------------------------------------------------------|
 *   | tokenizer.ggml.model             | string        | must be "gpt2" (byte-level BPE)                      |
 *   | tokenizer.ggml.tokens            | string[n]     | token text; normal tokens in GPT-2 byte->unicode map |
 *   | tokenizer.ggml.token_type        | int32[n]      | loom_tok_type; absent: all normal                    |
 *   | tokenizer.ggml.merges            | string[m]     | "left right" in rank order (rank = index)            |
 *   | tokenizer.ggml.{bos,eos,eot,eom,padding}_token_id | u32 | optional special ids                       |
 *
 * Everything read from the file is validated before use: a hostile vocabulary (unmapped characters, duplicate
 * tokens, merges naming unknown tokens, ids out of range, absurd sizes) is LOOM_ERR_FORMAT, never a crash.
 * The tokenizer copies what it keeps, so the GGUF may be closed after loom_tok_new_from_gguf.
 *
 * Encoding lives in tok_encode.c, decoding in tok_decode.c.
 */
#include <string.h>

#include "core/alloc.h"
#include "text/text_int.h"

#if LOOM_WITH_PCRE2
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#endif

/* ==== GPT-2 byte <-> unicode map ==== */

/* Printable Latin-1 bytes stand for themselves; the other 68 bytes (controls, space, 0x7f-0xa0, 0xad) are
 * moved to U+0100.. in byte order, so every token is printable text. */
static int byte_is_self(unsigned b) {
    return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
}

uint32_t tok_byte_to_cp(uint8_t b) {
    if (byte_is_self(b)) return b;
    uint32_t n = 0;
    for (unsigned i = 0; i < b; i++) n += !byte_is_self(i);
    return 256 + n;
}

int tok_cp_to_byte(uint32_t cp) {
    static int16_t inv[256 + 68];
    static int     ready;
    if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
        /* idempotent: concurrent first calls write the same values */
        int16_t tmp[256 + 68];
        for (int i = 0; i < 256 + 68; i++) tmp[i] = -1;
        for (int b = 0; b < 256; b++) tmp[tok_byte_to_cp((uint8_t)b)] = (int16_t)b;
        memcpy(inv, tmp, sizeof inv);
        __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    }
    return cp < 256 + 68 ? inv[cp] : -1;
}

int tok_utf8_next(const uint8_t *s, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    uint8_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len;
    uint32_t v, min;
    if (c >= 0xc2 && c <= 0xdf) len = 2, v = c & 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef) len = 3, v = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4) len = 4, v = c & 0x07, min = 0x10000;
    else return 0;
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
    *cp = v;
    return len;
}

/* Undoes the byte->unicode map: text[0..n) -> out (at most n bytes). Returns the decoded length or -1 when a
 * character is not one of the 256 mapped code points (or the text is not UTF-8). */
static long gpt2_decode(const char *text, size_t n, char *out) {
    const uint8_t *s = (const uint8_t *)text;
    size_t i = 0, o = 0;
    while (i < n) {
        uint32_t cp;
        int l = tok_utf8_next(s + i, n - i, &cp);
        if (!l) return -1;
        int b = tok_cp_to_byte(cp);
        if (b < 0) return -1;
        out[o++] = (char)b;
        i += (size_t)l;
    }
    return (long)o;
}

/* ==== hash maps ==== */

/* FNV-1a then a murmur finaliser: tokens are short, so a byte loop is as fast as anything fancier. */
uint64_t tok_hash_bytes(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static uint32_t table_size_for(size_t n) {
    uint32_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    return cap;
}

static loom_status strmap_init(tok_strmap *m, size_t n, loom_err *err) {
    uint32_t cap = table_size_for(n);
    m->slots = loom_malloc((size_t)cap * sizeof *m->slots);
    if (!m->slots) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "tokenizer: out of memory for the token map");
    memset(m->slots, 0xff, (size_t)cap * sizeof *m->slots);
    m->mask = cap - 1;
    return LOOM_OK;
}

int32_t tok_strmap_get(const loom_tok *t, const tok_strmap *m, const char *s, size_t n) {
    if (!m->slots) return -1;
    uint32_t i = (uint32_t)tok_hash_bytes(s, n) & m->mask;
    for (;;) {
        int32_t id = m->slots[i];
        if (id < 0) return -1;
        size_t l = t->off[id + 1] - t->off[id];
        if (l == n && !memcmp(t->bytes + t->off[id], s, n)) return id;
        i = (i + 1) & m->mask;
    }
}

/* Inserts id (whose bytes are already in t->bytes); returns the id already there with the same bytes, or -1. */
static int32_t strmap_put(const loom_tok *t, tok_strmap *m, int32_t id) {
    const char *s = t->bytes + t->off[id];
    size_t n = t->off[id + 1] - t->off[id];
    uint32_t i = (uint32_t)tok_hash_bytes(s, n) & m->mask;
    for (;;) {
        int32_t o = m->slots[i];
        if (o < 0) {
            m->slots[i] = id;
            return -1;
        }
        size_t l = t->off[o + 1] - t->off[o];
        if (l == n && !memcmp(t->bytes + t->off[o], s, n)) return o;
        i = (i + 1) & m->mask;
    }
}

static uint32_t pair_slot(const tok_pairmap *m, uint64_t key) {
    return (uint32_t)((key * 0x9e3779b97f4a7c15ULL) >> 32) & m->mask;
}

/* Keeps the first (lowest) rank when a pair repeats, as llama.cpp does. */
static void pairmap_put(tok_pairmap *m, int32_t l, int32_t r, int32_t rank, int32_t result) {
    uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    for (uint32_t i = pair_slot(m, key);; i = (i + 1) & m->mask) {
        if (m->slots[i].key == key) return;
        if (m->slots[i].key == TOK_PAIR_EMPTY) {
            m->slots[i] = (tok_merge_slot){key, rank, result};
            return;
        }
    }
}

/* ==== building ==== */

/* The vocabulary as a builder sees it, whatever container it came from. */
typedef struct vocab_src {
    int32_t n_tokens, n_merges;
    int32_t bos, eos, eot, eom, pad;
    const void *ctx;
    const char *(*token)(const void *ctx, int32_t i, size_t *len);
    int32_t (*type)(const void *ctx, int32_t i); /* NULL: all normal */
    const char *(*merge)(const void *ctx, int32_t i, size_t *len);
} vocab_src;

static void tok_init_chat_ids(loom_tok *t) {
#define FIND(f, s) t->chat.f = loom_tok_find(t, s, sizeof(s) - 1)
    FIND(header_start, "<|header_start|>");
    FIND(header_end, "<|header_end|>");
    FIND(eot, "<|eot|>");
    FIND(eom, "<|eom|>");
    FIND(image_start, "<|image_start|>");
    FIND(image_end, "<|image_end|>");
    FIND(image, "<|image|>");
    FIND(patch, "<|patch|>");
    FIND(tile_x_sep, "<|tile_x_separator|>");
    FIND(tile_y_sep, "<|tile_y_separator|>");
#undef FIND
}

loom_status tok_compile_regex(loom_tok *t, loom_err *err); /* tok_encode.c */
void        tok_free_regex(loom_tok *t);

static int is_special_type(int ty) { return ty == LOOM_TOK_CONTROL || ty == LOOM_TOK_USER_DEFINED; }
static int is_bpe_type(int ty) { return ty == LOOM_TOK_NORMAL || ty == LOOM_TOK_BYTE; }

static loom_status build(loom_tok **out, const vocab_src *v, loom_err *err) {
    *out = NULL;
    if (v->n_tokens <= 0 || v->n_tokens > LOOM_TOK_MAX_VOCAB)
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "tokenizer: %d tokens (expected 1..%d)", v->n_tokens,
                         LOOM_TOK_MAX_VOCAB);
    if (v->n_merges < 0 || v->n_merges > LOOM_TOK_MAX_VOCAB)
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "tokenizer: %d merges (expected 0..%d)", v->n_merges,
                         LOOM_TOK_MAX_VOCAB);
    const int32_t n = v->n_tokens;
    loom_status st = LOOM_OK;
    loom_tok *t = loom_calloc(1, sizeof *t);
    if (!t) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "tokenizer: out of memory");
    t->n_vocab = n;

    /* Pass 1: types and the total byte size (decoded text is never longer than the stored text). */
    size_t total = 0;
    t->types = loom_malloc((size_t)n);
    t->off = loom_malloc(((size_t)n + 1) * sizeof *t->off);
    if (!t->types || !t->off) goto nomem;
    for (int32_t i = 0; i < n; i++) {
        int32_t ty = v->type ? v->type(v->ctx, i) : LOOM_TOK_NORMAL;
        if (ty < LOOM_TOK_NORMAL || ty > LOOM_TOK_BYTE) {
            st = LOOM_FAIL(err, LOOM_ERR_FORMAT, "tokenizer.ggml.token_type[%d] = %d is not a token type (1..6)", i, ty);
            goto fail;
        }
        t->types[i] = (uint8_t)ty;
        size_t len;
        const char *s = v->token(v->ctx, i, &len);
        if (!s || len > 4 * (size_t)LOOM_TOK_MAX_TOKEN_LEN) {
            st = LOOM_FAIL(err, LOOM_ERR_FORMAT, "tokenizer.ggml.tokens[%d]: missing or longer than %d bytes", i,
                           4 * LOOM_TOK_MAX_TOKEN_LEN);
            goto fail;
        }
        total += len;
    }
    if (total > UINT32_MAX) {
        st = LOOM_FAIL(err, LOOM_ERR_FORMAT, "tokenizer.ggml.tokens: %zu bytes of token text (limit 4 GiB)", total);
        goto fail;
    }
    t->bytes = loom_malloc(total ? total : 1);
    if (!t->bytes) goto nomem;

    /* Pass 2: decode normal tokens, copy the others verbatim. */
    uint32_t o = 0;
    size_t n_special = 0;
    for (int32_t i = 0; i < n; i++) {
        size_t len;
        const char *s = v->token(v->ctx, i, &len);
        t->off[i] = o;
        long dl;
        if (is_bpe_type(t->types[i])) {
            dl = gpt2_decode(s, len, t->bytes + o);
            if (dl < 0) {
                st = LOOM_FAIL(err, LOOM_ERR_FORMAT,
                               "tokenizer.ggml.tokens[%d]: character outside the GPT-2 byte-to-unicode map", i);
                goto fail;
            }
            if (dl == 0) {
                st = LOOM_FAIL(err, LOOM_ERR_FORMAT, "tokenizer.ggml.tokens[%d]: empty normal token", i);
                goto fail;
            }
        } else {
            if (is_special_type(t->types[i])) {
                if (len == 0) {
                    st = LOOM_FAIL(err, LOOM_ERR_FORMAT, "tokenizer.ggml.tokens[%d]: empty special token", i);
                    goto fail;
                }
                n_special++;
            }
            memcpy(t->bytes + o, s, len);
            dl = (long)len;
        }
        if (dl > LOOM_TOK_MAX_TOKEN_LEN) {
            st = LOOM_FAIL(err, LOOM_ERR_FORMAT, "tokenizer.ggml.tokens[%d]: %ld bytes (limit %d)", i, dl,
                           LOOM_TOK_MAX_TOKEN_LEN);
            goto fail;
        }
        if ((size_t)dl > t->max_piece) t->max_piece = (size_t)dl;
        o += (uint32_t)dl;
    }
    t->off[n] = o;

    /* Maps; a repeated token would make ids ambiguous, so it is a format error. */
    if ((st = strmap_init(&t->normal, (size_t)n, err)) || (st = strmap_init(&t->special, n_special, err))) goto fail;
    for (int i = 0; i < 256; i++) t->byte_tok[i] = -1;
    for (int32_t i = 0; i < n; i++) {
        int ty = t->types[i];
        tok_strmap *m = is_bpe_type(ty) ? &t->normal : is_special_type(ty) ? &t->special : NULL;
        if (!m) continue;
        int32_t dup = strmap_put(t, m, i);
        if (dup >= 0) {
            st = LOOM_FAIL(err, LOOM_ERR_FORMAT, "tokenizer.ggml.tokens[%d] duplicates token %d", i, dup);
            goto fail;
        }
        if (m == &t->normal && t->off[i + 1] - t->off[i] == 1) t->byte_tok[(uint8_t)t->bytes[t->off[i]]] = i;
    }

    /* Special-token matching tables: first bytes and distinct lengths, longest first. */
    t->special_lens = loom_malloc((n_special ? n_special : 1) * sizeof *t->special_lens);
    if (!t->special_lens) goto nomem;
    for (int32_t i = 0; i < n; i++) {
        if (!is_special_type(t->types[i])) continue;
        uint32_t l = t->off[i + 1] - t->off[i];
        t->special_first[(uint8_t)t->bytes[t->off[i]]] = 1;
        int32_t k = 0;
        while (k < t->n_special_lens && t->special_lens[k] > l) k++;
        if (k < t->n_special_lens && t->special_lens[k] == l) continue;
        memmove(t->special_lens + k + 1, t->special_lens + k, (size_t)(t->n_special_lens - k) * sizeof(uint32_t));
        t->special_lens[k] = l;
        t->n_special_lens++;
    }

    /* Merges: "left right", both halves and their concatenation must be normal tokens. */
    {
        uint32_t cap = table_size_for((size_t)v->n_merges);
        t->merges.slots = loom_malloc((size_t)cap * sizeof *t->merges.slots);
        if (!t->merges.slots) goto nomem;
        memset(t->merges.slots, 0xff, (size_t)cap * sizeof *t->merges.slots);
        t->merges.mask = cap - 1;
        char buf[2 * LOOM_TOK_MAX_TOKEN_LEN * 4];
        for (int32_t r = 0; r < v->n_merges; r++) {
            size_t len;
            const char *s = v->merge(v->ctx, r, &len);
            const char *sp = s ? memchr(s, ' ', len) : NULL;
            if (!sp || sp == s || sp == s + len - 1 || memchr(sp + 1, ' ', len - (size_t)(sp + 1 - s)) ||
                len > sizeof buf) {
                st = LOOM_FAIL(err, LOOM_ERR_FORMAT, "tokenizer.ggml.merges[%d]: not of the form \"left right\"", r);
                goto fail;
            }
            size_t ll = (size_t)(sp - s);
            long a = gpt2_decode(s, ll, buf);
            long b = a < 0 ? -1 : gpt2_decode(sp + 1, len - ll - 1, buf + a);
            if (b < 0) {
                st = LOOM_FAIL(err, LOOM_ERR_FORMAT,
                               "tokenizer.ggml.merges[%d]: character outside the GPT-2 byte-to-unicode map", r);
                goto fail;
            }
            int32_t li = tok_strmap_get(t, &t->normal, buf, (size_t)a);
            int32_t ri = tok_strmap_get(t, &t->normal, buf + a, (size_t)b);
            int32_t res = tok_strmap_get(t, &t->normal, buf, (size_t)(a + b));
            if (li < 0 || ri < 0 || res < 0) {
                st = LOOM_FAIL(err, LOOM_ERR_FORMAT, "tokenizer.ggml.merges[%d]: %s is not a token", r,
                               li < 0 ? "left half" : ri < 0 ? "right half" : "the merged pair");
                goto fail;
            }
            pairmap_put(&t->merges, li, ri, r, res);
        }
    }

    /* Special ids. */
    {
        struct {
            int32_t id, *dst;
            const char *name;
        } sp[] = {{v->bos, &t->bos, "bos"}, {v->eos, &t->eos, "eos"}, {v->eot, &t->eot, "eot"},
                  {v->eom, &t->eom, "eom"}, {v->pad, &t->pad, "padding"}};
        for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++) {
            if (sp[i].id < -1 || sp[i].id >= n) {
                st = LOOM_FAIL(err, LOOM_ERR_FORMAT, "tokenizer.ggml.%s_token_id = %d is outside the vocabulary (%d)",
                               sp[i].name, sp[i].id, n);
                goto fail;
            }
            *sp[i].dst = sp[i].id;
        }
    }
    tok_init_chat_ids(t);
    /* llama.cpp's converter does not write eom (and eot only sometimes): fall back to the names. */
    if (t->eot < 0) t->eot = t->chat.eot;
    if (t->eom < 0) t->eom = t->chat.eom;

    if ((st = tok_compile_regex(t, err))) goto fail;
    *out = t;
    return LOOM_OK;

nomem:
    st = LOOM_FAIL(err, LOOM_ERR_NOMEM, "tokenizer: out of memory (%d tokens)", n);
fail:
    loom_tok_free(t);
    return st;
}

void loom_tok_free(loom_tok *t) {
    if (!t) return;
    tok_free_regex(t);
    loom_free(t->types);
    loom_free(t->off);
    loom_free(t->bytes);
    loom_free(t->normal.slots);
    loom_free(t->special.slots);
    loom_free(t->merges.slots);
    loom_free(t->special_lens);
    loom_free(t);
}

/* ==== sources: plain arrays ==== */

static const char *arr_token(const void *ctx, int32_t i, size_t *len) {
    const char *s = ((const loom_tok_vocab *)ctx)->tokens[i];
    *len = s ? strlen(s) : 0;
    return s;
}
static int32_t arr_type(const void *ctx, int32_t i) { return ((const loom_tok_vocab *)ctx)->types[i]; }
static const char *arr_merge(const void *ctx, int32_t i, size_t *len) {
    const char *s = ((const loom_tok_vocab *)ctx)->merges[i];
    *len = s ? strlen(s) : 0;
    return s;
}

loom_status loom_tok_new(loom_tok **out, const loom_tok_vocab *v, loom_err *err) {
    if (!out || !v || !v->tokens || (v->n_merges > 0 && !v->merges))
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "loom_tok_new: NULL argument");
    vocab_src src = {v->n_tokens, v->n_merges, v->bos, v->eos, v->eot, v->eom, v->pad,
                     v, arr_token, v->types ? arr_type : NULL, arr_merge};
    return build(out, &src, err);
}

/* ==== sources: GGUF ==== */

typedef struct gguf_src {
    const loom_gguf *g;
    int64_t          k_tokens, k_types, k_merges;
    const uint8_t   *types; /* raw little-endian int32 */
} gguf_src;

static const char *gguf_token(const void *ctx, int32_t i, size_t *len) {
    const gguf_src *s = ctx;
    loom_gguf_str str = loom_gguf_arr_str(s->g, s->k_tokens, (uint64_t)i);
    *len = (size_t)str.len;
    return str.ptr;
}
static int32_t gguf_type(const void *ctx, int32_t i) {
    const gguf_src *s = ctx;
    int32_t v;
    memcpy(&v, s->types + 4 * (size_t)i, 4);
    return v;
}
static const char *gguf_merge(const void *ctx, int32_t i, size_t *len) {
    const gguf_src *s = ctx;
    loom_gguf_str str = loom_gguf_arr_str(s->g, s->k_merges, (uint64_t)i);
    *len = (size_t)str.len;
    return str.ptr;
}

static loom_status gguf_id(const loom_gguf *g, const char *key, int32_t *out, loom_err *err) {
    *out = -1;
    int64_t k = loom_gguf_find_key(g, key);
    if (k < 0) return LOOM_OK;
    uint64_t v;
    if (!loom_gguf_kv_u64(g, k, &v) || v > INT32_MAX)
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "%s: not a token id", key);
    *out = (int32_t)v;
    return LOOM_OK;
}

loom_status loom_tok_new_from_gguf(loom_tok **out, const loom_gguf *g, loom_err *err) {
    if (!out || !g) return LOOM_FAIL(err, LOOM_ERR_INVALID, "loom_tok_new_from_gguf: NULL argument");
    *out = NULL;
    loom_gguf_str model;
    int64_t k = loom_gguf_find_key(g, "tokenizer.ggml.model");
    if (k < 0) return LOOM_FAIL(err, LOOM_ERR_FORMAT, "tokenizer.ggml.model: missing (no tokenizer in this file)");
    if (!loom_gguf_kv_str(g, k, &model)) return LOOM_FAIL(err, LOOM_ERR_FORMAT, "tokenizer.ggml.model: not a string");
    if (model.len != 4 || memcmp(model.ptr, "gpt2", 4))
        return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "tokenizer.ggml.model = \"%.*s\": only \"gpt2\" (byte-level BPE) "
                         "is supported", (int)(model.len > 32 ? 32 : model.len), model.ptr);

    gguf_src s = {g, loom_gguf_find_key(g, "tokenizer.ggml.tokens"), loom_gguf_find_key(g, "tokenizer.ggml.token_type"),
                  loom_gguf_find_key(g, "tokenizer.ggml.merges"), NULL};
    if (s.k_tokens < 0 || loom_gguf_kv_type(g, s.k_tokens) != LOOM_GGUF_ARRAY ||
        loom_gguf_arr_type(g, s.k_tokens) != LOOM_GGUF_STRING)
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "tokenizer.ggml.tokens: missing or not a string array");
    uint64_t n = loom_gguf_arr_len(g, s.k_tokens);
    if (n == 0 || n > LOOM_TOK_MAX_VOCAB)
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "tokenizer.ggml.tokens: %llu tokens (expected 1..%d)",
                         (unsigned long long)n, LOOM_TOK_MAX_VOCAB);
    if (s.k_types >= 0) {
        if (loom_gguf_kv_type(g, s.k_types) != LOOM_GGUF_ARRAY || loom_gguf_arr_type(g, s.k_types) != LOOM_GGUF_I32 ||
            loom_gguf_arr_len(g, s.k_types) != n)
            return LOOM_FAIL(err, LOOM_ERR_FORMAT, "tokenizer.ggml.token_type: not an int32 array of %llu entries",
                             (unsigned long long)n);
        s.types = loom_gguf_arr_data(g, s.k_types);
        if (!s.types) return LOOM_FAIL(err, LOOM_ERR_FORMAT, "tokenizer.ggml.token_type: unreadable");
    }
    uint64_t m = 0;
    if (s.k_merges >= 0) {
        if (loom_gguf_kv_type(g, s.k_merges) != LOOM_GGUF_ARRAY || loom_gguf_arr_type(g, s.k_merges) != LOOM_GGUF_STRING)
            return LOOM_FAIL(err, LOOM_ERR_FORMAT, "tokenizer.ggml.merges: not a string array");
        m = loom_gguf_arr_len(g, s.k_merges);
        if (m > LOOM_TOK_MAX_VOCAB)
            return LOOM_FAIL(err, LOOM_ERR_FORMAT, "tokenizer.ggml.merges: %llu merges (limit %d)",
                             (unsigned long long)m, LOOM_TOK_MAX_VOCAB);
    }
    vocab_src src = {(int32_t)n, (int32_t)m, -1, -1, -1, -1, -1, &s, gguf_token, s.types ? gguf_type : NULL, gguf_merge};
    loom_status st;
    if ((st = gguf_id(g, "tokenizer.ggml.bos_token_id", &src.bos, err)) ||
        (st = gguf_id(g, "tokenizer.ggml.eos_token_id", &src.eos, err)) ||
        (st = gguf_id(g, "tokenizer.ggml.eot_token_id", &src.eot, err)) ||
        (st = gguf_id(g, "tokenizer.ggml.eom_token_id", &src.eom, err)) ||
        (st = gguf_id(g, "tokenizer.ggml.padding_token_id", &src.pad, err)))
        return st;
    return build(out, &src, err);
}

/* ==== queries ==== */

int32_t loom_tok_n_vocab(const loom_tok *t) { return t->n_vocab; }
int32_t loom_tok_bos(const loom_tok *t) { return t->bos; }
int32_t loom_tok_eos(const loom_tok *t) { return t->eos; }
int32_t loom_tok_eot(const loom_tok *t) { return t->eot; }
int32_t loom_tok_eom(const loom_tok *t) { return t->eom; }
int32_t loom_tok_pad(const loom_tok *t) { return t->pad; }
size_t  loom_tok_max_piece(const loom_tok *t) { return t->max_piece; }

bool loom_tok_is_eog(const loom_tok *t, int32_t id) {
    return id >= 0 && (id == t->eos || id == t->eot || id == t->eom);
}

loom_tok_type loom_tok_type_of(const loom_tok *t, int32_t id) {
    return id >= 0 && id < t->n_vocab ? (loom_tok_type)t->types[id] : (loom_tok_type)0;
}

bool loom_tok_is_special(const loom_tok *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && is_special_type(t->types[id]);
}

int32_t loom_tok_find(const loom_tok *t, const char *name, size_t len) {
    if (!t || !name) return -1;
    if (!len) len = strlen(name);
    int32_t id = tok_strmap_get(t, &t->special, name, len);
    return id >= 0 ? id : tok_strmap_get(t, &t->normal, name, len);
}

/* ==== id vectors ==== */

static loom_status ids_reserve(loom_tok_ids *v, size_t extra, loom_err *err) {
    size_t need;
    if (!loom_size_add(v->n, extra, &need) || need > (SIZE_MAX / 2) / sizeof(int32_t))
        return LOOM_FAIL(err, LOOM_ERR_NOMEM, "token vector: size overflow");
    if (need <= v->cap) return LOOM_OK;
    size_t cap = v->cap ? v->cap : 64;
    while (cap < need) cap *= 2;
    int32_t *p = loom_realloc(v->ids, cap * sizeof *p);
    if (!p) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "token vector: out of memory (%zu ids)", cap);
    v->ids = p;
    v->cap = cap;
    return LOOM_OK;
}

loom_status loom_tok_ids_push(loom_tok_ids *v, int32_t id, loom_err *err) {
    loom_status st = ids_reserve(v, 1, err);
    if (st) return st;
    v->ids[v->n++] = id;
    return LOOM_OK;
}

loom_status loom_tok_ids_append(loom_tok_ids *v, const int32_t *ids, size_t n, loom_err *err) {
    if (!n) return LOOM_OK;
    loom_status st = ids_reserve(v, n, err);
    if (st) return st;
    memcpy(v->ids + v->n, ids, n * sizeof *ids);
    v->n += n;
    return LOOM_OK;
}

void loom_tok_ids_release(loom_tok_ids *v) {
    if (!v) return;
    loom_free(v->ids);
    *v = (loom_tok_ids){0};
}
