/* tests/text/test_chat.c — the Llama 4 chat template and image token runs against Meta's prompt ids
 * ($LOOM_SHARED/testdata/llama4-tiny: chat/prompt_ids.i32 and manifest.json image_token_ids). */
#include <jansson.h>
#include <string.h>

#include "core/gguf.h"
#include "tests/testutil.h"
#include "tests/text/load_tok.h"
#include "text/text.h"

typedef struct grid {
    int h, w;
} grid;

typedef struct expand_ctx {
    size_t          calls;
    const loom_tok *t;
} expand_ctx;

/* what fusion/ does: the item's image carries its tile grid */
static loom_status expand_image(void *user, size_t index, const loom_chat_item *item, loom_tok_ids *out,
                                loom_err *err) {
    expand_ctx *c = user;
    const grid *g = item->image;
    cr_assert_eq(index, c->calls);
    c->calls++;
    return loom_chat_image_tokens(c->t, g->h, g->w, 144, out, err);
}

Test(chat, reference_image_prompt_matches_meta) {
    loom_tok *t = load_tok("testdata/llama4-tiny/models/scout-like.gguf");
    char path[1024];
    LOOM_SHARED_PATH(path, "testdata/llama4-tiny/chat/prompt_ids.i32");
    size_t size = 0;
    int32_t *want = loom_test_read_file(path, &size);
    cr_assert_not_null(want);
    cr_assert_eq(size, 747 * 4);

    grid img3 = {2, 2};
    loom_chat_item items[] = {{LOOM_CHAT_IMAGE, NULL, 0, &img3}, {LOOM_CHAT_TEXT, "Describe this image.", 0, NULL}};
    loom_chat_msg msg = {"user", items, 2};
    expand_ctx ctx = {0, t};
    loom_tok_ids ids = {0};
    loom_err err = {0};
    cr_assert_eq(loom_chat_build(t, &msg, 1, NULL, expand_image, &ctx, &ids, &err), LOOM_OK, "%s", err.msg);
    cr_assert_eq(ctx.calls, 1);
    cr_assert_eq(ids.n, 747);
    for (size_t i = 0; i < 747; i++) cr_assert_eq(ids.ids[i], want[i], "position %zu: %d, want %d", i, ids.ids[i], want[i]);
    size_t n_patch = 0;
    for (size_t i = 0; i < ids.n; i++) n_patch += ids.ids[i] == loom_tok_find(t, "<|patch|>", 0);
    cr_assert_eq(n_patch, 720);
    loom_tok_ids_release(&ids);
    loom_free(want);
    loom_tok_free(t);
}

Test(chat, image_runs_match_manifest) {
    loom_tok *t = load_tok("testdata/llama4-tiny/models/scout-like.gguf");
    char path[1024];
    LOOM_SHARED_PATH(path, "testdata/llama4-tiny/manifest.json");
    json_error_t je;
    json_t *m = json_load_file(path, 0, &je);
    cr_assert_not_null(m, "%s", je.text);
    json_t *imgs = json_object_get(m, "images");
    cr_assert_eq(json_array_size(imgs), 5);
    for (size_t k = 0; k < 5; k++) {
        json_t *im = json_array_get(imgs, k);
        json_t *gr = json_object_get(im, "grid_h_w"), *ji = json_object_get(im, "image_token_ids");
        int h = (int)json_integer_value(json_array_get(gr, 0)), w = (int)json_integer_value(json_array_get(gr, 1));
        size_t nw = json_array_size(ji);
        cr_assert_eq(loom_chat_image_n_tokens(h, w, 144), nw);
        loom_tok_ids ids = {0};
        loom_err err = {0};
        cr_assert_eq(loom_chat_image_tokens(t, h, w, 144, &ids, &err), LOOM_OK, "%s", err.msg);
        cr_assert_eq(ids.n, nw);
        for (size_t i = 0; i < nw; i++)
            cr_assert_eq(ids.ids[i], (int32_t)json_integer_value(json_array_get(ji, i)), "image %zu pos %zu", k, i);
        loom_tok_ids_release(&ids);
    }
    json_decref(m);
    /* §2.5 counts: one tile 147; h x w: 1 + h*w*144 + h*(w-1) + h + 1 + 144 + 1 */
    cr_assert_eq(loom_chat_image_n_tokens(1, 1, 144), 147);
    cr_assert_eq(loom_chat_image_n_tokens(2, 2, 144), 727);
    cr_assert_eq(loom_chat_image_n_tokens(3, 4, 144), 1 + 12 * 144 + 9 + 3 + 1 + 144 + 1);
    cr_assert_eq(loom_chat_image_n_tokens(0, 2, 144), 0);
    cr_assert_eq(loom_chat_image_n_tokens(9, 9, 144), 0);
    loom_tok_ids ids = {0};
    loom_err err = {0};
    cr_assert_eq(loom_chat_image_tokens(t, 1, 0, 144, &ids, &err), LOOM_ERR_INVALID);
    cr_assert_eq(loom_chat_image_tokens(t, 1, 1, 0, &ids, &err), LOOM_ERR_INVALID);
    cr_assert_eq(ids.n, 0);
    loom_tok_free(t);
}

static void expect_text(const loom_tok *t, const loom_tok_ids *ids, const char *want) {
    char *s;
    size_t n;
    loom_err err = {0};
    cr_assert_eq(loom_tok_decode(t, ids->ids, ids->n, LOOM_TOK_DECODE_SPECIAL, &s, &n, &err), LOOM_OK);
    cr_assert_str_eq(s, want);
    loom_free(s);
}

Test(chat, conversation_layout_and_plain_user_text) {
    loom_tok *t = load_tok("testdata/tokenizer/llama4-vocab.gguf");
    loom_chat_item sys[] = {{LOOM_CHAT_TEXT, "  You are terse.\n", 0, NULL}};
    loom_chat_item u1[] = {{LOOM_CHAT_TEXT, "Say <|eot|> please", 0, NULL}};
    loom_chat_item a1[] = {{LOOM_CHAT_TEXT, "No.", 0, NULL}};
    loom_chat_item u2[] = {{LOOM_CHAT_IMAGE, NULL, 0, NULL}, {LOOM_CHAT_TEXT, "and", 0, NULL},
                           {LOOM_CHAT_IMAGE, NULL, 0, NULL}, {LOOM_CHAT_TEXT, "What differs?", 0, NULL}};
    loom_chat_msg msgs[] = {{"system", sys, 1}, {"user", u1, 1}, {"assistant", a1, 1}, {"user", u2, 4}};
    loom_tok_ids ids = {0};
    loom_err err = {0};
    cr_assert_eq(loom_chat_build(t, msgs, 4, NULL, NULL, NULL, &ids, &err), LOOM_OK, "%s", err.msg);
    expect_text(t, &ids,
                "<|begin_of_text|><|header_start|>system<|header_end|>\n\nYou are terse.<|eot|>"
                "<|header_start|>user<|header_end|>\n\nSay <|eot|> please<|eot|>"
                "<|header_start|>assistant<|header_end|>\n\nNo.<|eot|>"
                "<|header_start|>user<|header_end|>\n\n<|image|>and<|image|>What differs?<|eot|>"
                "<|header_start|>assistant<|header_end|>\n\n");
    /* exactly one BOS, and the typed <|eot|> is plain text: only the template's four <|eot|> are control */
    size_t n_bos = 0, n_eot = 0;
    for (size_t i = 0; i < ids.n; i++) n_bos += ids.ids[i] == 200000, n_eot += ids.ids[i] == 200008;
    cr_assert_eq(n_bos, 1);
    cr_assert_eq(n_eot, 4);

    /* parse_special on: the typed one becomes the control token; no generation prompt, no BOS */
    loom_chat_params p = loom_chat_default_params();
    p.parse_special = true;
    p.add_generation_prompt = false;
    p.add_bos = false;
    ids.n = 0;
    cr_assert_eq(loom_chat_build(t, msgs + 1, 1, &p, NULL, NULL, &ids, &err), LOOM_OK);
    n_eot = 0;
    for (size_t i = 0; i < ids.n; i++) n_eot += ids.ids[i] == 200008;
    cr_assert_eq(n_eot, 2);
    cr_assert_eq(ids.ids[0], 200005);
    cr_assert_eq(ids.ids[ids.n - 1], 200008);

    /* bad messages fail and leave out as it was */
    size_t before = ids.n;
    loom_chat_msg bad = {NULL, u1, 1};
    cr_assert_eq(loom_chat_build(t, &bad, 1, NULL, NULL, NULL, &ids, &err), LOOM_ERR_INVALID);
    loom_chat_item bad_item[] = {{(loom_chat_item_kind)7, "x", 0, NULL}};
    loom_chat_msg bad2 = {"user", bad_item, 1};
    cr_assert_eq(loom_chat_build(t, &bad2, 1, NULL, NULL, NULL, &ids, &err), LOOM_ERR_INVALID);
    cr_assert_eq(ids.n, before);
    loom_tok_ids_release(&ids);
    loom_tok_free(t);
}

static loom_status failing_image(void *user, size_t index, const loom_chat_item *item, loom_tok_ids *out,
                                 loom_err *err) {
    loom_tok_ids_push(out, 1, err);
    return LOOM_FAIL(err, LOOM_ERR_FORMAT, "image %zu is corrupt", index);
}

Test(chat, image_callback_failure_rolls_back) {
    loom_tok *t = load_tok("testdata/llama4-tiny/models/scout-like.gguf");
    loom_chat_item items[] = {{LOOM_CHAT_TEXT, "Hi", 0, NULL}, {LOOM_CHAT_IMAGE, NULL, 0, NULL}};
    loom_chat_msg msg = {"user", items, 2};
    loom_tok_ids ids = {0};
    loom_err err = {0};
    loom_tok_ids_push(&ids, 42, &err);
    cr_assert_eq(loom_chat_build(t, &msg, 1, NULL, failing_image, NULL, &ids, &err), LOOM_ERR_FORMAT);
    cr_assert_str_eq(err.msg, "image 0 is corrupt");
    cr_assert_eq(ids.n, 1);
    cr_assert_eq(ids.ids[0], 42);
    loom_tok_ids_release(&ids);
    loom_tok_free(t);
}

Test(chat, vocab_without_template_tokens_is_unsupported) {
    const char *toks[] = {"a", "b"};
    loom_tok_vocab v = {toks, NULL, 2, NULL, 0, -1, -1, -1, -1, -1};
    loom_tok *t;
    loom_err err = {0};
    cr_assert_eq(loom_tok_new(&t, &v, &err), LOOM_OK);
    loom_chat_item it = {LOOM_CHAT_TEXT, "ab", 0, NULL};
    loom_chat_msg msg = {"user", &it, 1};
    loom_tok_ids ids = {0};
    cr_assert_eq(loom_chat_build(t, &msg, 1, NULL, NULL, NULL, &ids, &err), LOOM_ERR_UNSUPPORTED);
    cr_assert(strstr(err.msg, "header_start"));
    cr_assert_eq(loom_chat_image_tokens(t, 1, 1, 144, &ids, &err), LOOM_ERR_UNSUPPORTED);
    loom_tok_ids_release(&ids);
    loom_tok_free(t);
}
