/* cli/cmd_info.c — `loom info FILE.gguf [--json] [--tensors]`: what llama.cpp's gguf-dump shows.
 *
 * Header facts, the architecture's key hyper-parameters (LLM keys `<arch>.*`, or `clip.*` for a vision
 * projector), every metadata pair (long arrays summarised as type, length and first elements), the tensor count,
 * parameter count and totals per type, and with --tensors one line per tensor. --json prints the same content as
 * one JSON object. The file is opened metadata-only: nothing from the data section is read.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "core/alloc.h"
#include "core/gguf.h"
#include "core/tensor.h"

#define TEXT_ARR_HEAD  5   /* array elements shown in text mode */
#define JSON_ARR_FULL  32  /* arrays up to this length are printed whole in JSON */
#define JSON_ARR_HEAD  8   /* otherwise this many */
#define TEXT_STR_MAX   72  /* string bytes shown in text mode */

/* Hyper-parameters of a text model, as `<arch>.<suffix>` (llama.cpp's LLM_KV names). */
static const char *const llm_hparams[] = {
    "vocab_size", "context_length", "embedding_length", "block_count", "feed_forward_length",
    "expert_feed_forward_length", "attention.head_count", "attention.head_count_kv", "attention.key_length",
    "attention.value_length", "attention.layer_norm_rms_epsilon", "rope.dimension_count", "rope.freq_base",
    "rope.scaling.type", "rope.scaling.factor", "expert_count", "expert_used_count", "expert_shared_count",
    "interleave_moe_layer_step", "attention.chunk_size", "attention.temperature_floor_scale", "use_qk_norm",
};

static void usage(FILE *f) {
    fprintf(f,
            "usage: loom info FILE.gguf [--json] [--tensors]\n"
            "\n"
            "Prints a GGUF file's header, key hyper-parameters, metadata, and tensor totals by type.\n"
            "  --tensors   also list every tensor (name, type, ne, offset)\n"
            "  --json      print one JSON object with the same content\n");
}

/* ==== value formatting ==== */

/* Shortest decimal that reads back as the same f32 (or f64). */
static void fmt_real(char *out, size_t n, double v, int is_f32) {
    for (int p = is_f32 ? 6 : 15; p <= 17; p++) {
        snprintf(out, n, "%.*g", p, v);
        if (is_f32 ? (float)strtod(out, NULL) == (float)v : strtod(out, NULL) == v) return;
    }
}

/* Decodes one UTF-8 sequence at s (n bytes left); returns its length, or 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t k;
    unsigned cp;
    if (c < 0x80) return 1;
    else if (c >= 0xc2 && c <= 0xdf) k = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef) k = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4) k = 4, cp = c & 0x07;
    else return 0;
    if (k > n) return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((k == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (k == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return k;
}

/* Text mode: quoted, C escapes for control and invalid bytes, cut at max bytes. */
static void print_str(FILE *f, const char *p, uint64_t len, size_t max) {
    fputc('"', f);
    uint64_t i = 0;
    while (i < len && i < max) {
        unsigned char c = (unsigned char)p[i];
        size_t k = utf8_len((const unsigned char *)p + i, (size_t)(len - i));
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\r') fputs("\\r", f);
        else if (k == 0 || c < 0x20 || c == 0x7f) fprintf(f, "\\x%02x", c);
        else { fwrite(p + i, 1, k, f); i += k; continue; }
        i++;
    }
    fputc('"', f);
    if (len > i) fprintf(f, "... (%llu bytes)", (unsigned long long)len);
}

/* JSON strings must be valid UTF-8: invalid bytes become U+FFFD. */
static json_t *json_str(const char *p, uint64_t len) {
    char *buf = loom_malloc(len * 3 + 1);
    if (!buf) return json_null();
    size_t o = 0;
    for (uint64_t i = 0; i < len;) {
        size_t k = utf8_len((const unsigned char *)p + i, (size_t)(len - i));
        if (k) memcpy(buf + o, p + i, k), o += k, i += k;
        else memcpy(buf + o, "\xef\xbf\xbd", 3), o += 3, i++;
    }
    json_t *j = json_stringn(buf, o);
    loom_free(buf);
    return j ? j : json_null();
}

/* One fixed-size element at p as text. */
static void print_scalar(FILE *f, loom_gguf_type t, const uint8_t *p) {
    char b[64];
    switch (t) {
    case LOOM_GGUF_U8: fprintf(f, "%u", p[0]); break;
    case LOOM_GGUF_I8: fprintf(f, "%d", (int8_t)p[0]); break;
    case LOOM_GGUF_U16: { uint16_t v; memcpy(&v, p, 2); fprintf(f, "%u", v); } break;
    case LOOM_GGUF_I16: { int16_t v; memcpy(&v, p, 2); fprintf(f, "%d", v); } break;
    case LOOM_GGUF_U32: { uint32_t v; memcpy(&v, p, 4); fprintf(f, "%u", v); } break;
    case LOOM_GGUF_I32: { int32_t v; memcpy(&v, p, 4); fprintf(f, "%d", v); } break;
    case LOOM_GGUF_U64: { uint64_t v; memcpy(&v, p, 8); fprintf(f, "%llu", (unsigned long long)v); } break;
    case LOOM_GGUF_I64: { int64_t v; memcpy(&v, p, 8); fprintf(f, "%lld", (long long)v); } break;
    case LOOM_GGUF_F32: { float v; memcpy(&v, p, 4); fmt_real(b, sizeof b, v, 1); fputs(b, f); } break;
    case LOOM_GGUF_F64: { double v; memcpy(&v, p, 8); fmt_real(b, sizeof b, v, 0); fputs(b, f); } break;
    case LOOM_GGUF_BOOL: fputs(p[0] ? "true" : "false", f); break;
    default: fputs("?", f);
    }
}

static json_t *json_scalar(loom_gguf_type t, const uint8_t *p) {
    switch (t) {
    case LOOM_GGUF_U8: return json_integer(p[0]);
    case LOOM_GGUF_I8: return json_integer((int8_t)p[0]);
    case LOOM_GGUF_U16: { uint16_t v; memcpy(&v, p, 2); return json_integer(v); }
    case LOOM_GGUF_I16: { int16_t v; memcpy(&v, p, 2); return json_integer(v); }
    case LOOM_GGUF_U32: { uint32_t v; memcpy(&v, p, 4); return json_integer(v); }
    case LOOM_GGUF_I32: { int32_t v; memcpy(&v, p, 4); return json_integer(v); }
    case LOOM_GGUF_I64: { int64_t v; memcpy(&v, p, 8); return json_integer(v); }
    case LOOM_GGUF_U64: {
        uint64_t v;
        memcpy(&v, p, 8);
        return v <= (uint64_t)INT64_MAX ? json_integer((json_int_t)v) : json_real((double)v);
    }
    case LOOM_GGUF_F32: {
        float v;
        char b[64];
        memcpy(&v, p, 4);
        if (!isfinite(v)) return json_null();
        fmt_real(b, sizeof b, v, 1); /* the f32's shortest decimal, not its exact double expansion */
        return json_real(strtod(b, NULL));
    }
    case LOOM_GGUF_F64: { double v; memcpy(&v, p, 8); return isfinite(v) ? json_real(v) : json_null(); }
    case LOOM_GGUF_BOOL: return json_boolean(p[0]);
    default: return json_null();
    }
}

static void type_label(char *out, size_t n, const loom_gguf_arr *a) {
    if (loom_gguf_arrv_type(a) == LOOM_GGUF_ARRAY)
        snprintf(out, n, "array[%llu]", (unsigned long long)loom_gguf_arrv_len(a));
    else
        snprintf(out, n, "%s[%llu]", loom_gguf_type_name(loom_gguf_arrv_type(a)),
                 (unsigned long long)loom_gguf_arrv_len(a));
}

static void print_arr(FILE *f, const loom_gguf_arr *a) {
    loom_gguf_type t = loom_gguf_arrv_type(a);
    uint64_t n = loom_gguf_arrv_len(a), k = n < TEXT_ARR_HEAD ? n : TEXT_ARR_HEAD;
    size_t sz = loom_gguf_type_size(t);
    fputc('[', f);
    for (uint64_t j = 0; j < k; j++) {
        if (j) fputs(", ", f);
        if (t == LOOM_GGUF_STRING) {
            loom_gguf_str s = loom_gguf_arrv_str(a, j);
            print_str(f, s.ptr, s.len, 32);
        } else if (t == LOOM_GGUF_ARRAY) {
            print_arr(f, loom_gguf_arrv_sub(a, j));
        } else {
            print_scalar(f, t, (const uint8_t *)loom_gguf_arrv_data(a) + j * sz);
        }
    }
    if (n > k) fprintf(f, ", ... %llu more", (unsigned long long)(n - k));
    fputc(']', f);
}

static json_t *json_arr_values(const loom_gguf_arr *a, uint64_t k) {
    loom_gguf_type t = loom_gguf_arrv_type(a);
    size_t sz = loom_gguf_type_size(t);
    json_t *v = json_array();
    for (uint64_t j = 0; j < k; j++) {
        if (t == LOOM_GGUF_STRING) {
            loom_gguf_str s = loom_gguf_arrv_str(a, j);
            json_array_append_new(v, json_str(s.ptr, s.len));
        } else if (t == LOOM_GGUF_ARRAY) {
            const loom_gguf_arr *sub = loom_gguf_arrv_sub(a, j);
            uint64_t sn = loom_gguf_arrv_len(sub);
            json_array_append_new(v, json_arr_values(sub, sn <= JSON_ARR_FULL ? sn : JSON_ARR_HEAD));
        } else {
            json_array_append_new(v, json_scalar(t, (const uint8_t *)loom_gguf_arrv_data(a) + j * sz));
        }
    }
    return v;
}

/* Value of KV i as {"type": ..., "value": ...}, arrays with elem_type/len and a head when long. */
static json_t *json_kv(const loom_gguf *g, int64_t i) {
    json_t *o = json_object();
    loom_gguf_type t = loom_gguf_kv_type(g, i);
    json_object_set_new(o, "type", json_string(loom_gguf_type_name(t)));
    if (t == LOOM_GGUF_STRING) {
        loom_gguf_str s;
        loom_gguf_kv_str(g, i, &s);
        json_object_set_new(o, "value", json_str(s.ptr, s.len));
    } else if (t == LOOM_GGUF_ARRAY) {
        const loom_gguf_arr *a = loom_gguf_kv_arr(g, i);
        uint64_t n = loom_gguf_arrv_len(a);
        json_object_set_new(o, "elem_type", json_string(loom_gguf_type_name(loom_gguf_arrv_type(a))));
        json_object_set_new(o, "len", json_integer((json_int_t)n));
        if (n <= JSON_ARR_FULL) {
            json_object_set_new(o, "value", json_arr_values(a, n));
        } else {
            json_object_set_new(o, "head", json_arr_values(a, JSON_ARR_HEAD));
            json_object_set_new(o, "truncated", json_true());
        }
    } else {
        /* scalar: reuse the raw-bytes formatter through a one-element view */
        uint64_t u;
        int64_t s;
        double d;
        bool b;
        if (t == LOOM_GGUF_BOOL && loom_gguf_kv_bool(g, i, &b)) json_object_set_new(o, "value", json_boolean(b));
        else if (t == LOOM_GGUF_F32 && loom_gguf_kv_f64(g, i, &d)) {
            float fv = (float)d;
            json_object_set_new(o, "value", json_scalar(LOOM_GGUF_F32, (const uint8_t *)&fv));
        } else if (t == LOOM_GGUF_F64 && loom_gguf_kv_f64(g, i, &d))
            json_object_set_new(o, "value", isfinite(d) ? json_real(d) : json_null());
        else if (loom_gguf_kv_i64(g, i, &s)) json_object_set_new(o, "value", json_integer(s));
        else if (loom_gguf_kv_u64(g, i, &u)) json_object_set_new(o, "value", json_real((double)u));
    }
    return o;
}

static void print_kv_value(FILE *f, const loom_gguf *g, int64_t i) {
    loom_gguf_type t = loom_gguf_kv_type(g, i);
    if (t == LOOM_GGUF_STRING) {
        loom_gguf_str s;
        loom_gguf_kv_str(g, i, &s);
        print_str(f, s.ptr, s.len, TEXT_STR_MAX);
    } else if (t == LOOM_GGUF_ARRAY) {
        print_arr(f, loom_gguf_kv_arr(g, i));
    } else {
        uint64_t u;
        int64_t s;
        double d;
        bool b;
        char buf[64];
        if (t == LOOM_GGUF_BOOL && loom_gguf_kv_bool(g, i, &b)) fputs(b ? "true" : "false", f);
        else if ((t == LOOM_GGUF_F32 || t == LOOM_GGUF_F64) && loom_gguf_kv_f64(g, i, &d))
            fmt_real(buf, sizeof buf, d, t == LOOM_GGUF_F32), fputs(buf, f);
        else if (loom_gguf_kv_i64(g, i, &s)) fprintf(f, "%lld", (long long)s);
        else if (loom_gguf_kv_u64(g, i, &u)) fprintf(f, "%llu", (unsigned long long)u);
    }
}

/* ==== summaries ==== */

typedef struct type_total {
    int64_t  n;
    uint64_t params, bytes;
} type_total;

static uint64_t n_elements(const loom_gguf_tensor *t) {
    uint64_t n = 1;
    for (int d = 0; d < LOOM_MAX_DIMS; d++) n *= (uint64_t)t->ne[d]; /* fits: the reader checked the product */
    return n;
}

static void key_str(char *out, size_t n, loom_gguf_str k) {
    size_t m = k.len < n - 1 ? (size_t)k.len : n - 1;
    memcpy(out, k.ptr, m);
    out[m] = 0;
}

/* Calls fn(label, kv index) for each key hyper-parameter present. */
typedef void (*hparam_fn)(void *ctx, const char *label, int64_t i);

static void for_hparams(const loom_gguf *g, const char *arch, hparam_fn fn, void *ctx) {
    char key[256];
    if (arch && strcmp(arch, "clip") != 0) {
        for (size_t h = 0; h < sizeof llm_hparams / sizeof llm_hparams[0]; h++) {
            snprintf(key, sizeof key, "%s.%s", arch, llm_hparams[h]);
            int64_t i = loom_gguf_find_key(g, key);
            if (i >= 0) fn(ctx, llm_hparams[h], i);
        }
    }
    /* clip (mmproj): every clip.* key is a hyper-parameter of the vision tower or projector */
    for (int64_t i = 0; i < loom_gguf_n_kv(g); i++) {
        loom_gguf_str k = loom_gguf_key(g, i);
        if (k.len > 5 && memcmp(k.ptr, "clip.", 5) == 0) {
            key_str(key, sizeof key, k);
            fn(ctx, key, i);
        }
    }
}

static void text_hparam(void *ctx, const char *label, int64_t i) {
    const loom_gguf *g = ctx;
    printf("  %-40s ", label);
    print_kv_value(stdout, g, i);
    putchar('\n');
}

static void json_hparam(void *ctx, const char *label, int64_t i) {
    void **c = ctx;
    json_t *kv = json_kv(c[0], i), *v = json_object_get(kv, "value");
    if (!v) v = json_object_get(kv, "head");
    json_object_set(c[1], label, v ? v : json_null());
    json_decref(kv);
}

/* The vocabulary size when no <arch>.vocab_size key says it: the token list's length. */
static int64_t n_vocab_tokens(const loom_gguf *g) {
    int64_t i = loom_gguf_find_key(g, "tokenizer.ggml.tokens");
    return i >= 0 && loom_gguf_kv_type(g, i) == LOOM_GGUF_ARRAY ? (int64_t)loom_gguf_arr_len(g, i) : -1;
}

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    int json = 0, tensors = 0;
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--json")) json = 1;
        else if (!strcmp(argv[a], "--tensors")) tensors = 1;
        else if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) { usage(stdout); return 0; }
        else if (argv[a][0] == '-' && argv[a][1]) {
            fprintf(stderr, "loom info: unknown option '%s'\n", argv[a]);
            usage(stderr);
            return 2;
        } else if (path) {
            fprintf(stderr, "loom info: one file at a time ('%s' and '%s')\n", path, argv[a]);
            return 2;
        } else path = argv[a];
    }
    if (!path) {
        usage(stderr);
        return 2;
    }

    loom_gguf *g;
    loom_err err = {0};
    loom_gguf_params gp = {.metadata_only = true};
    if (loom_gguf_open(&g, path, &gp, &err) != LOOM_OK) {
        fprintf(stderr, "loom: %s: %s\n", path, err.msg);
        return 1;
    }

    char arch[128] = "";
    loom_gguf_str s;
    if (loom_gguf_get_str(g, "general.architecture", &s, NULL) == LOOM_OK)
        key_str(arch, sizeof arch, s);

    type_total by_type[LOOM_DTYPE_COUNT] = {{0}};
    uint64_t params = 0, bytes = 0;
    for (int64_t i = 0; i < loom_gguf_n_tensors(g); i++) {
        const loom_gguf_tensor *t = loom_gguf_tensor_at(g, i);
        uint64_t n = n_elements(t);
        by_type[t->type].n++;
        by_type[t->type].params += n;
        by_type[t->type].bytes += t->nbytes;
        params += n;
        bytes += t->nbytes;
    }
    int64_t vocab_tokens = n_vocab_tokens(g);

    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "file", json_str(path, strlen(path)));
        json_object_set_new(o, "version", json_integer(loom_gguf_version(g)));
        json_object_set_new(o, "file_size", json_integer((json_int_t)loom_gguf_file_size(g)));
        json_object_set_new(o, "alignment", json_integer((json_int_t)loom_gguf_alignment(g)));
        json_object_set_new(o, "data_offset", json_integer((json_int_t)loom_gguf_data_offset(g)));
        json_object_set_new(o, "architecture", arch[0] ? json_str(arch, strlen(arch)) : json_null());
        json_t *hp = json_object();
        void *ctx[2] = {g, hp};
        for_hparams(g, arch[0] ? arch : NULL, json_hparam, ctx);
        if (!json_object_get(hp, "vocab_size") && vocab_tokens >= 0)
            json_object_set_new(hp, "vocab_size", json_integer(vocab_tokens));
        json_object_set_new(o, "hparams", hp);
        json_object_set_new(o, "n_kv", json_integer(loom_gguf_n_kv(g)));
        json_t *md = json_object();
        for (int64_t i = 0; i < loom_gguf_n_kv(g); i++) {
            loom_gguf_str k = loom_gguf_key(g, i);
            json_t *ks = json_str(k.ptr, k.len);
            json_object_set_new(md, json_string_value(ks) ? json_string_value(ks) : "?", json_kv(g, i));
            json_decref(ks);
        }
        json_object_set_new(o, "metadata", md);
        json_object_set_new(o, "n_tensors", json_integer(loom_gguf_n_tensors(g)));
        json_object_set_new(o, "n_params", json_integer((json_int_t)params));
        json_object_set_new(o, "n_bytes", json_integer((json_int_t)bytes));
        json_t *bt = json_object();
        for (int t = 0; t < LOOM_DTYPE_COUNT; t++) {
            if (!by_type[t].n) continue;
            json_t *e = json_object();
            json_object_set_new(e, "tensors", json_integer(by_type[t].n));
            json_object_set_new(e, "params", json_integer((json_int_t)by_type[t].params));
            json_object_set_new(e, "bytes", json_integer((json_int_t)by_type[t].bytes));
            json_object_set_new(bt, loom_type_name((loom_dtype)t), e);
        }
        json_object_set_new(o, "by_type", bt);
        if (tensors) {
            json_t *ta = json_array();
            for (int64_t i = 0; i < loom_gguf_n_tensors(g); i++) {
                const loom_gguf_tensor *t = loom_gguf_tensor_at(g, i);
                json_t *e = json_object(), *ne = json_array();
                for (int d = 0; d < t->n_dims; d++) json_array_append_new(ne, json_integer(t->ne[d]));
                json_object_set_new(e, "name", json_str(t->name, strlen(t->name)));
                json_object_set_new(e, "type", json_string(loom_type_name(t->type)));
                json_object_set_new(e, "ne", ne);
                json_object_set_new(e, "offset", json_integer((json_int_t)t->offset));
                json_object_set_new(e, "file_offset", json_integer((json_int_t)t->file_offset));
                json_object_set_new(e, "n_bytes", json_integer((json_int_t)t->nbytes));
                json_array_append_new(ta, e);
            }
            json_object_set_new(o, "tensors", ta);
        }
        char *txt = json_dumps(o, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
        json_decref(o);
        loom_gguf_close(g);
        if (!txt) {
            fprintf(stderr, "loom: %s: cannot format JSON\n", path);
            return 1;
        }
        puts(txt);
        free(txt);
        return 0;
    }

    printf("%s: GGUF v%u, %llu bytes, alignment %llu, data at byte %llu\n", path, loom_gguf_version(g),
           (unsigned long long)loom_gguf_file_size(g), (unsigned long long)loom_gguf_alignment(g),
           (unsigned long long)loom_gguf_data_offset(g));
    printf("architecture: %s\n", arch[0] ? arch : "(none)");
    printf("\nhyper-parameters:\n");
    for_hparams(g, arch[0] ? arch : NULL, text_hparam, g);
    char vk[160];
    snprintf(vk, sizeof vk, "%s.vocab_size", arch);
    if ((!arch[0] || loom_gguf_find_key(g, vk) < 0) && vocab_tokens >= 0)
        printf("  %-40s %lld (tokenizer.ggml.tokens)\n", "vocab_size", (long long)vocab_tokens);

    printf("\nmetadata: %lld keys\n", (long long)loom_gguf_n_kv(g));
    for (int64_t i = 0; i < loom_gguf_n_kv(g); i++) {
        loom_gguf_str k = loom_gguf_key(g, i);
        char tl[64];
        loom_gguf_type t = loom_gguf_kv_type(g, i);
        if (t == LOOM_GGUF_ARRAY) type_label(tl, sizeof tl, loom_gguf_kv_arr(g, i));
        else snprintf(tl, sizeof tl, "%s", loom_gguf_type_name(t));
        printf("  %4lld  ", (long long)i);
        int plain = k.len <= 60;
        for (uint64_t j = 0; j < k.len && plain; j++) plain = k.ptr[j] > 0x20 && k.ptr[j] < 0x7f && k.ptr[j] != '"';
        if (plain) printf("%-42.*s", (int)k.len, k.ptr);
        else print_str(stdout, k.ptr, k.len, 96);
        printf(" %-16s = ", tl);
        print_kv_value(stdout, g, i);
        putchar('\n');
    }

    printf("\ntensors: %lld, parameters: %llu (%.2f M), data: %llu bytes (%.2f MiB)\n",
           (long long)loom_gguf_n_tensors(g), (unsigned long long)params, (double)params / 1e6,
           (unsigned long long)bytes, (double)bytes / (1024.0 * 1024.0));
    for (int t = 0; t < LOOM_DTYPE_COUNT; t++) {
        if (!by_type[t].n) continue;
        printf("  %-7s %6lld tensors  %14llu params  %14llu bytes\n", loom_type_name((loom_dtype)t),
               (long long)by_type[t].n, (unsigned long long)by_type[t].params, (unsigned long long)by_type[t].bytes);
    }
    if (tensors) {
        printf("\n  %5s  %-40s %-7s %-28s %12s %12s %12s\n", "#", "name", "type", "ne", "offset", "file_offset",
               "bytes");
        for (int64_t i = 0; i < loom_gguf_n_tensors(g); i++) {
            const loom_gguf_tensor *t = loom_gguf_tensor_at(g, i);
            char ne[128];
            int o = snprintf(ne, sizeof ne, "[");
            for (int d = 0; d < t->n_dims; d++)
                o += snprintf(ne + o, sizeof ne - (size_t)o, "%s%lld", d ? ", " : "", (long long)t->ne[d]);
            snprintf(ne + o, sizeof ne - (size_t)o, "]");
            char name[64];
            size_t nl = strlen(t->name), k = nl < sizeof name - 1 ? nl : sizeof name - 1;
            for (size_t j = 0; j < k; j++) name[j] = ((unsigned char)t->name[j] < 0x20 || t->name[j] == 0x7f) ? '?' : t->name[j];
            name[k] = 0;
            printf("  %5lld  %-40s %-7s %-28s %12llu %12llu %12zu\n", (long long)i, name, loom_type_name(t->type),
                   ne, (unsigned long long)t->offset, (unsigned long long)t->file_offset, t->nbytes);
        }
    }
    loom_gguf_close(g);
    return 0;
}
