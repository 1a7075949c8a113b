/* cli/cmd_quantize.c — `loom quantize IN.gguf OUT.gguf TYPE [-t threads]`.
 *
 * Copies every KV pair, sets general.quantization_version = 2 and general.file_type to llama.cpp's LLAMA_FTYPE for
 * TYPE, and rewrites the tensors. llama.cpp's rule for what gets quantized: a tensor whose name ends in "weight",
 * with at least 2 dimensions, except norms (`*_norm*`), `rope_freqs` and the MoE router `ffn_gate_inp` (tiny, and
 * routing is sensitive to their precision). A tensor whose ne[0] is not a multiple of TYPE's block size, and every
 * tensor not quantized, is stored as F32. A tensor already of its output type is copied byte for byte.
 *
 * The output is laid out as llama-quantize lays it out, so that its files and ours can be compared byte for byte:
 * tensors in name order (llama.cpp's loader keeps them in a std::map), and the two keys set here removed and
 * appended at the end (ggml's gguf_set_* replace a key that way).
 *
 * Each output tensor is produced by the writer's fill callback when the writer reaches it, rows split over the
 * thread pool: memory use is one output tensor plus a row of floats per thread, whatever the model's size.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "core/alloc.h"
#include "core/gguf.h"
#include "core/log.h"
#include "core/quant.h"
#include "core/threadpool.h"

/* llama.cpp's llama_ftype for TYPE. llama-quantize takes "Q4_K" and "Q5_K" as aliases of Q4_K_M and Q5_K_M, and
 * the reference files in testdata/quant carry those ids, so the same ids are written here. */
static int llama_ftype(loom_dtype t) {
    switch (t) {
    case LOOM_F32: return 0;   /* LLAMA_FTYPE_ALL_F32 */
    case LOOM_F16: return 1;   /* MOSTLY_F16 */
    case LOOM_Q4_0: return 2;  /* MOSTLY_Q4_0 */
    case LOOM_Q4_1: return 3;  /* MOSTLY_Q4_1 */
    case LOOM_Q8_0: return 7;  /* MOSTLY_Q8_0 */
    case LOOM_Q5_0: return 8;  /* MOSTLY_Q5_0 */
    case LOOM_Q5_1: return 9;  /* MOSTLY_Q5_1 */
    case LOOM_Q4_K: return 15; /* MOSTLY_Q4_K_M */
    case LOOM_Q5_K: return 17; /* MOSTLY_Q5_K_M */
    case LOOM_Q6_K: return 18; /* MOSTLY_Q6_K */
    case LOOM_BF16: return 32; /* MOSTLY_BF16 */
    default: return -1;
    }
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: loom quantize IN.gguf OUT.gguf TYPE [-t threads]\n"
            "\n"
            "Rewrites IN's weight matrices as TYPE (F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K); norms,\n"
            "rope_freqs, MoE routers, 1-D tensors and rows not divisible by TYPE's block size stay F32.\n"
            "  -t N   threads (default: all cores)\n");
}

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && memcmp(s + n - m, suf, m) == 0;
}

/* The output type of tensor t when the model is quantized to target. */
static loom_dtype pick_type(const loom_gguf_tensor *t, loom_dtype target) {
    const loom_type_info *ti = loom_type_info_get(target);
    int quantize = ends_with(t->name, "weight") && t->n_dims >= 2 && !strstr(t->name, "_norm") &&
                   !strstr(t->name, "rope_freqs") && !strstr(t->name, "ffn_gate_inp");
    if (quantize && t->ne[0] % ti->block_size == 0) return target;
    return LOOM_F32;
}

/* ==== one tensor, rows over the pool ==== */

typedef struct qjob {
    const loom_gguf_tensor *src;
    loom_dtype              out;
    size_t                  src_row, out_row;
    uint8_t                *dst;
    float                 **scratch; /* [n_threads][ne0] f32 */
    atomic_int              failed;
} qjob;

typedef struct qctx {
    loom_pool     *pool;
    float        **scratch;
    int64_t        max_ne0;
    loom_progress *prog;
    int64_t        done;
} qctx;

typedef struct qtensor {
    qctx                   *q;
    const loom_gguf_tensor *src;
    loom_dtype              out;
} qtensor;

static void quantize_rows(void *ctx, int64_t begin, int64_t end, int ith) {
    qjob *j = ctx;
    int64_t ne0 = j->src->ne[0];
    for (int64_t r = begin; r < end && !atomic_load(&j->failed); r++) {
        const uint8_t *s = (const uint8_t *)j->src->data + (size_t)r * j->src_row;
        uint8_t *d = j->dst + (size_t)r * j->out_row;
        if (j->out == LOOM_F32) {
            if (j->src->type == LOOM_F32) memcpy(d, s, j->out_row);
            else if (loom_dequantize_row(j->src->type, s, j->scratch[ith], ne0) != 0) atomic_store(&j->failed, 1);
            else memcpy(d, j->scratch[ith], j->out_row);
            continue;
        }
        const float *f = (const float *)s; /* F32 rows sit at 4-byte multiples of an aligned offset */
        if (j->src->type != LOOM_F32) {
            if (loom_dequantize_row(j->src->type, s, j->scratch[ith], ne0) != 0) { atomic_store(&j->failed, 1); break; }
            f = j->scratch[ith];
        }
        if (loom_quantize_row(j->out, f, d, ne0) != 0) atomic_store(&j->failed, 1);
    }
}

static loom_status fill_tensor(void *ctx, void *dst, size_t nbytes, loom_err *err) {
    qtensor *qt = ctx;
    const loom_gguf_tensor *t = qt->src;
    qjob j = {.src = t, .out = qt->out, .dst = dst, .scratch = qt->q->scratch};
    j.src_row = loom_row_size(t->type, t->ne[0]);
    j.out_row = loom_row_size(qt->out, t->ne[0]);
    atomic_init(&j.failed, 0);
    int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
    /* below ~256K elements waking the pool costs more than the work (norms, routers, small models) */
    if (t->ne[0] && rows && t->ne[0] * rows < (1 << 18)) quantize_rows(&j, 0, rows, 0);
    else if (t->ne[0] && rows) loom_pool_for(qt->q->pool, rows, quantize_rows, &j);
    (void)nbytes;
    if (atomic_load(&j.failed))
        return LOOM_FAIL(err, LOOM_ERR_UNSUPPORTED, "tensor '%s': cannot convert %s to %s", t->name,
                         loom_type_name(t->type), loom_type_name(qt->out));
    loom_progress_update(qt->q->prog, ++qt->q->done);
    return LOOM_OK;
}

/* Whether rows of type t can be turned into floats here (asks the dequantizer on the first block). */
static int can_dequantize(const loom_gguf_tensor *t, float *scratch) {
    if (t->type == LOOM_F32) return 1;
    const loom_type_info *ti = loom_type_info_get(t->type);
    if (!ti || !t->data || t->ne[0] == 0 || t->nbytes == 0) return 0;
    return loom_dequantize_row(t->type, t->data, scratch, ti->block_size) == 0;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const loom_gguf_tensor *const *)a)->name, (*(const loom_gguf_tensor *const *)b)->name);
}

static int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int cmd_quantize(int argc, char **argv) {
    const char *pos[3] = {0};
    int n_pos = 0, n_threads = 0;
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) { usage(stdout); return 0; }
        if (!strcmp(argv[a], "-t") || !strcmp(argv[a], "--threads")) {
            char *end;
            long v = a + 1 < argc ? strtol(argv[a + 1], &end, 10) : 0;
            if (a + 1 >= argc || *end || v < 1 || v > 1024) {
                fprintf(stderr, "loom quantize: -t needs a thread count 1..1024\n");
                return 2;
            }
            n_threads = (int)v;
            a++;
        } else if (argv[a][0] == '-' && argv[a][1]) {
            fprintf(stderr, "loom quantize: unknown option '%s'\n", argv[a]);
            usage(stderr);
            return 2;
        } else if (n_pos < 3) {
            pos[n_pos++] = argv[a];
        } else {
            fprintf(stderr, "loom quantize: too many arguments\n");
            usage(stderr);
            return 2;
        }
    }
    if (n_pos != 3) {
        usage(stderr);
        return 2;
    }
    const char *in = pos[0], *out = pos[1];
    loom_dtype target;
    const loom_type_info *tti;
    if (!loom_type_from_name(pos[2], &target) || !(tti = loom_type_info_get(target)) || !tti->supported ||
        llama_ftype(target) < 0) {
        fprintf(stderr, "loom quantize: cannot quantize to '%s' (F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K)\n",
                pos[2]);
        return 2;
    }
    if (same_file(in, out)) {
        fprintf(stderr, "loom quantize: input and output are the same file\n");
        return 2;
    }

    loom_err err = {0};
    loom_gguf *g = NULL;
    loom_gguf_writer *w = NULL;
    loom_pool *pool = NULL;
    qtensor *jobs = NULL;
    const loom_gguf_tensor **order = NULL;
    qctx q = {0};
    loom_progress prog;
    int rc = 1;
    double t0 = loom_time_s();
    if (loom_gguf_open(&g, in, NULL, &err)) {
        fprintf(stderr, "loom: %s: %s\n", in, err.msg);
        return 1;
    }
    int64_t nt = loom_gguf_n_tensors(g);
    if (loom_pool_new(&pool, n_threads, &err) || loom_gguf_writer_new(&w, &err) ||
        loom_gguf_writer_copy_kv(w, g, &err))
        goto fail;
    loom_gguf_writer_remove_key(w, "general.quantization_version");
    loom_gguf_writer_remove_key(w, "general.file_type");
    if (loom_gguf_writer_set_u32(w, "general.quantization_version", 2) ||
        loom_gguf_writer_set_u32(w, "general.file_type", (uint32_t)llama_ftype(target))) {
        LOOM_FAIL(&err, LOOM_ERR_NOMEM, "no memory for metadata");
        goto fail;
    }

    int nth = loom_pool_size(pool);
    for (int64_t i = 0; i < nt; i++)
        if (loom_gguf_tensor_at(g, i)->ne[0] > q.max_ne0) q.max_ne0 = loom_gguf_tensor_at(g, i)->ne[0];
    q.pool = pool;
    q.prog = &prog;
    q.scratch = loom_calloc((size_t)nth, sizeof *q.scratch);
    jobs = loom_calloc(nt ? (size_t)nt : 1, sizeof *jobs);
    if (!q.scratch || !jobs) { LOOM_FAIL(&err, LOOM_ERR_NOMEM, "no memory"); goto fail; }
    for (int i = 0; i < nth; i++)
        if (!(q.scratch[i] = loom_malloc((size_t)(q.max_ne0 > 256 ? q.max_ne0 : 256) * sizeof(float)))) {
            LOOM_FAIL(&err, LOOM_ERR_NOMEM, "no memory for row buffers");
            goto fail;
        }

    int64_t n_quant = 0, n_f32 = 0, n_copy = 0;
    uint64_t bytes_in = 0, bytes_out = 0;
    order = loom_malloc((nt ? (size_t)nt : 1) * sizeof *order);
    if (!order) { LOOM_FAIL(&err, LOOM_ERR_NOMEM, "no memory"); goto fail; }
    for (int64_t i = 0; i < nt; i++) order[i] = loom_gguf_tensor_at(g, i);
    qsort(order, (size_t)nt, sizeof *order, cmp_name);
    for (int64_t i = 0; i < nt; i++) {
        const loom_gguf_tensor *t = order[i];
        loom_dtype ot = pick_type(t, target);
        loom_status st;
        bytes_in += t->nbytes;
        if (ot == t->type || !can_dequantize(t, q.scratch[0])) {
            if (ot != t->type)
                LOOM_WARN("tensor '%s': %s cannot be converted here; copied unchanged", t->name, loom_type_name(t->type));
            st = loom_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, &err);
            bytes_out += t->nbytes;
            n_copy++;
        } else {
            jobs[i] = (qtensor){&q, t, ot};
            st = loom_gguf_writer_add_tensor_fill(w, t->name, ot, t->n_dims, t->ne, fill_tensor, &jobs[i], &err);
            bytes_out += loom_row_size(ot, t->ne[0]) * (size_t)(t->ne[1] * t->ne[2] * t->ne[3]);
            if (ot == target) n_quant++;
            else n_f32++;
        }
        if (st) goto fail;
    }

    loom_progress_begin(&prog, "quantize", nt);
    loom_status st = loom_gguf_writer_write(w, out, &err);
    loom_progress_end(&prog);
    if (st) {
        fprintf(stderr, "loom: %s: %s\n", out, err.msg);
        goto done;
    }
    fprintf(stderr, "loom quantize: %s -> %s (%s): %lld tensors quantized, %lld stored as F32, %lld copied; "
                    "%.2f MiB -> %.2f MiB in %.1f s with %d threads\n",
            in, out, loom_type_name(target), (long long)n_quant, (long long)n_f32, (long long)n_copy,
            (double)bytes_in / 1048576.0, (double)bytes_out / 1048576.0, loom_time_s() - t0, nth);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "loom: %s: %s\n", in, err.msg);
done:
    if (q.scratch)
        for (int i = 0; i < loom_pool_size(pool); i++) loom_free(q.scratch[i]);
    loom_free(q.scratch);
    loom_free(jobs);
    loom_free(order);
    loom_gguf_writer_free(w);
    loom_pool_free(pool);
    loom_gguf_close(g);
    return rc;
}
