/* tests/core/test_gguf_fuzz.c — 1,000 corrupted copies of small real GGUF files through loom_gguf_open_memory.
 *
 * Each copy gets one corruption: a truncation at a random length, a few flipped bytes in the header region, or a
 * hostile value (huge, zero, all-ones, off-by-one, a bad type id, a non-power-of-two alignment) written into a
 * header, KV or tensor-info field that a small walker located in the clean file. Every open must either fail
 * with a status and a non-empty message, or succeed with every KV value, array element and tensor byte readable
 * inside the buffer (the copy is an exact-size malloc, so ASan flags any overread), and leak nothing.
 */
#include <string.h>

#include "core/gguf.h"
#include "tests/testutil.h"

/* ==== locating fields in a clean file ==== */

typedef enum field_kind { F_COUNT, F_STRLEN, F_TYPE, F_ARRLEN, F_NDIMS, F_NE, F_TTYPE, F_OFFSET, F_ALIGN } field_kind;

typedef struct field {
    field_kind kind;
    size_t     pos;
    int        width; /* 4 or 8 */
} field;

typedef struct walker {
    const uint8_t *p;
    size_t         n, pos;
    field         *f;
    int            nf, cap;
} walker;

static void add(walker *w, field_kind k, int width) {
    if (w->nf < w->cap) w->f[w->nf++] = (field){k, w->pos, width};
}
static uint64_t take(walker *w, int width) {
    uint64_t v = 0;
    memcpy(&v, w->p + w->pos, (size_t)width);
    w->pos += (size_t)width;
    return v;
}
static void walk_str(walker *w) {
    add(w, F_STRLEN, 8);
    w->pos += take(w, 8);
}
static const int gsize[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
static void walk_arr(walker *w) {
    add(w, F_TYPE, 4);
    uint32_t t = (uint32_t)take(w, 4);
    add(w, F_ARRLEN, 8);
    uint64_t n = take(w, 8);
    for (uint64_t j = 0; j < n; j++) {
        if (t == 8) walk_str(w);
        else if (t == 9) walk_arr(w);
        else { w->pos += (size_t)gsize[t] * (n - j); break; }
        /* the field list only needs a sample of a long array's elements */
        if (j == 16 && t == 8) {
            for (j++; j < n; j++) w->pos += 8 + take(w, 8);
            break;
        }
    }
}

/* Walks a known-good file (the reader already accepted it). */
static int walk(const uint8_t *p, size_t n, field *f, int cap) {
    walker w = {p, n, 8, f, 0, cap};
    add(&w, F_COUNT, 8);
    uint64_t nt = take(&w, 8);
    add(&w, F_COUNT, 8);
    uint64_t nkv = take(&w, 8);
    for (uint64_t i = 0; i < nkv; i++) {
        size_t kpos = w.pos + 8;
        walk_str(&w);
        int is_align = memcmp(p + kpos, "general.alignment", 17) == 0;
        add(&w, F_TYPE, 4);
        uint32_t t = (uint32_t)take(&w, 4);
        if (is_align) add(&w, F_ALIGN, 4);
        if (t == 8) walk_str(&w);
        else if (t == 9) walk_arr(&w);
        else w.pos += (size_t)gsize[t];
    }
    for (uint64_t i = 0; i < nt; i++) {
        walk_str(&w);
        add(&w, F_NDIMS, 4);
        uint32_t nd = (uint32_t)take(&w, 4);
        for (uint32_t d = 0; d < nd; d++) add(&w, F_NE, 8), w.pos += 8;
        add(&w, F_TTYPE, 4);
        w.pos += 4;
        add(&w, F_OFFSET, 8);
        w.pos += 8;
    }
    return w.nf;
}

/* ==== checking one corrupted copy ==== */

static uint64_t touch_arr(const loom_gguf_arr *a) {
    uint64_t h = 0, n = loom_gguf_arrv_len(a);
    loom_gguf_type t = loom_gguf_arrv_type(a);
    for (uint64_t j = 0; j < n; j++) {
        if (t == LOOM_GGUF_STRING) {
            loom_gguf_str s = loom_gguf_arrv_str(a, j);
            if (s.len) h += (uint8_t)s.ptr[0] + (uint8_t)s.ptr[s.len - 1];
        } else if (t == LOOM_GGUF_ARRAY) {
            h += touch_arr(loom_gguf_arrv_sub(a, j));
        } else {
            double d;
            int64_t v;
            if (loom_gguf_arrv_f64(a, j, &d)) h += (uint64_t)(d != 0);
            else if (loom_gguf_arrv_i64(a, j, &v)) h += (uint64_t)v;
        }
    }
    return h;
}

/* Reads everything an opened file exposes; returns a checksum so nothing is optimized away. */
static uint64_t touch_all(const loom_gguf *g) {
    uint64_t h = 0;
    for (int64_t i = 0; i < loom_gguf_n_kv(g); i++) {
        loom_gguf_str k = loom_gguf_key(g, i), s;
        h += k.len ? (uint8_t)k.ptr[k.len - 1] : 0;
        uint64_t u;
        double d;
        if (loom_gguf_kv_str(g, i, &s) && s.len) h += (uint8_t)s.ptr[s.len - 1];
        if (loom_gguf_kv_u64(g, i, &u)) h += u;
        if (loom_gguf_kv_f64(g, i, &d)) h += (uint64_t)(d == d);
        if (loom_gguf_kv_type(g, i) == LOOM_GGUF_ARRAY) h += touch_arr(loom_gguf_kv_arr(g, i));
    }
    for (int64_t i = 0; i < loom_gguf_n_tensors(g); i++) {
        const loom_gguf_tensor *t = loom_gguf_tensor_at(g, i);
        const uint8_t *p = t->data;
        cr_assert(t->file_offset + t->nbytes <= loom_gguf_file_size(g));
        if (t->nbytes) h += p[0] + p[t->nbytes - 1];
        cr_assert_eq(loom_gguf_find_tensor(g, t->name), t);
    }
    return h;
}

static const uint64_t hostile[] = {
    0, 1, 2, 3, 4, 5, 7, 9, 12, 13, 31, 33, 48, 64, 255, 0x7fffffff, 0x80000000u, 0xffffffffu, 0x100000000ULL,
    1ULL << 40, 1ULL << 60, (1ULL << 63) - 1, 1ULL << 63, UINT64_MAX, UINT64_MAX - 31,
};
#define N_HOSTILE (sizeof hostile / sizeof hostile[0])

typedef struct stats {
    int ok, fail, by_kind[3];
} stats;

static void run_one(const uint8_t *clean, size_t size, size_t header_end, const field *f, int nf, uint64_t *seed,
                    stats *st) {
    uint8_t *copy = malloc(size);
    memcpy(copy, clean, size);
    size_t n = size;
    int kind = (int)(loom_test_rand_u64(seed) % 3);
    if (kind == 0) {
        /* truncation, mostly inside the header where parsing happens */
        n = (loom_test_rand_u64(seed) & 1) ? loom_test_rand_u64(seed) % (header_end + 1)
                                           : loom_test_rand_u64(seed) % size;
    } else if (kind == 1) {
        int flips = 1 + (int)(loom_test_rand_u64(seed) % 8);
        for (int i = 0; i < flips; i++) copy[loom_test_rand_u64(seed) % header_end] ^= (uint8_t)(1u << (loom_test_rand_u64(seed) % 8));
    } else {
        const field *fd = &f[loom_test_rand_u64(seed) % (uint64_t)nf];
        uint64_t v = hostile[loom_test_rand_u64(seed) % N_HOSTILE], old = 0;
        memcpy(&old, copy + fd->pos, (size_t)fd->width);
        switch (loom_test_rand_u64(seed) % 4) {
        case 0: v = old + 1; break;
        case 1: v = old - 1; break;
        default: break;
        }
        memcpy(copy + fd->pos, &v, (size_t)fd->width);
    }
    st->by_kind[kind]++;
    int64_t live = loom_alloc_live_bytes();
    loom_gguf *g = NULL;
    loom_err err = {0};
    uint8_t *buf = n == size ? copy : realloc(copy, n ? n : 1); /* exact size for ASan */
    loom_status s = loom_gguf_open_memory(&g, buf, n, &err);
    if (s == LOOM_OK) {
        (void)touch_all(g);
        loom_gguf_close(g);
        st->ok++;
    } else {
        cr_assert_null(g);
        cr_assert(err.msg[0], "status %d without a message", s);
        cr_assert(s == LOOM_ERR_FORMAT || s == LOOM_ERR_NOMEM, "status %d: %s", s, err.msg);
        st->fail++;
    }
    cr_assert_eq(loom_alloc_live_bytes(), live, "leak (%s)", err.msg);
    free(buf);
}

Test(gguf_fuzz, thousand_corrupted_files) {
    /* small real files: a llama.cpp-quantized file, the mmproj (many KV types, f32 arrays) and a writer-made file
     * with nested arrays */
    const char *rel[] = {"testdata/quant/Q4_K/Q4_K.gguf", "testdata/quant/IQ4_XS/IQ4_XS.gguf",
                         "testdata/llama4-tiny/models/mmproj-tiny-llama4.gguf"};
    uint8_t *files[4];
    size_t sizes[4];
    int nfiles = 0;
    for (int i = 0; i < 3; i++) {
        char path[512];
        LOOM_SHARED_PATH(path, rel[i]);
        files[nfiles] = loom_test_read_file(path, &sizes[nfiles]);
        cr_assert_not_null(files[nfiles]);
        nfiles++;
    }
    loom_gguf_writer *w;
    loom_err err = {0};
    cr_assert_eq(loom_gguf_writer_new(&w, &err), LOOM_OK);
    const char *strs[] = {"alpha", "", "gamma"};
    int16_t i16[3] = {-1, 2, -3};
    loom_gguf_type nt[2] = {LOOM_GGUF_STRING, LOOM_GGUF_I16};
    const void *nd[2] = {strs, i16};
    uint64_t nl[2] = {3, 3};
    loom_gguf_writer_set_u32(w, "general.alignment", 64);
    loom_gguf_writer_set_arr_arr(w, "nested", 2, nt, nd, nl);
    loom_gguf_writer_set_arr_str(w, "strs", strs, 3);
    static float wdata[256 * 2];
    cr_assert_eq(loom_gguf_writer_add_tensor(w, "w", LOOM_F32, 2, (int64_t[]){256, 2}, wdata, &err), LOOM_OK);
    cr_assert_eq(loom_gguf_writer_add_tensor(w, "q", LOOM_Q8_0, 1, (int64_t[]){64}, wdata, &err), LOOM_OK);
    void *wb;
    cr_assert_eq(loom_gguf_writer_write_memory(w, &wb, &sizes[nfiles], &err), LOOM_OK, "%s", err.msg);
    files[nfiles++] = wb;
    loom_gguf_writer_free(w);

    /* LOOM_GGUF_FUZZ_N=40000 (and LOOM_GGUF_FUZZ_SEED) for a longer run by hand */
    const char *ev = getenv("LOOM_GGUF_FUZZ_N"), *sv = getenv("LOOM_GGUF_FUZZ_SEED");
    int per_file = ev ? atoi(ev) / 4 : 250;
    uint64_t seed = sv ? strtoull(sv, NULL, 0) : 0x6775676675ULL;
    stats st = {0};
    for (int fi = 0; fi < nfiles; fi++) {
        loom_gguf *g;
        cr_assert_eq(loom_gguf_open_memory(&g, files[fi], sizes[fi], &err), LOOM_OK, "%s", err.msg);
        size_t header_end = (size_t)loom_gguf_data_offset(g);
        if (header_end > sizes[fi]) header_end = sizes[fi];
        loom_gguf_close(g);
        field fields[4096];
        int nf = walk(files[fi], sizes[fi], fields, 4096);
        cr_assert_gt(nf, 10);
        for (int k = 0; k < per_file; k++) run_one(files[fi], sizes[fi], header_end, fields, nf, &seed, &st);
    }
    cr_assert_eq(st.ok + st.fail, per_file * 4);
    cr_assert_gt(st.fail, per_file * 2, "only %d of %d corruptions were detected", st.fail, per_file * 4);
    cr_log_info("gguf fuzz: %d rejected, %d harmless (truncate %d, flip %d, field %d)", st.fail, st.ok,
                st.by_kind[0], st.by_kind[1], st.by_kind[2]);
    for (int fi = 0; fi < nfiles; fi++) loom_free(files[fi]);
}
