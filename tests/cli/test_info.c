/* tests/cli/test_info.c — the built `loom info` binary on the reference GGUF files (text and --json output
 * checked against the README values) and on 50 corrupted copies (exit status 1 with the reader's message on
 * stderr, never a signal). */
#include <jansson.h>
#include <stdio.h>

#include "tests/cli/cli_util.h"
#include "core/gguf.h"

static json_t *info_json(const char *bin, const char *path) {
    char *argv[] = {(char *)bin, "info", "--json", "--tensors", (char *)path, NULL};
    cli_result r = cli_run(argv);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "%s: status %d, stderr: %s", path, r.status, r.err);
    json_error_t je;
    json_t *j = json_loads(r.out, 0, &je);
    cr_assert_not_null(j, "%s: bad JSON: %s", path, je.text);
    cli_result_free(&r);
    return j;
}

static json_int_t jint(json_t *o, const char *a, const char *b) {
    json_t *v = json_object_get(o, a);
    if (b) v = json_object_get(v, b);
    cr_assert(json_is_integer(v), "%s.%s is not an integer", a, b ? b : "");
    return json_integer_value(v);
}

Test(cli_info, reference_files_json) {
    CLI_BIN(bin);
    char path[512];
    LOOM_SHARED_PATH(path, "testdata/llama4-tiny/models/scout-like-c16.gguf");
    json_t *j = info_json(bin, path);
    cr_assert_str_eq(json_string_value(json_object_get(j, "architecture")), "llama4");
    cr_assert_eq(jint(j, "version", NULL), 3);
    cr_assert_eq(jint(j, "n_tensors", NULL), 108);
    cr_assert_eq(jint(j, "n_params", NULL), 1897872);
    cr_assert_eq(jint(j, "hparams", "block_count"), 8);
    cr_assert_eq(jint(j, "hparams", "embedding_length"), 128);
    cr_assert_eq(jint(j, "hparams", "attention.head_count"), 4);
    cr_assert_eq(jint(j, "hparams", "attention.head_count_kv"), 2);
    cr_assert_eq(jint(j, "hparams", "expert_count"), 4);
    cr_assert_eq(jint(j, "hparams", "expert_used_count"), 1);
    cr_assert_eq(jint(j, "hparams", "context_length"), 16384);
    cr_assert_eq(jint(j, "hparams", "vocab_size"), 2013);
    cr_assert_eq(json_real_value(json_object_get(json_object_get(j, "hparams"), "rope.freq_base")), 500000.0);
    json_t *tok = json_object_get(json_object_get(j, "metadata"), "tokenizer.ggml.tokens");
    cr_assert_str_eq(json_string_value(json_object_get(tok, "elem_type")), "string");
    cr_assert_eq(json_integer_value(json_object_get(tok, "len")), 2013);
    cr_assert_eq(json_array_size(json_object_get(tok, "head")), 8);
    json_t *f32 = json_object_get(json_object_get(j, "by_type"), "F32");
    cr_assert_eq(json_integer_value(json_object_get(f32, "tensors")), 108);
    cr_assert_eq(json_integer_value(json_object_get(f32, "bytes")), 7591488);
    json_t *t0 = json_array_get(json_object_get(j, "tensors"), 0);
    cr_assert_not_null(t0);
    json_decref(j);

    LOOM_SHARED_PATH(path, "testdata/llama4-tiny/models/mmproj-tiny-llama4.gguf");
    j = info_json(bin, path);
    cr_assert_str_eq(json_string_value(json_object_get(j, "architecture")), "clip");
    cr_assert_eq(jint(j, "n_tensors", NULL), 42);
    cr_assert_eq(jint(j, "hparams", "clip.vision.image_size"), 336);
    cr_assert_eq(jint(j, "hparams", "clip.vision.patch_size"), 14);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "hparams"), "clip.projector_type")), "llama4");
    json_decref(j);

    LOOM_SHARED_PATH(path, "testdata/tokenizer/llama4-vocab.gguf");
    j = info_json(bin, path);
    cr_assert_eq(jint(j, "n_tensors", NULL), 0);
    cr_assert_eq(jint(j, "hparams", "vocab_size"), 202048);
    json_t *md = json_object_get(j, "metadata");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(md, "tokenizer.ggml.merges"), "len")), 199744);
    cr_assert_str_eq(json_string_value(json_array_get(
                         json_object_get(json_object_get(md, "tokenizer.ggml.tokens"), "head"), 1)), "\xc3\x81");
    json_decref(j);

    /* quant files: per-tensor type, ne and absolute offset as in the manifest */
    LOOM_SHARED_PATH(path, "testdata/quant/manifest.json");
    json_error_t je;
    json_t *m = json_load_file(path, 0, &je);
    cr_assert_not_null(m);
    const char *tname;
    json_t *tv;
    int n_checked = 0;
    json_object_foreach(json_object_get(m, "types"), tname, tv) {
        snprintf(path, sizeof path, "%s/testdata/quant/%s", loom_test_shared_root(),
                 json_string_value(json_object_get(tv, "gguf")));
        j = info_json(bin, path);
        json_t *ts = json_object_get(j, "tensors"), *e;
        size_t k;
        json_array_foreach(ts, k, e) {
            const char *name = json_string_value(json_object_get(e, "name"));
            json_t *want = json_object_get(json_object_get(tv, "tensors"), name);
            cr_assert_not_null(want, "%s: %s", tname, name);
            cr_assert_str_eq(json_string_value(json_object_get(e, "type")),
                             json_string_value(json_object_get(want, "ggml_type")));
            cr_assert(json_equal(json_object_get(e, "ne"), json_object_get(want, "ne")), "%s %s ne", tname, name);
            cr_assert_eq(json_integer_value(json_object_get(e, "file_offset")),
                         json_integer_value(json_object_get(want, "file_offset")), "%s %s", tname, name);
            n_checked++;
        }
        json_decref(j);
    }
    cr_assert_eq(n_checked, 60);
    json_decref(m);
}

Test(cli_info, text_output_and_usage) {
    CLI_BIN(bin);
    char path[512];
    LOOM_SHARED_PATH(path, "testdata/quant/IQ4_XS/IQ4_XS.gguf");
    char *a1[] = {(char *)bin, "info", "--tensors", path, NULL};
    cli_result r = cli_run(a1);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "%s", r.err);
    cr_assert(strstr(r.out, "GGUF v3"), "%s", r.out);
    cr_assert(strstr(r.out, "tensors: 4, parameters: 38912"), "%s", r.out);
    cr_assert(strstr(r.out, "IQ4_XS"), "IQ4_XS loads and is listed");
    cr_assert(strstr(r.out, "quant.experts.weight"));
    cr_assert(strstr(r.out, "[256, 8, 4]"));
    cr_assert(strstr(r.out, "general.file_type"));
    cli_result_free(&r);

    char *a2[] = {(char *)bin, "info", NULL};
    r = cli_run(a2);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 2);
    cr_assert(strstr(r.err, "usage"));
    cli_result_free(&r);
    char *a3[] = {(char *)bin, "info", "--frobnicate", path, NULL};
    r = cli_run(a3);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 2);
    cli_result_free(&r);
    char *a4[] = {(char *)bin, "info", "--help", NULL};
    r = cli_run(a4);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0 && strstr(r.out, "usage"));
    cli_result_free(&r);
    char *a5[] = {(char *)bin, "info", "/nonexistent.gguf", NULL};
    r = cli_run(a5);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 1);
    cr_assert(strncmp(r.err, "loom: /nonexistent.gguf: ", strlen("loom: /nonexistent.gguf: ")) == 0, "%s", r.err);
    cli_result_free(&r);
}

Test(cli_info, corrupted_files_exit_1_with_message) {
    CLI_BIN(bin);
    char src[512];
    LOOM_SHARED_PATH(src, "testdata/llama4-tiny/models/mmproj-tiny-llama4.gguf");
    size_t size;
    uint8_t *clean = loom_test_read_file(src, &size);
    cr_assert_not_null(clean);
    char dir[] = "/tmp/loom_info_fuzz_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    uint64_t seed = 0xC0FFEE;
    int n_fail = 0, n_ok = 0;
    for (int k = 0; k < 50; k++) {
        uint8_t *buf = loom_malloc(size);
        memcpy(buf, clean, size);
        size_t n = size;
        uint64_t r = loom_test_rand_u64(&seed);
        uint64_t huge = 1ULL << (40 + r % 24);
        switch (k % 5) {
        case 0: n = loom_test_rand_u64(&seed) % 4000; break;          /* truncated in the header */
        case 1: n = 4000 + loom_test_rand_u64(&seed) % (size - 4000); break; /* truncated in the data */
        case 2: memcpy(buf + 8 + 8 * (r & 1), &huge, 8); break;       /* tensor or KV count */
        case 3: memcpy(buf + 24, &huge, 8); break;                    /* first key's length */
        case 4:
            for (int f = 0; f < 4; f++) buf[loom_test_rand_u64(&seed) % 3232] ^= (uint8_t)(1 + (r >> (8 * f)) % 255);
            break;
        }
        char path[600];
        snprintf(path, sizeof path, "%s/c%02d.gguf", dir, k);
        FILE *f = fopen(path, "wb");
        cr_assert(f && fwrite(buf, 1, n, f) == n);
        fclose(f);
        loom_gguf *g;
        loom_err err = {0};
        loom_status s = loom_gguf_open_memory(&g, buf, n, &err);
        char *argv[] = {(char *)bin, "info", path, NULL};
        cli_result res = cli_run(argv);
        cr_assert(WIFEXITED(res.status), "%s: killed by signal %d", path, WTERMSIG(res.status));
        if (s != LOOM_OK) {
            char want[900];
            snprintf(want, sizeof want, "loom: %s: %s\n", path, err.msg);
            cr_assert_eq(WEXITSTATUS(res.status), 1, "%s: exit %d", path, WEXITSTATUS(res.status));
            cr_assert_str_eq(res.err, want);
            cr_assert_eq(res.out[0], 0);
            n_fail++;
        } else {
            loom_gguf_close(g);
            cr_assert_eq(WEXITSTATUS(res.status), 0, "%s: %s", path, res.err);
            n_ok++;
        }
        cli_result_free(&res);
        unlink(path);
        loom_free(buf);
    }
    rmdir(dir);
    cr_assert_gt(n_fail, 40, "only %d of 50 corruptions rejected", n_fail);
    loom_free(clean);
}
