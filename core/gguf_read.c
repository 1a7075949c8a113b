/* core/gguf_read.c — the GGUF reader: header, metadata (KV), tensor directory and data mapping.
 *
 * The file is parsed once at open, from a single buffer (an mmap of the file, a loom_malloc'd copy, or a caller's
 * memory). Parsing is a cursor that checks every length against the bytes left before it reads, so it never
 * touches memory past the end and never allocates more than a small multiple of the bytes it has already seen:
 * the KV and tensor tables grow as entries are parsed rather than being sized from the header's counts, and each
 * array is checked against the minimum encoded size of its elements before its index is allocated.
 *
 * What is kept after open:
 *   - KV table: key (points into the buffer), type, and the byte range of the encoded value. Scalars are decoded on
 *     demand (little-endian host assumed; checked below).
 *   - Array nodes: element type, count, offset of the first element; string arrays also an index of each string's
 *     offset (O(1) loom_gguf_arr_str on the 202048-token vocabulary); arrays of arrays a child node per element.
 *   - Tensor table with NUL-terminated name copies, and open-addressing hash tables (FNV-1a) for key and tensor
 *     lookup, which also reject duplicates.
 *
 * Checks on tensor infos: 1 <= n_dims <= 4, every ne in [0, INT64_MAX] with an overflow-free product, a type id
 * that core/tensor.c knows (types loom cannot compute with still load), ne[0] a multiple of the block size, offset a
 * multiple of the alignment, data inside the file, and no two tensors' data ranges overlapping.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/gguf.h"
#include "core/gguf_int.h"
#include "core/log.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF reader decodes values in place and assumes a little-endian host"
#endif

#define GGUF_MAX_DEPTH          8  /* nesting of arrays of arrays; real files use 1 */
#define GGUF_DEFAULT_ALIGNMENT  32
#define GGUF_MIN_KV_BYTES       13 /* u64 key length + u32 type + 1-byte value */
#define GGUF_MIN_TINFO_BYTES    32 /* u64 name length + u32 n_dims + one u64 ne + u32 type + u64 offset */
#define GGUF_MIN_SUBARRAY_BYTES 12 /* u32 element type + u64 count */

struct loom_gguf_arr {
    loom_gguf_type        type;     /* element type */
    uint64_t              n;
    const uint8_t        *data;     /* first encoded element */
    const uint8_t *const *strs;     /* strings: each string's u64 length field (n entries) */
    struct loom_gguf_arr *sub;      /* arrays: n child nodes */
};

typedef struct gguf_kv {
    loom_gguf_str  key;
    loom_gguf_type type;
    const uint8_t *val;     /* encoded value (after the type field) */
    uint64_t       val_len;
    loom_gguf_arr  arr;     /* type == LOOM_GGUF_ARRAY */
} gguf_kv;

typedef struct gguf_hash {
    int64_t *slot; /* index into the table or -1 */
    uint64_t mask;
} gguf_hash;

struct loom_gguf {
    const uint8_t    *buf;
    uint64_t          size;
    void             *map;   /* mmap'd region, or NULL */
    void             *owned; /* loom_malloc_huge'd copy (no_mmap), or NULL */
    int               locked;
    uint32_t          version;
    uint64_t          alignment;
    uint64_t          data_offset;
    gguf_kv          *kv;
    int64_t           n_kv;
    loom_gguf_tensor *tensors;
    int64_t           n_tensors;
    char             *names;
    gguf_hash         kv_hash, t_hash;
};

/* ==== small helpers ==== */

static const char *const type_names[LOOM_GGUF_TYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};
static const uint8_t type_sizes[LOOM_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *loom_gguf_type_name(loom_gguf_type t) {
    return (unsigned)t < LOOM_GGUF_TYPE_COUNT ? type_names[t] : "?";
}

size_t loom_gguf_type_size(loom_gguf_type t) { return (unsigned)t < LOOM_GGUF_TYPE_COUNT ? type_sizes[t] : 0; }

static uint32_t ld_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t ld_u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static uint64_t fnv1a(const char *s, uint64_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (uint64_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ULL;
    return h;
}

/* Printable form of a name from the file for error messages: at most 48 bytes, control bytes as '?'. */
static const char *disp(char out[64], const char *s, uint64_t n) {
    uint64_t k = n < 48 ? n : 48, j = 0;
    for (uint64_t i = 0; i < k; i++) out[j++] = ((uint8_t)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    if (n > k) { memcpy(out + j, "...", 3); j += 3; }
    out[j] = 0;
    return out;
}

/* ==== the parse cursor ==== */

typedef struct cursor {
    const uint8_t *buf;
    uint64_t       size, pos;
    loom_err      *err;
} cursor;

static uint64_t left(const cursor *c) { return c->size - c->pos; }

static loom_status need(cursor *c, uint64_t n, const char *what) {
    if (n <= left(c)) return LOOM_OK;
    return LOOM_FAIL(c->err, LOOM_ERR_FORMAT, "truncated: %s at byte %llu needs %llu bytes, file has %llu left", what,
                     (unsigned long long)c->pos, (unsigned long long)n, (unsigned long long)left(c));
}

static loom_status rd_u32(cursor *c, uint32_t *v, const char *what) {
    loom_status s = need(c, 4, what);
    if (s) return s;
    *v = ld_u32(c->buf + c->pos);
    c->pos += 4;
    return LOOM_OK;
}

static loom_status rd_u64(cursor *c, uint64_t *v, const char *what) {
    loom_status s = need(c, 8, what);
    if (s) return s;
    *v = ld_u64(c->buf + c->pos);
    c->pos += 8;
    return LOOM_OK;
}

static loom_status rd_str(cursor *c, loom_gguf_str *out, const char *what) {
    uint64_t at = c->pos, n;
    loom_status s = rd_u64(c, &n, what);
    if (s) return s;
    if (n > left(c))
        return LOOM_FAIL(c->err, LOOM_ERR_FORMAT, "%s at byte %llu: string length %llu exceeds the %llu bytes left",
                         what, (unsigned long long)at, (unsigned long long)n, (unsigned long long)left(c));
    out->ptr = (const char *)c->buf + c->pos;
    out->len = n;
    c->pos += n;
    return LOOM_OK;
}

/* ==== metadata values ==== */

static void arr_release(loom_gguf_arr *a) {
    if (a->sub)
        for (uint64_t j = 0; j < a->n; j++) arr_release(&a->sub[j]);
    loom_free(a->sub);
    loom_free((void *)a->strs);
    a->sub = NULL;
    a->strs = NULL;
}

/* Parses an array body (element type, count, elements) at the cursor into *a. */
static loom_status parse_array(cursor *c, loom_gguf_arr *a, int depth, const char *key) {
    uint64_t at = c->pos;
    if (depth > GGUF_MAX_DEPTH)
        return LOOM_FAIL(c->err, LOOM_ERR_FORMAT, "key '%s': arrays nested deeper than %d at byte %llu", key,
                         GGUF_MAX_DEPTH, (unsigned long long)at);
    uint32_t t;
    uint64_t n;
    loom_status s;
    if ((s = rd_u32(c, &t, "array element type")) || (s = rd_u64(c, &n, "array length"))) return s;
    if (t >= LOOM_GGUF_TYPE_COUNT)
        return LOOM_FAIL(c->err, LOOM_ERR_FORMAT, "key '%s': array at byte %llu has unknown element type %u", key,
                         (unsigned long long)at, t);
    a->type = (loom_gguf_type)t;
    a->n = 0;
    a->data = c->buf + c->pos;
    uint64_t min = t == LOOM_GGUF_STRING ? 8 : t == LOOM_GGUF_ARRAY ? GGUF_MIN_SUBARRAY_BYTES : type_sizes[t];
    if (n > left(c) / min)
        return LOOM_FAIL(c->err, LOOM_ERR_FORMAT,
                         "key '%s': array at byte %llu claims %llu %s elements, more than the %llu bytes left hold",
                         key, (unsigned long long)at, (unsigned long long)n, type_names[t],
                         (unsigned long long)left(c));
    if (t == LOOM_GGUF_STRING) {
        const uint8_t **idx = loom_malloc(n ? n * sizeof *idx : 1);
        if (!idx) return LOOM_FAIL(c->err, LOOM_ERR_NOMEM, "key '%s': no memory for a %llu-string index", key,
                                   (unsigned long long)n);
        a->strs = idx;
        for (uint64_t j = 0; j < n; j++) {
            loom_gguf_str str;
            idx[j] = c->buf + c->pos;
            if ((s = rd_str(c, &str, "array string"))) return s;
        }
    } else if (t == LOOM_GGUF_ARRAY) {
        a->sub = loom_calloc(n ? n : 1, sizeof *a->sub);
        if (!a->sub) return LOOM_FAIL(c->err, LOOM_ERR_NOMEM, "key '%s': no memory for %llu nested arrays", key,
                                      (unsigned long long)n);
        for (uint64_t j = 0; j < n; j++) {
            a->n = j + 1; /* so arr_release frees what was parsed */
            if ((s = parse_array(c, &a->sub[j], depth + 1, key))) return s;
        }
    } else {
        c->pos += n * min;
    }
    a->n = n;
    return LOOM_OK;
}

/* ==== hash tables (key and tensor lookup; duplicates rejected at build) ==== */

static loom_status hash_init(gguf_hash *h, int64_t n, loom_err *err) {
    uint64_t cap = 16;
    while (cap < (uint64_t)n * 2) cap <<= 1;
    h->slot = loom_malloc(cap * sizeof *h->slot);
    if (!h->slot) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "no memory for a %llu-entry index", (unsigned long long)cap);
    memset(h->slot, 0xff, cap * sizeof *h->slot); /* -1 everywhere */
    h->mask = cap - 1;
    return LOOM_OK;
}

typedef loom_gguf_str (*name_at_fn)(const loom_gguf *g, int64_t i);

static loom_gguf_str kv_name(const loom_gguf *g, int64_t i) { return g->kv[i].key; }
static loom_gguf_str t_name(const loom_gguf *g, int64_t i) {
    return (loom_gguf_str){g->tensors[i].name, strlen(g->tensors[i].name)};
}

/* Returns the index of the entry named s, or -1; *slot_out gets the slot where it is or would go. */
static int64_t hash_find(const loom_gguf *g, const gguf_hash *h, name_at_fn name_at, const char *s, uint64_t n,
                         uint64_t *slot_out) {
    if (!h->slot) return -1;
    uint64_t i = fnv1a(s, n) & h->mask;
    for (;; i = (i + 1) & h->mask) {
        int64_t k = h->slot[i];
        if (k < 0) break;
        loom_gguf_str e = name_at(g, k);
        if (e.len == n && memcmp(e.ptr, s, n) == 0) {
            if (slot_out) *slot_out = i;
            return k;
        }
    }
    if (slot_out) *slot_out = i;
    return -1;
}

/* ==== open ==== */

static loom_status parse_header_and_kv(loom_gguf *g, cursor *c, uint64_t *n_tensors_out) {
    loom_err *err = c->err;
    loom_status s;
    if (c->size < 4 || memcmp(c->buf, "GGUF", 4) != 0) {
        if (c->size < 4)
            return LOOM_FAIL(err, LOOM_ERR_FORMAT, "not a GGUF file: only %llu bytes", (unsigned long long)c->size);
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "not a GGUF file: magic %02x %02x %02x %02x at byte 0 is not 'GGUF'",
                         c->buf[0], c->buf[1], c->buf[2], c->buf[3]);
    }
    c->pos = 4;
    uint32_t version;
    uint64_t n_tensors, n_kv;
    if ((s = rd_u32(c, &version, "version"))) return s;
    if (version == 1) return LOOM_FAIL(err, LOOM_ERR_FORMAT, "GGUF version 1 is not supported (byte 4)");
    if ((version & 0xffff) == 0 && (version >> 16) != 0)
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "big-endian GGUF (version field 0x%08x at byte 4) is not supported",
                         version);
    if (version != 2 && version != 3)
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "unsupported GGUF version %u at byte 4 (2 and 3 are read)", version);
    g->version = version;
    if ((s = rd_u64(c, &n_tensors, "tensor count")) || (s = rd_u64(c, &n_kv, "KV count"))) return s;
    if (n_kv > left(c) / GGUF_MIN_KV_BYTES)
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "KV count %llu at byte 16 is impossible: only %llu bytes follow",
                         (unsigned long long)n_kv, (unsigned long long)left(c));
    if (n_tensors > (left(c) - n_kv * GGUF_MIN_KV_BYTES) / GGUF_MIN_TINFO_BYTES)
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "tensor count %llu at byte 8 is impossible: only %llu bytes follow",
                         (unsigned long long)n_tensors, (unsigned long long)left(c));
    *n_tensors_out = n_tensors;

    /* The table grows as KVs are parsed, so a lying count costs nothing before it is caught. */
    int64_t cap = 0;
    for (uint64_t i = 0; i < n_kv; i++) {
        if (g->n_kv == cap) {
            int64_t nc = cap ? cap * 2 : 32;
            gguf_kv *nk = loom_realloc(g->kv, (size_t)nc * sizeof *nk);
            if (!nk) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "no memory for %lld KV entries", (long long)nc);
            memset(nk + cap, 0, (size_t)(nc - cap) * sizeof *nk);
            g->kv = nk;
            cap = nc;
        }
        gguf_kv *kv = &g->kv[g->n_kv];
        uint64_t at = c->pos;
        char kd[64];
        if ((s = rd_str(c, &kv->key, "KV key"))) return s;
        if (kv->key.len == 0)
            return LOOM_FAIL(err, LOOM_ERR_FORMAT, "KV %llu at byte %llu has an empty key", (unsigned long long)i,
                             (unsigned long long)at);
        disp(kd, kv->key.ptr, kv->key.len);
        uint32_t t;
        uint64_t tat = c->pos;
        if ((s = rd_u32(c, &t, "KV type"))) return s;
        if (t >= LOOM_GGUF_TYPE_COUNT)
            return LOOM_FAIL(err, LOOM_ERR_FORMAT, "key '%s': unknown value type %u at byte %llu", kd, t,
                             (unsigned long long)tat);
        kv->type = (loom_gguf_type)t;
        kv->val = c->buf + c->pos;
        g->n_kv++; /* counted before the value so that close() frees a partly parsed array */
        if (t == LOOM_GGUF_STRING) {
            loom_gguf_str v;
            if ((s = rd_str(c, &v, "KV string value"))) return loom_err_prefix(err, "key '%s': ", kd), s;
        } else if (t == LOOM_GGUF_ARRAY) {
            if ((s = parse_array(c, &kv->arr, 1, kd))) return s;
        } else {
            if ((s = need(c, type_sizes[t], "KV value"))) return loom_err_prefix(err, "key '%s': ", kd), s;
            c->pos += type_sizes[t];
        }
        kv->val_len = (uint64_t)(c->buf + c->pos - kv->val);
    }

    if ((s = hash_init(&g->kv_hash, g->n_kv, err))) return s;
    for (int64_t i = 0; i < g->n_kv; i++) {
        uint64_t slot = 0;
        if (hash_find(g, &g->kv_hash, kv_name, g->kv[i].key.ptr, g->kv[i].key.len, &slot) >= 0) {
            char kd[64];
            return LOOM_FAIL(err, LOOM_ERR_FORMAT, "duplicate key '%s' (KV %lld at byte %llu)",
                             disp(kd, g->kv[i].key.ptr, g->kv[i].key.len), (long long)i,
                             (unsigned long long)((const uint8_t *)g->kv[i].key.ptr - 8 - c->buf));
        }
        g->kv_hash.slot[slot] = i;
    }

    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t ai = loom_gguf_find_key(g, "general.alignment");
    if (ai >= 0) {
        uint64_t al = 0;
        if (g->kv[ai].type != LOOM_GGUF_U32)
            return LOOM_FAIL(err, LOOM_ERR_FORMAT, "general.alignment has type %s, expected u32",
                             type_names[g->kv[ai].type]);
        al = ld_u32(g->kv[ai].val);
        if (al == 0 || (al & (al - 1)) != 0)
            return LOOM_FAIL(err, LOOM_ERR_FORMAT, "general.alignment = %llu is not a power of two",
                             (unsigned long long)al);
        g->alignment = al;
    }
    return LOOM_OK;
}

typedef struct tinfo_tmp {
    uint64_t name_off, name_len;
} tinfo_tmp;

static int cmp_by_offset(const void *a, const void *b, void *ctx) {
    const loom_gguf_tensor *t = ctx;
    uint64_t x = t[*(const int64_t *)a].offset, y = t[*(const int64_t *)b].offset;
    return x < y ? -1 : x > y;
}

static loom_status parse_tensors(loom_gguf *g, cursor *c, uint64_t n_tensors, bool metadata_only) {
    loom_err *err = c->err;
    loom_status s = LOOM_OK;
    tinfo_tmp *tmp = NULL;
    int64_t cap = 0;
    uint64_t names_bytes = 0;
    for (uint64_t i = 0; i < n_tensors; i++) {
        if (g->n_tensors == cap) {
            int64_t nc = cap ? cap * 2 : 64;
            loom_gguf_tensor *nt = loom_realloc(g->tensors, (size_t)nc * sizeof *nt);
            if (nt) g->tensors = nt;
            tinfo_tmp *nn = nt ? loom_realloc(tmp, (size_t)nc * sizeof *nn) : NULL;
            if (!nn) { s = LOOM_FAIL(err, LOOM_ERR_NOMEM, "no memory for %lld tensor infos", (long long)nc); goto done; }
            tmp = nn;
            cap = nc;
        }
        loom_gguf_tensor *t = &g->tensors[g->n_tensors];
        memset(t, 0, sizeof *t);
        uint64_t at = c->pos;
        loom_gguf_str name;
        char nd[64];
        if ((s = rd_str(c, &name, "tensor name"))) goto done;
        disp(nd, name.ptr, name.len);
        if (name.len == 0 || memchr(name.ptr, 0, name.len)) {
            s = LOOM_FAIL(err, LOOM_ERR_FORMAT, "tensor %llu at byte %llu: %s name", (unsigned long long)i,
                          (unsigned long long)at, name.len ? "NUL byte in its" : "empty");
            goto done;
        }
        uint32_t n_dims, type;
        uint64_t dat = c->pos;
        if ((s = rd_u32(c, &n_dims, "tensor n_dims"))) goto done;
        if (n_dims < 1 || n_dims > LOOM_MAX_DIMS) {
            s = LOOM_FAIL(err, LOOM_ERR_FORMAT, "tensor '%s': n_dims %u at byte %llu (must be 1..%d)", nd, n_dims,
                          (unsigned long long)dat, LOOM_MAX_DIMS);
            goto done;
        }
        t->n_dims = (int)n_dims;
        for (int d = 0; d < LOOM_MAX_DIMS; d++) t->ne[d] = 1;
        int64_t nel = 1;
        for (uint32_t d = 0; d < n_dims; d++) {
            uint64_t ne, neat = c->pos;
            if ((s = rd_u64(c, &ne, "tensor dimension"))) goto done;
            if (ne > (uint64_t)INT64_MAX || (ne && __builtin_mul_overflow(nel, (int64_t)ne, &nel))) {
                s = LOOM_FAIL(err, LOOM_ERR_FORMAT, "tensor '%s': ne[%u] = %llu at byte %llu overflows the element count",
                              nd, d, (unsigned long long)ne, (unsigned long long)neat);
                goto done;
            }
            if (ne == 0) nel = 0;
            t->ne[d] = (int64_t)ne;
        }
        uint64_t tat = c->pos;
        if ((s = rd_u32(c, &type, "tensor type"))) goto done;
        const loom_type_info *ti = loom_type_info_get((loom_dtype)type);
        if (!ti) {
            s = LOOM_FAIL(err, LOOM_ERR_FORMAT, "tensor '%s': unknown type id %u at byte %llu", nd, type,
                          (unsigned long long)tat);
            goto done;
        }
        t->type = (loom_dtype)type;
        if (t->ne[0] % ti->block_size) {
            s = LOOM_FAIL(err, LOOM_ERR_FORMAT, "tensor '%s': ne[0] = %lld is not a multiple of the %s block size %d",
                          nd, (long long)t->ne[0], ti->name, ti->block_size);
            goto done;
        }
        /* rows * row bytes; the element count already fits in int64, so only the byte count can overflow */
        size_t row = (size_t)(t->ne[0] / ti->block_size) * (size_t)ti->type_size, nbytes;
        int64_t rows = t->ne[0] ? nel / t->ne[0] : 0;
        if (!loom_size_mul(row, (size_t)rows, &nbytes)) {
            s = LOOM_FAIL(err, LOOM_ERR_FORMAT, "tensor '%s': byte size overflows", nd);
            goto done;
        }
        t->nbytes = nbytes;
        if ((s = rd_u64(c, &t->offset, "tensor offset"))) goto done;
        tmp[g->n_tensors].name_off = (uint64_t)(name.ptr - (const char *)c->buf);
        tmp[g->n_tensors].name_len = name.len;
        names_bytes += name.len + 1;
        g->n_tensors++;
    }

    /* names: one block of NUL-terminated copies (their total is below the file size) */
    g->names = loom_malloc(names_bytes ? names_bytes : 1);
    if (!g->names) { s = LOOM_FAIL(err, LOOM_ERR_NOMEM, "no memory for tensor names"); goto done; }
    char *np = g->names;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        memcpy(np, c->buf + tmp[i].name_off, tmp[i].name_len);
        np[tmp[i].name_len] = 0;
        g->tensors[i].name = np;
        np += tmp[i].name_len + 1;
    }
    if ((s = hash_init(&g->t_hash, g->n_tensors, err))) goto done;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        uint64_t slot = 0;
        const char *nm = g->tensors[i].name;
        if (hash_find(g, &g->t_hash, t_name, nm, strlen(nm), &slot) >= 0) {
            char nd[64];
            s = LOOM_FAIL(err, LOOM_ERR_FORMAT, "duplicate tensor name '%s' (tensor %lld)", disp(nd, nm, strlen(nm)),
                          (long long)i);
            goto done;
        }
        g->t_hash.slot[slot] = i;
    }

    /* data section: starts at the next multiple of the alignment after the tensor infos */
    uint64_t al = g->alignment, ds;
    if (__builtin_add_overflow(c->pos, al - 1, &ds)) {
        s = LOOM_FAIL(err, LOOM_ERR_FORMAT, "data offset overflows");
        goto done;
    }
    g->data_offset = ds & ~(al - 1);
    for (int64_t i = 0; i < g->n_tensors; i++) {
        loom_gguf_tensor *t = &g->tensors[i];
        char nd[64];
        uint64_t fo, end;
        if (t->offset % al) {
            s = LOOM_FAIL(err, LOOM_ERR_FORMAT, "tensor '%s': offset %llu is not a multiple of the alignment %llu",
                          disp(nd, t->name, strlen(t->name)), (unsigned long long)t->offset, (unsigned long long)al);
            goto done;
        }
        if (__builtin_add_overflow(g->data_offset, t->offset, &fo) || __builtin_add_overflow(fo, t->nbytes, &end) ||
            end > c->size) {
            s = LOOM_FAIL(err, LOOM_ERR_FORMAT,
                          "tensor '%s': data at offset %llu + %zu bytes lies outside the file (%llu bytes, data "
                          "section at byte %llu)",
                          disp(nd, t->name, strlen(t->name)), (unsigned long long)t->offset, t->nbytes,
                          (unsigned long long)c->size, (unsigned long long)g->data_offset);
            goto done;
        }
        t->file_offset = fo;
        t->data = metadata_only ? NULL : c->buf + fo;
    }

    /* overlap: sort by offset and compare neighbours (empty tensors may share an offset) */
    if (g->n_tensors > 1) {
        int64_t *order = loom_malloc((size_t)g->n_tensors * sizeof *order);
        if (!order) { s = LOOM_FAIL(err, LOOM_ERR_NOMEM, "no memory for the tensor order"); goto done; }
        for (int64_t i = 0; i < g->n_tensors; i++) order[i] = i;
        qsort_r(order, (size_t)g->n_tensors, sizeof *order, cmp_by_offset, g->tensors);
        int64_t prev = -1;
        for (int64_t k = 0; k < g->n_tensors && !s; k++) {
            const loom_gguf_tensor *t = &g->tensors[order[k]];
            if (t->nbytes == 0) continue;
            if (prev >= 0) {
                const loom_gguf_tensor *p = &g->tensors[prev];
                if (p->offset + p->nbytes > t->offset) {
                    char a[64], b[64];
                    s = LOOM_FAIL(err, LOOM_ERR_FORMAT, "tensors '%s' and '%s' overlap (data bytes %llu..%llu and %llu..)",
                                  disp(a, p->name, strlen(p->name)), disp(b, t->name, strlen(t->name)),
                                  (unsigned long long)p->file_offset,
                                  (unsigned long long)(p->file_offset + p->nbytes),
                                  (unsigned long long)t->file_offset);
                }
            }
            prev = order[k];
        }
        loom_free(order);
    }
done:
    loom_free(tmp);
    return s;
}

static loom_status parse(loom_gguf *g, bool metadata_only, loom_err *err) {
    cursor c = {g->buf, g->size, 0, err};
    uint64_t n_tensors = 0;
    loom_status s = parse_header_and_kv(g, &c, &n_tensors);
    if (!s) s = parse_tensors(g, &c, n_tensors, metadata_only);
    return s;
}

loom_status loom_gguf_open_memory(loom_gguf **out, const void *buf, size_t size, loom_err *err) {
    *out = NULL;
    loom_gguf *g = loom_calloc(1, sizeof *g);
    if (!g) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "no memory for a GGUF handle");
    g->buf = buf;
    g->size = size;
    loom_status s = parse(g, false, err);
    if (s) {
        loom_gguf_close(g);
        return s;
    }
    *out = g;
    return LOOM_OK;
}

static loom_status read_all(int fd, void *dst, uint64_t size, loom_err *err) {
    uint64_t done = 0;
    while (done < size) {
        size_t chunk = size - done > (1u << 30) ? (1u << 30) : (size_t)(size - done);
        ssize_t r = pread(fd, (char *)dst + done, chunk, (off_t)done);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return LOOM_FAIL(err, LOOM_ERR_IO, "read failed at byte %llu: %s", (unsigned long long)done,
                                    strerror(errno));
        if (r == 0) return LOOM_FAIL(err, LOOM_ERR_IO, "file shrank while reading (at byte %llu)", (unsigned long long)done);
        done += (uint64_t)r;
    }
    return LOOM_OK;
}

loom_status loom_gguf_open(loom_gguf **out, const char *path, const loom_gguf_params *params, loom_err *err) {
    *out = NULL;
    loom_gguf_params p = params ? *params : (loom_gguf_params){0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return LOOM_FAIL(err, LOOM_ERR_IO, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return LOOM_FAIL(err, LOOM_ERR_IO, "cannot stat: %s", strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return LOOM_FAIL(err, LOOM_ERR_IO, "not a regular file");
    }
    if (st.st_size < 24) {
        close(fd);
        return LOOM_FAIL(err, LOOM_ERR_FORMAT, "not a GGUF file: only %lld bytes (a header is 24)", (long long)st.st_size);
    }
    loom_gguf *g = loom_calloc(1, sizeof *g);
    if (!g) {
        close(fd);
        return LOOM_FAIL(err, LOOM_ERR_NOMEM, "no memory for a GGUF handle");
    }
    g->size = (uint64_t)st.st_size;
    loom_status s = LOOM_OK;
    /* metadata_only maps too: the mapping costs address space, not reads, and the data is never touched */
    if (!p.no_mmap || p.metadata_only) {
        void *m = mmap(NULL, (size_t)g->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) s = LOOM_FAIL(err, LOOM_ERR_IO, "mmap of %llu bytes failed: %s",
                                           (unsigned long long)g->size, strerror(errno));
        else g->map = m, g->buf = m;
    } else {
        g->owned = loom_malloc_huge((size_t)g->size);
        if (!g->owned) s = LOOM_FAIL(err, LOOM_ERR_NOMEM, "no memory to read %llu bytes", (unsigned long long)g->size);
        else if (!(s = read_all(fd, g->owned, g->size, err))) g->buf = g->owned;
    }
    close(fd);
    if (!s) s = parse(g, p.metadata_only, err);
    if (!s && p.mlock && !p.metadata_only) {
        if (mlock(g->buf, (size_t)g->size) == 0) g->locked = 1;
        else LOOM_WARN("mlock of %llu bytes failed (%s); weights stay pageable (raise 'ulimit -l')",
                       (unsigned long long)g->size, strerror(errno));
    }
    if (s) {
        loom_gguf_close(g);
        return s;
    }
    *out = g;
    return LOOM_OK;
}

void loom_gguf_close(loom_gguf *g) {
    if (!g) return;
    for (int64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].type == LOOM_GGUF_ARRAY) arr_release(&g->kv[i].arr);
    loom_free(g->kv);
    loom_free(g->tensors);
    loom_free(g->names);
    loom_free(g->kv_hash.slot);
    loom_free(g->t_hash.slot);
    if (g->locked) munlock(g->buf, (size_t)g->size);
    if (g->map) munmap(g->map, (size_t)g->size);
    loom_free_huge(g->owned, (size_t)g->size);
    loom_free(g);
}

/* ==== accessors ==== */

uint32_t loom_gguf_version(const loom_gguf *g) { return g->version; }
uint64_t loom_gguf_file_size(const loom_gguf *g) { return g->size; }
uint64_t loom_gguf_alignment(const loom_gguf *g) { return g->alignment; }
uint64_t loom_gguf_data_offset(const loom_gguf *g) { return g->data_offset; }
int64_t  loom_gguf_n_kv(const loom_gguf *g) { return g->n_kv; }

int64_t loom_gguf_find_key(const loom_gguf *g, const char *key) {
    return hash_find(g, &g->kv_hash, kv_name, key, strlen(key), NULL);
}

static const gguf_kv *kv_at(const loom_gguf *g, int64_t i) { return i >= 0 && i < g->n_kv ? &g->kv[i] : NULL; }

loom_gguf_str loom_gguf_key(const loom_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    return kv ? kv->key : (loom_gguf_str){NULL, 0};
}

loom_gguf_type loom_gguf_kv_type(const loom_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    return kv ? kv->type : LOOM_GGUF_TYPE_COUNT;
}

int gguf_kv_raw(const loom_gguf *g, int64_t i, const uint8_t **ptr, uint64_t *len) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv) return 0;
    *ptr = kv->val;
    *len = kv->val_len;
    return 1;
}

/* Decodes one integer of type t at p; 1 = unsigned value in *u, -1 = signed in *s, 0 = not an integer. */
static int load_int(loom_gguf_type t, const uint8_t *p, uint64_t *u, int64_t *s) {
    switch (t) {
    case LOOM_GGUF_U8: *u = *p; return 1;
    case LOOM_GGUF_U16: { uint16_t v; memcpy(&v, p, 2); *u = v; return 1; }
    case LOOM_GGUF_U32: *u = ld_u32(p); return 1;
    case LOOM_GGUF_U64: *u = ld_u64(p); return 1;
    case LOOM_GGUF_I8: *s = (int8_t)*p; return -1;
    case LOOM_GGUF_I16: { int16_t v; memcpy(&v, p, 2); *s = v; return -1; }
    case LOOM_GGUF_I32: { int32_t v; memcpy(&v, p, 4); *s = v; return -1; }
    case LOOM_GGUF_I64: { int64_t v; memcpy(&v, p, 8); *s = v; return -1; }
    default: return 0;
    }
}

static bool val_u64(loom_gguf_type t, const uint8_t *p, uint64_t *out) {
    uint64_t u;
    int64_t s;
    int k = load_int(t, p, &u, &s);
    if (k == 1) { *out = u; return true; }
    if (k == -1 && s >= 0) { *out = (uint64_t)s; return true; }
    return false;
}

static bool val_i64(loom_gguf_type t, const uint8_t *p, int64_t *out) {
    uint64_t u;
    int64_t s;
    int k = load_int(t, p, &u, &s);
    if (k == -1) { *out = s; return true; }
    if (k == 1 && u <= (uint64_t)INT64_MAX) { *out = (int64_t)u; return true; }
    return false;
}

static bool val_f64(loom_gguf_type t, const uint8_t *p, double *out) {
    uint64_t u;
    int64_t s;
    if (t == LOOM_GGUF_F32) { float f; memcpy(&f, p, 4); *out = f; return true; }
    if (t == LOOM_GGUF_F64) { memcpy(out, p, 8); return true; }
    int k = load_int(t, p, &u, &s);
    if (k == 1) { *out = (double)u; return true; }
    if (k == -1) { *out = (double)s; return true; }
    return false;
}

bool loom_gguf_kv_u64(const loom_gguf *g, int64_t i, uint64_t *out) {
    const gguf_kv *kv = kv_at(g, i);
    return kv && val_u64(kv->type, kv->val, out);
}

bool loom_gguf_kv_i64(const loom_gguf *g, int64_t i, int64_t *out) {
    const gguf_kv *kv = kv_at(g, i);
    return kv && val_i64(kv->type, kv->val, out);
}

bool loom_gguf_kv_f64(const loom_gguf *g, int64_t i, double *out) {
    const gguf_kv *kv = kv_at(g, i);
    return kv && val_f64(kv->type, kv->val, out);
}

bool loom_gguf_kv_bool(const loom_gguf *g, int64_t i, bool *out) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || kv->type != LOOM_GGUF_BOOL) return false;
    *out = kv->val[0] != 0;
    return true;
}

bool loom_gguf_kv_str(const loom_gguf *g, int64_t i, loom_gguf_str *out) {
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || kv->type != LOOM_GGUF_STRING) return false;
    out->len = ld_u64(kv->val);
    out->ptr = (const char *)kv->val + 8;
    return true;
}

/* ---- arrays ---- */

const loom_gguf_arr *loom_gguf_kv_arr(const loom_gguf *g, int64_t i) {
    const gguf_kv *kv = kv_at(g, i);
    return kv && kv->type == LOOM_GGUF_ARRAY ? &kv->arr : NULL;
}

const loom_gguf_arr *loom_gguf_arrv_sub(const loom_gguf_arr *a, uint64_t j) {
    return a && a->type == LOOM_GGUF_ARRAY && j < a->n ? &a->sub[j] : NULL;
}

loom_gguf_type loom_gguf_arrv_type(const loom_gguf_arr *a) { return a ? a->type : LOOM_GGUF_TYPE_COUNT; }
uint64_t       loom_gguf_arrv_len(const loom_gguf_arr *a) { return a ? a->n : 0; }

const void *loom_gguf_arrv_data(const loom_gguf_arr *a) {
    return a && type_sizes[a->type] ? a->data : NULL;
}

loom_gguf_str loom_gguf_arrv_str(const loom_gguf_arr *a, uint64_t j) {
    if (!a || a->type != LOOM_GGUF_STRING || j >= a->n) return (loom_gguf_str){NULL, 0};
    return (loom_gguf_str){(const char *)a->strs[j] + 8, ld_u64(a->strs[j])};
}

bool loom_gguf_arrv_f64(const loom_gguf_arr *a, uint64_t j, double *out) {
    if (!a || !type_sizes[a->type] || a->type == LOOM_GGUF_BOOL || j >= a->n) return false;
    return val_f64(a->type, a->data + j * type_sizes[a->type], out);
}

bool loom_gguf_arrv_i64(const loom_gguf_arr *a, uint64_t j, int64_t *out) {
    if (!a || !type_sizes[a->type] || j >= a->n) return false;
    return val_i64(a->type, a->data + j * type_sizes[a->type], out);
}

loom_gguf_type loom_gguf_arr_type(const loom_gguf *g, int64_t i) { return loom_gguf_arrv_type(loom_gguf_kv_arr(g, i)); }
uint64_t       loom_gguf_arr_len(const loom_gguf *g, int64_t i) { return loom_gguf_arrv_len(loom_gguf_kv_arr(g, i)); }
const void    *loom_gguf_arr_data(const loom_gguf *g, int64_t i) { return loom_gguf_arrv_data(loom_gguf_kv_arr(g, i)); }
loom_gguf_str  loom_gguf_arr_str(const loom_gguf *g, int64_t i, uint64_t j) {
    return loom_gguf_arrv_str(loom_gguf_kv_arr(g, i), j);
}
bool loom_gguf_arr_f64(const loom_gguf *g, int64_t i, uint64_t j, double *out) {
    return loom_gguf_arrv_f64(loom_gguf_kv_arr(g, i), j, out);
}
bool loom_gguf_arr_i64(const loom_gguf *g, int64_t i, uint64_t j, int64_t *out) {
    return loom_gguf_arrv_i64(loom_gguf_kv_arr(g, i), j, out);
}

/* ---- typed getters by key ---- */

static loom_status missing(const loom_gguf *g, const char *key, int64_t i, const char *want, loom_err *err) {
    if (i < 0) return LOOM_FAIL(err, LOOM_ERR_FORMAT, "missing key '%s'", key);
    return LOOM_FAIL(err, LOOM_ERR_FORMAT, "key '%s' has type %s, expected %s", key, type_names[g->kv[i].type], want);
}

loom_status loom_gguf_get_u32(const loom_gguf *g, const char *key, uint32_t *out, loom_err *err) {
    int64_t i = loom_gguf_find_key(g, key);
    uint64_t v;
    if (i < 0 || !loom_gguf_kv_u64(g, i, &v)) return missing(g, key, i, "an unsigned integer", err);
    if (v > UINT32_MAX) return LOOM_FAIL(err, LOOM_ERR_FORMAT, "key '%s' = %llu does not fit in u32", key,
                                         (unsigned long long)v);
    *out = (uint32_t)v;
    return LOOM_OK;
}

loom_status loom_gguf_get_f32(const loom_gguf *g, const char *key, float *out, loom_err *err) {
    int64_t i = loom_gguf_find_key(g, key);
    double v;
    if (i < 0 || !loom_gguf_kv_f64(g, i, &v)) return missing(g, key, i, "a number", err);
    *out = (float)v;
    return LOOM_OK;
}

loom_status loom_gguf_get_str(const loom_gguf *g, const char *key, loom_gguf_str *out, loom_err *err) {
    int64_t i = loom_gguf_find_key(g, key);
    if (i < 0 || !loom_gguf_kv_str(g, i, out)) return missing(g, key, i, "string", err);
    return LOOM_OK;
}

bool loom_gguf_opt_u32(const loom_gguf *g, const char *key, uint32_t *out) {
    uint32_t v = 0;
    if (loom_gguf_find_key(g, key) < 0 || loom_gguf_get_u32(g, key, &v, NULL)) return false;
    *out = v;
    return true;
}

bool loom_gguf_opt_f32(const loom_gguf *g, const char *key, float *out) {
    float v = 0.0f;
    if (loom_gguf_find_key(g, key) < 0 || loom_gguf_get_f32(g, key, &v, NULL)) return false;
    *out = v;
    return true;
}

bool loom_gguf_opt_bool(const loom_gguf *g, const char *key, bool *out) {
    return loom_gguf_kv_bool(g, loom_gguf_find_key(g, key), out);
}

/* ==== tensors ==== */

int64_t loom_gguf_n_tensors(const loom_gguf *g) { return g->n_tensors; }

const loom_gguf_tensor *loom_gguf_tensor_at(const loom_gguf *g, int64_t i) {
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const loom_gguf_tensor *loom_gguf_find_tensor(const loom_gguf *g, const char *name) {
    int64_t i = hash_find(g, &g->t_hash, t_name, name, strlen(name), NULL);
    return i >= 0 ? &g->tensors[i] : NULL;
}
