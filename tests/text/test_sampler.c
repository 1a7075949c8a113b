/* tests/text/test_sampler.c — greedy, temperature, top-k/top-p/min-p, repetition penalty, seeded draws. */
#include <math.h>
#include <string.h>
#include <time.h>

#include "tests/testutil.h"
#include "core/matmul.h"
#include "tests/text/sampler_ref.h"
#include "text/text.h"

static loom_sampler *make(float temp, int32_t top_k, float top_p, float min_p, uint64_t seed) {
    loom_sampler_params p = loom_sampler_default_params();
    p.temperature = temp;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.seed = seed;
    loom_sampler *s = NULL;
    loom_err err = {0};
    cr_assert_eq(loom_sampler_new(&s, &p, &err), LOOM_OK, "%s", err.msg);
    return s;
}

static int32_t argmax(const float *l, int32_t n) {
    int32_t b = 0;
    for (int32_t i = 1; i < n; i++)
        if (l[i] > l[b]) b = i;
    return b;
}

Test(sampler, greedy_and_top1_are_argmax) {
    uint64_t rs = 7;
    float l[1000];
    loom_sampler *g = make(0.0f, 40, 0.95f, 0.05f, 1);
    float temps[] = {0.3f, 1.0f, 5.0f, 100.0f};
    for (int trial = 0; trial < 50; trial++) {
        for (int i = 0; i < 1000; i++) l[i] = 3.0f * loom_test_rand_normal(&rs);
        int32_t want = argmax(l, 1000);
        cr_assert_eq(loom_sampler_sample(g, l, 1000), want);
        for (int k = 0; k < 4; k++) {
            loom_sampler *s = make(temps[k], 1, 1.0f, 0.0f, (uint64_t)trial);
            cr_assert_eq(loom_sampler_sample(s, l, 1000), want);
            loom_sampler_free(s);
        }
    }
    /* ties go to the lower id; NaN counts as -inf */
    float tie[4] = {1, 3, 3, NAN};
    cr_assert_eq(loom_sampler_sample(g, tie, 4), 1);
    loom_sampler_free(g);
}

Test(sampler, seeded_draws_are_reproducible) {
    float l[50];
    for (int i = 0; i < 50; i++) l[i] = (float)(i % 7) * 0.3f;
    loom_sampler *a = make(1.0f, 0, 1.0f, 0.0f, 1234), *b = make(1.0f, 0, 1.0f, 0.0f, 1234),
                 *c = make(1.0f, 0, 1.0f, 0.0f, 1235);
    int32_t first[200];
    int diff = 0;
    for (int i = 0; i < 200; i++) {
        first[i] = loom_sampler_sample(a, l, 50);
        cr_assert_eq(first[i], loom_sampler_sample(b, l, 50));
        diff += first[i] != loom_sampler_sample(c, l, 50);
    }
    cr_assert_gt(diff, 50, "another seed gives other draws");
    loom_sampler_reset(a); /* reseeds */
    for (int i = 0; i < 200; i++) cr_assert_eq(loom_sampler_sample(a, l, 50), first[i]);
    loom_sampler_free(a);
    loom_sampler_free(b);
    loom_sampler_free(c);
}

/* empirical frequencies of a 3-token softmax over 20,000 draws, within 5 standard deviations */
static void check_freq(float temp, const float *l, int n_draw) {
    loom_sampler *s = make(temp, 0, 1.0f, 0.0f, 99);
    int count[3] = {0};
    for (int i = 0; i < n_draw; i++) {
        int32_t id = loom_sampler_sample(s, l, 3);
        cr_assert(id >= 0 && id < 3);
        count[id]++;
    }
    double z = 0, p[3];
    for (int i = 0; i < 3; i++) z += exp(l[i] / temp);
    for (int i = 0; i < 3; i++) {
        p[i] = exp(l[i] / temp) / z;
        double f = (double)count[i] / n_draw, sd = sqrt(p[i] * (1 - p[i]) / n_draw);
        cr_assert(fabs(f - p[i]) < 5 * sd, "T=%g token %d: frequency %.4f, expected %.4f", temp, i, f, p[i]);
    }
    loom_sampler_free(s);
}

Test(sampler, distribution_matches_softmax) {
    float l[3] = {0.0f, 1.0f, 2.0f};
    check_freq(1.0f, l, 20000);
    check_freq(2.0f, l, 20000);
    check_freq(0.5f, l, 20000);
}

/* probabilities 0.5, 0.3, 0.15, 0.05 */
static const float four[4] = {0.0f, -0.5108256f, -1.2039728f, -2.3025851f};

static int32_t kept(float temp, int32_t top_k, float top_p, float min_p, int32_t *ids, float *probs) {
    loom_sampler *s = make(temp, top_k, top_p, min_p, 3);
    int32_t n = loom_sampler_candidates(s, four, 4, ids, probs, 4);
    /* sampling never leaves the kept set */
    for (int i = 0; i < 2000; i++) {
        int32_t id = loom_sampler_sample(s, four, 4);
        int found = 0;
        for (int32_t k = 0; k < n; k++) found |= ids[k] == id;
        cr_assert(found, "drew %d outside the kept set", id);
    }
    loom_sampler_free(s);
    return n;
}

Test(sampler, top_p_and_min_p_keep_the_right_tokens) {
    int32_t ids[4];
    float pr[4];
    cr_assert_eq(kept(1.0f, 0, 1.0f, 0.0f, ids, pr), 4);
    cr_assert(fabsf(pr[0] - 0.5f) < 1e-5f && fabsf(pr[3] - 0.05f) < 1e-5f);
    cr_assert(ids[0] == 0 && ids[1] == 1 && ids[2] == 2 && ids[3] == 3);
    /* top-p: 0.5 < 0.75 <= 0.8 -> 2 tokens; 0.85 -> 3; 0.4 -> 1 */
    cr_assert_eq(kept(1.0f, 0, 0.75f, 0.0f, ids, pr), 2);
    cr_assert(fabsf(pr[0] - 0.625f) < 1e-5f && fabsf(pr[1] - 0.375f) < 1e-5f);
    cr_assert_eq(kept(1.0f, 0, 0.85f, 0.0f, ids, pr), 3);
    cr_assert_eq(kept(1.0f, 0, 0.4f, 0.0f, ids, pr), 1);
    /* min-p relative to the best: 0.2 * 0.5 = 0.1 -> 3 tokens; 0.35 -> 0.175 -> 2 */
    cr_assert_eq(kept(1.0f, 0, 1.0f, 0.2f, ids, pr), 3);
    cr_assert_eq(ids[2], 2);
    cr_assert_eq(kept(1.0f, 0, 1.0f, 0.35f, ids, pr), 2);
    /* top-k then top-p renormalised over the top-k set: 0.5/0.8 = 0.625 >= 0.6 -> 1 token */
    cr_assert_eq(kept(1.0f, 2, 0.6f, 0.0f, ids, pr), 1);
    cr_assert_eq(kept(1.0f, 3, 1.0f, 0.0f, ids, pr), 3);
    /* temperature reshapes the kept set's probabilities, after the filters */
    cr_assert_eq(kept(2.0f, 0, 0.75f, 0.0f, ids, pr), 2);
    float a = sqrtf(0.5f), b = sqrtf(0.3f);
    cr_assert(fabsf(pr[0] - a / (a + b)) < 1e-5f);
}

Test(sampler, repetition_penalty_llama_cpp_semantics) {
    loom_sampler_params p = loom_sampler_default_params();
    p.temperature = 0;
    p.repeat_penalty = 2.0f;
    p.repeat_last_n = 3;
    loom_sampler *s;
    loom_err err = {0};
    cr_assert_eq(loom_sampler_new(&s, &p, &err), LOOM_OK);
    float l[4] = {2.0f, -2.0f, 1.5f, -3.5f};
    cr_assert_eq(loom_sampler_sample(s, l, 4), 0); /* no history yet */
    cr_assert(l[0] == 2.0f, "the caller's logits are not modified");
    /* history {0}: 2 / 2 = 1 < 1.5 -> token 2 */
    cr_assert_eq(loom_sampler_sample(s, l, 4), 2);
    /* history {0, 2}: 1, -2, 0.75, -3.5 -> 0; then {0, 2, 0}: 0 counted once -> still 1 vs 0.75 */
    cr_assert_eq(loom_sampler_sample(s, l, 4), 0);
    cr_assert_eq(loom_sampler_sample(s, l, 4), 0);
    /* negative logits are multiplied: with every token penalised, -2*2 = -4 > -3.5*2 = -7 */
    float neg[2] = {-3.5f, -2.0f};
    loom_sampler_reset(s);
    loom_sampler_accept(s, 0);
    loom_sampler_accept(s, 1);
    cr_assert_eq(loom_sampler_sample(s, neg, 2), 1);
    /* the window: after 3 more ids of token 1, token 0 is out of it */
    float l2[2] = {1.0f, 0.9f};
    loom_sampler_reset(s);
    loom_sampler_accept(s, 0);
    cr_assert_eq(loom_sampler_sample(s, l2, 2), 1);
    loom_sampler_accept(s, 1);
    loom_sampler_accept(s, 1);
    loom_sampler_accept(s, 1);
    cr_assert_eq(loom_sampler_sample(s, l2, 2), 0);
    /* ids outside the vocabulary in the history are ignored */
    loom_sampler_accept(s, 1000000);
    loom_sampler_accept(s, -4);
    loom_sampler_accept(s, 2);
    cr_assert_eq(loom_sampler_sample(s, l2, 2), 0);
    loom_sampler_free(s);
}

Test(sampler, bad_inputs) {
    loom_sampler *s = make(1.0f, 0, 1.0f, 0.0f, 1);
    float none[3] = {-INFINITY, NAN, -INFINITY};
    cr_assert_eq(loom_sampler_sample(s, none, 3), -1);
    cr_assert_eq(loom_sampler_sample(s, none, 0), -1);
    cr_assert_eq(loom_sampler_sample(s, NULL, 3), -1);
    float one[3] = {-INFINITY, 0.5f, NAN};
    cr_assert_eq(loom_sampler_sample(s, one, 3), 1);
    float inf[3] = {INFINITY, 0.5f, INFINITY};
    for (int i = 0; i < 100; i++) {
        int32_t id = loom_sampler_sample(s, inf, 3);
        cr_assert(id == 0 || id == 2);
    }
    loom_sampler_free(s);
    loom_sampler_free(NULL);

    loom_sampler_params p = loom_sampler_default_params();
    loom_err err = {0};
    p.repeat_penalty = 0;
    cr_assert_eq(loom_sampler_new(&s, &p, &err), LOOM_ERR_INVALID);
    p = loom_sampler_default_params();
    p.temperature = NAN;
    cr_assert_eq(loom_sampler_new(&s, &p, &err), LOOM_ERR_INVALID);
    p = loom_sampler_default_params();
    p.repeat_last_n = -1;
    cr_assert_eq(loom_sampler_new(&s, &p, &err), LOOM_ERR_INVALID);
}

/* Every common chain over the real vocabulary size (timings printed; the timeout catches a pathological slowdown). */
Test(sampler, full_vocabulary_chains, .timeout = 60) {
    const int32_t n = 202048;
    float *l = loom_malloc(n * sizeof *l);
    uint64_t rs = 5;
    for (int32_t i = 0; i < n; i++) l[i] = 2.0f * loom_test_rand_normal(&rs);
    struct {
        int32_t k;
        float p, mp;
        float t;
    } cfg[] = {{40, 0.95f, 0.05f, 0.8f}, {0, 0.95f, 0.0f, 0.8f}, {0, 1.0f, 0.0f, 0.8f}, {0, 0.9f, 0.0f, 0.6f}};
    for (int c = 0; c < 4; c++) {
        loom_sampler *s = make(cfg[c].t, cfg[c].k, cfg[c].p, cfg[c].mp, 1);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < 20; i++) cr_assert_geq(loom_sampler_sample(s, l, n), 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = ((double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-6) / 20;
        fprintf(stderr, "sampler temp %.1f top_k %d top_p %.2f min_p %.2f over %d logits (normal, sd 2): %.2f ms/token\n",
                cfg[c].t, cfg[c].k, cfg[c].p, cfg[c].mp, n, ms);
        loom_sampler_free(s);
    }
    /* a peaked distribution, as a language model's usually is: the CLI default keeps a few tokens */
    for (int32_t i = 0; i < n; i++) l[i] = 2.5f * loom_test_rand_normal(&rs);
    for (int k = 0; k < 30; k++) l[(k * 7919 + 13) % n] = 12.0f + 0.25f * (float)k;
    loom_sampler *s = make(0.6f, 0, 0.9f, 0.0f, 1);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 20; i++) cr_assert_geq(loom_sampler_sample(s, l, n), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = ((double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-6) / 20;
    fprintf(stderr, "sampler temp 0.6 top_p 0.90 over %d logits (peaked): %.2f ms/token\n", n, ms);
    loom_sampler_free(s);
    loom_free(l);
}

static const float *cmp_logits;
static int cmp_desc(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    float lx = cmp_logits[x], ly = cmp_logits[y];
    return lx > ly ? -1 : lx < ly ? 1 : (x > y) - (x < y);
}

/* the top-p quickselect keeps exactly the prefix a full sort gives (ties included: repeated logit values) */
Test(sampler, top_p_selection_equals_full_sort) {
    const int32_t n = 5000;
    float *l = loom_malloc(n * sizeof *l);
    int32_t *order = loom_malloc(n * sizeof *order), *ids = loom_malloc(n * sizeof *ids);
    float *pr = loom_malloc(n * sizeof *pr);
    uint64_t rs = 11;
    float ps[] = {0.05f, 0.3f, 0.9f, 0.99f, 0.999f};
    for (int trial = 0; trial < 6; trial++) {
        for (int32_t i = 0; i < n; i++)
            l[i] = trial & 1 ? (float)(int)(4 * loom_test_rand_normal(&rs)) : 1.5f * loom_test_rand_normal(&rs);
        for (int32_t i = 0; i < n; i++) order[i] = i;
        cmp_logits = l;
        qsort(order, n, sizeof *order, cmp_desc);
        double D = 0;
        for (int32_t i = 0; i < n; i++) D += exp((double)l[i] - l[order[0]]);
        for (int k = 0; k < 5; k++) {
            double cum = 0;
            int32_t want = n;
            for (int32_t i = 0; i < n; i++)
                if ((cum += exp((double)l[order[i]] - l[order[0]]) / D) >= ps[k]) {
                    want = i + 1;
                    break;
                }
            loom_sampler *s = make(1.0f, 0, ps[k], 0.0f, 1);
            int32_t got = loom_sampler_candidates(s, l, n, ids, pr, n);
            /* summation order differs; allow one token of rounding slack at the boundary */
            cr_assert(got == want || abs(got - want) == 1, "trial %d p %.3f: kept %d, sort says %d", trial, ps[k], got,
                      want);
            for (int32_t i = 0; i < got && i < want; i++) cr_assert_eq(ids[i], order[i], "rank %d", i);
            loom_sampler_free(s);
        }
    }
    loom_free(l);
    loom_free(order);
    loom_free(ids);
    loom_free(pr);
}

/* ==== the rewrite against the previous implementation (sampler_ref.h): same ids, same candidate lists ==== */

static void fill_logits(float *l, int32_t n, int kind, uint64_t *rs) {
    for (int32_t i = 0; i < n; i++) {
        double z = loom_test_rand_normal(rs);
        switch (kind) {
        case 0: l[i] = (float)(2.0 * z); break;                 /* flat: top-p keeps a third of the vocabulary */
        case 1: l[i] = (float)(2.5 * z); break;                 /* peaky, spikes below */
        case 2: l[i] = (float)(int)(3.0 * z); break;            /* many ties */
        case 3: l[i] = (float)(0.01 * z); break;                /* almost uniform */
        default: l[i] = (float)(40.0 * z); break;               /* one token takes everything */
        }
    }
    if (kind == 1)
        for (int k = 0; k < 30 && n > 0; k++) l[(uint32_t)(loom_test_rand_normal(rs) * 1e6) % (uint32_t)n] = 12.0f + k * 0.1f;
    if (n > 16 && (kind & 1)) { /* non-finite values where the chain must ignore them */
        l[n / 3] = NAN;
        l[n / 2] = -INFINITY;
    }
}

static void compare_one(const float *l, int32_t n, const loom_sampler_params *p, int32_t *ids, float *pr,
                        int32_t *rids, float *rpr, const char *what) {
    loom_sampler *s;
    ref_sampler  *r;
    loom_err      err = {0};
    cr_assert_eq(loom_sampler_new(&s, p, &err), LOOM_OK);
    cr_assert_eq(ref_sampler_new(&r, p, &err), LOOM_OK);
    for (int d = 0; d < 6; d++) { /* several draws: the history and the RNG move on together */
        int32_t a = loom_sampler_sample(s, l, n), b = ref_sampler_sample(r, l, n);
        cr_assert_eq(a, b, "%s draw %d: %d, reference %d", what, d, a, b);
    }
    int32_t m = loom_sampler_candidates(s, l, n, ids, pr, n), rm = ref_sampler_candidates(r, l, n, rids, rpr, n);
    cr_assert_eq(m, rm, "%s: %d candidates, reference %d", what, m, rm);
    for (int32_t i = 0; i < m && i < n; i++) {
        cr_assert_eq(ids[i], rids[i], "%s: candidate %d", what, i);
        cr_assert(memcmp(&pr[i], &rpr[i], sizeof pr[i]) == 0, "%s: probability %d: %a vs %a", what, i, pr[i], rpr[i]);
    }
    loom_sampler_free(s);
    ref_sampler_free(r);
}

Test(sampler, same_draws_as_reference) {
    static const int32_t sizes[] = {1, 2, 5, 17, 300, 4096, 202048};
    static const struct {
        float   t;
        int32_t k;
        float   p, mp, pen;
    } cfg[] = {{0.0f, 0, 1.0f, 0.0f, 1.0f},   {0.6f, 0, 0.9f, 0.0f, 1.0f},  {0.8f, 40, 1.0f, 0.0f, 1.0f},
               {0.8f, 0, 1.0f, 0.05f, 1.0f},  {0.8f, 40, 0.95f, 0.05f, 1.0f}, {1.0f, 0, 1.0f, 0.0f, 1.0f},
               {0.8f, 0, 0.95f, 0.0f, 1.0f},  {1.3f, 0, 0.5f, 0.1f, 1.0f},  {0.7f, 1, 1.0f, 0.0f, 1.0f},
               {0.6f, 0, 0.9f, 0.0f, 1.3f},   {0.9f, 5, 0.3f, 0.0f, 0.8f},  {0.6f, 100000, 0.99f, 0.0f, 1.0f}};
    const int32_t nmax = 202048;
    float        *l = loom_malloc(nmax * sizeof *l), *pr = loom_malloc(nmax * sizeof *pr),
          *rpr = loom_malloc(nmax * sizeof *rpr);
    int32_t *ids = loom_malloc(nmax * sizeof *ids), *rids = loom_malloc(nmax * sizeof *rids);
    uint64_t rs = 2024;
    int      runs = 0;
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
        for (int kind = 0; kind < 5; kind++) {
            int32_t n = sizes[si];
            if (n == nmax && kind > 1) continue; /* the full vocabulary twice is enough for the time budget */
            fill_logits(l, n, kind, &rs);
            for (size_t c = 0; c < sizeof cfg / sizeof *cfg; c++) {
                if (n == nmax && c % 2 && c != 1) continue;
                loom_sampler_params p = loom_sampler_default_params();
                p.temperature = cfg[c].t;
                p.top_k = cfg[c].k;
                p.top_p = cfg[c].p;
                p.min_p = cfg[c].mp;
                p.repeat_penalty = cfg[c].pen;
                p.repeat_last_n = 8;
                p.seed = rs ^ (uint64_t)c;
                char what[96];
                snprintf(what, sizeof what, "n %d kind %d config %zu", n, kind, c);
                loom_isa_force(LOOM_ISA_SCALAR); /* the plain C path, then the best this CPU has */
                compare_one(l, n, &p, ids, pr, rids, rpr, what);
                loom_isa_force(loom_isa_best());
                compare_one(l, n, &p, ids, pr, rids, rpr, what);
                runs++;
            }
        }
    cr_assert_gt(runs, 300);
    loom_free(l);
    loom_free(pr);
    loom_free(rpr);
    loom_free(ids);
    loom_free(rids);
}

/* the AVX2 weights are the C library's exp rounded to float, bit for bit, over the whole useful range */
void sampler_exp_weights_avx2(float *out, const float *l, const int32_t *ids, int32_t n, double M, double T);

Test(sampler, avx2_exp_is_bit_exact) {
    const loom_cpu_features *cf = loom_cpu_features_get();
    if (!cf->avx2 || !cf->fma) cr_skip_test("no AVX2/FMA here");
    const int32_t n = 1 << 18;
    float        *l = loom_malloc(n * sizeof *l), *out = loom_malloc(n * sizeof *out);
    int32_t      *ids = loom_malloc(n * sizeof *ids);
    uint64_t      rs = 77;
    const double  T[] = {1.0, 0.6, 0.8, 1.3, 0.05};
    for (int round = 0; round < 5; round++) {
        for (int32_t i = 0; i < n; i++) {
            double u = loom_test_rand_normal(&rs);
            l[i] = (float)(i % 4 == 0 ? -fabs(u) * 40 : i % 4 == 1 ? -fabs(u) * 3 : u * 8); /* some above M */
            ids[i] = (int32_t)((uint32_t)(i * 2654435761u) % (uint32_t)n);
        }
        l[7] = -INFINITY;
        l[9] = INFINITY;
        l[11] = NAN;
        const double M = 4.0;
        sampler_exp_weights_avx2(out, l, round & 1 ? ids : NULL, n - round, M, T[round]);
        for (int32_t i = 0; i < n - round; i++) {
            float want = (float)exp(((double)l[round & 1 ? ids[i] : i] - M) / T[round]);
            cr_assert(memcmp(&out[i], &want, sizeof want) == 0, "T %g x %a: %a, exp gives %a", T[round],
                      ((double)l[round & 1 ? ids[i] : i] - M) / T[round], out[i], want);
        }
    }
    loom_free(l);
    loom_free(out);
    loom_free(ids);
}

/* the top-p selection's margins assume the approximate weights are within a relative 1e-5 (sampler_avx2.c) */
double sampler_approx_weights_avx2(float *out, const float *l, int32_t n, float M);

Test(sampler, avx2_approx_weights_within_bound) {
    const loom_cpu_features *cf = loom_cpu_features_get();
    if (!cf->avx2 || !cf->fma) cr_skip_test("no AVX2/FMA here");
    const int32_t n = 1 << 18;
    float        *l = loom_malloc(n * sizeof *l), *out = loom_malloc(n * sizeof *out);
    const float   M = 3.25f;
    for (int32_t i = 0; i < n; i++) l[i] = M - (float)i * (100.0f / (float)n); /* x from 0 down to -100 */
    l[5] = -INFINITY;
    double sum = sampler_approx_weights_avx2(out, l, n - 3, M), want_sum = 0;
    for (int32_t i = 0; i < n - 3; i++) {
        double want = exp((double)l[i] - M);
        want_sum += want;
        if ((double)l[i] - M >= -87.0)
            cr_assert(fabs(out[i] - want) <= 1e-5 * want, "x %g: %a, exp %a", (double)l[i] - M, out[i], want);
        else
            cr_assert(out[i] == 0.0f || fabs(out[i] - want) <= 1e-5 * want);
    }
    cr_assert(fabs(sum - want_sum) <= 1e-5 * want_sum, "sum %.17g, exp %.17g", sum, want_sum);
    loom_free(l);
    loom_free(out);
}
