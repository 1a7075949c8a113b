/* tests/fuzz/fuzz_vocab.h — vocabularies for the text fuzz targets: a small byte-level BPE vocabulary built
 * with loom_tok_new (all 256 byte tokens, a few merges, the Llama 4 template tokens) and, when
 * $LOOM_SHARED/testdata/tokenizer/llama4-vocab.gguf exists, the real Llama 4 vocabulary. Both are built once
 * per process and never freed (libFuzzer runs the target in one process). */
#ifndef LOOM_TESTS_FUZZ_VOCAB_H
#define LOOM_TESTS_FUZZ_VOCAB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/gguf.h"
#include "text/text.h"

/* GPT-2's byte-to-unicode map as UTF-8 text: printable bytes stand for themselves, the rest are shifted to
 * U+0100.. in byte order. */
static void fuzz_byte_text(int b, char out[4]) {
    int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174, cp = b;
    if (!printable) {
        int k = 0;
        for (int x = 0; x < b; x++) k += !((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174);
        cp = 256 + k;
    }
    if (cp < 0x80) out[0] = (char)cp, out[1] = 0;
    else out[0] = (char)(0xC0 | cp >> 6), out[1] = (char)(0x80 | (cp & 0x3F)), out[2] = 0;
}

static const char *const fuzz_specials[] = {
    "<|begin_of_text|>", "<|end_of_text|>", "<|header_start|>", "<|header_end|>",      "<|eot|>",
    "<|eom|>",           "<|image_start|>", "<|image_end|>",    "<|image|>",           "<|patch|>",
    "<|tile_x_separator|>", "<|tile_y_separator|>", "<|python_start|>",
};
/* merges over the mapped texts: "Ġ" is the space byte */
static const char *const fuzz_merges[] = {"t h", "th e", "Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "o n", "Ġ s",
                                          "a n", "an d", "Ġ and", "Ċ Ċ", "u s", "us er", "Ġ Ġ", "ĠĠ ĠĠ"};

static loom_tok *fuzz_small_vocab(void) {
    static loom_tok *tok;
    if (tok) return tok;
    enum { N_MERGE = sizeof fuzz_merges / sizeof *fuzz_merges, N_SPEC = sizeof fuzz_specials / sizeof *fuzz_specials };
    static char        text[256 + N_MERGE][64];
    static const char *tokens[256 + N_MERGE + N_SPEC];
    static int32_t     types[256 + N_MERGE + N_SPEC];
    int                n = 0;
    for (int b = 0; b < 256; b++, n++) {
        fuzz_byte_text(b, text[n]);
        tokens[n] = text[n];
        types[n] = LOOM_TOK_NORMAL;
    }
    for (int m = 0; m < N_MERGE; m++, n++) { /* the merged token is the pair without its space */
        const char *sp = strchr(fuzz_merges[m], ' ');
        snprintf(text[n], sizeof text[n], "%.*s%s", (int)(sp - fuzz_merges[m]), fuzz_merges[m], sp + 1);
        tokens[n] = text[n];
        types[n] = LOOM_TOK_NORMAL;
    }
    for (int s = 0; s < N_SPEC; s++, n++) {
        tokens[n] = fuzz_specials[s];
        types[n] = LOOM_TOK_CONTROL;
    }
    loom_tok_vocab v = {.tokens = tokens, .types = types, .n_tokens = n, .merges = fuzz_merges,
                        .n_merges = N_MERGE, .bos = 256 + N_MERGE, .eos = 256 + N_MERGE + 1,
                        .eot = 256 + N_MERGE + 4, .eom = -1, .pad = -1};
    loom_err err = {0};
    if (loom_tok_new(&tok, &v, &err) != LOOM_OK) {
        fprintf(stderr, "fuzz: small vocabulary: %s\n", err.msg);
        abort();
    }
    return tok;
}

/* NULL when the shared test data is absent */
static loom_tok *fuzz_real_vocab(void) {
    static loom_tok *tok;
    static int       tried;
    if (tried) return tok;
    tried = 1;
    const char *shared = getenv("LOOM_SHARED");
    char        path[4096];
    snprintf(path, sizeof path, "%s/testdata/tokenizer/llama4-vocab.gguf", shared ? shared : "../shared");
    loom_gguf       *g = NULL;
    loom_gguf_params gp = {.metadata_only = true};
    loom_err         err = {0};
    if (loom_gguf_open(&g, path, &gp, &err) != LOOM_OK) return NULL;
    if (loom_tok_new_from_gguf(&tok, g, &err) != LOOM_OK) {
        fprintf(stderr, "fuzz: %s: %s\n", path, err.msg);
        abort();
    }
    loom_gguf_close(g);
    return tok;
}

#endif
