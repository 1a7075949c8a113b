/* tests/core/test_gguf.c — the GGUF reader against llama.cpp-written reference files, the writer round trip, and
 * hand-built hostile headers (each must fail with LOOM_ERR_FORMAT and a message naming the problem).
 *
 * Reference values: quant/manifest.json (ne, type ids, absolute data offsets, byte counts, written by the
 * generator from gguf-py's view of the files), llama4-tiny/README.md and manifest.json (keys, tensor counts), and
 * tokenizer/README.md (vocabulary sizes and special token ids); a few token strings were read with an independent
 * Python parser.
 */
#include <jansson.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "core/gguf.h"
#include "core/log.h"
#include "tests/testutil.h"

static int str_eq(loom_gguf_str s, const char *c) { return s.len == strlen(c) && memcmp(s.ptr, c, s.len) == 0; }

static uint32_t key_u32(const loom_gguf *g, const char *key) {
    uint32_t v = 0;
    loom_err err = {0};
    cr_assert_eq(loom_gguf_get_u32(g, key, &v, &err), LOOM_OK, "%s: %s", key, err.msg);
    return v;
}

/* ==== reference files ==== */

Test(gguf, quant_files_match_manifest) {
    char mpath[512], path[600];
    LOOM_SHARED_PATH(mpath, "testdata/quant/manifest.json");
    json_error_t jerr;
    json_t *m = json_load_file(mpath, 0, &jerr);
    cr_assert_not_null(m, "%s", jerr.text);
    json_t *types = json_object_get(m, "types");
    const char *tname;
    json_t *tv;
    int n_files = 0, n_tensors = 0;
    json_object_foreach(types, tname, tv) {
        const char *rel = json_string_value(json_object_get(tv, "gguf"));
        snprintf(path, sizeof path, "%s/testdata/quant/%s", loom_test_shared_root(), rel);
        loom_gguf *g;
        loom_err err = {0};
        cr_assert_eq(loom_gguf_open(&g, path, NULL, &err), LOOM_OK, "%s: %s", path, err.msg);
        cr_assert_eq(loom_gguf_version(g), 3);
        cr_assert_eq(loom_gguf_alignment(g), 32);
        json_t *tensors = json_object_get(tv, "tensors");
        cr_assert_eq(loom_gguf_n_tensors(g), (int64_t)json_object_size(tensors), "%s", tname);
        const char *name;
        json_t *te;
        json_object_foreach(tensors, name, te) {
            const loom_gguf_tensor *t = loom_gguf_find_tensor(g, name);
            cr_assert_not_null(t, "%s: %s missing", tname, name);
            cr_assert_str_eq(t->name, name);
            json_t *ne = json_object_get(te, "ne");
            cr_assert_eq(t->n_dims, (int)json_array_size(ne), "%s %s", tname, name);
            for (int d = 0; d < LOOM_MAX_DIMS; d++) {
                int64_t want = d < t->n_dims ? json_integer_value(json_array_get(ne, (size_t)d)) : 1;
                cr_assert_eq(t->ne[d], want, "%s %s ne[%d]", tname, name, d);
            }
            cr_assert_eq((int)t->type, (int)json_integer_value(json_object_get(te, "ggml_type_id")), "%s %s", tname, name);
            cr_assert_str_eq(loom_type_name(t->type), json_string_value(json_object_get(te, "ggml_type")));
            cr_assert_eq(t->file_offset, (uint64_t)json_integer_value(json_object_get(te, "file_offset")), "%s %s",
                         tname, name);
            cr_assert_eq(t->file_offset, loom_gguf_data_offset(g) + t->offset);
            cr_assert_eq(t->nbytes, (size_t)json_integer_value(json_object_get(te, "n_bytes")), "%s %s", tname, name);
            cr_assert_eq(loom_row_size(t->type, t->ne[0]), (size_t)json_integer_value(json_object_get(te, "row_bytes")));
            cr_assert_not_null(t->data);
            n_tensors++;
        }
        /* the same file read into memory gives the same bytes */
        loom_gguf *g2;
        loom_gguf_params p = {.no_mmap = true};
        cr_assert_eq(loom_gguf_open(&g2, path, &p, &err), LOOM_OK, "%s", err.msg);
        for (int64_t i = 0; i < loom_gguf_n_tensors(g); i++) {
            const loom_gguf_tensor *a = loom_gguf_tensor_at(g, i), *b = loom_gguf_tensor_at(g2, i);
            cr_assert_eq(a->nbytes, b->nbytes);
            cr_assert(a->data != b->data && memcmp(a->data, b->data, a->nbytes) == 0);
        }
        loom_gguf_close(g2);
        loom_gguf_close(g);
        n_files++;
    }
    cr_assert_eq(n_files, 15); /* F32 input + 14 types, Q2_K/Q3_K/IQ4_NL/IQ4_XS among them (load, no compute) */
    cr_assert_eq(n_tensors, 60);
    json_decref(m);
}

Test(gguf, llama4_tiny_scout) {
    char path[512];
    LOOM_SHARED_PATH(path, "testdata/llama4-tiny/models/scout-like-c16.gguf");
    loom_gguf *g;
    loom_err err = {0};
    cr_assert_eq(loom_gguf_open(&g, path, NULL, &err), LOOM_OK, "%s", err.msg);
    loom_gguf_str s;
    cr_assert_eq(loom_gguf_get_str(g, "general.architecture", &s, &err), LOOM_OK);
    cr_assert(str_eq(s, "llama4"));
    cr_assert_eq(key_u32(g, "llama4.block_count"), 8);
    cr_assert_eq(key_u32(g, "llama4.embedding_length"), 128);
    cr_assert_eq(key_u32(g, "llama4.attention.head_count"), 4);
    cr_assert_eq(key_u32(g, "llama4.attention.head_count_kv"), 2);
    cr_assert_eq(key_u32(g, "llama4.expert_count"), 4);
    cr_assert_eq(key_u32(g, "llama4.expert_used_count"), 1);
    cr_assert_eq(key_u32(g, "llama4.context_length"), 16384);
    cr_assert_eq(key_u32(g, "llama4.vocab_size"), 2013);
    cr_assert_eq(key_u32(g, "llama4.expert_feed_forward_length"), 64);
    cr_assert_eq(key_u32(g, "llama4.interleave_moe_layer_step"), 1);
    cr_assert_eq(key_u32(g, "llama4.attention.chunk_size"), 16);
    cr_assert_eq(key_u32(g, "llama4.attention.temperature_floor_scale"), 12);
    cr_assert_eq(key_u32(g, "tokenizer.ggml.bos_token_id"), 2000);
    float f = 0;
    cr_assert_eq(loom_gguf_get_f32(g, "llama4.rope.freq_base", &f, &err), LOOM_OK);
    cr_assert_eq(f, 500000.0f);
    cr_assert(loom_gguf_opt_f32(g, "llama4.attention.layer_norm_rms_epsilon", &f) && f == 1e-5f);
    bool b = false;
    cr_assert(loom_gguf_opt_bool(g, "llama4.use_qk_norm", &b) && b);
    cr_assert_eq(loom_gguf_n_tensors(g), 108);

    /* wrong-typed and missing keys: errors that name the key */
    uint32_t dummy;
    cr_assert_eq(loom_gguf_get_u32(g, "general.architecture", &dummy, &err), LOOM_ERR_FORMAT);
    cr_assert(strstr(err.msg, "general.architecture") && strstr(err.msg, "string"), "%s", err.msg);
    cr_assert_eq(loom_gguf_get_u32(g, "llama4.nope", &(uint32_t){0}, &err), LOOM_ERR_FORMAT);
    cr_assert(strstr(err.msg, "llama4.nope"), "%s", err.msg);
    uint32_t u = 77;
    cr_assert(!loom_gguf_opt_u32(g, "llama4.nope", &u) && u == 77);
    cr_assert_eq(loom_gguf_find_key(g, "llama4"), -1);

    /* vocabulary */
    int64_t k = loom_gguf_find_key(g, "tokenizer.ggml.tokens");
    cr_assert(k >= 0);
    cr_assert_eq(loom_gguf_arr_type(g, k), LOOM_GGUF_STRING);
    cr_assert_eq(loom_gguf_arr_len(g, k), 2013);
    cr_assert(str_eq(loom_gguf_arr_str(g, k, 2000), "<|begin_of_text|>"));
    cr_assert(str_eq(loom_gguf_arr_str(g, k, 2012), "<|patch|>"));
    cr_assert_null(loom_gguf_arr_str(g, k, 2013).ptr);
    int64_t tt = loom_gguf_find_key(g, "tokenizer.ggml.token_type"), v;
    cr_assert(loom_gguf_arr_i64(g, tt, 0, &v) && v == 1);
    cr_assert(loom_gguf_arr_i64(g, tt, 2005, &v) && v == 3);

    /* tensors: shapes, absolute offsets (independent parser), data values */
    const loom_gguf_tensor *rf = loom_gguf_find_tensor(g, "rope_freqs.weight");
    cr_assert_not_null(rf);
    cr_assert_eq(rf->n_dims, 1);
    cr_assert_eq(rf->ne[0], 16);
    cr_assert_eq(rf->file_offset, 65088);
    const float *rv = rf->data;
    for (int i = 0; i < 16; i++) cr_assert_eq(rv[i], i < 9 ? 1.0f : 16.0f, "rope_freqs[%d]", i);
    const loom_gguf_tensor *te = loom_gguf_find_tensor(g, "token_embd.weight");
    cr_assert(te && te->ne[0] == 128 && te->ne[1] == 2013 && te->file_offset == 65152 && te->type == LOOM_F32);
    const loom_gguf_tensor *dn = loom_gguf_find_tensor(g, "blk.7.ffn_down_exps.weight");
    cr_assert(dn && dn->n_dims == 3 && dn->ne[0] == 64 && dn->ne[1] == 128 && dn->ne[2] == 4);
    cr_assert_eq(dn->file_offset, 6263936);
    cr_assert_null(loom_gguf_find_tensor(g, "blk.8.attn_q.weight"));
    for (int64_t i = 0; i < loom_gguf_n_tensors(g); i++)
        cr_assert_eq(loom_gguf_find_tensor(g, loom_gguf_tensor_at(g, i)->name), loom_gguf_tensor_at(g, i));
    loom_gguf_close(g);
}

Test(gguf, llama4_tiny_maverick_and_mmproj) {
    char path[512];
    loom_gguf *g;
    loom_err err = {0};
    LOOM_SHARED_PATH(path, "testdata/llama4-tiny/models/maverick-like-c16.gguf");
    cr_assert_eq(loom_gguf_open(&g, path, NULL, &err), LOOM_OK, "%s", err.msg);
    cr_assert_eq(loom_gguf_n_tensors(g), 91);
    cr_assert_eq(key_u32(g, "llama4.interleave_moe_layer_step"), 2);
    cr_assert_eq(key_u32(g, "llama4.feed_forward_length"), 320);
    bool b = true;
    cr_assert(loom_gguf_opt_bool(g, "llama4.use_qk_norm", &b) && !b);
    cr_assert_null(loom_gguf_find_tensor(g, "rope_freqs.weight"));
    cr_assert_not_null(loom_gguf_find_tensor(g, "blk.0.ffn_gate.weight"));
    cr_assert_not_null(loom_gguf_find_tensor(g, "blk.1.ffn_gate_exps.weight"));
    loom_gguf_close(g);

    LOOM_SHARED_PATH(path, "testdata/llama4-tiny/models/scout-like.gguf");
    cr_assert_eq(loom_gguf_open(&g, path, NULL, &err), LOOM_OK, "%s", err.msg);
    cr_assert_eq(loom_gguf_n_tensors(g), 108);
    cr_assert_eq(loom_gguf_find_key(g, "llama4.attention.chunk_size"), -1); /* plain llama.cpp layout */
    loom_gguf_close(g);

    LOOM_SHARED_PATH(path, "testdata/llama4-tiny/models/mmproj-tiny-llama4.gguf");
    loom_gguf_params mp = {.metadata_only = true};
    cr_assert_eq(loom_gguf_open(&g, path, &mp, &err), LOOM_OK, "%s", err.msg);
    cr_assert_eq(loom_gguf_n_tensors(g), 42);
    loom_gguf_str s;
    cr_assert_eq(loom_gguf_get_str(g, "general.architecture", &s, &err), LOOM_OK);
    cr_assert(str_eq(s, "clip"));
    cr_assert_eq(loom_gguf_get_str(g, "clip.projector_type", &s, &err), LOOM_OK);
    cr_assert(str_eq(s, "llama4"));
    cr_assert_eq(key_u32(g, "clip.vision.image_size"), 336);
    cr_assert_eq(key_u32(g, "clip.vision.patch_size"), 14);
    cr_assert_eq(key_u32(g, "clip.vision.embedding_length"), 64);
    cr_assert_eq(key_u32(g, "clip.vision.feed_forward_length"), 256);
    cr_assert_eq(key_u32(g, "clip.vision.block_count"), 2);
    cr_assert_eq(key_u32(g, "clip.vision.attention.head_count"), 4);
    cr_assert_eq(key_u32(g, "clip.vision.projection_dim"), 128);
    cr_assert_eq(key_u32(g, "clip.vision.projector.scale_factor"), 2);
    int64_t k = loom_gguf_find_key(g, "clip.vision.image_mean");
    double d;
    cr_assert_eq(loom_gguf_arr_len(g, k), 3);
    cr_assert(loom_gguf_arr_f64(g, k, 2, &d) && d == 0.5);
    const loom_gguf_tensor *pe = loom_gguf_find_tensor(g, "v.patch_embd.weight");
    cr_assert(pe && pe->ne[0] == 588 && pe->ne[1] == 64 && pe->file_offset == 151200);
    cr_assert_null(pe->data); /* metadata_only */
    const loom_gguf_tensor *pos = loom_gguf_find_tensor(g, "v.position_embd.weight");
    cr_assert(pos && pos->ne[0] == 64 && pos->ne[1] == 577 && pos->file_offset == 3488);
    loom_gguf_close(g);
}

Test(gguf, llama4_vocab_string_index) {
    char path[512];
    LOOM_SHARED_PATH(path, "testdata/tokenizer/llama4-vocab.gguf");
    loom_gguf *g;
    loom_err err = {0};
    int64_t live = loom_alloc_live_bytes();
    double t0 = loom_time_s();
    cr_assert_eq(loom_gguf_open(&g, path, NULL, &err), LOOM_OK, "%s", err.msg);
    double t_open = loom_time_s() - t0;
    cr_assert_eq(loom_gguf_n_tensors(g), 0);
    cr_assert_eq(loom_gguf_n_kv(g), 14);
    int64_t k = loom_gguf_find_key(g, "tokenizer.ggml.tokens"), m = loom_gguf_find_key(g, "tokenizer.ggml.merges");
    cr_assert_eq(loom_gguf_arr_len(g, k), 202048);
    cr_assert_eq(loom_gguf_arr_len(g, m), 199744);
    cr_assert(str_eq(loom_gguf_arr_str(g, k, 0), "\xc3\x80"));             /* À: byte 0x21 '!'... mapped by GPT-2 */
    cr_assert(str_eq(loom_gguf_arr_str(g, k, 256), "\xc4\xa0\xc4\xa0"));   /* ĠĠ */
    cr_assert(str_eq(loom_gguf_arr_str(g, k, 100000), "\xc4\xa0" "cones"));
    cr_assert(str_eq(loom_gguf_arr_str(g, k, 199999), "(ge"));
    cr_assert(str_eq(loom_gguf_arr_str(g, k, 200000), "<|begin_of_text|>"));
    cr_assert(str_eq(loom_gguf_arr_str(g, k, 200008), "<|eot|>"));
    cr_assert(str_eq(loom_gguf_arr_str(g, k, 200080), "<|image_start|>"));
    cr_assert(str_eq(loom_gguf_arr_str(g, k, 200092), "<|patch|>"));
    cr_assert(str_eq(loom_gguf_arr_str(g, k, 202047), "<|reserved_special_token_903|>"));
    cr_assert(str_eq(loom_gguf_arr_str(g, m, 0), "\xc4\xa0 \xc4\xa0"));
    cr_assert(str_eq(loom_gguf_arr_str(g, m, 199743), "( ge"));
    int64_t v;
    int64_t tt = loom_gguf_find_key(g, "tokenizer.ggml.token_type");
    cr_assert(loom_gguf_arr_i64(g, tt, 199999, &v) && v == 1);
    cr_assert(loom_gguf_arr_i64(g, tt, 200000, &v) && v == 3);
    cr_assert_eq(key_u32(g, "tokenizer.ggml.padding_token_id"), 200018);
    /* O(1) element access: a million random lookups take well under a second */
    uint64_t seed = 42, sum = 0;
    t0 = loom_time_s();
    for (int i = 0; i < 1000000; i++) sum += loom_gguf_arr_str(g, k, loom_test_rand_u64(&seed) % 202048).len;
    double t_look = loom_time_s() - t0;
    cr_assert(sum > 1000000);
    cr_assert_lt(t_look, 1.0, "1M lookups took %.3f s", t_look);
    cr_assert_lt(t_open, 2.0, "open took %.3f s", t_open);
    loom_gguf_close(g);
    cr_assert_eq(loom_alloc_live_bytes(), live);
}

/* ==== writer round trip ==== */

static void fill_bytes(uint8_t *p, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(loom_test_rand_u64(&seed) >> 56);
}

typedef struct rt_data {
    uint8_t f32[64 * 3 * 4], f16[32 * 2 * 2], q8[34 * 4 * 3], q4k[144 * 2 * 2 * 2], iq4[136 * 3], norm[64 * 4];
} rt_data;

static loom_status fill_cb(void *ctx, void *dst, size_t n, loom_err *err) {
    fill_bytes(dst, n, (uint64_t)(uintptr_t)ctx);
    return LOOM_OK;
}

static loom_gguf_writer *build_writer(rt_data *d) {
    loom_gguf_writer *w;
    loom_err err = {0};
    cr_assert_eq(loom_gguf_writer_new(&w, &err), LOOM_OK);
    uint8_t u8 = 200;
    int8_t i8 = -100;
    uint16_t u16 = 60000;
    int16_t i16 = -30000;
    int64_t i64 = -1234567890123LL;
    double f64 = 3.141592653589793;
    cr_assert_eq(loom_gguf_writer_set_str(w, "general.architecture", "test"), LOOM_OK);
    cr_assert_eq(loom_gguf_writer_set_scalar(w, "t.u8", LOOM_GGUF_U8, &u8), LOOM_OK);
    cr_assert_eq(loom_gguf_writer_set_scalar(w, "t.i8", LOOM_GGUF_I8, &i8), LOOM_OK);
    cr_assert_eq(loom_gguf_writer_set_scalar(w, "t.u16", LOOM_GGUF_U16, &u16), LOOM_OK);
    cr_assert_eq(loom_gguf_writer_set_scalar(w, "t.i16", LOOM_GGUF_I16, &i16), LOOM_OK);
    cr_assert_eq(loom_gguf_writer_set_u32(w, "t.u32", 4000000000u), LOOM_OK);
    cr_assert_eq(loom_gguf_writer_set_i32(w, "t.i32", -2000000000), LOOM_OK);
    cr_assert_eq(loom_gguf_writer_set_f32(w, "t.f32", 0.1f), LOOM_OK);
    cr_assert_eq(loom_gguf_writer_set_bool(w, "t.bool", true), LOOM_OK);
    cr_assert_eq(loom_gguf_writer_set_str(w, "t.str", "héllo\nworld"), LOOM_OK);
    cr_assert_eq(loom_gguf_writer_set_u64(w, "t.u64", 18000000000000000000ULL), LOOM_OK);
    cr_assert_eq(loom_gguf_writer_set_scalar(w, "t.i64", LOOM_GGUF_I64, &i64), LOOM_OK);
    cr_assert_eq(loom_gguf_writer_set_scalar(w, "t.f64", LOOM_GGUF_F64, &f64), LOOM_OK);
    cr_assert_eq(loom_gguf_writer_set_scalar(w, "t.bad", LOOM_GGUF_STRING, &f64), LOOM_ERR_INVALID);
    int32_t ai[5] = {1, -2, 3, -4, 5};
    float af[3] = {0.5f, -1.25f, 1e-7f};
    uint8_t ab[4] = {1, 0, 1, 1};
    double ad[2] = {1e300, -2.5};
    cr_assert_eq(loom_gguf_writer_set_arr(w, "t.arr_i32", LOOM_GGUF_I32, ai, 5), LOOM_OK);
    cr_assert_eq(loom_gguf_writer_set_arr(w, "t.arr_f32", LOOM_GGUF_F32, af, 3), LOOM_OK);
    cr_assert_eq(loom_gguf_writer_set_arr(w, "t.arr_bool", LOOM_GGUF_BOOL, ab, 4), LOOM_OK);
    cr_assert_eq(loom_gguf_writer_set_arr(w, "t.arr_f64", LOOM_GGUF_F64, ad, 2), LOOM_OK);
    cr_assert_eq(loom_gguf_writer_set_arr(w, "t.arr_empty", LOOM_GGUF_U16, NULL, 0), LOOM_OK);
    cr_assert_eq(loom_gguf_writer_set_arr(w, "t.arr_bad", LOOM_GGUF_STRING, ai, 1), LOOM_ERR_INVALID);
    const char *strs[] = {"a", "", "ccc", "<|patch|>"};
    cr_assert_eq(loom_gguf_writer_set_arr_str(w, "t.arr_str", strs, 4), LOOM_OK);
    /* nested: [[1,-2,3,-4,5], ["a","","ccc","<|patch|>"], [], [0.5,-1.25,1e-7]] */
    loom_gguf_type nt[4] = {LOOM_GGUF_I32, LOOM_GGUF_STRING, LOOM_GGUF_U8, LOOM_GGUF_F32};
    const void *nd[4] = {ai, strs, NULL, af};
    uint64_t nl[4] = {5, 4, 0, 3};
    cr_assert_eq(loom_gguf_writer_set_arr_arr(w, "t.arr_arr", 4, nt, nd, nl), LOOM_OK);
    /* replacing keeps the position */
    cr_assert_eq(loom_gguf_writer_set_u32(w, "t.replaced", 1), LOOM_OK);
    cr_assert_eq(loom_gguf_writer_set_str(w, "t.replaced", "second"), LOOM_OK);

    fill_bytes(d->f32, sizeof d->f32, 1);
    fill_bytes(d->f16, sizeof d->f16, 2);
    fill_bytes(d->q8, sizeof d->q8, 3);
    fill_bytes(d->q4k, sizeof d->q4k, 4);
    fill_bytes(d->iq4, sizeof d->iq4, 5);
    fill_bytes(d->norm, sizeof d->norm, 6);
    cr_assert_eq(loom_gguf_writer_add_tensor(w, "a.f32", LOOM_F32, 2, (int64_t[]){64, 3}, d->f32, &err), LOOM_OK);
    cr_assert_eq(loom_gguf_writer_add_tensor(w, "b.f16", LOOM_F16, 2, (int64_t[]){32, 2}, d->f16, &err), LOOM_OK);
    cr_assert_eq(loom_gguf_writer_add_tensor(w, "c.q8_0", LOOM_Q8_0, 2, (int64_t[]){128, 3}, d->q8, &err), LOOM_OK);
    cr_assert_eq(loom_gguf_writer_add_tensor(w, "d.q4_k", LOOM_Q4_K, 4, (int64_t[]){256, 2, 2, 2}, d->q4k, &err),
                 LOOM_OK);
    cr_assert_eq(loom_gguf_writer_add_tensor(w, "e.iq4_xs", LOOM_IQ4_XS, 3, (int64_t[]){256, 1, 3}, d->iq4, &err),
                 LOOM_OK);
    cr_assert_eq(loom_gguf_writer_add_tensor(w, "f_norm.weight", LOOM_F32, 1, (int64_t[]){64}, d->norm, &err), LOOM_OK);
    cr_assert_eq(loom_gguf_writer_add_tensor_fill(w, "g.filled", LOOM_Q6_K, 2, (int64_t[]){256, 2}, fill_cb,
                                                  (void *)(uintptr_t)7, &err),
                 LOOM_OK);
    cr_assert_eq(loom_gguf_writer_add_tensor(w, "h.empty", LOOM_F32, 2, (int64_t[]){0, 4}, NULL, &err), LOOM_OK);
    /* refused */
    cr_assert_eq(loom_gguf_writer_add_tensor(w, "a.f32", LOOM_F32, 1, (int64_t[]){4}, d->f32, &err), LOOM_ERR_INVALID);
    cr_assert_eq(loom_gguf_writer_add_tensor(w, "x", LOOM_Q4_K, 1, (int64_t[]){100}, d->q4k, &err), LOOM_ERR_INVALID);
    cr_assert(strstr(err.msg, "block size"), "%s", err.msg);
    cr_assert_eq(loom_gguf_writer_add_tensor(w, "y", LOOM_F32, 5, (int64_t[]){1, 1, 1, 1, 1}, d->f32, &err),
                 LOOM_ERR_INVALID);
    cr_assert_eq(loom_gguf_writer_add_tensor(w, "z", (loom_dtype)4, 1, (int64_t[]){4}, d->f32, &err), LOOM_ERR_INVALID);
    return w;
}

static void check_round_trip(const loom_gguf *g, const rt_data *d, uint64_t align) {
    cr_assert_eq(loom_gguf_version(g), 3);
    cr_assert_eq(loom_gguf_alignment(g), align);
    cr_assert_eq(loom_gguf_data_offset(g) % align, 0);
    int64_t i;
    uint64_t u;
    int64_t s;
    double f;
    bool b;
    loom_gguf_str str;
    cr_assert(loom_gguf_kv_u64(g, loom_gguf_find_key(g, "t.u8"), &u) && u == 200);
    cr_assert(loom_gguf_kv_i64(g, loom_gguf_find_key(g, "t.i8"), &s) && s == -100);
    cr_assert(!loom_gguf_kv_u64(g, loom_gguf_find_key(g, "t.i8"), &u)); /* negative: no unsigned view */
    cr_assert(loom_gguf_kv_u64(g, loom_gguf_find_key(g, "t.u16"), &u) && u == 60000);
    cr_assert(loom_gguf_kv_i64(g, loom_gguf_find_key(g, "t.i16"), &s) && s == -30000);
    cr_assert(loom_gguf_kv_u64(g, loom_gguf_find_key(g, "t.u32"), &u) && u == 4000000000u);
    cr_assert(loom_gguf_kv_i64(g, loom_gguf_find_key(g, "t.i32"), &s) && s == -2000000000);
    cr_assert(loom_gguf_kv_f64(g, loom_gguf_find_key(g, "t.f32"), &f) && (float)f == 0.1f);
    cr_assert(loom_gguf_kv_bool(g, loom_gguf_find_key(g, "t.bool"), &b) && b);
    cr_assert(loom_gguf_kv_str(g, loom_gguf_find_key(g, "t.str"), &str) && str_eq(str, "héllo\nworld"));
    cr_assert(loom_gguf_kv_u64(g, loom_gguf_find_key(g, "t.u64"), &u) && u == 18000000000000000000ULL);
    cr_assert(!loom_gguf_kv_i64(g, loom_gguf_find_key(g, "t.u64"), &s)); /* does not fit */
    cr_assert(loom_gguf_kv_i64(g, loom_gguf_find_key(g, "t.i64"), &s) && s == -1234567890123LL);
    cr_assert(loom_gguf_kv_f64(g, loom_gguf_find_key(g, "t.f64"), &f) && f == 3.141592653589793);
    cr_assert(!loom_gguf_kv_str(g, loom_gguf_find_key(g, "t.f64"), &str));
    cr_assert_eq(loom_gguf_find_key(g, "t.bad"), -1);
    const char *types[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
    for (int t = 0; t < LOOM_GGUF_TYPE_COUNT; t++) cr_assert_str_eq(loom_gguf_type_name((loom_gguf_type)t), types[t]);

    i = loom_gguf_find_key(g, "t.arr_i32");
    cr_assert_eq(loom_gguf_kv_type(g, i), LOOM_GGUF_ARRAY);
    cr_assert_eq(loom_gguf_arr_type(g, i), LOOM_GGUF_I32);
    cr_assert_eq(loom_gguf_arr_len(g, i), 5);
    cr_assert(loom_gguf_arr_i64(g, i, 3, &s) && s == -4);
    cr_assert(!loom_gguf_arr_i64(g, i, 5, &s));
    int32_t raw[5];
    memcpy(raw, loom_gguf_arr_data(g, i), sizeof raw);
    cr_assert(raw[0] == 1 && raw[4] == 5);
    i = loom_gguf_find_key(g, "t.arr_f32");
    cr_assert(loom_gguf_arr_f64(g, i, 2, &f) && (float)f == 1e-7f);
    i = loom_gguf_find_key(g, "t.arr_bool");
    cr_assert_eq(loom_gguf_arr_type(g, i), LOOM_GGUF_BOOL);
    cr_assert_eq(((const uint8_t *)loom_gguf_arr_data(g, i))[1], 0);
    i = loom_gguf_find_key(g, "t.arr_f64");
    cr_assert(loom_gguf_arr_f64(g, i, 0, &f) && f == 1e300);
    i = loom_gguf_find_key(g, "t.arr_empty");
    cr_assert(loom_gguf_arr_type(g, i) == LOOM_GGUF_U16 && loom_gguf_arr_len(g, i) == 0);
    i = loom_gguf_find_key(g, "t.arr_str");
    cr_assert_eq(loom_gguf_arr_len(g, i), 4);
    cr_assert_null(loom_gguf_arr_data(g, i));
    cr_assert(str_eq(loom_gguf_arr_str(g, i, 0), "a") && str_eq(loom_gguf_arr_str(g, i, 1), ""));
    cr_assert(str_eq(loom_gguf_arr_str(g, i, 3), "<|patch|>"));

    i = loom_gguf_find_key(g, "t.arr_arr");
    const loom_gguf_arr *a = loom_gguf_kv_arr(g, i);
    cr_assert_eq(loom_gguf_arrv_type(a), LOOM_GGUF_ARRAY);
    cr_assert_eq(loom_gguf_arrv_len(a), 4);
    const loom_gguf_arr *a0 = loom_gguf_arrv_sub(a, 0), *a1 = loom_gguf_arrv_sub(a, 1), *a2 = loom_gguf_arrv_sub(a, 2),
                        *a3 = loom_gguf_arrv_sub(a, 3);
    cr_assert_null(loom_gguf_arrv_sub(a, 4));
    cr_assert(loom_gguf_arrv_type(a0) == LOOM_GGUF_I32 && loom_gguf_arrv_len(a0) == 5);
    cr_assert(loom_gguf_arrv_i64(a0, 1, &s) && s == -2);
    cr_assert(loom_gguf_arrv_type(a1) == LOOM_GGUF_STRING && str_eq(loom_gguf_arrv_str(a1, 2), "ccc"));
    cr_assert(loom_gguf_arrv_type(a2) == LOOM_GGUF_U8 && loom_gguf_arrv_len(a2) == 0);
    cr_assert(loom_gguf_arrv_f64(a3, 1, &f) && f == -1.25);
    i = loom_gguf_find_key(g, "t.replaced");
    cr_assert(loom_gguf_kv_str(g, i, &str) && str_eq(str, "second"));
    cr_assert(str_eq(loom_gguf_key(g, i), "t.replaced"));
    cr_assert(str_eq(loom_gguf_key(g, i - 1), "t.arr_arr")); /* still after the key set before it */

    struct { const char *name; loom_dtype t; int nd; int64_t ne[4]; const void *data; size_t n; } want[] = {
        {"a.f32", LOOM_F32, 2, {64, 3, 1, 1}, d->f32, sizeof d->f32},
        {"b.f16", LOOM_F16, 2, {32, 2, 1, 1}, d->f16, sizeof d->f16},
        {"c.q8_0", LOOM_Q8_0, 2, {128, 3, 1, 1}, d->q8, sizeof d->q8},
        {"d.q4_k", LOOM_Q4_K, 4, {256, 2, 2, 2}, d->q4k, sizeof d->q4k},
        {"e.iq4_xs", LOOM_IQ4_XS, 3, {256, 1, 3, 1}, d->iq4, sizeof d->iq4},
        {"f_norm.weight", LOOM_F32, 1, {64, 1, 1, 1}, d->norm, sizeof d->norm},
        {"g.filled", LOOM_Q6_K, 2, {256, 2, 1, 1}, NULL, 420},
        {"h.empty", LOOM_F32, 2, {0, 4, 1, 1}, NULL, 0},
    };
    cr_assert_eq(loom_gguf_n_tensors(g), 8);
    for (int k = 0; k < 8; k++) {
        const loom_gguf_tensor *t = loom_gguf_tensor_at(g, k);
        cr_assert_str_eq(t->name, want[k].name);
        cr_assert_eq(loom_gguf_find_tensor(g, want[k].name), t);
        cr_assert_eq(t->type, want[k].t);
        cr_assert_eq(t->n_dims, want[k].nd);
        for (int dd = 0; dd < 4; dd++) cr_assert_eq(t->ne[dd], want[k].ne[dd], "%s ne[%d]", t->name, dd);
        cr_assert_eq(t->nbytes, want[k].n, "%s", t->name);
        cr_assert_eq(t->offset % align, 0);
        if (want[k].data) cr_assert(memcmp(t->data, want[k].data, want[k].n) == 0, "%s data", t->name);
    }
    uint8_t filled[420];
    fill_bytes(filled, sizeof filled, 7);
    cr_assert(memcmp(loom_gguf_find_tensor(g, "g.filled")->data, filled, sizeof filled) == 0);
}

Test(gguf, writer_round_trip_memory_and_file) {
    int64_t live = loom_alloc_live_bytes();
    static rt_data d;
    loom_gguf_writer *w = build_writer(&d);
    loom_err err = {0};
    void *buf;
    size_t size;
    cr_assert_eq(loom_gguf_writer_write_memory(w, &buf, &size, &err), LOOM_OK, "%s", err.msg);
    loom_gguf *g;
    cr_assert_eq(loom_gguf_open_memory(&g, buf, size, &err), LOOM_OK, "%s", err.msg);
    check_round_trip(g, &d, 32);

    /* to a file, then copy every KV and tensor into a second writer: byte-identical output */
    char path[] = "/tmp/loom_gguf_rt_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    cr_assert_eq(loom_gguf_writer_write(w, path, &err), LOOM_OK, "%s", err.msg);
    loom_gguf *gf;
    cr_assert_eq(loom_gguf_open(&gf, path, NULL, &err), LOOM_OK, "%s", err.msg);
    check_round_trip(gf, &d, 32);
    cr_assert_eq(loom_gguf_file_size(gf), size);
    loom_gguf_writer *w2;
    cr_assert_eq(loom_gguf_writer_new(&w2, &err), LOOM_OK);
    cr_assert_eq(loom_gguf_writer_copy_kv(w2, gf, &err), LOOM_OK, "%s", err.msg);
    for (int64_t i = 0; i < loom_gguf_n_tensors(gf); i++) {
        const loom_gguf_tensor *t = loom_gguf_tensor_at(gf, i);
        cr_assert_eq(loom_gguf_writer_add_tensor(w2, t->name, t->type, t->n_dims, t->ne, t->data, &err), LOOM_OK);
    }
    void *buf2;
    size_t size2;
    cr_assert_eq(loom_gguf_writer_write_memory(w2, &buf2, &size2, &err), LOOM_OK, "%s", err.msg);
    cr_assert_eq(size2, size);
    cr_assert(memcmp(buf, buf2, size) == 0);
    loom_free(buf2);
    loom_gguf_writer_free(w2);
    loom_gguf_close(gf);
    unlink(path);

    /* an alignment of 64 is honoured by writer and reader; a bad one is refused by the writer */
    cr_assert_eq(loom_gguf_writer_set_u32(w, "general.alignment", 64), LOOM_OK);
    void *buf3;
    size_t size3;
    cr_assert_eq(loom_gguf_writer_write_memory(w, &buf3, &size3, &err), LOOM_OK, "%s", err.msg);
    loom_gguf *g3;
    cr_assert_eq(loom_gguf_open_memory(&g3, buf3, size3, &err), LOOM_OK, "%s", err.msg);
    check_round_trip(g3, &d, 64);
    loom_gguf_close(g3);
    loom_free(buf3);
    cr_assert_eq(loom_gguf_writer_set_u32(w, "general.alignment", 48), LOOM_OK);
    cr_assert_eq(loom_gguf_writer_write_memory(w, &buf3, &size3, &err), LOOM_ERR_INVALID);

    loom_gguf_close(g);
    loom_free(buf);
    loom_gguf_writer_free(w);
    cr_assert_eq(loom_alloc_live_bytes(), live, "leak: %lld bytes", (long long)(loom_alloc_live_bytes() - live));
}

/* ==== hostile headers ==== */

/* A byte builder for hand-made files. */
typedef struct hb {
    uint8_t p[4096];
    size_t  n;
} hb;
static void hb_put(hb *b, const void *s, size_t n) { memcpy(b->p + b->n, s, n), b->n += n; }
static void hb_u32(hb *b, uint32_t v) { hb_put(b, &v, 4); }
static void hb_u64(hb *b, uint64_t v) { hb_put(b, &v, 8); }
static void hb_str(hb *b, const char *s) { hb_u64(b, strlen(s)), hb_put(b, s, strlen(s)); }
static void hb_head(hb *b, uint64_t n_t, uint64_t n_kv) { b->n = 0, hb_put(b, "GGUF", 4), hb_u32(b, 3), hb_u64(b, n_t), hb_u64(b, n_kv); }
static void hb_tinfo(hb *b, const char *name, uint32_t nd, const uint64_t *ne, uint32_t type, uint64_t off) {
    hb_str(b, name);
    hb_u32(b, nd);
    for (uint32_t d = 0; d < nd; d++) hb_u64(b, ne[d]);
    hb_u32(b, type);
    hb_u64(b, off);
}
static void hb_pad(hb *b, size_t total) { while (b->n < total) b->p[b->n++] = 0; }

static void expect_fail(const hb *b, const char *what, const char *needle) {
    loom_gguf *g = (loom_gguf *)1;
    loom_err err = {0};
    int64_t live = loom_alloc_live_bytes();
    uint8_t *copy = malloc(b->n ? b->n : 1); /* exact size, so ASan sees any overread */
    memcpy(copy, b->p, b->n);
    loom_status s = loom_gguf_open_memory(&g, copy, b->n, &err);
    cr_assert_eq(s, LOOM_ERR_FORMAT, "%s: status %d (%s)", what, s, err.msg);
    cr_assert_null(g);
    cr_assert(strstr(err.msg, needle), "%s: message '%s' lacks '%s'", what, err.msg, needle);
    cr_assert_eq(loom_alloc_live_bytes(), live, "%s: leak", what);
    free(copy);
}

Test(gguf, hostile_headers_rejected_with_clear_messages) {
    hb b;
    hb_head(&b, 0, 0);
    b.p[0] = 'X';
    expect_fail(&b, "magic", "not a GGUF file");
    hb_head(&b, 0, 0);
    b.p[4] = 1;
    expect_fail(&b, "v1", "version 1");
    hb_head(&b, 0, 0);
    memcpy(b.p + 4, "\0\0\0\3", 4);
    expect_fail(&b, "big-endian", "big-endian");
    hb_head(&b, 0, 0);
    b.p[4] = 7;
    expect_fail(&b, "v7", "version 7");
    hb_head(&b, 0, 0);
    b.n = 20;
    expect_fail(&b, "short header", "truncated");

    hb_head(&b, 0, 1ULL << 60);
    hb_pad(&b, 200);
    expect_fail(&b, "n_kv 2^60", "KV count");
    hb_head(&b, UINT64_MAX, 0);
    hb_pad(&b, 200);
    expect_fail(&b, "n_tensors 2^64-1", "tensor count");

    hb_head(&b, 0, 1);
    hb_u64(&b, 1ULL << 62); /* key length */
    hb_pad(&b, 100);
    expect_fail(&b, "key length", "string length");
    hb_head(&b, 0, 1);
    hb_str(&b, "k");
    hb_u32(&b, 13);
    hb_pad(&b, 100);
    expect_fail(&b, "value type", "unknown value type 13");
    hb_head(&b, 0, 1);
    hb_str(&b, "k");
    hb_u32(&b, LOOM_GGUF_ARRAY);
    hb_u32(&b, LOOM_GGUF_U32);
    hb_u64(&b, 1ULL << 61);
    hb_pad(&b, 100);
    expect_fail(&b, "array count", "claims");
    hb_head(&b, 0, 1);
    hb_str(&b, "k");
    hb_u32(&b, LOOM_GGUF_ARRAY);
    hb_u32(&b, LOOM_GGUF_STRING);
    hb_u64(&b, 3);
    hb_str(&b, "x");
    hb_u64(&b, 1000); /* second string runs off the end */
    hb_pad(&b, b.n + 20);
    expect_fail(&b, "array string", "string length 1000");
    hb_head(&b, 0, 1);
    hb_str(&b, "deep");
    hb_u32(&b, LOOM_GGUF_ARRAY);
    for (int d = 0; d < 12; d++) hb_u32(&b, LOOM_GGUF_ARRAY), hb_u64(&b, 1);
    hb_u32(&b, LOOM_GGUF_U8);
    hb_u64(&b, 0);
    expect_fail(&b, "nesting", "nested deeper");
    hb_head(&b, 0, 2);
    hb_str(&b, "dup"), hb_u32(&b, LOOM_GGUF_U8), b.p[b.n++] = 1;
    hb_str(&b, "dup"), hb_u32(&b, LOOM_GGUF_U8), b.p[b.n++] = 2;
    expect_fail(&b, "duplicate key", "duplicate key 'dup'");
    hb_head(&b, 0, 1);
    hb_str(&b, "general.alignment"), hb_u32(&b, LOOM_GGUF_U32), hb_u32(&b, 48);
    expect_fail(&b, "alignment 48", "power of two");
    hb_head(&b, 0, 1);
    hb_str(&b, "general.alignment"), hb_u32(&b, LOOM_GGUF_U32), hb_u32(&b, 0);
    expect_fail(&b, "alignment 0", "power of two");
    hb_head(&b, 0, 1);
    hb_str(&b, "general.alignment"), hb_u32(&b, LOOM_GGUF_STRING), hb_str(&b, "32");
    expect_fail(&b, "alignment string", "expected u32");

    uint64_t ne2[2] = {32, 2};
    hb_head(&b, 1, 0);
    hb_tinfo(&b, "t", 5, (uint64_t[]){1, 1, 1, 1, 1}, 0, 0);
    hb_pad(&b, 512);
    expect_fail(&b, "n_dims 5", "n_dims 5");
    hb_head(&b, 1, 0);
    hb_tinfo(&b, "t", 2, ne2, 4, 0); /* 4 and 5 were Q4_2/Q4_3, removed from ggml */
    hb_pad(&b, 512);
    expect_fail(&b, "type 4", "unknown type id 4");
    hb_head(&b, 1, 0);
    hb_tinfo(&b, "t", 2, ne2, 1000, 0);
    hb_pad(&b, 512);
    expect_fail(&b, "type 1000", "unknown type id 1000");
    hb_head(&b, 1, 0);
    hb_tinfo(&b, "t", 2, (uint64_t[]){1ULL << 40, 1ULL << 40}, 0, 0);
    hb_pad(&b, 512);
    expect_fail(&b, "ne overflow", "overflows");
    hb_head(&b, 1, 0);
    hb_tinfo(&b, "t", 1, (uint64_t[]){UINT64_MAX}, 0, 0);
    hb_pad(&b, 512);
    expect_fail(&b, "ne negative", "overflows");
    hb_head(&b, 1, 0);
    hb_tinfo(&b, "t", 2, (uint64_t[]){1ULL << 60, 4}, 0, 0); /* 2^62 elements fit int64, 2^64 bytes do not */
    hb_pad(&b, 512);
    expect_fail(&b, "bytes overflow", "byte size overflows");
    hb_head(&b, 1, 0);
    hb_tinfo(&b, "t", 2, (uint64_t[]){100, 2}, LOOM_Q4_K, 0);
    hb_pad(&b, 512);
    expect_fail(&b, "block size", "block size");
    hb_head(&b, 1, 0);
    hb_tinfo(&b, "t", 2, ne2, 0, 0);
    hb_pad(&b, 100 + 128);
    expect_fail(&b, "data past end", "outside the file");
    hb_head(&b, 1, 0);
    hb_tinfo(&b, "t", 2, ne2, 0, UINT64_MAX - 31);
    hb_pad(&b, 512);
    expect_fail(&b, "offset overflow", "outside the file");
    hb_head(&b, 1, 0);
    hb_tinfo(&b, "t", 2, ne2, 0, 8);
    hb_pad(&b, 1024);
    expect_fail(&b, "misaligned", "not a multiple of the alignment");
    hb_head(&b, 2, 0);
    hb_tinfo(&b, "t", 2, ne2, 0, 0);
    hb_tinfo(&b, "t", 2, ne2, 0, 256);
    hb_pad(&b, 1024);
    expect_fail(&b, "duplicate tensor", "duplicate tensor name 't'");
    hb_head(&b, 2, 0);
    hb_tinfo(&b, "t0", 2, ne2, 0, 0);
    hb_tinfo(&b, "t1", 2, ne2, 0, 128); /* t0 is 256 bytes */
    hb_pad(&b, 1024);
    expect_fail(&b, "overlap", "overlap");
    hb_head(&b, 1, 0);
    hb_tinfo(&b, "", 2, ne2, 0, 0);
    hb_pad(&b, 1024);
    expect_fail(&b, "empty name", "empty name");
    hb_head(&b, 1, 0);
    hb_tinfo(&b, "t", 2, ne2, 0, 0);
    b.n -= 3;
    expect_fail(&b, "truncated offset", "truncated: tensor offset");

    /* still fine: empty tensors sharing an offset, an unknown-but-valid type (Q2_K), a file of just a header */
    hb_head(&b, 3, 0);
    hb_tinfo(&b, "e0", 1, (uint64_t[]){0}, 0, 0);
    hb_tinfo(&b, "e1", 1, (uint64_t[]){0}, 0, 0);
    hb_tinfo(&b, "q2k", 1, (uint64_t[]){256}, LOOM_Q2_K, 0);
    size_t ds = (b.n + 31) / 32 * 32;
    hb_pad(&b, ds + 84);
    loom_gguf *g;
    loom_err err = {0};
    cr_assert_eq(loom_gguf_open_memory(&g, b.p, b.n, &err), LOOM_OK, "%s", err.msg);
    cr_assert_eq(loom_gguf_find_tensor(g, "q2k")->nbytes, 84);
    cr_assert_eq(loom_gguf_data_offset(g), ds);
    loom_gguf_close(g);
    hb_head(&b, 0, 0);
    cr_assert_eq(loom_gguf_open_memory(&g, b.p, b.n, &err), LOOM_OK, "%s", err.msg);
    cr_assert_eq(loom_gguf_n_kv(g), 0);
    loom_gguf_close(g);
}

Test(gguf, open_errors_from_the_filesystem) {
    loom_gguf *g;
    loom_err err = {0};
    cr_assert_eq(loom_gguf_open(&g, "/nonexistent/x.gguf", NULL, &err), LOOM_ERR_IO);
    cr_assert(strstr(err.msg, "No such file"), "%s", err.msg);
    cr_assert_eq(loom_gguf_open(&g, "/tmp", NULL, &err), LOOM_ERR_IO);
    char path[] = "/tmp/loom_gguf_small_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(write(fd, "GGUF\3\0\0\0", 8) == 8);
    close(fd);
    cr_assert_eq(loom_gguf_open(&g, path, NULL, &err), LOOM_ERR_FORMAT);
    unlink(path);
}

Test(gguf, allocation_failures_are_reported_not_crashed) {
    char path[512];
    LOOM_SHARED_PATH(path, "testdata/llama4-tiny/models/scout-like-c16.gguf");
    size_t size;
    void *buf = loom_test_read_file(path, &size);
    cr_assert_not_null(buf);
    int64_t live = loom_alloc_live_bytes();
    int failures = 0;
    for (int n = 0; n < 40; n++) {
        loom_gguf *g;
        loom_err err = {0};
        loom_alloc_fail_after(n);
        loom_status s = loom_gguf_open_memory(&g, buf, size, &err);
        loom_alloc_fail_after(-1);
        if (s == LOOM_OK) {
            loom_gguf_close(g);
            break;
        }
        cr_assert_eq(s, LOOM_ERR_NOMEM, "after %d allocations: %s", n, err.msg);
        failures++;
        cr_assert_eq(loom_alloc_live_bytes(), live, "leak after failing allocation %d", n);
    }
    cr_assert_gt(failures, 3);
    loom_free(buf);
}
