/* text/text_int.h — declarations private to text/ (tokenizer internals shared with chat.c and white-box tests).
 *
 * The tokenizer keeps every token's bytes in one buffer: for normal (and byte) tokens the bytes after undoing
 * GPT-2's byte-to-unicode map, for the other types the raw text as stored. Two open-addressing hash maps
 * index it: `normal` (decoded bytes -> id, what BPE produces) and `special` (raw text -> id, CONTROL and
 * USER_DEFINED, what PARSE_SPECIAL matches). Merges live in a third map keyed by the (left id, right id) pair.
 */
#ifndef LOOM_TEXT_TEXT_INT_H
#define LOOM_TEXT_TEXT_INT_H

#include <stdint.h>

#include "text/text.h"

/* String -> id map over the tokenizer's byte buffer. slots[] holds ids (-1 empty), capacity a power of two. */
typedef struct tok_strmap {
    int32_t *slots;
    uint32_t mask;
} tok_strmap;

/* (left, right) -> (rank, result) map for BPE merges. */
typedef struct tok_merge_slot {
    uint64_t key; /* (uint64_t)left << 32 | right; TOK_PAIR_EMPTY when free */
    int32_t  rank;
    int32_t  result;
} tok_merge_slot;
#define TOK_PAIR_EMPTY UINT64_MAX

typedef struct tok_pairmap {
    tok_merge_slot *slots;
    uint32_t        mask;
} tok_pairmap;

/* Ids of the tokens the Llama 4 chat template and image expansion emit, looked up by name (-1 when absent). */
typedef struct tok_chat_ids {
    int32_t header_start, header_end, eot, eom;
    int32_t image_start, image_end, image, patch, tile_x_sep, tile_y_sep;
} tok_chat_ids;

struct loom_tok {
    int32_t   n_vocab;
    uint8_t  *types; /* [n_vocab] loom_tok_type */
    uint32_t *off;   /* [n_vocab + 1] token i is bytes[off[i] .. off[i+1]) */
    char     *bytes;
    size_t    max_piece;

    tok_strmap  normal;
    tok_strmap  special;
    tok_pairmap merges;
    int32_t     byte_tok[256]; /* id of the one-byte token for each byte, -1 if the vocabulary lacks it */

    /* special-token matching: which bytes can start one, and the distinct lengths, longest first */
    uint8_t   special_first[256];
    uint32_t *special_lens;
    int32_t   n_special_lens;

    int32_t bos, eos, eot, eom, pad;
    tok_chat_ids chat;

    void *re;    /* pcre2_code_8 * (void so this header does not need pcre2.h) */
    void *gctx;  /* pcre2_general_context_8 * routing PCRE2's allocations through loom_malloc */
    int   re_jit; /* JIT compile succeeded */
};

uint64_t tok_hash_bytes(const char *s, size_t n);
int32_t  tok_strmap_get(const loom_tok *t, const tok_strmap *m, const char *s, size_t n);

/* GPT-2 byte-to-unicode map: the code point byte b is written as, and the inverse (-1 for unmapped points). */
uint32_t tok_byte_to_cp(uint8_t b);
int      tok_cp_to_byte(uint32_t cp);

/* Decodes one UTF-8 sequence at s[0..n); returns its length and sets *cp, or 0 for an invalid sequence. */
int tok_utf8_next(const uint8_t *s, size_t n, uint32_t *cp);

/* The pre-tokenizer pieces of text (no special-token matching, no chunking), for white-box tests. */
loom_status tok_pretokenize(const loom_tok *t, const char *text, size_t len,
                            void (*fn)(void *ud, const char *piece, size_t n), void *ud, loom_err *err);

#endif
