/* tests/cli/test_bench.c — `loom bench` on a small random model made by `loom synth`: the JSON carries every
 * field the issue names, the numbers are finite and positive, each tg repetition has its own bracketing
 * bandwidth probe, the ratios are the rates divided by those rooflines, and bad options fail with a message.
 * Nothing here judges speed (that is what the benchmark itself is for). */
#include <jansson.h>
#include <math.h>

#include "core/alloc.h"
#include "core/matmul.h"
#include "tests/cli/cli_util.h"

static char tmpdir[64], model[128], mmproj[128];

static void setup(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/loom_bench_XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    snprintf(model, sizeof model, "%s/m.gguf", tmpdir);
    snprintf(mmproj, sizeof mmproj, "%s/p.gguf", tmpdir);
}

static void teardown(void) {
    unlink(model);
    unlink(mmproj);
    rmdir(tmpdir);
}

static double num(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_number(v), "missing number %s", key);
    return json_number_value(v);
}

Test(cli_bench, json_fields_and_ratios, .init = setup, .fini = teardown, .timeout = 120) {
    CLI_BIN(bin);
    char *synth[] = {(char *)bin, "synth", "-o", model, "--vocab", "512", "--d-model", "256", "--layers", "2",
                     "--heads", "4", "--kv-heads", "2", "--head-dim", "64", "--experts", "4", "--expert-ff", "256",
                     "--shared-ff", "256", "--mmproj", mmproj, "--vit-width", "64", "--vit-layers", "1",
                     "--vit-heads", "2", "--vit-ff", "128", "--vit-out", "256", NULL};
    cli_result r = cli_run(synth);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "synth failed: %s", r.err);
    cli_result_free(&r);
    char *bench[] = {(char *)bin, "bench", "-m", model, "--mmproj", mmproj, "-t", "2", "-p", "32", "-n", "8",
                     "-r", "2", "--image-tiles", "1", "--no-mmap", "--json", "--profile", "--scaling", "--schedule-ab", NULL};
    r = cli_run(bench);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "bench failed: %s", r.err);
    json_error_t je;
    json_t *js = json_loads(r.out, 0, &je);
    cr_assert_not_null(js, "not JSON: %s (%s)", r.out, je.text);
    const char *positive[] = {"pp_tokens_per_s", "tg_tokens_per_s", "encode_ms_per_tile", "tg_roofline_ratio",
                              "read_bw_gbs", "tg_bytes_per_token"};
    for (size_t i = 0; i < sizeof positive / sizeof *positive; i++) {
        double v = num(js, positive[i]);
        cr_expect(isfinite(v) && v > 0, "%s = %g", positive[i], v);
    }
    /* the shapes the probe and the matvec read in: one or two streams per thread */
    const double probe_streams = num(js, "probe_streams_per_thread"), row_streams = num(js, "matvec_row_streams_per_thread");
    cr_expect(probe_streams == 1 || probe_streams == 2, "probe streams %g", probe_streams);
    cr_expect(row_streams == 1 || row_streams == 2, "matvec row streams %g", row_streams);
    /* compute ratios exist wherever a peak was measurable (LOOM_ISA=scalar has no SIMD peak: ratio 0) */
    const double pp_ratio = num(js, "pp_roofline_ratio"), enc_ratio = num(js, "encode_roofline_ratio");
    cr_expect(isfinite(pp_ratio) && (num(js, "peak_int8_gops") > 0 ? pp_ratio > 0 : pp_ratio == 0), "pp ratio %g", pp_ratio);
    cr_expect(isfinite(enc_ratio) && (num(js, "peak_f32_gflops") > 0 ? enc_ratio > 0 : enc_ratio == 0), "encode ratio %g",
              enc_ratio);
    /* per tg repetition one time-matched bandwidth and one peak (best bracketing probe); each ratio is the mean of
     * rate_r * bytes / bw_r, so it lies between the mean rate over the largest and over the smallest bandwidth */
    const double tg = num(js, "tg_tokens_per_s"), bytes = num(js, "tg_bytes_per_token");
    const char *bw_keys[2] = {"tg_read_bw_gbs", "tg_peak_read_bw_gbs"};
    const char *ratio_keys[2] = {"tg_roofline_ratio", "tg_peak_roofline_ratio"};
    for (int k = 0; k < 2; k++) {
        json_t *bws = json_object_get(js, bw_keys[k]);
        cr_assert(json_is_array(bws) && json_array_size(bws) == 2, "%s: one per repetition", bw_keys[k]);
        double lo = INFINITY, hi = 0;
        for (size_t i = 0; i < 2; i++) {
            double b = json_number_value(json_array_get(bws, i)) * 1e9;
            cr_expect(b > 0, "%s[%zu] = %g", bw_keys[k], i, b);
            lo = b < lo ? b : lo;
            hi = b > hi ? b : hi;
        }
        const double ratio = num(js, ratio_keys[k]);
        cr_expect(ratio >= tg * bytes / hi * 0.999 && ratio <= tg * bytes / lo * 1.001, "%s %g outside [%g, %g]",
                  ratio_keys[k], ratio, tg * bytes / hi, tg * bytes / lo);
    }
    /* --profile: every part of a decode token, its time, and weight bytes that add up to at most a token's */
    json_t *prof = json_object_get(js, "tg_profile");
    cr_assert(json_is_object(prof), "--profile gives tg_profile");
    const char *parts[] = {"glue", "qkv", "attention", "wo", "shared", "routed", "head"};
    double mb_sum = 0;
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        json_t *pj = json_object_get(prof, parts[i]);
        cr_assert(json_is_object(pj), "tg_profile.%s", parts[i]);
        const double ms = num(pj, "ms_per_token"), mb = num(pj, "weight_mb_per_token");
        cr_expect(isfinite(ms) && ms >= 0 && isfinite(mb) && mb >= 0, "%s: %g ms, %g MB", parts[i], ms, mb);
        mb_sum += mb;
    }
    cr_expect(mb_sum > 0 && mb_sum * 1e6 <= bytes * 1.0001, "parts read %g MB of a token's %g", mb_sum, bytes / 1e6);
    /* --scaling: alternating 1- and 2-thread prefills; a speed-up, not a hard-coded value (timing is not asserted) */
    const double su = num(js, "pp_speedup_vs_1_thread");
    cr_expect(isfinite(su) && su > 0, "speed-up %g", su);
    /* the peak loops exist from AVX2 up; under LOOM_ISA=scalar there is no peak to scale, and no key */
    if (loom_isa_active() >= LOOM_ISA_AVX2) {
        const double psu = num(js, "peak_speedup_vs_1_thread");
        cr_expect(isfinite(psu) && psu > 0, "peak speed-up %g", psu);
    } else {
        cr_expect(json_object_get(js, "peak_speedup_vs_1_thread") == NULL, "a peak speed-up without peak loops");
    }
    /* --schedule-ab: both matvec schedules decoded tokens (speeds, not judged) */
    json_t *ab = json_object_get(js, "tg_schedule_ab");
    cr_assert(json_is_object(ab), "--schedule-ab gives tg_schedule_ab");
    const char *ab_keys[] = {"steal_tokens_per_s", "guided_tokens_per_s", "steal_over_guided"};
    for (size_t i = 0; i < 3; i++) {
        const double v = num(ab, ab_keys[i]);
        cr_expect(isfinite(v) && v > 0, "tg_schedule_ab.%s = %g", ab_keys[i], v);
    }
    json_t *pprof = json_object_get(js, "pp_profile_ms");
    cr_assert(json_is_object(pprof), "--profile gives pp_profile_ms");
    double pp_ms = 0;
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) pp_ms += num(pprof, parts[i]);
    /* one prefill by parts takes about what a timed one does: 1 / pp_tokens_per_s per token */
    const double pp_expect = 32 / num(js, "pp_tokens_per_s") * 1e3;
    cr_expect(pp_ms > 0 && pp_ms < 20 * pp_expect, "prefill parts sum to %g ms, a timed one took %g", pp_ms, pp_expect);
    json_decref(js);
    cli_result_free(&r);

    char *bad[] = {(char *)bin, "bench", "-m", model, "-r", "0", NULL};
    r = cli_run(bad);
    cr_expect(WIFEXITED(r.status) && WEXITSTATUS(r.status) != 0);
    cr_expect(strlen(r.err) > 0, "a bad option says why");
    cli_result_free(&r);
}

/* `loom bench kernels --json` on small shapes: one result per type asked, each with the bandwidth of the probes
 * around it, and every ratio that rate over that bandwidth. */
Test(cli_bench, kernels_json_ratios_use_the_bracketing_probe, .timeout = 120) {
    CLI_BIN(bin);
    char *argv[] = {(char *)bin, "bench", "kernels", "--rows", "256", "--cols", "512", "--large-rows", "512",
                    "--types", "Q4_K,Q8_0", "--tokens", "4", "--reps", "2", "--bw-mib", "32", "--cold-mib", "16",
                    "--json", NULL};
    cli_result r = cli_run(argv);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "bench kernels failed: %s", r.err);
    json_error_t je;
    json_t *js = json_loads(r.out, 0, &je);
    cr_assert_not_null(js, "not JSON: %s (%s)", r.out, je.text);
    cr_expect(num(js, "bandwidth_gbs") > 0);
    json_t *res = json_object_get(js, "results");
    cr_assert(json_is_array(res) && json_array_size(res) == 2, "one result per type");
    for (size_t i = 0; i < 2; i++) {
        json_t *o = json_array_get(res, i);
        const double bw = num(o, "bandwidth_gbs");
        cr_expect(isfinite(bw) && bw > 0, "bandwidth %g", bw);
        /* the JSON rounds ratios to 4 decimals and rates to 3 */
        cr_expect_float_eq(num(o, "matvec_ratio"), num(o, "matvec_gbs") / bw, 1e-4 + 2e-3 * num(o, "matvec_ratio"));
        cr_expect_float_eq(num(o, "large_ratio"), num(o, "large_gbs") / bw, 1e-4 + 2e-3 * num(o, "large_ratio"));
    }
    json_decref(js);
    cli_result_free(&r);
}

/* -d N: the pp and tg rows after N tokens of context. A decode step then also reads the KV cache of those
 * positions: 2 (K and V) x 4 bytes x kv_heads x head_dim per layer per visible position; this model has 2
 * layers, 2 KV heads of 64 and no chunk smaller than the context, so depth 40 adds 40 x 2 x 2 x 4 x 128 bytes.
 * --profile splits the decode steps only: the untimed context prefill (one 40-token eval per repetition)
 * would change the weight bytes per eval of every part, so they equal those from an empty context. */
Test(cli_bench, depth_counts_the_kv_cache_read, .init = setup, .fini = teardown, .timeout = 120) {
    CLI_BIN(bin);
    char *synth[] = {(char *)bin, "synth", "-o", model, "--vocab", "512", "--d-model", "256", "--layers", "2",
                     "--heads", "4", "--kv-heads", "2", "--head-dim", "64", "--experts", "4", "--expert-ff", "256",
                     "--shared-ff", "256", NULL};
    cli_result r = cli_run(synth);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "synth failed: %s", r.err);
    cli_result_free(&r);
    double bytes[2], part_mb[2][2];
    const char *depths[2] = {"0", "40"}, *parts[2] = {"qkv", "head"};
    for (int k = 0; k < 2; k++) {
        char *bench[] = {(char *)bin, "bench", "-m", model, "-t", "2", "-p", "8", "-n", "4", "-r", "2",
                         "-d", (char *)depths[k], "--profile", "--json", NULL};
        r = cli_run(bench);
        cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "bench -d %s failed: %s", depths[k], r.err);
        json_error_t je;
        json_t *js = json_loads(r.out, 0, &je);
        cr_assert_not_null(js, "not JSON: %s (%s)", r.out, je.text);
        cr_expect_eq(num(js, "depth"), atoi(depths[k]));
        cr_expect(num(js, "tg_tokens_per_s") > 0 && num(js, "pp_tokens_per_s") > 0);
        bytes[k] = num(js, "tg_bytes_per_token");
        json_t *prof = json_object_get(js, "tg_profile");
        cr_assert(json_is_object(prof), "--profile with -d gives tg_profile");
        for (int i = 0; i < 2; i++) part_mb[k][i] = num(json_object_get(prof, parts[i]), "weight_mb_per_token");
        json_decref(js);
        cli_result_free(&r);
    }
    cr_expect_float_eq(bytes[1] - bytes[0], 40.0 * 2 * 2 * 4 * 128, 1.0, "depth 40 adds %g bytes per token",
                       bytes[1] - bytes[0]);
    for (int i = 0; i < 2; i++)
        cr_expect_float_eq(part_mb[1][i], part_mb[0][i], 1e-9 * part_mb[0][i], "%s: %g MB per decode step at depth 40, %g at 0",
                           parts[i], part_mb[1][i], part_mb[0][i]);
    char *bad[] = {(char *)bin, "bench", "-m", model, "-d", "x", NULL};
    r = cli_run(bad);
    cr_expect(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 2, "a bad depth is a usage error");
    cr_expect(strlen(r.err) > 0, "a bad depth says why");
    cli_result_free(&r);
}
