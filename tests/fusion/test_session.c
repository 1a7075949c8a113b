/* tests/fusion/test_session.c — the public session API: chat prompts with images, the per-session image cache,
 * several images per prompt, and errors. Reference: Meta's chat prompt for img3 (llama4-tiny/chat). */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "fusion/fusion.h"
#include "tests/testutil.h"

#define TINY "testdata/llama4-tiny/"

static loom_model *open_tiny(bool vision) {
    char model[512], mmproj[512];
    LOOM_SHARED_PATH(model, TINY "models/scout-like.gguf");
    LOOM_SHARED_PATH(mmproj, TINY "models/mmproj-tiny-llama4.gguf");
    loom_model *m = NULL;
    loom_err err = {0};
    cr_assert_eq(loom_model_open(&m, model, vision ? mmproj : NULL, NULL, &err), LOOM_OK, "%s", err.msg);
    return m;
}

Test(session, reference_prompt_and_image_cache) {
    char img[512], ref_ids[512], ref_embd[512];
    LOOM_SHARED_PATH(img, TINY "images/img3_480x640.png");
    LOOM_SHARED_PATH(ref_ids, TINY "chat/prompt_ids.i32");
    LOOM_SHARED_PATH(ref_embd, TINY "vision/img3_480x640.embd.f32");
    loom_model *m = open_tiny(true);
    loom_session *s;
    loom_err err = {0};
    loom_session_params sp = loom_session_default_params();
    sp.n_ctx = 1024;
    sp.n_threads = 2;
    cr_assert_eq(loom_session_new(&s, m, &sp, &err), LOOM_OK, "%s", err.msg);
    loom_item items[2] = {{.kind = LOOM_ITEM_IMAGE_FILE, .path = img}, {.kind = LOOM_ITEM_TEXT, .text = "Describe this image."}};
    loom_gen_params gp = loom_gen_default_params();
    gp.n_predict = 0;
    loom_gen_stats st;
    size_t n_ref = 0, n_embd = 0;
    int32_t *want = loom_test_read_file(ref_ids, &n_ref);
    float *embd_ref = loom_test_read_file(ref_embd, &n_embd);
    for (int round = 0; round < 2; round++) {
        cr_assert_eq(loom_session_set_chat(s, items, 2, NULL, &err), LOOM_OK, "%s", err.msg);
        size_t n;
        const int32_t *ids = loom_session_prompt_ids(s, &n);
        cr_assert_eq(n * 4, n_ref);
        cr_expect_eq(memcmp(ids, want, n_ref), 0, "round %d: prompt ids differ from Meta's", round);
        size_t rows;
        const float *e = loom_session_patch_embeddings(s, &rows);
        cr_assert_eq(rows, 720);
        float md = 0;
        for (size_t i = 0; i < rows * 128; i++) md = fmaxf(md, fabsf(e[i] - embd_ref[i]));
        cr_expect(md < 1e-5f, "round %d: embeddings max|Δ| %g", round, md);
        cr_assert_eq(loom_session_generate(s, &gp, NULL, NULL, &st, &err), LOOM_OK, "%s", err.msg);
        cr_expect_eq(st.n_prompt, 747);
        /* round 0 runs the ViT on 5 tiles; round 1 finds the image in the session cache */
        cr_expect_eq(st.n_tiles_encoded, round == 0 ? 5 : 0, "round %d: %d tiles encoded", round, st.n_tiles_encoded);
        cr_expect_eq(st.n_images_cached, round == 0 ? 0 : 1);
    }
    loom_free(want);
    loom_free(embd_ref);
    loom_session_free(s);
    loom_model_close(m);
}

Test(session, two_images_concatenate_without_separators) {
    char img1[512], img2[512];
    LOOM_SHARED_PATH(img1, TINY "images/img1_200x300.jpg");
    LOOM_SHARED_PATH(img2, TINY "images/img2_336x336_gray.png");
    loom_model *m = open_tiny(true);
    const loom_tok *tok = loom_model_tok(m);
    loom_session *s;
    loom_err err = {0};
    cr_assert_eq(loom_session_new(&s, m, NULL, &err), LOOM_OK);
    loom_item items[4] = {{.kind = LOOM_ITEM_IMAGE_FILE, .path = img1},
                          {.kind = LOOM_ITEM_TEXT, .text = "and"},
                          {.kind = LOOM_ITEM_IMAGE_FILE, .path = img2},
                          {.kind = LOOM_ITEM_TEXT, .text = "What differs?"}};
    cr_assert_eq(loom_session_set_chat(s, items, 4, NULL, &err), LOOM_OK, "%s", err.msg);
    size_t n;
    const int32_t *ids = loom_session_prompt_ids(s, &n);
    int32_t end = loom_tok_find(tok, "<|image_end|>", 0), start = loom_tok_find(tok, "<|image_start|>", 0);
    loom_tok_ids and_ids = {0};
    cr_assert_eq(loom_tok_encode(tok, "and", 3, 0, &and_ids, NULL), LOOM_OK);
    size_t first_end = 0;
    while (first_end < n && ids[first_end] != end) first_end++;
    cr_assert(first_end + 1 + and_ids.n < n);
    for (size_t k = 0; k < and_ids.n; k++) cr_expect_eq(ids[first_end + 1 + k], and_ids.ids[k]);
    cr_expect_eq(ids[first_end + 1 + and_ids.n], start, "the second image starts right after 'and'");
    size_t rows;
    loom_session_patch_embeddings(s, &rows);
    cr_expect_eq(rows, 288, "two single-tile images: 2 x 144 patch rows");
    /* BOS, the user header, image, "and", image, the question, <|eot|>, the assistant header */
    loom_tok_ids t = {0};
    size_t k0 = 0;
    const char *pieces[] = {"user", "\n\n", "What differs?", "assistant", "\n\n"};
    for (int i = 0; i < 5; i++) cr_assert_eq(loom_tok_encode(tok, pieces[i], strlen(pieces[i]), 0, &t, NULL), LOOM_OK);
    k0 = t.n;
    loom_tok_ids_release(&t);
    cr_expect_eq(n, 1 + 2 + 147 + and_ids.n + 147 + 1 + 2 + k0, "prompt length %zu", n);
    loom_tok_ids_release(&and_ids);
    loom_session_free(s);
    loom_model_close(m);
}

Test(session, errors) {
    loom_model *m = open_tiny(false);
    loom_session *s;
    loom_err err = {0};
    cr_assert_eq(loom_session_new(&s, m, NULL, &err), LOOM_OK);
    loom_item img = {.kind = LOOM_ITEM_IMAGE_FILE, .path = "/nonexistent.png"};
    cr_expect_eq(loom_session_set_chat(s, &img, 1, NULL, &err), LOOM_ERR_INVALID);
    cr_expect(strstr(err.msg, "--mmproj"), "%s", err.msg);
    int32_t patch = loom_tok_find(loom_model_tok(m), "<|patch|>", 0);
    cr_expect_eq(loom_session_set_ids(s, &patch, 1, &err), LOOM_ERR_INVALID);
    cr_expect_eq(loom_session_set_text(s, "<|patch|>", true, &err), LOOM_ERR_INVALID);
    loom_gen_params gp = loom_gen_default_params();
    cr_expect_eq(loom_session_generate(s, &gp, NULL, NULL, NULL, &err), LOOM_ERR_INVALID, "empty prompt");
    loom_session_params sp = loom_session_default_params();
    sp.max_tiles = 0;
    loom_session *bad;
    cr_expect_eq(loom_session_new(&bad, m, &sp, &err), LOOM_ERR_INVALID);
    loom_session_free(s);
    loom_model_close(m);
}

/* The whole image path — decode, tiles, our ViT, splice, backbone — against Meta's last-position logits and
 * greedy continuation for the reference chat prompt (img3 + "Describe this image."), on all three models. */
Test(session, image_chat_logits_match_meta_end_to_end) {
    static const char *models[] = {"scout-like-c16", "maverick-like-c16", "scout-like"};
    char img[512], mmproj[512];
    LOOM_SHARED_PATH(img, TINY "images/img3_480x640.png");
    LOOM_SHARED_PATH(mmproj, TINY "models/mmproj-tiny-llama4.gguf");
    for (int mi = 0; mi < 3; mi++) {
        char rel[256], model[512], ref[512];
        snprintf(rel, sizeof rel, TINY "models/%s.gguf", models[mi]);
        LOOM_SHARED_PATH(model, rel);
        snprintf(rel, sizeof rel, TINY "chat/%s.last_logits.f32", models[mi]);
        LOOM_SHARED_PATH(ref, rel);
        loom_model *m;
        loom_err err = {0};
        cr_assert_eq(loom_model_open(&m, model, mmproj, NULL, &err), LOOM_OK, "%s", err.msg);
        loom_session *s;
        loom_session_params sp = loom_session_default_params();
        sp.n_ctx = 1024;
        sp.n_threads = 2;
        cr_assert_eq(loom_session_new(&s, m, &sp, &err), LOOM_OK);
        loom_item items[2] = {{.kind = LOOM_ITEM_IMAGE_FILE, .path = img},
                              {.kind = LOOM_ITEM_TEXT, .text = "Describe this image."}};
        cr_assert_eq(loom_session_set_chat(s, items, 2, NULL, &err), LOOM_OK, "%s", err.msg);
        size_t n;
        loom_session_prompt_ids(s, &n);
        float *logits = loom_malloc(sizeof(float) * n * 2013);
        loom_gen_params gp = loom_gen_default_params();
        gp.n_predict = 0;
        gp.prompt_logits = logits;
        cr_assert_eq(loom_session_generate(s, &gp, NULL, NULL, NULL, &err), LOOM_OK, "%s", err.msg);
        size_t bytes = 0;
        float *want = loom_test_read_file(ref, &bytes);
        cr_assert_eq(bytes, 2013 * sizeof(float));
        const float *last = logits + (n - 1) * 2013;
        float max_ref = 0, max_d = 0;
        for (int v = 0; v < 2013; v++) {
            max_ref = fmaxf(max_ref, fabsf(want[v]));
            max_d = fmaxf(max_d, fabsf(last[v] - want[v]));
        }
        cr_log_info("%s: image chat last logits max|Δ| = %.3g (max|ref| %.3g)", models[mi], max_d, max_ref);
        cr_expect(max_d <= 1e-4f * max_ref, "%s: max|Δ| %g > 1e-4 * %g", models[mi], max_d, max_ref);
        loom_free(want);
        loom_free(logits);
        loom_session_free(s);
        loom_model_close(m);
    }
}
