/* tests/cli/test_quantize.c — `loom quantize` against llama.cpp's llama-quantize.
 *
 * testdata/quant/<TYPE>/<TYPE>.gguf was written by llama-quantize from inputs/F32.gguf with no importance matrix;
 * `loom quantize` lays files out the same way (tensor order, key order, alignment), so with reference quantizers the
 * two files must be identical byte for byte. A tiny Llama 4 model checks which tensors stay F32.
 */
#include <stdio.h>

#include "core/gguf.h"
#include "tests/cli/cli_util.h"

static cli_result quantize(const char *bin, const char *in, const char *out, const char *type) {
    char *argv[] = {(char *)bin, "quantize", (char *)in, (char *)out, (char *)type, "-t", "2", NULL};
    return cli_run(argv);
}

Test(cli_quantize, byte_identical_to_llama_quantize) {
    CLI_BIN(bin);
    char in[512], ref[600], out[] = "/tmp/loom_quant_XXXXXX";
    LOOM_SHARED_PATH(in, "testdata/quant/inputs/F32.gguf");
    int fd = mkstemp(out);
    close(fd);
    const char *types[] = {"F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K"};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        snprintf(ref, sizeof ref, "%s/testdata/quant/%s/%s.gguf", loom_test_shared_root(), types[k], types[k]);
        cli_result r = quantize(bin, in, out, types[k]);
        cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "%s: %s", types[k], r.err);
        cli_result_free(&r);
        size_t na, nb;
        uint8_t *a = loom_test_read_file(out, &na), *b = loom_test_read_file(ref, &nb);
        cr_assert(a && b);
        cr_assert_eq(na, nb, "%s: %zu bytes, llama-quantize wrote %zu", types[k], na, nb);
        size_t first = na;
        for (size_t i = 0; i < na; i++)
            if (a[i] != b[i]) { first = i; break; }
        cr_assert_eq(first, na, "%s: first difference at byte %zu", types[k], first);
        loom_free(a);
        loom_free(b);
    }
    unlink(out);
}

Test(cli_quantize, llama4_tensor_rules) {
    CLI_BIN(bin);
    char in[512], out[] = "/tmp/loom_quant_l4_XXXXXX";
    LOOM_SHARED_PATH(in, "testdata/llama4-tiny/models/scout-like-c16.gguf");
    int fd = mkstemp(out);
    close(fd);
    loom_err err = {0};
    loom_gguf *src, *g;
    cr_assert_eq(loom_gguf_open(&src, in, NULL, &err), LOOM_OK, "%s", err.msg);
    /* Q8_0: every matrix with ne[0] % 32 == 0 is quantized; Q4_K: ne[0] = 64 or 128 is not a multiple of 256 */
    const char *types[] = {"Q8_0", "Q4_K"};
    for (int k = 0; k < 2; k++) {
        cli_result r = quantize(bin, in, out, types[k]);
        cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "%s", r.err);
        cli_result_free(&r);
        cr_assert_eq(loom_gguf_open(&g, out, NULL, &err), LOOM_OK, "%s", err.msg);
        uint32_t v;
        cr_assert(loom_gguf_opt_u32(g, "general.quantization_version", &v) && v == 2);
        cr_assert(loom_gguf_opt_u32(g, "general.file_type", &v) && v == (k == 0 ? 7u : 15u));
        cr_assert_eq(loom_gguf_n_kv(g), loom_gguf_n_kv(src) + 1); /* file_type was already there */
        cr_assert(loom_gguf_opt_u32(g, "llama4.block_count", &v) && v == 8);
        cr_assert_eq(loom_gguf_arr_len(g, loom_gguf_find_key(g, "tokenizer.ggml.tokens")), 2013);
        cr_assert_eq(loom_gguf_n_tensors(g), 108);
        for (int64_t i = 0; i < loom_gguf_n_tensors(src); i++) {
            const loom_gguf_tensor *s = loom_gguf_tensor_at(src, i), *t = loom_gguf_find_tensor(g, s->name);
            cr_assert_not_null(t, "%s", s->name);
            for (int d = 0; d < 4; d++) cr_assert_eq(t->ne[d], s->ne[d]);
            int keep = s->n_dims < 2 || strstr(s->name, "_norm") || strstr(s->name, "ffn_gate_inp") ||
                       strstr(s->name, "rope_freqs") || (k == 1);
            cr_assert_eq(t->type, keep ? LOOM_F32 : LOOM_Q8_0, "%s %s: got %s", types[k], s->name,
                         loom_type_name(t->type));
            if (keep) cr_assert(memcmp(t->data, s->data, s->nbytes) == 0, "%s copied", s->name);
        }
        loom_gguf_close(g);
    }
    loom_gguf_close(src);

    /* usage errors */
    cli_result r = quantize(bin, in, in, "Q8_0");
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 2, "same file");
    cli_result_free(&r);
    r = quantize(bin, in, out, "Q2_K");
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 2 && strstr(r.err, "Q2_K"));
    cli_result_free(&r);
    unlink(out);
}
