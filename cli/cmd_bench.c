/* cli/cmd_bench.c — `loom bench`: llama-bench-shaped model benchmark with roofline ratios.
 *
 *   pp  prefill of -p tokens from an empty cache (matrix-matrix kernels), tokens/s
 *   tg  -n single-token decode steps from an empty cache (matrix-vector kernels), tokens/s
 *   img ViT encode of --image-tiles random tiles, ms per tile
 *
 * Next to each result, its ratio to the machine's roofline measured in the same run with the same threads:
 *   decode  = bytes actually read per token (attention, router, shared and the selected experts' weights, the
 *             output head, one embedding row, the KV cache) x tokens/s / read bandwidth measured in the same
 *             windows (every 8 tokens, the probe streams for as long as they took); the ratio to the best-of-8
 *             peak probe is printed too
 *   prefill = operations per token (2 per multiply-add of every weight a token touches, plus attention)
 *             x tokens/s / measured peak of the instructions the kernel uses (int8 dot for quantized weights,
 *             f32 FMA for float weights)
 *   encode  = ViT operations per tile / ms per tile / measured f32 FMA peak
 * `loom bench kernels` benchmarks the matrix-vector kernels alone.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "core/alloc.h"
#include "core/gguf.h"
#include "core/log.h"
#include "core/matmul.h"
#include "core/roofline.h"
#include "fusion/lm.h"
#include "vision/vit.h"

typedef struct bench_opts {
    const char *model, *mmproj;
    int         threads, n_prompt, n_gen, reps, image_tiles, depth;
    bool        json, no_mmap, mlock, profile, scaling, schedule_ab;
} bench_opts;

typedef struct sample_set {
    double v[64];
    int    n;
} sample_set;

static void stats_of(const sample_set *s, double *mean, double *sd) {
    double m = 0, q = 0;
    for (int i = 0; i < s->n; i++) m += s->v[i];
    m /= s->n > 0 ? s->n : 1;
    for (int i = 0; i < s->n; i++) q += (s->v[i] - m) * (s->v[i] - m);
    *mean = m;
    *sd = s->n > 1 ? sqrt(q / (s->n - 1)) : 0;
}

/* Resident set now, in bytes (/proc/self/statm), or 0 when unavailable. */
static double rss_now(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages_total = 0, pages_res = 0;
    if (!f) return 0;
    int ok = fscanf(f, "%ld %ld", &pages_total, &pages_res) == 2;
    fclose(f);
    return ok ? (double)pages_res * (double)sysconf(_SC_PAGESIZE) : 0;
}

static int starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* Per-token weight traffic and multiply-adds of one decode step, from the tensor directory. */
typedef struct lm_costs {
    double bytes_per_token;   /* weights read by one decode step */
    double macs_per_token;    /* multiply-adds in matmuls per token, output head excluded */
    double head_macs;         /* output head (once per prefill batch for the last row) */
    bool   quantized;         /* the big matrices are block-quantized (int8 dot kernels) */
    double params;
    double file_bytes;
} lm_costs;

static lm_costs costs_of(const loom_lm *lm) {
    const loom_lm_hparams *hp = loom_lm_get_hparams(lm);
    const loom_gguf *g = loom_lm_get_gguf(lm);
    lm_costs c = {0};
    double expert_frac = hp->n_expert ? (double)hp->n_expert_used / hp->n_expert : 1.0;
    for (int64_t i = 0; i < loom_gguf_n_tensors(g); i++) {
        const loom_gguf_tensor *t = loom_gguf_tensor_at(g, i);
        double elems = (double)t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        c.params += elems;
        c.file_bytes += (double)t->nbytes;
        if (!strcmp(t->name, "token_embd.weight")) {
            c.bytes_per_token += (double)t->nbytes / (double)t->ne[1];
            continue;
        }
        bool is_matrix = t->n_dims >= 2;
        bool experts = strstr(t->name, "_exps.") != NULL;
        double frac = experts ? expert_frac : 1.0;
        c.bytes_per_token += (double)t->nbytes * frac;
        if (!is_matrix) continue;
        if (!strcmp(t->name, "output.weight")) {
            c.head_macs = elems;
            c.quantized |= t->type != LOOM_F32 && t->type != LOOM_F16 && t->type != LOOM_BF16;
            continue;
        }
        if (starts_with(t->name, "blk.")) {
            c.macs_per_token += elems * frac;
            if (strstr(t->name, "attn_q.")) c.quantized |= t->type != LOOM_F32 && t->type != LOOM_F16 && t->type != LOOM_BF16;
        }
    }
    return c;
}

/* KV bytes one decode step at position pos reads (f32 cache; chunked layers see at most one chunk). */
static double kv_bytes_at(const loom_lm_hparams *hp, double pos) {
    double kvd = (double)hp->n_kv_head * hp->d_head, total = 0;
    for (int l = 0; l < hp->n_layer; l++) {
        bool chunked = (l + 1) % hp->nope_interval != 0;
        double keys = chunked ? fmin(pos + 1, hp->chunk_size) : pos + 1;
        total += 2 * keys * kvd * 4;
    }
    return total;
}

/* Attention multiply-adds for a query at position pos (QK^T and AV over all heads). */
static double attn_macs_at(const loom_lm_hparams *hp, double pos) {
    double total = 0;
    for (int l = 0; l < hp->n_layer; l++) {
        bool chunked = (l + 1) % hp->nope_interval != 0;
        double keys = chunked ? fmin(pos + 1, hp->chunk_size) : pos + 1;
        total += 2 * keys * hp->n_head * (double)hp->d_head;
    }
    return total;
}

static double profile_seconds(const loom_lm_profile *p) {
    double total = 0;
    for (int i = 0; i < LOOM_LM_PART_COUNT; i++) total += p->seconds[i];
    return total;
}

static void usage(FILE *f) {
    fprintf(f, "usage: loom bench -m MODEL.gguf [--mmproj P] [-t THREADS] [-p 512] [-n 128] [-r REPS] [-d 0]\n"
               "                  [--image-tiles N] [--json] [--no-mmap] [--mlock] [--profile] [--scaling]\n"
               "                  [--schedule-ab]\n"
               "       loom bench kernels [--help]      matrix-vector kernels alone\n\n"
               "Prefill (pp) and decode (tg) tokens/s and image encode ms/tile, each with mean and spread over REPS\n"
               "runs and its ratio to this machine's roofline measured in the same run. Benchmark with --no-mmap:\n"
               "this machine pages out idle file-backed pages, which makes mmap-backed timings erratic.\n"
               "  --profile   also split a decode token by part (projections, attention, experts, head): ms, MB of\n"
               "              weights and their share of the bandwidth measured in the same windows; and one\n"
               "              extra prefill by part (ms)\n"
               "  --scaling   also the prefill speed-up from 1 to THREADS threads, from repetitions that alternate\n"
               "              between the two in this process (per-core speed on a shared VM drifts between runs)\n"
               "  --schedule-ab  also REPS extra decodes of -n tokens whose tokens alternate between the matvec\n"
               "              schedules (steal, guided: LOOM_MV_SCHEDULE), so both see the same machine: t/s of\n"
               "              each and their ratio\n"
               "  -d N        the pp and tg rows after N tokens of context (prefilled untimed before each\n"
               "              repetition, as llama-bench's -d): their attention and KV cache reads count in the\n"
               "              ratios (and in --profile's decode split); --scaling and the --profile prefill\n"
               "              still run from an empty context\n");
}

/* The peak loop again after a repetition, keeping the best: on a shared VM the second vCPU sometimes gives
 * nothing for a while (a 2-thread FMA peak of one core's 97 GFLOP/s was seen), and a roofline probed only in
 * such a moment would flatter every ratio measured against it. */
static void repeak(loom_pool *pool, loom_peak_kind kind, double *peak) {
    const double p = loom_roofline_peak(pool, kind, NULL);
    if (p > *peak) *peak = p;
}

int cmd_bench(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "kernels")) return cmd_bench_kernels(argc - 1, argv + 1);
    bench_opts o = {.threads = 2, .n_prompt = 512, .n_gen = 128, .reps = 3, .image_tiles = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long long v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) o.json = true;
        else if (!strcmp(a, "--no-mmap")) o.no_mmap = true;
        else if (!strcmp(a, "--mlock")) o.mlock = true;
        else if (!strcmp(a, "--profile")) o.profile = true;
        else if (!strcmp(a, "--scaling")) o.scaling = true;
        else if (!strcmp(a, "--schedule-ab")) o.schedule_ab = true;
        else if (i + 1 < argc && (!strcmp(a, "-m") || !strcmp(a, "--model"))) o.model = argv[++i];
        else if (i + 1 < argc && !strcmp(a, "--mmproj")) o.mmproj = argv[++i];
        else if (i + 1 < argc && !strcmp(a, "-t") && cli_parse_int(argv[i + 1], 1, 512, &v)) o.threads = (int)v, i++;
        else if (i + 1 < argc && !strcmp(a, "-p") && cli_parse_int(argv[i + 1], 0, 1 << 20, &v)) o.n_prompt = (int)v, i++;
        else if (i + 1 < argc && !strcmp(a, "-n") && cli_parse_int(argv[i + 1], 0, 1 << 20, &v)) o.n_gen = (int)v, i++;
        else if (i + 1 < argc && !strcmp(a, "-r") && cli_parse_int(argv[i + 1], 1, 64, &v)) o.reps = (int)v, i++;
        else if (i + 1 < argc && (!strcmp(a, "-d") || !strcmp(a, "--depth")) && cli_parse_int(argv[i + 1], 0, 1 << 20, &v))
            o.depth = (int)v, i++;
        else if (i + 1 < argc && !strcmp(a, "--image-tiles") && cli_parse_int(argv[i + 1], 0, 64, &v)) o.image_tiles = (int)v, i++;
        else {
            cli_error("bench", "unknown option or bad value: %s (see --help)", a);
            return 2;
        }
    }
    if (!o.model && !o.mmproj) {
        usage(stderr);
        return 2;
    }
    int rc = 1;
    loom_err err = {0};
    loom_lm *lm = NULL;
    loom_lm_session *s = NULL;
    loom_vit *vit = NULL;
    loom_pool *pool = NULL;
    float *x = NULL, *logits = NULL, *tiles = NULL, *embd = NULL;
    json_t *js = json_object();
    if (loom_pool_new(&pool, o.threads, &err)) goto fail;

    /* roofline first, on an idle machine, with the benchmark's own thread count */
    const char *int8_isa = "", *f32_isa = "", *amx_isa = "";
    /* shown for the machine; the tg ratios use probes taken around each repetition (below), and each of those
     * takes the better of the probes before and after it: a neighbour's burst during one probe must not make the
     * kernels look better than the machine allows */
    double bw = loom_roofline_read_bw(pool, (size_t)512 << 20, 8);
    double peak_int8 = loom_roofline_peak(pool, LOOM_PEAK_INT8_DOT, &int8_isa);
    /* where the quantized GEMM runs on AMX tiles, prefill is measured against the AMX peak */
    double peak_amx = loom_roofline_peak(pool, LOOM_PEAK_INT8_AMX, &amx_isa);
    const loom_peak_kind int8_kind = peak_amx > 0 ? LOOM_PEAK_INT8_AMX : LOOM_PEAK_INT8_DOT;
    if (peak_amx > 0) {
        peak_int8 = peak_amx;
        int8_isa = amx_isa;
    }
    double peak_f32 = loom_roofline_peak(pool, LOOM_PEAK_F32_FMA, &f32_isa);
    if (!o.json) {
        printf("roofline (%d threads): read bandwidth %.2f GB/s (probed again around every tg repetition),\n"
               "                      %s peak %.0f GOP/s, %s peak %.1f GFLOP/s (probed again after every pp and\n"
               "                      image repetition; the ratios use the best of the run)\n\n",
               o.threads, bw / 1e9, int8_isa, peak_int8 / 1e9, f32_isa, peak_f32 / 1e9);
    }
    json_object_set_new(js, "threads", json_integer(o.threads));
    json_object_set_new(js, "read_bw_gbs", json_real(bw / 1e9));
    json_object_set_new(js, "peak_int8_gops", json_real(peak_int8 / 1e9));
    json_object_set_new(js, "peak_int8_isa", json_string(int8_isa));
    json_object_set_new(js, "peak_f32_gflops", json_real(peak_f32 / 1e9));

    if (o.model) {
        loom_lm_params lp = {o.no_mmap, o.mlock};
        double t_load = loom_time_s();
        if (loom_lm_open(&lm, o.model, &lp, &err)) goto fail;
        t_load = loom_time_s() - t_load;
        const loom_lm_hparams *hp = loom_lm_get_hparams(lm);
        lm_costs c = costs_of(lm);
        int64_t n_ctx = (int64_t)o.depth + (o.n_prompt > o.n_gen ? o.n_prompt : o.n_gen) + 8;
        if (loom_lm_session_new(&s, lm, n_ctx, o.threads, &err)) goto fail;
        int64_t nx = o.n_prompt > o.depth ? o.n_prompt : o.depth; /* embeddings for the prompt and the context */
        if (nx < 1) nx = 1;
        x = loom_malloc(sizeof(float) * (size_t)nx * hp->d_model);
        logits = loom_malloc(sizeof(float) * (size_t)hp->n_vocab);
        int32_t *ids = loom_malloc(sizeof(int32_t) * (size_t)nx);
        if (!x || !logits || !ids) {
            loom_free(ids);
            LOOM_FAIL(&err, LOOM_ERR_NOMEM, "out of memory");
            goto fail;
        }
        uint64_t rng = 12345;
        for (int64_t i = 0; i < nx; i++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            ids[i] = (int32_t)((rng >> 33) % (uint64_t)hp->n_vocab);
        }
        loom_status est = loom_lm_embed(lm, x, ids, nx, &err);
        loom_free(ids);
        if (est) goto fail;
        if (!o.json)
            printf("model: %s\n  %.2f B params, %.2f GB, d_model %d, %d layers, %d experts (top-%d), vocab %d, loaded in %.1f s%s\n\n",
                   o.model, c.params / 1e9, c.file_bytes / 1e9, hp->d_model, hp->n_layer, hp->n_expert, hp->n_expert_used,
                   hp->n_vocab, t_load, o.no_mmap ? " (--no-mmap)" : " (mmap)");
        /* warm-up, as llama-bench does: one untimed prefill of the whole prompt, so the first repetition does not
         * pay the page faults of the KV cache and scratch it touches first */
        loom_lm_session_reset(s);
        if (loom_lm_eval(s, x, nx, logits, LOOM_LOGITS_LAST, &err)) goto fail;
        sample_set pp = {0}, tg = {0};
        for (int r = 0; r < o.reps && o.n_prompt > 0; r++) {
            loom_lm_session_reset(s);
            if (o.depth > 0 && loom_lm_eval(s, x, o.depth, logits, LOOM_LOGITS_NONE, &err)) goto fail;
            double t0 = loom_time_s();
            if (loom_lm_eval(s, x, o.n_prompt, logits, LOOM_LOGITS_LAST, &err)) goto fail;
            pp.v[pp.n++] = o.n_prompt / (loom_time_s() - t0);
            repeak(pool, c.quantized ? int8_kind : LOOM_PEAK_F32_FMA, c.quantized ? &peak_int8 : &peak_f32);
        }
        /* --scaling: 1-thread and THREADS-thread prefills alternate, so each pair sees the same machine; a 1-thread
         * run minutes apart can be 1.5x faster or slower here (the per-core int8 peak drifts between processes) */
        sample_set speedup = {0}, peak_speedup = {0};
        if (o.scaling && o.n_prompt > 0 && o.threads > 1) {
            loom_lm_session *s1 = NULL;
            if (loom_lm_session_new(&s1, lm, n_ctx, 1, &err)) goto fail;
            loom_lm_session_reset(s1);
            if (loom_lm_eval(s1, x, o.n_prompt, logits, LOOM_LOGITS_LAST, &err)) { /* warm-up */
                loom_lm_session_free(s1);
                goto fail;
            }
            for (int r = 0; r < o.reps; r++) {
                double dt[2];
                for (int k = 0; k < 2; k++) {
                    loom_lm_session *sk = k ? s : s1;
                    loom_lm_session_reset(sk);
                    const double t0 = loom_time_s();
                    if (loom_lm_eval(sk, x, o.n_prompt, logits, LOOM_LOGITS_LAST, &err)) {
                        loom_lm_session_free(s1);
                        goto fail;
                    }
                    dt[k] = loom_time_s() - t0;
                }
                speedup.v[speedup.n++] = dt[0] / dt[1];
                /* what the machine itself gives: the register-only peak loop of the same instructions, 1 vs
                 * THREADS threads, right after the pair */
                loom_pool *p1 = NULL;
                if (loom_pool_new(&p1, 1, &err) == LOOM_OK) {
                    const loom_peak_kind kind = c.quantized ? int8_kind : LOOM_PEAK_F32_FMA;
                    const double one = loom_roofline_peak(p1, kind, NULL), all = loom_roofline_peak(pool, kind, NULL);
                    if (one > 0) peak_speedup.v[peak_speedup.n++] = all / one;
                    loom_pool_free(p1);
                }
            }
            loom_lm_session_free(s1);
        }
        /* --profile: one more prefill, untimed, split by part */
        loom_lm_profile pp_prof = {0};
        if (o.profile && o.n_prompt > 0) {
            loom_lm_session_set_profiling(s, true);
            loom_lm_session_reset(s);
            if (loom_lm_eval(s, x, o.n_prompt, logits, LOOM_LOGITS_LAST, &err)) goto fail;
            loom_lm_session_get_profile(s, &pp_prof);
            loom_lm_session_set_profiling(s, false);
        }
        /* decode traffic averaged over the positions depth..depth+n_gen-1 the benchmark visits */
        double kv_avg = 0, attn_pp = 0;
        for (int k = 0; k < o.n_gen; k++) kv_avg += kv_bytes_at(hp, (double)o.depth + k);
        kv_avg /= o.n_gen > 0 ? o.n_gen : 1;
        for (int k = 0; k < o.n_prompt; k++) attn_pp += attn_macs_at(hp, (double)o.depth + k);
        const double bytes_tok = c.bytes_per_token + kv_avg;
        /* This VM's read bandwidth changes within seconds: 2-thread probes of 10 ms each, back to back, read
         * 26-29 GB/s most of the time with dips to 12-15 (a neighbour, or one vCPU descheduled) lasting one to
         * twenty probes. A peak probe minutes (or even a second) away says little about the window a repetition
         * ran in, so each repetition is time-matched: after every TG_CHUNK tokens the probe streams for as long
         * as those tokens took, and the repetition's roofline is the probe's bytes over the probe's time. Both
         * sides then see the same dips. The best-of-8 probes around each repetition (the machine at its best
         * moment) are kept for a second, stricter ratio. */
        enum { TG_CHUNK = 8 };
        sample_set tg_bw = {0}, tg_ratio_r = {0}, tg_peak = {0}, tg_ratio_peak_r = {0};
        loom_bw_probe *probe = o.n_gen > 0 ? loom_bw_probe_new((size_t)1 << 30) : NULL;
        if (o.n_gen > 0 && !probe) {
            LOOM_FAIL(&err, LOOM_ERR_NOMEM, "out of memory for the 1 GiB bandwidth probe");
            goto fail;
        }
        double probe_prev = probe ? loom_bw_probe_best(probe, pool, 8) : 0;
        /* the decode split sums the repetitions' decode steps only: the untimed context prefill of each goes
         * between a read of the sums and a restart of profiling (which clears them) */
        loom_lm_profile prof = {0};
        for (int r = 0; r < o.reps && o.n_gen > 0; r++) {
            loom_lm_session_reset(s);
            if (o.depth > 0 && loom_lm_eval(s, x, o.depth, logits, LOOM_LOGITS_NONE, &err)) goto fail;
            loom_lm_session_set_profiling(s, o.profile);
            double t_tg = 0, probe_bytes = 0, probe_time = 0;
            for (int k0 = 0; k0 < o.n_gen; k0 += TG_CHUNK) {
                const int k1 = k0 + TG_CHUNK < o.n_gen ? k0 + TG_CHUNK : o.n_gen;
                double t0 = loom_time_s();
                for (int k = k0; k < k1; k++)
                    if (loom_lm_eval(s, x + (size_t)(k % nx) * hp->d_model, 1, logits, LOOM_LOGITS_LAST, &err)) goto fail;
                const double dt = loom_time_s() - t0;
                double pb, pt;
                loom_bw_probe_window(probe, pool, dt, &pb, &pt);
                t_tg += dt;
                probe_bytes += pb;
                probe_time += pt;
            }
            tg.v[tg.n++] = o.n_gen / t_tg;
            const double bw_r = probe_time > 0 ? probe_bytes / probe_time : 0;
            tg_bw.v[tg_bw.n++] = bw_r;
            tg_ratio_r.v[tg_ratio_r.n++] = bw_r > 0 ? tg.v[r] * bytes_tok / bw_r : 0;
            const double probe_next = loom_bw_probe_best(probe, pool, 8);
            const double peak_r = probe_next > probe_prev ? probe_next : probe_prev;
            tg_peak.v[tg_peak.n++] = peak_r;
            tg_ratio_peak_r.v[tg_ratio_peak_r.n++] = peak_r > 0 ? tg.v[r] * bytes_tok / peak_r : 0;
            probe_prev = probe_next;
            if (o.profile) {
                loom_lm_profile pr;
                loom_lm_session_get_profile(s, &pr);
                loom_lm_session_set_profiling(s, false);
                for (int p = 0; p < LOOM_LM_PART_COUNT; p++) {
                    prof.seconds[p] += pr.seconds[p];
                    prof.weight_bytes[p] += pr.weight_bytes[p];
                }
                prof.evals += pr.evals;
            }
        }
        /* --schedule-ab: token k runs under schedule k % 2, so both schedules see the same windows of the VM's
         * bandwidth; separate runs of each differ by more (0.91-0.98 of the roofline) than the schedules do */
        sample_set ab_ratio = {0};
        double ab_time[2] = {0, 0}, ab_tokens[2] = {0, 0};
        static const loom_mv_schedule_kind ab_kind[2] = {LOOM_MV_STEAL, LOOM_MV_GUIDED};
        for (int r = 0; r < o.reps && o.schedule_ab && o.n_gen >= 2; r++) {
            loom_lm_session_reset(s);
            if (o.depth > 0 && loom_lm_eval(s, x, o.depth, logits, LOOM_LOGITS_NONE, &err)) goto fail;
            double t_r[2] = {0, 0}, n_r[2] = {0, 0};
            for (int k = 0; k < o.n_gen; k++) {
                loom_mv_schedule_force(ab_kind[k % 2]);
                const double t0 = loom_time_s();
                const loom_status st = loom_lm_eval(s, x + (size_t)(k % nx) * hp->d_model, 1, logits, LOOM_LOGITS_LAST, &err);
                t_r[k % 2] += loom_time_s() - t0;
                n_r[k % 2] += 1;
                if (st) {
                    loom_mv_schedule_force(0);
                    goto fail;
                }
            }
            loom_mv_schedule_force(0);
            for (int i = 0; i < 2; i++) {
                ab_time[i] += t_r[i];
                ab_tokens[i] += n_r[i];
            }
            ab_ratio.v[ab_ratio.n++] = (n_r[0] / t_r[0]) / (n_r[1] / t_r[1]);
        }
        const int probe_streams = probe ? loom_bw_probe_streams(probe) : 0;
        loom_bw_probe_free(probe);
        loom_lm_session_set_profiling(s, false);
        double pp_mean, pp_sd, tg_mean, tg_sd, tg_bw_mean, tg_bw_sd, tg_ratio, tg_ratio_sd, tg_peak_mean, tg_peak_sd,
            tg_ratio_peak, tg_ratio_peak_sd;
        stats_of(&pp, &pp_mean, &pp_sd);
        stats_of(&tg, &tg_mean, &tg_sd);
        stats_of(&tg_bw, &tg_bw_mean, &tg_bw_sd);
        stats_of(&tg_ratio_r, &tg_ratio, &tg_ratio_sd);
        stats_of(&tg_peak, &tg_peak_mean, &tg_peak_sd);
        stats_of(&tg_ratio_peak_r, &tg_ratio_peak, &tg_ratio_peak_sd);
        /* resident memory of the model itself: weights + KV cache + scratch (the probe buffers are freed) */
        double model_rss = rss_now();
        json_object_set_new(js, "model_rss_mb", json_real(model_rss / 1048576.0));
        json_object_set_new(js, "weights_mb", json_real(c.file_bytes / 1048576.0));
        if (!o.json)
            printf("resident after the runs: %.1f MB (weights %.1f MB, KV cache and scratch the rest)\n",
                   model_rss / 1048576.0, c.file_bytes / 1048576.0);
        if (o.n_gen > 0) {
            json_t *arr = json_array();
            for (int r = 0; r < tg_bw.n; r++) json_array_append_new(arr, json_real(tg_bw.v[r] / 1e9));
            json_object_set_new(js, "tg_read_bw_gbs", arr);
            arr = json_array();
            for (int r = 0; r < tg_peak.n; r++) json_array_append_new(arr, json_real(tg_peak.v[r] / 1e9));
            json_object_set_new(js, "tg_peak_read_bw_gbs", arr);
            json_object_set_new(js, "probe_streams_per_thread", json_integer(probe_streams));
            json_object_set_new(js, "matvec_row_streams_per_thread", json_integer(loom_row_streams()));
        }
        double pp_ops_tok = 2 * (c.macs_per_token + (o.n_prompt ? attn_pp / o.n_prompt + c.head_macs / o.n_prompt : 0));
        double pp_peak = c.quantized ? peak_int8 : peak_f32;
        json_object_set_new(js, "pp_peak_gops", json_real(pp_peak / 1e9)); /* the pp ratio's basis: the run's best */
        double pp_ratio = pp_peak > 0 ? pp_mean * pp_ops_tok / pp_peak : 0;
        if (!o.json) {
            printf("| test   |      t/s |     ± |  roofline | ratio | roofline basis\n");
            printf("|--------|---------:|------:|----------:|------:|---------------\n");
            char at[32] = "";
            if (o.depth > 0) snprintf(at, sizeof at, " @ d%d", o.depth); /* llama-bench's label */
            if (o.n_prompt)
                printf("| pp%-4d%s | %8.2f | %5.2f | %9.1f | %5.3f | %.2f GOP/token vs %s peak\n", o.n_prompt, at, pp_mean,
                       pp_sd, pp_peak / pp_ops_tok, pp_ratio, pp_ops_tok / 1e9, c.quantized ? int8_isa : f32_isa);
            if (o.n_gen)
                printf("| tg%-4d%s | %8.2f | %5.2f | %9.2f | %5.3f | %.1f MB/token vs %.2f GB/s read bandwidth (± %.2f) "
                       "in the same windows\n",
                       o.n_gen, at, tg_mean, tg_sd, tg_bw_mean / bytes_tok, tg_ratio, bytes_tok / 1e6, tg_bw_mean / 1e9,
                       tg_bw_sd / 1e9);
        }
        if (!o.json && o.n_gen)
            printf("\ntg against the peak probe (best of 8 passes before and after each repetition, %.2f GB/s ± %.2f): "
                   "ratio %.3f ± %.3f\n",
                   tg_peak_mean / 1e9, tg_peak_sd / 1e9, tg_ratio_peak, tg_ratio_peak_sd);
        if (!o.json && o.n_gen)
            printf("read loop of the probe: %d stream%s per thread (the faster of one and two in its last best-of pass); "
                   "matvec rows: %d per thread (LOOM_ROW_STREAMS=1|2 overrides)\n",
                   probe_streams, probe_streams == 1 ? "" : "s", loom_row_streams());
        if (ab_ratio.n > 0) {
            double m, sd;
            stats_of(&ab_ratio, &m, &sd);
            const double steal_tps = ab_tokens[0] / ab_time[0], guided_tps = ab_tokens[1] / ab_time[1];
            if (!o.json) {
                printf("\nmatvec schedules, alternating tokens (%d x %d): steal %.2f t/s, guided %.2f t/s; steal/guided "
                       "%.3f ± %.3f (", ab_ratio.n, o.n_gen, steal_tps, guided_tps, m, sd);
                for (int r = 0; r < ab_ratio.n; r++) printf("%s%.3f", r ? ", " : "", ab_ratio.v[r]);
                printf(")\n");
            }
            json_t *ab = json_object();
            json_object_set_new(ab, "steal_tokens_per_s", json_real(steal_tps));
            json_object_set_new(ab, "guided_tokens_per_s", json_real(guided_tps));
            json_object_set_new(ab, "steal_over_guided", json_real(m));
            json_object_set_new(ab, "steal_over_guided_sd", json_real(sd));
            json_object_set_new(js, "tg_schedule_ab", ab);
        }
        if (o.profile && o.n_gen && prof.evals > 0) {
            json_t *parts = json_object();
            const double total = profile_seconds(&prof);
            if (!o.json)
                printf("\ndecode by part, per token (calling thread's clock; a part ends when its dispatch returns):\n"
                       "| part      |     ms | share |   MB | GB/s | of bw |\n"
                       "|-----------|-------:|------:|-----:|-----:|------:|\n");
            for (int p = 0; p < LOOM_LM_PART_COUNT; p++) {
                const double sec = prof.seconds[p] / (double)prof.evals, mb = prof.weight_bytes[p] / (double)prof.evals / 1e6;
                const double gbs = sec > 0 ? mb / 1e3 / sec : 0;
                if (!o.json) {
                    printf("| %-9s | %6.3f | %5.3f |", loom_lm_part_name((loom_lm_part)p), sec * 1e3,
                           total > 0 ? prof.seconds[p] / total : 0);
                    if (mb > 0) printf(" %4.0f | %4.1f | %5.2f |\n", mb, gbs, tg_bw_mean > 0 ? gbs * 1e9 / tg_bw_mean : 0);
                    else printf("    - |    - |     - |\n");
                }
                json_t *pj = json_object();
                json_object_set_new(pj, "ms_per_token", json_real(sec * 1e3));
                json_object_set_new(pj, "weight_mb_per_token", json_real(mb));
                json_object_set_new(parts, loom_lm_part_name((loom_lm_part)p), pj);
            }
            json_object_set_new(js, "tg_profile", parts);
        }
        if (speedup.n > 0) {
            double m, sd;
            stats_of(&speedup, &m, &sd);
            if (!o.json) {
                printf("\npp%d speed-up, 1 -> %d threads (alternating pairs): %.2fx ± %.2f (", o.n_prompt, o.threads, m, sd);
                for (int r = 0; r < speedup.n; r++) printf("%s%.2f", r ? ", " : "", speedup.v[r]);
                printf(")\n");
            }
            if (peak_speedup.n > 0) {
                double pm, psd;
                stats_of(&peak_speedup, &pm, &psd);
                if (!o.json)
                    printf("    the machine's own %s peak loop, 1 -> %d threads, after each pair: %.2fx ± %.2f\n",
                           c.quantized ? int8_isa : f32_isa, o.threads, pm, psd);
                json_object_set_new(js, "peak_speedup_vs_1_thread", json_real(pm));
            }
            json_object_set_new(js, "pp_speedup_vs_1_thread", json_real(m));
            json_object_set_new(js, "pp_speedup_vs_1_thread_sd", json_real(sd));
        }
        if (o.profile && o.n_prompt && pp_prof.evals > 0) {
            json_t *parts = json_object();
            const double total = profile_seconds(&pp_prof);
            if (!o.json)
                printf("\nprefill of %d tokens by part (one extra, untimed run):\n| part      |      ms | share |\n"
                       "|-----------|--------:|------:|\n", o.n_prompt);
            for (int p = 0; p < LOOM_LM_PART_COUNT; p++) {
                if (!o.json)
                    printf("| %-9s | %7.1f | %5.3f |\n", loom_lm_part_name((loom_lm_part)p), pp_prof.seconds[p] * 1e3,
                           total > 0 ? pp_prof.seconds[p] / total : 0);
                json_object_set_new(parts, loom_lm_part_name((loom_lm_part)p), json_real(pp_prof.seconds[p] * 1e3));
            }
            json_object_set_new(js, "pp_profile_ms", parts);
        }
        json_object_set_new(js, "model", json_string(o.model));
        json_object_set_new(js, "model_params", json_real(c.params));
        json_object_set_new(js, "pp_tokens", json_integer(o.n_prompt));
        json_object_set_new(js, "depth", json_integer(o.depth));
        json_object_set_new(js, "pp_tokens_per_s", json_real(pp_mean));
        json_object_set_new(js, "pp_tokens_per_s_sd", json_real(pp_sd));
        json_object_set_new(js, "pp_ops_per_token", json_real(pp_ops_tok));
        json_object_set_new(js, "pp_roofline_ratio", json_real(pp_ratio));
        json_object_set_new(js, "tg_tokens", json_integer(o.n_gen));
        json_object_set_new(js, "tg_tokens_per_s", json_real(tg_mean));
        json_object_set_new(js, "tg_tokens_per_s_sd", json_real(tg_sd));
        json_object_set_new(js, "tg_bytes_per_token", json_real(bytes_tok));
        json_object_set_new(js, "tg_roofline_ratio", json_real(tg_ratio));
        json_object_set_new(js, "tg_roofline_ratio_sd", json_real(tg_ratio_sd));
        json_object_set_new(js, "tg_peak_roofline_ratio", json_real(tg_ratio_peak));
        json_object_set_new(js, "tg_peak_roofline_ratio_sd", json_real(tg_ratio_peak_sd));
    }
    if (o.mmproj && o.image_tiles > 0) {
        loom_vit_params vp = {0};
        vp.no_mmap = o.no_mmap;
        vp.mlock = o.mlock;
        if (loom_vit_open(&vit, o.mmproj, &vp, &err)) goto fail;
        const loom_vit_hparams *vh = loom_vit_get_hparams(vit);
        size_t tile = (size_t)3 * vh->image_size * vh->image_size;
        tiles = loom_malloc(sizeof(float) * tile * (size_t)o.image_tiles);
        embd = loom_malloc(sizeof(float) * (size_t)o.image_tiles * vh->n_tok_out * vh->d_proj);
        if (!tiles || !embd) {
            LOOM_FAIL(&err, LOOM_ERR_NOMEM, "out of memory for %d tiles", o.image_tiles);
            goto fail;
        }
        uint64_t rng = 99;
        for (size_t i = 0; i < tile * (size_t)o.image_tiles; i++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            tiles[i] = (float)((rng >> 40) & 0xFFFF) / 32768.0f - 1.0f;
        }
        if (loom_vit_encode(vit, pool, embd, tiles, 1, &err)) goto fail; /* warm-up */
        sample_set ms = {0};
        for (int r = 0; r < o.reps; r++) {
            double t0 = loom_time_s();
            if (loom_vit_encode(vit, pool, embd, tiles, o.image_tiles, &err)) goto fail;
            ms.v[ms.n++] = (loom_time_s() - t0) * 1e3 / o.image_tiles;
            repeak(pool, LOOM_PEAK_F32_FMA, &peak_f32);
        }
        double ms_mean, ms_sd;
        stats_of(&ms, &ms_mean, &ms_sd);
        double D = vh->d_vis, F = vh->d_ff, T = vh->n_tok, L = vh->n_layer;
        double macs = (double)vh->n_patch * 3 * vh->patch_size * vh->patch_size * D + L * T * (4 * D * D + 2 * D * F) +
                      L * 2 * T * T * D +
                      (double)vh->n_tok_out * ((double)vh->d_shuffle * vh->d_adapter + (double)vh->d_adapter * vh->d_adapter +
                                               (double)vh->d_adapter * vh->d_proj);
        double ops = 2 * macs, ratio = peak_f32 > 0 ? ops / (ms_mean / 1e3) / peak_f32 : 0;
        json_object_set_new(js, "img_peak_gflops", json_real(peak_f32 / 1e9)); /* the encode ratio's basis */
        if (!o.json)
            printf("| img    | %8.1f | %5.1f | %9.1f | %5.3f | ms/tile; %.1f GFLOP/tile vs %s peak (ViT %dx%d)\n", ms_mean,
                   ms_sd, ops / peak_f32 * 1e3, ratio, ops / 1e9, f32_isa, vh->d_vis, vh->n_layer);
        json_object_set_new(js, "encode_tiles", json_integer(o.image_tiles));
        json_object_set_new(js, "encode_ms_per_tile", json_real(ms_mean));
        json_object_set_new(js, "encode_ms_per_tile_sd", json_real(ms_sd));
        json_object_set_new(js, "encode_ops_per_tile", json_real(ops));
        json_object_set_new(js, "encode_roofline_ratio", json_real(ratio));
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    json_object_set_new(js, "peak_rss_mb", json_real(ru.ru_maxrss / 1024.0));
    if (o.json) {
        char *txt = json_dumps(js, JSON_COMPACT);
        printf("%s\n", txt ? txt : "{}");
        free(txt);
    } else {
        printf("\npeak RSS: %.1f MB (includes the bandwidth probe buffers: 512 MiB, and 1 GiB while tg runs)\n", ru.ru_maxrss / 1024.0);
    }
    rc = 0;
    goto done;
fail:
    cli_error("bench", "%s", err.msg);
done:
    json_decref(js);
    loom_free(x);
    loom_free(logits);
    loom_free(tiles);
    loom_free(embd);
    loom_lm_session_free(s);
    loom_lm_close(lm);
    loom_vit_close(vit);
    loom_pool_free(pool);
    return rc;
}
