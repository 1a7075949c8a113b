/* tests/fusion/test_lm.c — the backbone against Meta's reference logits (../shared/testdata/llama4-tiny).
 *
 * For every tiny model and prompt: logits at every prompt position within max|Δ| <= 1e-4 · max|ref| (f32),
 * and the 16-token greedy continuation through the KV cache identical to the reference (which recomputes
 * with the chunked mask at every step, as loom's decode does). The image chat prompt is fed with Meta's own
 * projected image embeddings spliced at the <|patch|> positions, so the fusion splice is checked without the ViT.
 */
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "fusion/lm.h"
#include "tests/testutil.h"

static const char *models[] = {"scout-like-c16", "maverick-like-c16", "scout-like"};
static const char *prompt_names[] = {"p0", "p1", "p2", "p3"};

static json_t *load_manifest(void) {
    char path[512];
    LOOM_SHARED_PATH(path, "testdata/llama4-tiny/manifest.json");
    json_error_t je;
    json_t *m = json_load_file(path, 0, &je);
    cr_assert_not_null(m, "manifest: %s", je.text);
    return m;
}

static int32_t *json_ids(json_t *arr, size_t *n) {
    *n = json_array_size(arr);
    int32_t *ids = loom_malloc(*n * sizeof(int32_t));
    for (size_t i = 0; i < *n; i++) ids[i] = (int32_t)json_integer_value(json_array_get(arr, i));
    return ids;
}

static loom_lm *open_model(const char *name) {
    char rel[256], path[512];
    snprintf(rel, sizeof rel, "testdata/llama4-tiny/models/%s.gguf", name);
    LOOM_SHARED_PATH(path, rel);
    loom_lm *lm = NULL;
    loom_err err = {0};
    loom_status st = loom_lm_open(&lm, path, NULL, &err);
    cr_assert_eq(st, LOOM_OK, "%s: %s", name, err.msg);
    return lm;
}

static void compare_logits(const float *got, const float *ref, size_t rows, size_t V, const char *what) {
    float max_ref = 0, max_diff = 0;
    size_t worst = 0;
    for (size_t i = 0; i < rows * V; i++) {
        max_ref = fmaxf(max_ref, fabsf(ref[i]));
        float dlt = fabsf(got[i] - ref[i]);
        if (dlt > max_diff) {
            max_diff = dlt;
            worst = i;
        }
    }
    cr_log_info("%s: max|Δ| = %.3g, max|ref| = %.3g, ratio %.3g", what, max_diff, max_ref, max_diff / max_ref);
    cr_expect(max_diff <= 1e-4f * max_ref, "%s: max|Δ| %g > 1e-4 * %g (row %zu, token %zu)", what, max_diff, max_ref,
              worst / V, worst % V);
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* Greedy decode through the KV cache: prefill, then one position per step, in a context of at least n_ctx. */
static void greedy_ctx(loom_lm *lm, const float *prompt_x, size_t n, int32_t *out, int steps, int64_t n_ctx) {
    const loom_lm_hparams *hp = loom_lm_get_hparams(lm);
    loom_lm_session *s;
    loom_err err = {0};
    if (n_ctx < (int64_t)n + steps + 1) n_ctx = (int64_t)n + steps + 1;
    cr_assert_eq(loom_lm_session_new(&s, lm, n_ctx, 2, &err), LOOM_OK, "%s", err.msg);
    float *logits = loom_malloc(sizeof(float) * hp->n_vocab), *x = loom_malloc(sizeof(float) * hp->d_model);
    cr_assert_eq(loom_lm_eval(s, prompt_x, (int64_t)n, logits, LOOM_LOGITS_LAST, &err), LOOM_OK, "%s", err.msg);
    for (int k = 0; k < steps; k++) {
        out[k] = argmax(logits, hp->n_vocab);
        cr_assert_eq(loom_lm_embed(lm, x, &out[k], 1, &err), LOOM_OK);
        cr_assert_eq(loom_lm_eval(s, x, 1, logits, LOOM_LOGITS_LAST, &err), LOOM_OK, "%s", err.msg);
    }
    loom_free(logits);
    loom_free(x);
    loom_lm_session_free(s);
}
static void greedy(loom_lm *lm, const float *prompt_x, size_t n, int32_t *out, int steps) {
    greedy_ctx(lm, prompt_x, n, out, steps, 0);
}

Test(lm, prompt_logits_and_greedy_match_meta) {
    json_t *man = load_manifest();
    for (size_t mi = 0; mi < 3; mi++) {
        loom_lm *lm = open_model(models[mi]);
        const loom_lm_hparams *hp = loom_lm_get_hparams(lm);
        cr_assert_eq(hp->n_vocab, 2013);
        json_t *mprompts = json_object_get(json_object_get(json_object_get(man, "models"), models[mi]), "prompts");
        for (size_t pi = 0; pi < 4; pi++) {
            size_t n;
            int32_t *ids = json_ids(json_object_get(json_array_get(json_object_get(man, "prompts"), pi), "ids"), &n);
            char rel[256], what[128];
            snprintf(rel, sizeof rel, "testdata/llama4-tiny/text/%s/%s.logits.f32", models[mi], prompt_names[pi]);
            float *ref = loom_test_read_f32(rel, n * 2013);
            float *x = loom_malloc(sizeof(float) * n * hp->d_model), *got = loom_malloc(sizeof(float) * n * 2013);
            loom_err err = {0};
            cr_assert_eq(loom_lm_embed(lm, x, ids, (int64_t)n, &err), LOOM_OK);
            loom_lm_session *s;
            cr_assert_eq(loom_lm_session_new(&s, lm, 128, 2, &err), LOOM_OK, "%s", err.msg);
            cr_assert_eq(loom_lm_eval(s, x, (int64_t)n, got, LOOM_LOGITS_ALL, &err), LOOM_OK, "%s", err.msg);
            snprintf(what, sizeof what, "%s/%s logits", models[mi], prompt_names[pi]);
            compare_logits(got, ref, n, 2013, what);
            loom_lm_session_free(s);

            int32_t gen[16];
            greedy(lm, x, n, gen, 16);
            size_t ng;
            int32_t *want = json_ids(json_object_get(json_object_get(mprompts, prompt_names[pi]), "greedy"), &ng);
            cr_assert_eq(ng, 16);
            for (int k = 0; k < 16; k++)
                cr_expect_eq(gen[k], want[k], "%s/%s greedy step %d: got %d, want %d", models[mi], prompt_names[pi],
                             k, gen[k], want[k]);
            if (pi == 0) { /* a context whose full-attention KV buffers (4 MiB each) sit on huge pages */
                const int64_t kv_row = (int64_t)hp->n_kv_head * hp->d_head * (int64_t)sizeof(float);
                greedy_ctx(lm, x, n, gen, 16, ((int64_t)4 << 20) / kv_row);
                for (int k = 0; k < 16; k++)
                    cr_expect_eq(gen[k], want[k], "%s/%s greedy step %d in a large context: got %d, want %d",
                                 models[mi], prompt_names[pi], k, gen[k], want[k]);
            }
            loom_free(want);
            loom_free(ids);
            loom_free(ref);
            loom_free(x);
            loom_free(got);
        }
        loom_lm_close(lm);
    }
    json_decref(man);
}

Test(lm, image_chat_prompt_with_reference_embeddings) {
    json_t *man = load_manifest();
    float *embd = loom_test_read_f32("testdata/llama4-tiny/vision/img3_480x640.embd.f32", 720 * 128);
    char path[512];
    LOOM_SHARED_PATH(path, "testdata/llama4-tiny/chat/prompt_ids.i32");
    size_t bytes = 0;
    int32_t *ids = loom_test_read_file(path, &bytes);
    cr_assert_not_null(ids);
    size_t n = bytes / 4;
    cr_assert_eq(n, 747);
    for (size_t mi = 0; mi < 3; mi++) {
        loom_lm *lm = open_model(models[mi]);
        float *x = loom_malloc(sizeof(float) * n * 128);
        loom_err err = {0};
        cr_assert_eq(loom_lm_embed(lm, x, ids, (int64_t)n, &err), LOOM_OK);
        size_t patch = 0;
        for (size_t i = 0; i < n; i++)
            if (ids[i] == 2012) memcpy(x + i * 128, embd + 128 * patch++, 128 * sizeof(float));
        cr_assert_eq(patch, 720);
        loom_lm_session *s;
        cr_assert_eq(loom_lm_session_new(&s, lm, 800, 2, &err), LOOM_OK, "%s", err.msg);
        float *got = loom_malloc(sizeof(float) * 2013);
        cr_assert_eq(loom_lm_eval(s, x, (int64_t)n, got, LOOM_LOGITS_LAST, &err), LOOM_OK, "%s", err.msg);
        char rel[256];
        snprintf(rel, sizeof rel, "testdata/llama4-tiny/chat/%s.last_logits.f32", models[mi]);
        float *ref = loom_test_read_f32(rel, 2013);
        compare_logits(got, ref, 1, 2013, models[mi]);
        loom_lm_session_free(s);
        int32_t gen[16];
        greedy(lm, x, n, gen, 16);
        size_t ng;
        json_t *chat = json_object_get(json_object_get(json_object_get(man, "models"), models[mi]), "chat");
        int32_t *want = json_ids(json_object_get(chat, "greedy"), &ng);
        for (int k = 0; k < 16; k++)
            cr_expect_eq(gen[k], want[k], "%s chat greedy step %d: got %d want %d", models[mi], k, gen[k], want[k]);
        loom_free(want);
        loom_free(ref);
        loom_free(got);
        loom_free(x);
        loom_lm_close(lm);
    }
    loom_free(ids);
    loom_free(embd);
    json_decref(man);
}

Test(lm, context_limit_and_bad_ids_are_errors) {
    loom_lm *lm = open_model("scout-like");
    loom_err err = {0};
    float x[128 * 4];
    int32_t bad[2] = {5, 2013};
    cr_assert_eq(loom_lm_embed(lm, x, bad, 2, &err), LOOM_ERR_INVALID);
    cr_assert(strstr(err.msg, "2013"));
    int32_t ok[4] = {2000, 1, 2, 3};
    cr_assert_eq(loom_lm_embed(lm, x, ok, 4, &err), LOOM_OK);
    loom_lm_session *s;
    cr_assert_eq(loom_lm_session_new(&s, lm, 3, 1, &err), LOOM_OK);
    cr_assert_eq(loom_lm_eval(s, x, 4, NULL, LOOM_LOGITS_NONE, &err), LOOM_ERR_LIMIT);
    cr_assert_eq(loom_lm_eval(s, x, 3, NULL, LOOM_LOGITS_NONE, &err), LOOM_OK);
    cr_assert_eq(loom_lm_eval(s, x, 1, NULL, LOOM_LOGITS_NONE, &err), LOOM_ERR_LIMIT);
    loom_lm_session_free(s);
    cr_assert_eq(loom_lm_session_new(&s, lm, 0, 1, &err), LOOM_ERR_INVALID);
    loom_lm_close(lm);
}

/* The decode profile accounts for the evals it saw: every part's time is non-negative and together they are
 * most of the wall time, weight bytes grow by the same amount each decode step (the head only when logits
 * are asked for), one step reads no more than the whole model, and switching profiling off clears it. */
Test(lm, profile_accounts_for_each_eval) {
    loom_lm *lm = open_model("scout-like");
    const loom_lm_hparams *hp = loom_lm_get_hparams(lm);
    loom_err err = {0};
    loom_lm_session *s;
    cr_assert_eq(loom_lm_session_new(&s, lm, 16, 2, &err), LOOM_OK, "%s", err.msg);
    float *x = loom_malloc(sizeof(float) * 4 * hp->d_model), *logits = loom_malloc(sizeof(float) * hp->n_vocab);
    int32_t ids[4] = {2000, 1, 2, 3};
    cr_assert_eq(loom_lm_embed(lm, x, ids, 4, &err), LOOM_OK);
    cr_assert_eq(loom_lm_eval(s, x, 3, logits, LOOM_LOGITS_LAST, &err), LOOM_OK, "%s", err.msg); /* not profiled */
    loom_lm_profile p1, p2, p3;
    loom_lm_session_set_profiling(s, true);
    const double t0 = loom_time_s();
    cr_assert_eq(loom_lm_eval(s, x + 3 * hp->d_model, 1, logits, LOOM_LOGITS_LAST, &err), LOOM_OK);
    const double wall1 = loom_time_s() - t0;
    loom_lm_session_get_profile(s, &p1);
    cr_assert_eq(loom_lm_eval(s, x, 1, logits, LOOM_LOGITS_LAST, &err), LOOM_OK);
    loom_lm_session_get_profile(s, &p2);
    cr_assert_eq(loom_lm_eval(s, x, 1, NULL, LOOM_LOGITS_NONE, &err), LOOM_OK);
    loom_lm_session_get_profile(s, &p3);
    cr_expect_eq(p1.evals, 1);
    cr_expect_eq(p3.evals, 3);
    double sum1 = 0, bytes1 = 0;
    for (int part = 0; part < LOOM_LM_PART_COUNT; part++) {
        const char *name = loom_lm_part_name((loom_lm_part)part);
        cr_expect(p1.seconds[part] >= 0 && p2.seconds[part] >= p1.seconds[part], "%s", name);
        sum1 += p1.seconds[part];
        bytes1 += p1.weight_bytes[part];
        const double once = p1.weight_bytes[part], twice = p2.weight_bytes[part], thrice = p3.weight_bytes[part];
        cr_expect_float_eq(twice, 2 * once, 1e-9 * twice + 1e-9, "%s: %g then %g bytes", name, once, twice);
        if (part == LOOM_LM_PART_HEAD) cr_expect_float_eq(thrice, twice, 1e-9 * twice, "no logits, no head");
        else cr_expect_float_eq(thrice, 3 * once, 1e-9 * thrice + 1e-9, "%s", name);
    }
    cr_expect(p1.weight_bytes[LOOM_LM_PART_QKV] > 0 && p1.weight_bytes[LOOM_LM_PART_HEAD] > 0 &&
              p1.weight_bytes[LOOM_LM_PART_ROUTED] + p1.weight_bytes[LOOM_LM_PART_SHARED] > 0);
    cr_expect(bytes1 <= (double)loom_lm_weight_bytes(lm), "one step read %g of %zu bytes", bytes1,
              loom_lm_weight_bytes(lm));
    cr_expect(sum1 <= wall1 * 1.001 + 1e-6 && sum1 >= 0.5 * wall1, "parts %g s of a %g s eval", sum1, wall1);
    loom_lm_session_set_profiling(s, false);
    cr_assert_eq(loom_lm_eval(s, x, 1, logits, LOOM_LOGITS_LAST, &err), LOOM_OK);
    loom_lm_session_get_profile(s, &p1);
    cr_expect_eq(p1.evals, 0);
    for (int part = 0; part < LOOM_LM_PART_COUNT; part++) cr_expect_eq(p1.seconds[part], 0);
    cr_expect_str_eq(loom_lm_part_name(LOOM_LM_PART_COUNT), "?");
    loom_free(x);
    loom_free(logits);
    loom_lm_session_free(s);
    loom_lm_close(lm);
}
