/* tests/text/load_tok.h — the tokenizer of a GGUF under $LOOM_SHARED (metadata only), for the text tests. */
#ifndef LOOM_TESTS_TEXT_LOAD_TOK_H
#define LOOM_TESTS_TEXT_LOAD_TOK_H

#include <criterion/criterion.h>

#include "core/gguf.h"
#include "tests/testutil.h"
#include "text/text.h"

static loom_tok *load_tok(const char *rel) {
    char path[1024];
    LOOM_SHARED_PATH(path, rel);
    loom_err err = {0};
    loom_gguf *g = NULL;
    loom_gguf_params gp = {.metadata_only = true};
    cr_assert_eq(loom_gguf_open(&g, path, &gp, &err), LOOM_OK, "%s: %s", path, err.msg);
    loom_tok *t = NULL;
    cr_assert_eq(loom_tok_new_from_gguf(&t, g, &err), LOOM_OK, "%s: %s", path, err.msg);
    loom_gguf_close(g);
    return t;
}

#endif
