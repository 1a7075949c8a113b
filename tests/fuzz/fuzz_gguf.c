/* tests/fuzz/fuzz_gguf.c — libFuzzer target for the GGUF reader.
 *
 * Opens the input with loom_gguf_open_memory and, when it parses, walks everything a loader could touch: every
 * KV through every scalar accessor, every array element (nested arrays recursively through the views), every
 * tensor's fields and the first and last byte of its data, and the by-name lookups. The input is copied into an
 * exact-size heap buffer first, so any read past the end is an ASan report rather than a silent read of
 * libFuzzer's own memory.
 *
 * With LOOM_FUZZ_WRITE_SEEDS=DIR the binary writes a few small GGUF files made with loom_gguf_writer (every KV
 * type, nested arrays, tensors of several types) into DIR and exits: tools/fuzz.sh makes the seed corpus so.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#include "core/alloc.h"
#include "core/gguf.h"
#include "core/log.h"

static volatile uint64_t sink;

static void touch_str(loom_gguf_str s) {
    if (s.ptr && s.len) sink += (uint8_t)s.ptr[0] + (uint8_t)s.ptr[s.len - 1];
}

static void walk_arr(const loom_gguf_arr *a, int depth) {
    if (!a || depth > 10) return;
    loom_gguf_type t = loom_gguf_arrv_type(a);
    uint64_t       n = loom_gguf_arrv_len(a);
    const void    *d = loom_gguf_arrv_data(a);
    size_t         es = loom_gguf_type_size(t);
    if (d && es && n) sink += ((const uint8_t *)d)[0] + ((const uint8_t *)d)[n * es - 1];
    /* every element of short arrays, a sample of long ones (the vocabulary has 200k strings) */
    for (uint64_t j = 0; j < n; j = j < 64 ? j + 1 : j * 2 + 1) {
        double  f;
        int64_t v;
        sink += loom_gguf_arrv_f64(a, j, &f) ? (uint64_t)(f == f) : 0;
        sink += loom_gguf_arrv_i64(a, j, &v) ? (uint64_t)v : 0;
        touch_str(loom_gguf_arrv_str(a, j));
        if (t == LOOM_GGUF_ARRAY) walk_arr(loom_gguf_arrv_sub(a, j), depth + 1);
    }
    /* one past the end must be refused, not read */
    double f;
    sink += loom_gguf_arrv_f64(a, n, &f);
    touch_str(loom_gguf_arrv_str(a, n));
    if (t == LOOM_GGUF_ARRAY) walk_arr(loom_gguf_arrv_sub(a, n), depth + 1);
}

static void walk(const loom_gguf *g) {
    sink += loom_gguf_version(g) + loom_gguf_file_size(g) + loom_gguf_alignment(g) + loom_gguf_data_offset(g);
    int64_t nkv = loom_gguf_n_kv(g);
    for (int64_t i = -1; i <= nkv; i++) { /* -1 and n_kv: out-of-range indices must be harmless */
        loom_gguf_str key = loom_gguf_key(g, i);
        touch_str(key);
        sink += (uint64_t)loom_gguf_kv_type(g, i);
        uint64_t u;
        int64_t  s;
        double   f;
        bool     b;
        loom_gguf_str str;
        sink += loom_gguf_kv_u64(g, i, &u) ? u : 0;
        sink += loom_gguf_kv_i64(g, i, &s) ? (uint64_t)s : 0;
        sink += loom_gguf_kv_f64(g, i, &f) ? (uint64_t)(f == f) : 0;
        sink += loom_gguf_kv_bool(g, i, &b) ? b : 0;
        if (loom_gguf_kv_str(g, i, &str)) touch_str(str);
        uint64_t n = loom_gguf_arr_len(g, i);
        sink += (uint64_t)loom_gguf_arr_type(g, i) + n;
        sink += (uintptr_t)loom_gguf_arr_data(g, i);
        for (uint64_t j = 0; j < n && j < 32; j++) {
            touch_str(loom_gguf_arr_str(g, i, j));
            sink += loom_gguf_arr_f64(g, i, j, &f) + loom_gguf_arr_i64(g, i, j, &s);
        }
        walk_arr(loom_gguf_kv_arr(g, i), 0);
        if (key.ptr && key.len < 256 && i >= 0) {
            char name[256];
            memcpy(name, key.ptr, key.len);
            name[key.len] = 0;
            sink += (uint64_t)loom_gguf_find_key(g, name);
            uint32_t u32;
            float    f32;
            loom_err err = {0};
            sink += loom_gguf_get_u32(g, name, &u32, &err) + loom_gguf_get_f32(g, name, &f32, &err);
            if (loom_gguf_get_str(g, name, &str, &err) == LOOM_OK) touch_str(str);
            sink += loom_gguf_opt_u32(g, name, &u32) + loom_gguf_opt_f32(g, name, &f32) + loom_gguf_opt_bool(g, name, &b);
        }
    }
    int64_t nt = loom_gguf_n_tensors(g);
    for (int64_t i = -1; i <= nt; i++) {
        const loom_gguf_tensor *t = loom_gguf_tensor_at(g, i);
        if (!t) continue;
        sink += strlen(t->name) + (uint64_t)t->type + (uint64_t)t->n_dims + t->offset + t->file_offset;
        for (int d = 0; d < t->n_dims && d < LOOM_MAX_DIMS; d++) sink += (uint64_t)t->ne[d];
        if (t->data && t->nbytes) sink += ((const uint8_t *)t->data)[0] + ((const uint8_t *)t->data)[t->nbytes - 1];
        sink += loom_gguf_find_tensor(g, t->name) != NULL;
    }
    sink += loom_gguf_find_key(g, "general.architecture") + (loom_gguf_find_tensor(g, "token_embd.weight") != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int once;
    if (!once) {
        loom_log_set_level(LOOM_LOG_NONE);
        once = 1;
    }
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    loom_gguf *g = NULL;
    loom_err   err = {0};
    if (loom_gguf_open_memory(&g, buf, size, &err) == LOOM_OK) {
        walk(g);
        loom_gguf_close(g);
    } else if (!err.msg[0]) {
        abort(); /* every failure names its problem */
    }
    free(buf);
    return 0;
}

/* ==== seeds ==== */

static int write_seed(const char *dir, const char *name, loom_gguf_writer *w) {
    void    *buf = NULL;
    size_t   size = 0;
    loom_err err = {0};
    if (loom_gguf_writer_write_memory(w, &buf, &size, &err) != LOOM_OK) {
        fprintf(stderr, "seed %s: %s\n", name, err.msg);
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    int   bad = !f || fwrite(buf, 1, size, f) != size;
    if (f) bad |= fclose(f) != 0;
    loom_free(buf);
    loom_gguf_writer_free(w);
    return bad;
}

static int write_seeds(const char *dir) {
    loom_err          err = {0};
    loom_gguf_writer *w = NULL;
    int               bad = 0;
    static float      f32[64];
    static uint16_t   f16[64];
    static uint8_t    q8[34 * 2], q4k[144];
    for (int i = 0; i < 64; i++) f32[i] = (float)i * 0.25f - 3.0f, f16[i] = (uint16_t)(0x3c00 + i);

    /* every scalar type, strings, arrays, an array of arrays, three tensors */
    if (loom_gguf_writer_new(&w, &err)) return 1;
    loom_gguf_writer_set_str(w, "general.architecture", "llama4");
    loom_gguf_writer_set_u32(w, "general.alignment", 32);
    loom_gguf_writer_set_u32(w, "llama4.block_count", 2);
    loom_gguf_writer_set_i32(w, "i32", -5);
    loom_gguf_writer_set_u64(w, "u64", 1ULL << 40);
    loom_gguf_writer_set_f32(w, "llama4.rope.freq_base", 500000.0f);
    loom_gguf_writer_set_bool(w, "flag", true);
    for (int t = LOOM_GGUF_U8; t <= LOOM_GGUF_F64; t++) {
        if (t == LOOM_GGUF_STRING || t == LOOM_GGUF_ARRAY) continue;
        uint64_t v = 1;
        char     key[32];
        snprintf(key, sizeof key, "scalar.%s", loom_gguf_type_name((loom_gguf_type)t));
        loom_gguf_writer_set_scalar(w, key, (loom_gguf_type)t, &v);
    }
    const char *strs[] = {"a", "", "<|eot|>", "Ġthe"};
    loom_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", strs, 4);
    int32_t ints[] = {1, 1, 3, 1};
    loom_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", LOOM_GGUF_I32, ints, 4);
    loom_gguf_writer_set_arr(w, "f32s", LOOM_GGUF_F32, f32, 8);
    loom_gguf_type    sub_t[] = {LOOM_GGUF_U8, LOOM_GGUF_STRING, LOOM_GGUF_F64};
    uint8_t           u8s[] = {1, 2, 3};
    double            f64s[] = {0.5, -1};
    const void *const sub_d[] = {u8s, strs, f64s};
    uint64_t          sub_n[] = {3, 4, 2};
    loom_gguf_writer_set_arr_arr(w, "nested", 3, sub_t, sub_d, sub_n);
    int64_t ne1[] = {8, 8}, ne2[] = {64}, ne3[] = {32, 2}, ne4[] = {256};
    loom_gguf_writer_add_tensor(w, "token_embd.weight", LOOM_F32, 2, ne1, f32, &err);
    loom_gguf_writer_add_tensor(w, "output_norm.weight", LOOM_F16, 1, ne2, f16, &err);
    loom_gguf_writer_add_tensor(w, "blk.0.attn_q.weight", LOOM_Q8_0, 2, ne3, q8, &err);
    loom_gguf_writer_add_tensor(w, "blk.0.ffn_down.weight", LOOM_Q4_K, 1, ne4, q4k, &err);
    bad |= write_seed(dir, "full.gguf", w);

    /* KV only (a vocab-only file), and an empty file */
    if (loom_gguf_writer_new(&w, &err)) return 1;
    loom_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    loom_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", strs, 4);
    const char *merges[] = {"a a"};
    loom_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, 1);
    bad |= write_seed(dir, "kv_only.gguf", w);
    if (loom_gguf_writer_new(&w, &err)) return 1;
    bad |= write_seed(dir, "empty.gguf", w);

    /* one tensor per dtype family the reader sizes differently */
    static const loom_dtype types[] = {LOOM_BF16, LOOM_Q4_0, LOOM_Q6_K, LOOM_IQ4_XS, LOOM_I32};
    static uint8_t          blob[4096];
    if (loom_gguf_writer_new(&w, &err)) return 1;
    for (int i = 0; i < 5; i++) {
        char    name[32];
        int64_t ne[] = {256, 1, 1};
        snprintf(name, sizeof name, "t%d", i);
        loom_gguf_writer_add_tensor(w, name, types[i], 3, ne, blob, &err);
    }
    bad |= write_seed(dir, "dtypes.gguf", w);
    return bad;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *dir = getenv("LOOM_FUZZ_WRITE_SEEDS");
    if (dir) exit(write_seeds(dir));
    return 0;
}
