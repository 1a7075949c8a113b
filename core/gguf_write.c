/* core/gguf_write.c — the GGUF writer (version 3), used to build test models and by `loom quantize`.
 *
 * Each KV is kept as its encoded value bytes (exactly what follows the type field on disk), so setting, replacing
 * and copying values from a reader are the same operation and nested arrays round-trip byte for byte. Tensors are
 * referenced (or produced by a fill callback at write time); their data is laid out in the order they were added,
 * each at a multiple of the alignment (general.alignment when set, else 32), as llama.cpp's writer does, so every
 * file written here also satisfies llama.cpp's stricter "offsets are consecutive" check.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/gguf.h"
#include "core/gguf_int.h"

#define GGUF_WRITER_MAX_NAME 63 /* llama.cpp refuses tensor names of GGML_MAX_NAME (64) bytes or more */

typedef struct wkv {
    char          *key;
    loom_gguf_type type;
    uint8_t       *val;
    size_t         len;
} wkv;

typedef struct wtensor {
    char             *name;
    loom_dtype        type;
    int               n_dims;
    int64_t           ne[LOOM_MAX_DIMS];
    size_t            nbytes;
    uint64_t          offset;
    const void       *data;
    loom_gguf_fill_fn fill;
    void             *ctx;
} wtensor;

struct loom_gguf_writer {
    wkv     *kv;
    int64_t  n_kv, cap_kv;
    wtensor *t;
    int64_t  n_t, cap_t;
};

/* ==== encoded byte buffers ==== */

typedef struct bbuf {
    uint8_t *p;
    size_t   n, cap;
    int      failed;
} bbuf;

static void bb_put(bbuf *b, const void *src, size_t n) {
    if (b->failed) return;
    if (b->cap - b->n < n) {
        size_t nc = b->cap ? b->cap : 64;
        while (nc - b->n < n) {
            if (nc > SIZE_MAX / 2) { b->failed = 1; return; }
            nc *= 2;
        }
        uint8_t *np = loom_realloc(b->p, nc);
        if (!np) { b->failed = 1; return; }
        b->p = np;
        b->cap = nc;
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void bb_u32(bbuf *b, uint32_t v) { bb_put(b, &v, 4); }
static void bb_u64(bbuf *b, uint64_t v) { bb_put(b, &v, 8); }
static void bb_str(bbuf *b, const char *s) {
    size_t n = strlen(s);
    bb_u64(b, n);
    bb_put(b, s, n);
}

/* ==== KVs ==== */

loom_status loom_gguf_writer_new(loom_gguf_writer **out, loom_err *err) {
    *out = loom_calloc(1, sizeof **out);
    return *out ? LOOM_OK : LOOM_FAIL(err, LOOM_ERR_NOMEM, "no memory for a GGUF writer");
}

void loom_gguf_writer_free(loom_gguf_writer *w) {
    if (!w) return;
    for (int64_t i = 0; i < w->n_kv; i++) {
        loom_free(w->kv[i].key);
        loom_free(w->kv[i].val);
    }
    for (int64_t i = 0; i < w->n_t; i++) loom_free(w->t[i].name);
    loom_free(w->kv);
    loom_free(w->t);
    loom_free(w);
}

/* Takes ownership of b's bytes (freed on failure too). */
static loom_status set_kv(loom_gguf_writer *w, const char *key, loom_gguf_type type, bbuf *b) {
    if (b->failed) { loom_free(b->p); return LOOM_ERR_NOMEM; }
    if (!key || !*key) { loom_free(b->p); return LOOM_ERR_INVALID; }
    for (int64_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, key) == 0) {
            loom_free(w->kv[i].val);
            w->kv[i].type = type;
            w->kv[i].val = b->p;
            w->kv[i].len = b->n;
            return LOOM_OK;
        }
    }
    if (w->n_kv == w->cap_kv) {
        int64_t nc = w->cap_kv ? w->cap_kv * 2 : 32;
        wkv *nk = loom_realloc(w->kv, (size_t)nc * sizeof *nk);
        if (!nk) { loom_free(b->p); return LOOM_ERR_NOMEM; }
        w->kv = nk;
        w->cap_kv = nc;
    }
    char *k = loom_strdup(key);
    if (!k) { loom_free(b->p); return LOOM_ERR_NOMEM; }
    w->kv[w->n_kv++] = (wkv){k, type, b->p, b->n};
    return LOOM_OK;
}

void loom_gguf_writer_remove_key(loom_gguf_writer *w, const char *key) {
    for (int64_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, key) != 0) continue;
        loom_free(w->kv[i].key);
        loom_free(w->kv[i].val);
        memmove(&w->kv[i], &w->kv[i + 1], (size_t)(w->n_kv - i - 1) * sizeof *w->kv);
        w->n_kv--;
        return;
    }
}

loom_status loom_gguf_writer_set_scalar(loom_gguf_writer *w, const char *key, loom_gguf_type type, const void *v) {
    size_t sz = loom_gguf_type_size(type);
    if (!sz) return LOOM_ERR_INVALID;
    bbuf b = {0};
    bb_put(&b, v, sz);
    return set_kv(w, key, type, &b);
}

loom_status loom_gguf_writer_set_u32(loom_gguf_writer *w, const char *key, uint32_t v) {
    return loom_gguf_writer_set_scalar(w, key, LOOM_GGUF_U32, &v);
}
loom_status loom_gguf_writer_set_i32(loom_gguf_writer *w, const char *key, int32_t v) {
    return loom_gguf_writer_set_scalar(w, key, LOOM_GGUF_I32, &v);
}
loom_status loom_gguf_writer_set_u64(loom_gguf_writer *w, const char *key, uint64_t v) {
    return loom_gguf_writer_set_scalar(w, key, LOOM_GGUF_U64, &v);
}
loom_status loom_gguf_writer_set_f32(loom_gguf_writer *w, const char *key, float v) {
    return loom_gguf_writer_set_scalar(w, key, LOOM_GGUF_F32, &v);
}
loom_status loom_gguf_writer_set_bool(loom_gguf_writer *w, const char *key, bool v) {
    uint8_t x = v ? 1 : 0;
    return loom_gguf_writer_set_scalar(w, key, LOOM_GGUF_BOOL, &x);
}

loom_status loom_gguf_writer_set_str(loom_gguf_writer *w, const char *key, const char *v) {
    if (!v) return LOOM_ERR_INVALID;
    bbuf b = {0};
    bb_str(&b, v);
    return set_kv(w, key, LOOM_GGUF_STRING, &b);
}

/* Encodes an array body: element type, count, elements. */
static void enc_arr(bbuf *b, loom_gguf_type type, const void *data, uint64_t n) {
    size_t sz = loom_gguf_type_size(type), total;
    bb_u32(b, (uint32_t)type);
    bb_u64(b, n);
    if (type == LOOM_GGUF_STRING) {
        const char *const *s = data;
        for (uint64_t j = 0; j < n; j++) {
            if (!s[j]) { b->failed = 1; return; }
            bb_str(b, s[j]);
        }
    } else if (!sz || n > SIZE_MAX || !loom_size_mul(sz, (size_t)n, &total) || (n && !data)) {
        b->failed = 1;
    } else {
        bb_put(b, data, total);
    }
}

loom_status loom_gguf_writer_set_arr(loom_gguf_writer *w, const char *key, loom_gguf_type type, const void *data,
                                     uint64_t n) {
    if (!loom_gguf_type_size(type) || (n && !data)) return LOOM_ERR_INVALID;
    bbuf b = {0};
    enc_arr(&b, type, data, n);
    return set_kv(w, key, LOOM_GGUF_ARRAY, &b);
}

loom_status loom_gguf_writer_set_arr_str(loom_gguf_writer *w, const char *key, const char *const *strs, uint64_t n) {
    if (n && !strs) return LOOM_ERR_INVALID;
    bbuf b = {0};
    enc_arr(&b, LOOM_GGUF_STRING, strs, n);
    return set_kv(w, key, LOOM_GGUF_ARRAY, &b);
}

loom_status loom_gguf_writer_set_arr_arr(loom_gguf_writer *w, const char *key, uint64_t n, const loom_gguf_type *types,
                                         const void *const *data, const uint64_t *lens) {
    if (n && (!types || !data || !lens)) return LOOM_ERR_INVALID;
    for (uint64_t k = 0; k < n; k++)
        if (types[k] != LOOM_GGUF_STRING && !loom_gguf_type_size(types[k])) return LOOM_ERR_INVALID;
    bbuf b = {0};
    bb_u32(&b, LOOM_GGUF_ARRAY);
    bb_u64(&b, n);
    for (uint64_t k = 0; k < n; k++) enc_arr(&b, types[k], data[k], lens[k]);
    return set_kv(w, key, LOOM_GGUF_ARRAY, &b);
}

loom_status loom_gguf_writer_copy_kv(loom_gguf_writer *w, const loom_gguf *g, loom_err *err) {
    for (int64_t i = 0; i < loom_gguf_n_kv(g); i++) {
        const uint8_t *p;
        uint64_t len;
        if (!gguf_kv_raw(g, i, &p, &len)) continue;
        loom_gguf_str k = loom_gguf_key(g, i);
        char *key = loom_malloc(k.len + 1);
        if (!key) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "no memory to copy key %lld", (long long)i);
        memcpy(key, k.ptr, k.len);
        key[k.len] = 0;
        bbuf b = {0};
        bb_put(&b, p, (size_t)len);
        loom_status s = set_kv(w, key, loom_gguf_kv_type(g, i), &b);
        if (s) {
            s = LOOM_FAIL(err, s, "cannot copy key '%.64s': %s", key, loom_status_str(s));
            loom_free(key);
            return s;
        }
        loom_free(key);
    }
    return LOOM_OK;
}

/* ==== tensors ==== */

static loom_status add_tensor(loom_gguf_writer *w, const char *name, loom_dtype type, int n_dims, const int64_t *ne,
                              const void *data, loom_gguf_fill_fn fill, void *ctx, loom_err *err) {
    size_t nl = name ? strlen(name) : 0;
    if (nl == 0 || nl > GGUF_WRITER_MAX_NAME)
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "tensor name '%.80s' must be 1..%d bytes", name ? name : "",
                         GGUF_WRITER_MAX_NAME);
    for (int64_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0) return LOOM_FAIL(err, LOOM_ERR_INVALID, "duplicate tensor '%s'", name);
    if (n_dims < 1 || n_dims > LOOM_MAX_DIMS)
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "tensor '%s': n_dims %d (must be 1..%d)", name, n_dims, LOOM_MAX_DIMS);
    const loom_type_info *ti = loom_type_info_get(type);
    if (!ti) return LOOM_FAIL(err, LOOM_ERR_INVALID, "tensor '%s': unknown type %d", name, (int)type);
    wtensor t = {.type = type, .n_dims = n_dims, .data = data, .fill = fill, .ctx = ctx};
    int64_t rows = 1;
    for (int d = 0; d < LOOM_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] < 0) return LOOM_FAIL(err, LOOM_ERR_INVALID, "tensor '%s': ne[%d] < 0", name, d);
        if (d > 0 && __builtin_mul_overflow(rows, t.ne[d], &rows))
            return LOOM_FAIL(err, LOOM_ERR_INVALID, "tensor '%s': shape overflows", name);
    }
    if (t.ne[0] % ti->block_size)
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "tensor '%s': ne[0] = %lld is not a multiple of the %s block size %d",
                         name, (long long)t.ne[0], ti->name, ti->block_size);
    size_t row = (size_t)(t.ne[0] / ti->block_size) * (size_t)ti->type_size;
    if (!loom_size_mul(row, (size_t)rows, &t.nbytes))
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "tensor '%s': byte size overflows", name);
    if (t.nbytes && !data && !fill) return LOOM_FAIL(err, LOOM_ERR_INVALID, "tensor '%s': no data", name);
    if (w->n_t == w->cap_t) {
        int64_t nc = w->cap_t ? w->cap_t * 2 : 64;
        wtensor *nt = loom_realloc(w->t, (size_t)nc * sizeof *nt);
        if (!nt) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "no memory for tensor '%s'", name);
        w->t = nt;
        w->cap_t = nc;
    }
    if (!(t.name = loom_strdup(name))) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "no memory for tensor '%s'", name);
    w->t[w->n_t++] = t;
    return LOOM_OK;
}

loom_status loom_gguf_writer_add_tensor(loom_gguf_writer *w, const char *name, loom_dtype type, int n_dims,
                                        const int64_t *ne, const void *data, loom_err *err) {
    return add_tensor(w, name, type, n_dims, ne, data, NULL, NULL, err);
}

loom_status loom_gguf_writer_add_tensor_fill(loom_gguf_writer *w, const char *name, loom_dtype type, int n_dims,
                                             const int64_t *ne, loom_gguf_fill_fn fill, void *ctx, loom_err *err) {
    if (!fill) return LOOM_FAIL(err, LOOM_ERR_INVALID, "tensor '%s': no fill function", name ? name : "");
    return add_tensor(w, name, type, n_dims, ne, NULL, fill, ctx, err);
}

/* ==== output ==== */

/* A sink is a FILE or a preallocated buffer of exactly the file's size. */
typedef struct sink {
    FILE    *f;
    uint8_t *mem;
    uint64_t pos;
} sink;

static loom_status sink_put(sink *s, const void *p, size_t n, loom_err *err) {
    if (!n) return LOOM_OK;
    if (s->f) {
        if (fwrite(p, 1, n, s->f) != n)
            return LOOM_FAIL(err, LOOM_ERR_IO, "write failed at byte %llu: %s", (unsigned long long)s->pos,
                             strerror(errno));
    } else {
        memcpy(s->mem + s->pos, p, n);
    }
    s->pos += n;
    return LOOM_OK;
}

static loom_status sink_pad(sink *s, uint64_t align, loom_err *err) {
    static const uint8_t zeros[256];
    while (s->pos % align) {
        uint64_t k = align - s->pos % align;
        loom_status st = sink_put(s, zeros, k > sizeof zeros ? sizeof zeros : (size_t)k, err);
        if (st) return st;
    }
    return LOOM_OK;
}

/* general.alignment when set (it must then be a u32 power of two, as the reader requires), else 32. */
static loom_status writer_alignment(const loom_gguf_writer *w, uint64_t *align, loom_err *err) {
    *align = 32;
    for (int64_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, "general.alignment") != 0) continue;
        uint32_t a = 0;
        if (w->kv[i].type == LOOM_GGUF_U32) memcpy(&a, w->kv[i].val, 4);
        if (!a || (a & (a - 1)))
            return LOOM_FAIL(err, LOOM_ERR_INVALID, "general.alignment must be a u32 power of two");
        *align = a;
    }
    return LOOM_OK;
}

/* Lays out the header into hdr and the tensor offsets; returns the total file size in *total. */
static loom_status layout(loom_gguf_writer *w, bbuf *hdr, uint64_t *align_out, uint64_t *total, loom_err *err) {
    uint64_t align;
    loom_status st = writer_alignment(w, &align, err);
    if (st) return st;
    *align_out = align;
    bb_put(hdr, "GGUF", 4);
    bb_u32(hdr, 3);
    bb_u64(hdr, (uint64_t)w->n_t);
    bb_u64(hdr, (uint64_t)w->n_kv);
    for (int64_t i = 0; i < w->n_kv; i++) {
        bb_str(hdr, w->kv[i].key);
        bb_u32(hdr, (uint32_t)w->kv[i].type);
        bb_put(hdr, w->kv[i].val, w->kv[i].len);
    }
    uint64_t off = 0;
    for (int64_t i = 0; i < w->n_t; i++) {
        wtensor *t = &w->t[i];
        t->offset = off;
        bb_str(hdr, t->name);
        bb_u32(hdr, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) bb_u64(hdr, (uint64_t)t->ne[d]);
        bb_u32(hdr, (uint32_t)t->type);
        bb_u64(hdr, off);
        uint64_t padded = ((uint64_t)t->nbytes + align - 1) / align * align;
        if (__builtin_add_overflow(off, padded, &off)) return LOOM_FAIL(err, LOOM_ERR_INVALID, "data size overflows");
    }
    if (hdr->failed) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "no memory for the GGUF header");
    uint64_t data_start = (hdr->n + align - 1) / align * align;
    /* a file without tensor data ends after the header, as gguf-py writes it */
    *total = w->n_t ? data_start + off : hdr->n;
    return LOOM_OK;
}

static loom_status emit(loom_gguf_writer *w, sink *s, const bbuf *hdr, uint64_t align, loom_err *err) {
    loom_status st = sink_put(s, hdr->p, hdr->n, err);
    if (st || !w->n_t) return st;
    if ((st = sink_pad(s, align, err))) return st;
    size_t scratch_n = 0;
    for (int64_t i = 0; i < w->n_t; i++)
        if (w->t[i].fill && w->t[i].nbytes > scratch_n) scratch_n = w->t[i].nbytes;
    uint8_t *scratch = NULL;
    if (scratch_n && s->f && !(scratch = loom_malloc(scratch_n)))
        return LOOM_FAIL(err, LOOM_ERR_NOMEM, "no memory for a %zu-byte tensor buffer", scratch_n);
    for (int64_t i = 0; i < w->n_t && !st; i++) {
        wtensor *t = &w->t[i];
        if (t->fill) {
            /* into memory directly, or through the scratch buffer to the file */
            uint8_t *dst = s->f ? scratch : s->mem + s->pos;
            if (t->nbytes && (st = t->fill(t->ctx, dst, t->nbytes, err))) break;
            if (s->f) st = sink_put(s, dst, t->nbytes, err);
            else s->pos += t->nbytes;
        } else {
            st = sink_put(s, t->data, t->nbytes, err);
        }
        if (!st) st = sink_pad(s, align, err);
    }
    loom_free(scratch);
    return st;
}

loom_status loom_gguf_writer_write(loom_gguf_writer *w, const char *path, loom_err *err) {
    bbuf hdr = {0};
    uint64_t align, total;
    loom_status st = layout(w, &hdr, &align, &total, err);
    if (st) { loom_free(hdr.p); return st; }
    FILE *f = fopen(path, "wb");
    if (!f) {
        loom_free(hdr.p);
        return LOOM_FAIL(err, LOOM_ERR_IO, "cannot create: %s", strerror(errno));
    }
    char *iobuf = loom_malloc(1 << 20); /* large sequential writes */
    if (iobuf) setvbuf(f, iobuf, _IOFBF, 1 << 20);
    sink s = {f, NULL, 0};
    st = emit(w, &s, &hdr, align, err);
    if (fclose(f) != 0 && !st) st = LOOM_FAIL(err, LOOM_ERR_IO, "write failed: %s", strerror(errno));
    loom_free(iobuf);
    loom_free(hdr.p);
    if (st) remove(path);
    return st;
}

loom_status loom_gguf_writer_write_memory(loom_gguf_writer *w, void **buf, size_t *size, loom_err *err) {
    *buf = NULL;
    *size = 0;
    bbuf hdr = {0};
    uint64_t align, total;
    loom_status st = layout(w, &hdr, &align, &total, err);
    if (st) { loom_free(hdr.p); return st; }
    uint8_t *mem = total <= SIZE_MAX ? loom_malloc((size_t)total) : NULL;
    if (!mem) {
        loom_free(hdr.p);
        return LOOM_FAIL(err, LOOM_ERR_NOMEM, "no memory for a %llu-byte GGUF", (unsigned long long)total);
    }
    sink s = {NULL, mem, 0};
    st = emit(w, &s, &hdr, align, err);
    loom_free(hdr.p);
    if (st) { loom_free(mem); return st; }
    *buf = mem;
    *size = (size_t)total;
    return LOOM_OK;
}
