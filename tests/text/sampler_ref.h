/* tests/text/sampler_ref.h — the sampler as it was before the fast-exp rewrite (text/sampler.c at 9269aab), kept
 * verbatim except for names (loom_sampler -> ref_sampler, all static) as the reference the rewrite must match
 * draw for draw. Included by test_sampler.c only. */
#ifndef LOOM_TESTS_TEXT_SAMPLER_REF_H
#define LOOM_TESTS_TEXT_SAMPLER_REF_H
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "text/text.h"
#include <stdlib.h>

#define REF_MAX_WINDOW (1 << 20)

typedef struct ref_sampler ref_sampler;
static void ref_sampler_free(ref_sampler *s);

struct ref_sampler {
    loom_sampler_params p;
    uint64_t            rng[4];
    int32_t            *hist; /* ring buffer [p.repeat_last_n] */
    int32_t             hist_n, hist_pos;
    int32_t            *uniq; /* [p.repeat_last_n] scratch for the penalty */
    /* per-call scratch, sized for the largest n_vocab seen */
    int32_t             cap;
    float              *logit; /* [n_vocab] penalised copy, NaN -> -inf */
    int32_t            *heap;  /* [n_vocab] ids, max-heap by logit */
    int32_t            *keep;  /* [n_vocab] kept ids, best first */
    float              *w;     /* [n_vocab] their weights after temperature */
    float              *pw;    /* [n_vocab] weight of each id before temperature (top-p selection) */
};

static loom_sampler_params ref_sampler_default_params(void) {
    return (loom_sampler_params){.temperature = 0.8f,
                                 .top_k = 40,
                                 .top_p = 0.95f,
                                 .min_p = 0.05f,
                                 .repeat_penalty = 1.0f,
                                 .repeat_last_n = 64,
                                 .seed = 0};
}

/* ==== RNG ==== */

static uint64_t ref_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t ref_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t ref_xoshiro_next(uint64_t s[4]) {
    uint64_t r = ref_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = ref_rotl(s[3], 45);
    return r;
}

static double ref_uniform01(uint64_t s[4]) { return (double)(ref_xoshiro_next(s) >> 11) * 0x1.0p-53; }

static void ref_seed_rng(ref_sampler *s) {
    uint64_t x = s->p.seed;
    for (int i = 0; i < 4; i++) s->rng[i] = ref_splitmix64(&x);
}

/* ==== lifecycle ==== */

static loom_status ref_sampler_new(ref_sampler **out, const loom_sampler_params *p, loom_err *err) {
    if (!out) return LOOM_FAIL(err, LOOM_ERR_INVALID, "ref_sampler_new: NULL argument");
    *out = NULL;
    loom_sampler_params q = p ? *p : ref_sampler_default_params();
    if (isnan(q.temperature) || isnan(q.top_p) || isnan(q.min_p))
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "sampler: NaN temperature, top_p or min_p");
    if (!(q.repeat_penalty > 0) || isinf(q.repeat_penalty))
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "sampler: repeat penalty %g must be positive", q.repeat_penalty);
    if (q.repeat_last_n < 0 || q.repeat_last_n > REF_MAX_WINDOW)
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "sampler: repeat window %d outside 0..%d", q.repeat_last_n, REF_MAX_WINDOW);
    ref_sampler *s = loom_calloc(1, sizeof *s);
    if (!s) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "sampler: out of memory");
    s->p = q;
    if (q.repeat_last_n > 0) {
        s->hist = loom_malloc((size_t)q.repeat_last_n * sizeof *s->hist);
        s->uniq = loom_malloc((size_t)q.repeat_last_n * sizeof *s->uniq);
        if (!s->hist || !s->uniq) {
            ref_sampler_free(s);
            return LOOM_FAIL(err, LOOM_ERR_NOMEM, "sampler: out of memory (history)");
        }
    }
    ref_seed_rng(s);
    *out = s;
    return LOOM_OK;
}

static void ref_sampler_free(ref_sampler *s) {
    if (!s) return;
    loom_free(s->hist);
    loom_free(s->uniq);
    loom_free(s->logit);
    loom_free(s->heap);
    loom_free(s->keep);
    loom_free(s->w);
    loom_free(s->pw);
    loom_free(s);
}

static void ref_sampler_accept(ref_sampler *s, int32_t id) {
    if (!s || s->p.repeat_last_n <= 0) return;
    s->hist[s->hist_pos] = id;
    s->hist_pos = (s->hist_pos + 1) % s->p.repeat_last_n;
    if (s->hist_n < s->p.repeat_last_n) s->hist_n++;
}

__attribute__((unused)) static void ref_sampler_reset(ref_sampler *s) {
    if (!s) return;
    s->hist_n = s->hist_pos = 0;
    ref_seed_rng(s);
}

/* ==== the chain ==== */

static int ref_reserve(ref_sampler *s, int32_t n) {
    if (n <= s->cap) return 1;
    float *l = loom_realloc(s->logit, (size_t)n * sizeof *l);
    if (l) s->logit = l;
    int32_t *h = l ? loom_realloc(s->heap, (size_t)n * sizeof *h) : NULL;
    if (h) s->heap = h;
    int32_t *k = h ? loom_realloc(s->keep, (size_t)n * sizeof *k) : NULL;
    if (k) s->keep = k;
    float *w = k ? loom_realloc(s->w, (size_t)n * sizeof *w) : NULL;
    if (w) s->w = w;
    float *pw = w ? loom_realloc(s->pw, (size_t)n * sizeof *pw) : NULL;
    if (!pw) return 0;
    s->pw = pw;
    s->cap = n;
    return 1;
}

static int ref_cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* llama.cpp's repetition penalty: every distinct id of the window once; positive logits shrink, negative grow. */
static void ref_apply_penalty(ref_sampler *s, int32_t n) {
    if (s->p.repeat_penalty == 1.0f || s->hist_n == 0) return;
    memcpy(s->uniq, s->hist, (size_t)s->hist_n * sizeof *s->uniq);
    qsort(s->uniq, (size_t)s->hist_n, sizeof *s->uniq, ref_cmp_i32);
    for (int32_t i = 0; i < s->hist_n; i++) {
        int32_t id = s->uniq[i];
        if ((i > 0 && id == s->uniq[i - 1]) || id < 0 || id >= n) continue;
        float *l = &s->logit[id];
        *l = *l > 0 ? *l / s->p.repeat_penalty : *l * s->p.repeat_penalty;
    }
}

/* ref_better(a, b): a sorts before b (higher logit, then lower id) */
static inline int ref_better(const float *l, int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); }

/* Binary heap of ids; max = 1: best on top, max = 0: worst on top (top-k selection, heap sort). */
static void ref_sift_down(const float *l, int32_t *h, int32_t n, int32_t i, int max) {
    int32_t v = h[i];
    for (;;) {
        int32_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && (max ? ref_better(l, h[c + 1], h[c]) : ref_better(l, h[c], h[c + 1]))) c++;
        if (max ? !ref_better(l, h[c], v) : !ref_better(l, v, h[c])) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
}

static double ref_weight(double lv, double M, int inf_max) { return inf_max ? (lv == M) : exp(lv - M); }

/* Sorts ids a[0..n) best first: heap sort on a worst-on-top heap, which leaves the best at the front. */
static void ref_sort_best_first(const float *l, int32_t *a, int32_t n) {
    for (int32_t i = n / 2 - 1; i >= 0; i--) ref_sift_down(l, a, n, i, 0);
    for (int32_t e = n - 1; e > 0; e--) {
        int32_t tmp = a[0];
        a[0] = a[e];
        a[e] = tmp;
        ref_sift_down(l, a, e, 0, 0);
    }
}

/* Reorders ids a[0..n) so that a[0..cut) is the shortest prefix of the best-first order whose weight pw[]
 * reaches target, and returns cut (n when rounding leaves the total short). Quickselect on (logit, id), which
 * is a strict order, so the cut is the one a full sort would give. */
static int32_t ref_select_top_p(const float *l, const float *pw, int32_t *a, int32_t n, double target) {
    int32_t lo = 0, hi = n;
    double acc = 0; /* weight of a[0..lo), all kept and better than everything after */
    while (hi - lo > 16) {
        int32_t mid = lo + (hi - lo) / 2, x = a[lo], y = a[mid], z = a[hi - 1], piv;
        /* median of three */
        if (ref_better(l, x, y)) piv = ref_better(l, y, z) ? y : ref_better(l, x, z) ? z : x;
        else piv = ref_better(l, x, z) ? x : ref_better(l, y, z) ? z : y;
        /* partition [lo, hi): better than the pivot first, then the pivot at pi */
        int32_t pi = lo;
        for (int32_t i = lo; i < hi; i++)
            if (ref_better(l, a[i], piv)) {
                int32_t t = a[i];
                a[i] = a[pi];
                a[pi++] = t;
            }
        for (int32_t i = pi; i < hi; i++)
            if (a[i] == piv) {
                a[i] = a[pi];
                a[pi] = piv;
                break;
            }
        double upper = 0;
        for (int32_t i = lo; i < pi; i++) upper += pw[a[i]];
        if (acc + upper >= target) {
            hi = pi; /* the cut lies among the better ones */
        } else {
            acc += upper + pw[piv];
            if (acc >= target) return pi + 1;
            lo = pi + 1;
        }
    }
    ref_sort_best_first(l, a + lo, hi - lo);
    for (int32_t i = lo; i < hi; i++)
        if ((acc += pw[a[i]]) >= target) return i + 1;
    return hi;
}

/* Runs the chain up to the draw: s->keep[0..m) with weights s->w (summing to *wsum), best first when the
 * filters needed the order or `sorted` asks for it. Returns m, 0 when no logit is finite, -1 on bad arguments
 * or memory. */
static int32_t ref_prepare(ref_sampler *s, const float *logits, int32_t n, double *wsum, int sorted) {
    if (!s || !logits || n <= 0 || !ref_reserve(s, n)) return -1;
    float *l = s->logit;
    for (int32_t i = 0; i < n; i++) l[i] = isnan(logits[i]) ? -INFINITY : logits[i];
    ref_apply_penalty(s, n);

    int32_t best = 0, n_fin = 0;
    for (int32_t i = 0; i < n; i++) {
        if (l[i] > l[best]) best = i;
        n_fin += l[i] > -INFINITY;
    }
    if (n_fin == 0) return 0;
    if (s->p.temperature <= 0 || s->p.top_k == 1) {
        s->keep[0] = best;
        s->w[0] = 1.0f;
        *wsum = 1.0;
        return 1;
    }
    const double M = l[best];
    /* +inf logits: treat every +inf as equally certain and the rest as impossible (M - M would be NaN) */
    const int inf_max = isinf(M);
    const int use_p = s->p.top_p < 1.0f;
    const double thr = s->p.min_p > 0 ? M + log((double)s->p.min_p) : -INFINITY;
    const int32_t K = s->p.top_k > 0 && s->p.top_k < n_fin ? s->p.top_k : n_fin;
    int32_t *keep = s->keep, kept = 0;

    if (K < n_fin) {
        /* top-k in one pass with a worst-on-top heap of K ids, then sorted best first (heap sort) */
        int32_t hn = 0;
        for (int32_t i = 0; i < n; i++) {
            if (l[i] == -INFINITY) continue;
            if (hn < K) {
                int32_t j = hn++;
                keep[j] = i;
                while (j > 0 && ref_better(l, keep[(j - 1) / 2], keep[j])) { /* sift up: worse parent stays on top */
                    int32_t p = (j - 1) / 2, tmp = keep[p];
                    keep[p] = keep[j];
                    keep[j] = tmp;
                    j = p;
                }
            } else if (ref_better(l, i, keep[0])) {
                keep[0] = i;
                ref_sift_down(l, keep, hn, 0, 0);
            }
        }
        for (int32_t e = hn - 1; e > 0; e--) { /* finish the heap sort: best first */
            int32_t tmp = keep[0];
            keep[0] = keep[e];
            keep[e] = tmp;
            ref_sift_down(l, keep, e, 0, 0);
        }
        double D = 0, cum = 0; /* top-p renormalises over the top-k set */
        for (int32_t i = 0; i < K; i++) D += ref_weight(l[keep[i]], M, inf_max);
        for (kept = 0; kept < K; kept++) {
            double lv = l[keep[kept]];
            if (kept > 0 && (lv < thr || (inf_max && lv != M))) break; /* min-p; the best token always stays */
            if (use_p && (cum += ref_weight(lv, M, inf_max) / D) >= s->p.top_p) {
                kept++;
                break;
            }
        }
    } else if (use_p) {
        /* top-p without top-k: quickselect the shortest best-first prefix whose mass reaches top_p, O(n)
         * expected; a heap would pop half the vocabulary on a flat distribution */
        int32_t *a = s->heap, m = 0;
        float *pw = s->pw; /* [n] weight per id */
        double D = 0;
        for (int32_t i = 0; i < n; i++)
            if (l[i] > -INFINITY) a[m++] = i, D += (pw[i] = (float)ref_weight(l[i], M, inf_max));
        int32_t cut = ref_select_top_p(l, pw, a, m, s->p.top_p * D);
        for (int32_t i = 0; i < cut; i++) /* min-p on top: both keep a best-first prefix */
            if (a[i] == best || (l[a[i]] >= thr && !(inf_max && l[a[i]] != M))) keep[kept++] = a[i];
        if (sorted) ref_sort_best_first(l, keep, kept);
    } else {
        /* no top-k, no top-p: min-p is a plain threshold and the draw needs no order */
        for (int32_t i = 0; i < n; i++)
            if (l[i] > -INFINITY && (i == best || (l[i] >= thr && !(inf_max && l[i] != M)))) keep[kept++] = i;
        if (sorted) ref_sort_best_first(l, keep, kept);
    }

    const double T = s->p.temperature;
    double sum = 0;
    for (int32_t i = 0; i < kept; i++) {
        double lv = l[keep[i]];
        s->w[i] = (float)(inf_max ? (lv == M) : exp((lv - M) / T));
        sum += s->w[i];
    }
    *wsum = sum;
    return kept;
}

static int32_t ref_sampler_sample(ref_sampler *s, const float *logits, int32_t n_vocab) {
    double sum;
    int32_t m = ref_prepare(s, logits, n_vocab, &sum, 0);
    if (m <= 0) return -1;
    int32_t pick = m - 1;
    if (m > 1) {
        double u = ref_uniform01(s->rng) * sum, acc = 0;
        for (int32_t i = 0; i < m; i++) {
            acc += s->w[i];
            if (u < acc) {
                pick = i;
                break;
            }
        }
    }
    int32_t id = s->keep[pick];
    ref_sampler_accept(s, id);
    return id;
}

static int32_t ref_sampler_candidates(ref_sampler *s, const float *logits, int32_t n_vocab, int32_t *ids, float *probs,
                                int32_t cap) {
    double sum;
    int32_t m = ref_prepare(s, logits, n_vocab, &sum, 1);
    if (m <= 0) return -1;
    for (int32_t i = 0; i < m && i < cap; i++) {
        if (ids) ids[i] = s->keep[i];
        if (probs) probs[i] = (float)(s->w[i] / sum);
    }
    return m;
}
#endif
