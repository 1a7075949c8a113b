/* text/text.h — the text side of loom: tokenizer, Llama 4 chat template, samplers.
 *
 * Prefixes: loom_tok_ (byte-level BPE tokenizer as GGUF stores it), loom_chat_ (Llama 4 prompt format and
 * image token runs), loom_sampler_ (logits -> next token id). Depends on core/ only.
 *
 *   loom_tok *tok;
 *   if (loom_tok_new_from_gguf(&tok, g, &err)) ...;                 // g: an open loom_gguf (vocab keys only)
 *   loom_tok_ids ids = {0};
 *   loom_tok_encode(tok, text, strlen(text), LOOM_TOK_ADD_BOS, &ids, &err);
 *   ... ids.ids[0 .. ids.n) ...
 *   loom_tok_ids_release(&ids);
 *
 *   // chat prompt with one image whose token run fusion/ supplies (or loom_chat_image_tokens builds):
 *   loom_chat_item items[] = {{LOOM_CHAT_IMAGE, NULL, 0, img}, {LOOM_CHAT_TEXT, "Describe this image.", 0, NULL}};
 *   loom_chat_msg  msg     = {"user", items, 2};
 *   loom_chat_build(tok, &msg, 1, NULL, my_image_fn, my_ctx, &ids, &err);
 *
 *   loom_sampler *s; loom_sampler_params sp = loom_sampler_default_params(); sp.temperature = 0.7f; sp.seed = 42;
 *   loom_sampler_new(&s, &sp, &err);
 *   int32_t next = loom_sampler_sample(s, logits, n_vocab);        // logits: [n_vocab] f32, not modified
 *   loom_sampler_free(s);
 *
 * Thread safety: a loom_tok is immutable after loom_tok_new_*; encode/decode/find may run concurrently on one
 * tokenizer. A loom_sampler and a loom_tok_stream are single-threaded objects.
 */
#ifndef LOOM_TEXT_TEXT_H
#define LOOM_TEXT_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/gguf.h"

/* ==== token id vectors ==== */

/* A growable int32 vector; start from {0}. Functions that produce ids append to it (so a prompt can be built in
 * pieces). Free the storage with loom_tok_ids_release (the struct itself is the caller's). */
typedef struct loom_tok_ids {
    int32_t *ids; /* [n] token ids */
    size_t   n;
    size_t   cap;
} loom_tok_ids;

loom_status loom_tok_ids_push(loom_tok_ids *v, int32_t id, loom_err *err);
loom_status loom_tok_ids_append(loom_tok_ids *v, const int32_t *ids, size_t n, loom_err *err);
void        loom_tok_ids_release(loom_tok_ids *v); /* frees ids and zeroes *v */

/* ==== tokenizer ==== */

typedef struct loom_tok loom_tok;

/* GGUF token types (tokenizer.ggml.token_type). */
typedef enum loom_tok_type {
    LOOM_TOK_NORMAL = 1,       /* byte-level BPE token: its text is GPT-2 byte-to-unicode mapped bytes */
    LOOM_TOK_UNKNOWN = 2,      /* kept verbatim, never produced by encode */
    LOOM_TOK_CONTROL = 3,      /* special token (<|eot|> ...): raw text, matched only with PARSE_SPECIAL */
    LOOM_TOK_USER_DEFINED = 4, /* treated like CONTROL */
    LOOM_TOK_UNUSED = 5,       /* kept verbatim, never produced by encode */
    LOOM_TOK_BYTE = 6,         /* treated like NORMAL */
} loom_tok_type;

/* Vocabulary limits: anything larger in a file is LOOM_ERR_FORMAT. */
#define LOOM_TOK_MAX_VOCAB     (1 << 22)
#define LOOM_TOK_MAX_TOKEN_LEN 1024
/* Longest text loom_tok_encode accepts (LOOM_ERR_LIMIT beyond). */
#define LOOM_TOK_MAX_TEXT      ((size_t)1 << 30)

/* Builds a tokenizer from the tokenizer.ggml.* keys of g (tensors are not needed: a vocab-only file works).
 * Requires tokenizer.ggml.model = "gpt2" (LOOM_ERR_UNSUPPORTED otherwise) and validates the whole vocabulary:
 * token strings (mapped characters only for normal tokens, no duplicates, lengths), types, merges (both halves
 * and their concatenation must be tokens) and the special ids (bos/eos/eot/eom/pad must be in range):
 * LOOM_ERR_FORMAT naming the key and index on any inconsistency. The tokenizer copies what it needs: g may be
 * closed afterwards. Free with loom_tok_free. */
loom_status loom_tok_new_from_gguf(loom_tok **out, const loom_gguf *g, loom_err *err);

/* The same from plain arrays (tests, fuzzing, other containers). tokens[i] is NUL-terminated text as GGUF
 * stores it; types may be NULL (all NORMAL); merges are "left right" strings in rank order; special ids are -1
 * when absent. */
typedef struct loom_tok_vocab {
    const char *const *tokens;
    const int32_t     *types;
    int32_t            n_tokens;
    const char *const *merges;
    int32_t            n_merges;
    int32_t            bos, eos, eot, eom, pad;
} loom_tok_vocab;
loom_status loom_tok_new(loom_tok **out, const loom_tok_vocab *v, loom_err *err);

void loom_tok_free(loom_tok *t); /* NULL is a no-op */

int32_t loom_tok_n_vocab(const loom_tok *t);
/* Special ids from the file (-1 when absent). eom also falls back to the token named <|eom|>, eot to <|eot|>. */
int32_t loom_tok_bos(const loom_tok *t);
int32_t loom_tok_eos(const loom_tok *t);
int32_t loom_tok_eot(const loom_tok *t);
int32_t loom_tok_eom(const loom_tok *t);
int32_t loom_tok_pad(const loom_tok *t);
/* End of generation: eos, eot or eom. */
bool    loom_tok_is_eog(const loom_tok *t, int32_t id);
/* CONTROL or USER_DEFINED (false for out-of-range ids). */
bool    loom_tok_is_special(const loom_tok *t, int32_t id);
loom_tok_type loom_tok_type_of(const loom_tok *t, int32_t id); /* 0 for out-of-range ids */

/* Id of the token whose text is name[0..len) (len 0: strlen(name)), -1 when none. Special tokens are matched
 * on their raw text ("<|patch|>"), normal tokens on their decoded bytes (" the", "\n"). This is how the model
 * code finds <|image_start|>, <|patch|> etc.: their ids differ between vocabularies. */
int32_t loom_tok_find(const loom_tok *t, const char *name, size_t len);

/* Longest token in bytes (decoded); a buffer of this size holds any one piece. */
size_t  loom_tok_max_piece(const loom_tok *t);

enum {
    LOOM_TOK_ADD_BOS = 1 << 0,       /* prepend BOS (LOOM_ERR_INVALID when the vocabulary has none) */
    LOOM_TOK_PARSE_SPECIAL = 1 << 1, /* match special-token texts (longest first) before BPE; otherwise
                                        "<|eot|>" in the text is tokenized as plain characters */
};

/* Tokenizes text[0..len) (UTF-8; invalid bytes are tolerated and tokenized as bytes) and appends the ids to
 * out. Pre-tokenization is Meta's o200k-style regex (tiktoken semantics), then BPE by merge rank per piece,
 * O(n log n) per piece. LOOM_ERR_LIMIT when len > LOOM_TOK_MAX_TEXT; LOOM_ERR_INVALID when a byte has no token
 * in this vocabulary. On failure out keeps the ids it had before the call. */
loom_status loom_tok_encode(const loom_tok *t, const char *text, size_t len, unsigned flags, loom_tok_ids *out,
                            loom_err *err);

enum {
    LOOM_TOK_DECODE_SPECIAL = 1 << 0, /* emit the text of special/unknown/unused tokens (default: nothing) */
};

/* The bytes of one token (not NUL-terminated; may be a partial UTF-8 sequence), *len set; NULL for an
 * out-of-range id. Points into the tokenizer: valid until loom_tok_free. Specials give "" (len 0) unless
 * LOOM_TOK_DECODE_SPECIAL. */
const char *loom_tok_piece(const loom_tok *t, int32_t id, unsigned flags, size_t *len);

/* Decodes ids into a NUL-terminated string; *out is loom_malloc'd (free with loom_free), *out_len its length
 * without the NUL. LOOM_ERR_INVALID for an out-of-range id. */
loom_status loom_tok_decode(const loom_tok *t, const int32_t *ids, size_t n, unsigned flags, char **out,
                            size_t *out_len, loom_err *err);

/* Streaming decoder for generation: push one id at a time, get the bytes that are complete UTF-8. An
 * incomplete multi-byte sequence at the end of a piece is held back until the next push completes it;
 * bytes that can never form valid UTF-8 are passed through unchanged. */
typedef struct loom_tok_stream loom_tok_stream;
loom_status loom_tok_stream_new(loom_tok_stream **out, const loom_tok *t, unsigned decode_flags, loom_err *err);
void        loom_tok_stream_free(loom_tok_stream *s);
/* *text points into the stream (valid until the next push/flush), *len may be 0. LOOM_ERR_INVALID for an
 * out-of-range id (nothing consumed). */
loom_status loom_tok_stream_push(loom_tok_stream *s, int32_t id, const char **text, size_t *len, loom_err *err);
/* Returns whatever is held back (an unfinished sequence at end of generation) and resets the stream. */
void        loom_tok_stream_flush(loom_tok_stream *s, const char **text, size_t *len);

/* ==== chat template (Llama 4; LLAMA4.md §4.2, §4.3, §11) ==== */

typedef enum loom_chat_item_kind { LOOM_CHAT_TEXT = 0, LOOM_CHAT_IMAGE = 1 } loom_chat_item_kind;

typedef struct loom_chat_item {
    loom_chat_item_kind kind;
    const char         *text;  /* TEXT: UTF-8 */
    size_t              len;   /* TEXT: bytes; 0 means strlen(text) */
    const void         *image; /* IMAGE: opaque, handed to the image callback */
} loom_chat_item;

typedef struct loom_chat_msg {
    const char           *role; /* "system", "user", "assistant", "ipython" ("tool" is written as "ipython") */
    const loom_chat_item *items;
    size_t                n_items;
} loom_chat_msg;

typedef struct loom_chat_params {
    bool add_bos;               /* default true: exactly one BOS at the start */
    bool add_generation_prompt; /* default true: end with <|header_start|>assistant<|header_end|>\n\n */
    bool parse_special;         /* default false: message text is plain text, only the template emits control
                                   tokens (a user typing "<|eot|>" gets ordinary tokens) */
} loom_chat_params;
loom_chat_params loom_chat_default_params(void);

/* Appends the token run of the image item `item` (the image_index-th image of the conversation, from 0) to out.
 * fusion/ uses it to splice the image's expansion (§4.3) at the right place. */
typedef loom_status (*loom_chat_image_fn)(void *user, size_t image_index, const loom_chat_item *item,
                                          loom_tok_ids *out, loom_err *err);

/* Builds the prompt ids of a conversation and appends them to out:
 *   [BOS] { <|header_start|>ROLE<|header_end|>\n\n CONTENT <|eot|> } [<|header_start|>assistant<|header_end|>\n\n]
 * Each text item is tokenized on its own (Meta's ChatFormat), items are concatenated with nothing between them,
 * system text is trimmed. Image items call image_fn; with image_fn NULL they become the bare <|image|>
 * placeholder. params NULL means defaults. LOOM_ERR_UNSUPPORTED when the vocabulary lacks a template token;
 * LOOM_ERR_INVALID for a bad message (NULL role/text). On failure out keeps its previous ids. */
loom_status loom_chat_build(const loom_tok *t, const loom_chat_msg *msgs, size_t n_msgs, const loom_chat_params *params,
                            loom_chat_image_fn image_fn, void *user, loom_tok_ids *out, loom_err *err);

/* Appends one image's token run (§4.3) for a grid of grid_h x grid_w tiles with n_patch <|patch|> tokens per
 * tile (144 for Llama 4): 1x1 -> <|image_start|><|image|> n_patch x <|patch|> <|image_end|>; otherwise the tiles
 * row-major with <|tile_x_separator|> between tiles of a row, <|tile_y_separator|> after every row, then
 * <|image|> + the thumbnail's n_patch patches, <|image_end|>. Ids are looked up by name in t.
 * LOOM_ERR_INVALID for grids outside 1..LOOM_CHAT_MAX_TILES tiles or n_patch outside 1..4096. */
#define LOOM_CHAT_MAX_TILES 64
loom_status loom_chat_image_tokens(const loom_tok *t, int grid_h, int grid_w, int n_patch, loom_tok_ids *out,
                                   loom_err *err);
/* Number of tokens loom_chat_image_tokens appends (0 for invalid arguments). */
size_t      loom_chat_image_n_tokens(int grid_h, int grid_w, int n_patch);

/* ==== samplers ==== */

typedef struct loom_sampler loom_sampler;

/* Applied in llama.cpp's order: repetition penalty -> top-k -> top-p -> min-p -> temperature -> draw.
 * top-p and min-p see the probabilities before temperature (as llama.cpp's default chain does). */
typedef struct loom_sampler_params {
    float    temperature;    /* <= 0: greedy (argmax after the penalty) */
    int32_t  top_k;          /* <= 0: off; 1 is argmax whatever the temperature */
    float    top_p;          /* >= 1: off; keep the smallest prefix whose probability reaches top_p */
    float    min_p;          /* <= 0: off; keep tokens with p >= min_p * p_max */
    float    repeat_penalty; /* 1: off; over the last repeat_last_n ids: logit > 0 ? logit / pen : logit * pen */
    int32_t  repeat_last_n;  /* history window (0: off) */
    uint64_t seed;           /* the RNG (xoshiro256**) is seeded from it: same seed, same draws */
} loom_sampler_params;

/* temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, repeat_penalty 1 (off), repeat_last_n 64, seed 0. */
loom_sampler_params loom_sampler_default_params(void);

/* LOOM_ERR_INVALID for NaN parameters, a penalty <= 0, or a window over 1<<20. Free with loom_sampler_free. */
loom_status loom_sampler_new(loom_sampler **out, const loom_sampler_params *p, loom_err *err);
void        loom_sampler_free(loom_sampler *s);

/* Picks the next id from logits [n_vocab] f32 (not modified; NaN counts as -inf) and adds it to the history.
 * Returns -1 when n_vocab <= 0, logits is NULL, no logit is finite, or memory runs out. */
int32_t     loom_sampler_sample(loom_sampler *s, const float *logits, int32_t n_vocab);
/* Adds ids to the repetition history without sampling (e.g. the prompt). */
void        loom_sampler_accept(loom_sampler *s, int32_t id);
/* Clears the history and reseeds the RNG with the original seed. */
void        loom_sampler_reset(loom_sampler *s);
/* The candidates sample would draw from (after the penalty, top-k, top-p, min-p, temperature), best first:
 * writes up to cap ids and probabilities (normalised over the kept set) and returns how many are kept
 * (which may exceed cap); -1 as loom_sampler_sample. Greedy: the argmax with probability 1. Draws nothing and
 * leaves the history alone. */
int32_t     loom_sampler_candidates(loom_sampler *s, const float *logits, int32_t n_vocab, int32_t *ids, float *probs,
                                    int32_t cap);

#endif
