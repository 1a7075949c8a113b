/* tests/fusion/test_lm_hostile.c — broken llama4 models give clear errors, never a crash.
 *
 * Each case rewrites the tiny scout model in memory with one defect (wrong architecture, a missing tensor, a
 * transposed or resized tensor, inconsistent hyper-parameters, an unsupported weight type) and checks that
 * loading fails with the right status and a message naming the problem. Also: truncated copies of the whole
 * file, which the GGUF reader must reject before the model sees them.
 */
#include <string.h>

#include "core/alloc.h"
#include "core/gguf.h"
#include "fusion/lm.h"
#include "tests/testutil.h"

typedef struct mutation {
    const char *drop_tensor;     /* leave this tensor out */
    const char *reshape_tensor;  /* give this tensor ne[0] / ne[1] swapped */
    const char *arch;            /* general.architecture override */
    const char *u32_key;         /* set this key ... */
    uint32_t    u32_val;         /* ... to this value */
    const char *retype_tensor;   /* store this tensor as IQ4_NL (a type loom cannot compute with) */
} mutation;

static loom_status load_mutated(const loom_gguf *src, const mutation *mu, loom_err *err) {
    loom_gguf_writer *w;
    cr_assert_eq(loom_gguf_writer_new(&w, NULL), LOOM_OK);
    cr_assert_eq(loom_gguf_writer_copy_kv(w, src, NULL), LOOM_OK);
    if (mu->arch) loom_gguf_writer_set_str(w, "general.architecture", mu->arch);
    if (mu->u32_key) loom_gguf_writer_set_u32(w, mu->u32_key, mu->u32_val);
    void *q2 = NULL;
    for (int64_t i = 0; i < loom_gguf_n_tensors(src); i++) {
        const loom_gguf_tensor *t = loom_gguf_tensor_at(src, i);
        if (mu->drop_tensor && !strcmp(t->name, mu->drop_tensor)) continue;
        int64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        loom_dtype type = t->type;
        const void *data = t->data;
        if (mu->reshape_tensor && !strcmp(t->name, mu->reshape_tensor)) {
            ne[0] = t->ne[1];
            ne[1] = t->ne[0];
        }
        if (mu->retype_tensor && !strcmp(t->name, mu->retype_tensor)) {
            type = LOOM_IQ4_NL; /* a valid ggml type loom stores but does not compute with */
            q2 = loom_calloc(1, loom_row_size(LOOM_IQ4_NL, ne[0]) * (size_t)ne[1]);
            data = q2;
        }
        cr_assert_eq(loom_gguf_writer_add_tensor(w, t->name, type, t->n_dims, ne, data, NULL), LOOM_OK, "%s", t->name);
    }
    void *buf = NULL;
    size_t size = 0;
    cr_assert_eq(loom_gguf_writer_write_memory(w, &buf, &size, NULL), LOOM_OK);
    loom_gguf_writer_free(w);
    loom_free(q2);
    loom_gguf *g = NULL;
    loom_status st = loom_gguf_open_memory(&g, buf, size, err);
    if (st == LOOM_OK) {
        loom_lm *lm = NULL;
        st = loom_lm_from_gguf(&lm, g, err);
        if (st == LOOM_OK) loom_lm_close(lm); /* closes g too */
        else loom_gguf_close(g);
    }
    loom_free(buf);
    return st;
}

Test(lm_hostile, broken_models_fail_with_clear_errors) {
    char path[512];
    LOOM_SHARED_PATH(path, "testdata/llama4-tiny/models/scout-like.gguf");
    loom_gguf *src;
    cr_assert_eq(loom_gguf_open(&src, path, NULL, NULL), LOOM_OK);
    struct {
        mutation    mu;
        loom_status want;
        const char *needle;
    } cases[] = {
        {{0}, LOOM_OK, ""},
        {{.arch = "llama"}, LOOM_ERR_UNSUPPORTED, "architecture 'llama'"},
        {{.drop_tensor = "blk.3.attn_k.weight"}, LOOM_ERR_FORMAT, "blk.3.attn_k.weight"},
        {{.drop_tensor = "output.weight"}, LOOM_ERR_FORMAT, "output.weight"},
        {{.drop_tensor = "blk.0.ffn_gate_inp.weight"}, LOOM_ERR_FORMAT, "layer 0"},
        {{.reshape_tensor = "blk.2.attn_k.weight"}, LOOM_ERR_FORMAT, "blk.2.attn_k.weight"},
        {{.reshape_tensor = "token_embd.weight"}, LOOM_ERR_FORMAT, "token_embd"},
        {{.u32_key = "llama4.attention.head_count_kv", .u32_val = 3}, LOOM_ERR_FORMAT, "head_count"},
        {{.u32_key = "llama4.embedding_length", .u32_val = 64}, LOOM_ERR_FORMAT, ""},
        {{.u32_key = "llama4.vocab_size", .u32_val = 5}, LOOM_ERR_FORMAT, "vocab_size"},
        {{.u32_key = "llama4.expert_used_count", .u32_val = 9}, LOOM_ERR_FORMAT, "expert"},
        {{.u32_key = "llama4.block_count", .u32_val = 9}, LOOM_ERR_FORMAT, "blk.8"},
        {{.u32_key = "llama4.attention.chunk_size", .u32_val = 0}, LOOM_ERR_FORMAT, "chunk_size"},
        {{.retype_tensor = "blk.1.attn_q.weight"}, LOOM_ERR_UNSUPPORTED, "IQ4_NL"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        loom_err err = {0};
        loom_status st = load_mutated(src, &cases[c].mu, &err);
        cr_expect_eq(st, cases[c].want, "case %zu: status %d (%s), want %d", c, st, err.msg, cases[c].want);
        cr_expect(strstr(err.msg, cases[c].needle), "case %zu: message '%s' lacks '%s'", c, err.msg, cases[c].needle);
    }
    loom_gguf_close(src);
}

Test(lm_hostile, truncated_model_files) {
    char path[512];
    LOOM_SHARED_PATH(path, "testdata/llama4-tiny/models/maverick-like-c16.gguf");
    size_t size = 0;
    unsigned char *buf = loom_test_read_file(path, &size);
    cr_assert_not_null(buf);
    uint64_t rng = 7;
    for (int i = 0; i < 60; i++) {
        size_t cut = (size_t)(loom_test_rand_u64(&rng) % size);
        loom_gguf *g = NULL;
        loom_err err = {0};
        loom_status st = loom_gguf_open_memory(&g, buf, cut, &err);
        cr_expect_neq(st, LOOM_OK, "a copy cut at %zu of %zu bytes was accepted", cut, size);
        cr_expect(err.msg[0], "no message for a cut at %zu", cut);
        loom_gguf_close(g);
    }
    loom_free(buf);
}
