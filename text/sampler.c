/* text/sampler.c — choosing the next token from the backbone's logits.
 *
 * One fixed chain, in llama.cpp's default order: repetition penalty -> top-k -> top-p -> min-p -> temperature
 * -> draw. Each filter keeps a prefix of the tokens sorted by logit (best first), so the kept set is the
 * shortest of the three prefixes and the vocabulary never needs a full sort: top-k is one pass with a K-entry
 * heap (then top-p and min-p scan those K), top-p without top-k is a quickselect on mass (O(n) expected), and
 * min-p alone is a plain threshold. top-p and min-p see the probabilities before temperature, as llama.cpp's
 * chain does; top-p's probabilities are renormalised over the top-k set.
 *
 * Speed without changing a single draw (tests/text/sampler_ref.h is the previous implementation; the tests
 * compare ids and probabilities bit for bit): the passes over the whole vocabulary are written for the
 * vectorizer; the softmax weights come from a bit-exact AVX2 exp (sampler_avx2.c); the top-p quickselect keeps
 * the reference's pivots and Lomuto orders but decides its steps on approximate weights and lane sums, with
 * margins that cover their error, falling back to the exact weights and sequential sums only for a close call.
 * Over 202,048 logits that is ~0.05 ms greedy, ~0.16 ms top-k 40, ~0.23 ms min-p, ~0.25 ms top-p 0.9 on a
 * peaked distribution (1.2-2 ms on a flat one, which keeps a third of the vocabulary).
 *
 * The RNG is xoshiro256** seeded through splitmix64, so a seed gives the same draws on every platform.
 * Ties between equal logits go to the lower id, in greedy and in the candidate order alike.
 */
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/matmul.h"
#include "text/text.h"

/* text/sampler_avx2.c: out[i] = (float)exp(((double)l[ids ? ids[i] : i] - M) / T), bit for bit as below */
void   sampler_exp_weights_avx2(float *out, const float *l, const int32_t *ids, int32_t n, double M, double T);
/* the same, approximately (relative 1e-5) and faster, for T = 1 and l[i] <= M; returns the sum */
double sampler_approx_weights_avx2(float *out, const float *l, int32_t n, float M);
/* one quickselect split (see split() below), eight ids at a time */
int32_t sampler_split_avx2(int32_t *b, double *mass, const float *l, const float *pw, const int32_t *ids, int32_t n,
                           float pv, int32_t piv);

#define MAX_WINDOW (1 << 20)

struct loom_sampler {
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
    int32_t            *queue; /* [n_vocab + 1] partition scratch */
    int                 avx2;  /* the CPU has AVX2 and FMA: sampler_exp_weights_avx2 */
};

loom_sampler_params loom_sampler_default_params(void) {
    return (loom_sampler_params){.temperature = 0.8f,
                                 .top_k = 40,
                                 .top_p = 0.95f,
                                 .min_p = 0.05f,
                                 .repeat_penalty = 1.0f,
                                 .repeat_last_n = 64,
                                 .seed = 0};
}

/* ==== RNG ==== */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro_next(uint64_t s[4]) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

static double uniform01(uint64_t s[4]) { return (double)(xoshiro_next(s) >> 11) * 0x1.0p-53; }

static void seed_rng(loom_sampler *s) {
    uint64_t x = s->p.seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
}

/* ==== lifecycle ==== */

loom_status loom_sampler_new(loom_sampler **out, const loom_sampler_params *p, loom_err *err) {
    if (!out) return LOOM_FAIL(err, LOOM_ERR_INVALID, "loom_sampler_new: NULL argument");
    *out = NULL;
    loom_sampler_params q = p ? *p : loom_sampler_default_params();
    if (isnan(q.temperature) || isnan(q.top_p) || isnan(q.min_p))
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "sampler: NaN temperature, top_p or min_p");
    if (!(q.repeat_penalty > 0) || isinf(q.repeat_penalty))
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "sampler: repeat penalty %g must be positive", q.repeat_penalty);
    if (q.repeat_last_n < 0 || q.repeat_last_n > MAX_WINDOW)
        return LOOM_FAIL(err, LOOM_ERR_INVALID, "sampler: repeat window %d outside 0..%d", q.repeat_last_n, MAX_WINDOW);
    loom_sampler *s = loom_calloc(1, sizeof *s);
    if (!s) return LOOM_FAIL(err, LOOM_ERR_NOMEM, "sampler: out of memory");
    s->p = q;
    s->avx2 = loom_isa_active() >= LOOM_ISA_AVX2; /* AVX2 + FMA; loom_isa_force pins it (tests) */
    if (q.repeat_last_n > 0) {
        s->hist = loom_malloc((size_t)q.repeat_last_n * sizeof *s->hist);
        s->uniq = loom_malloc((size_t)q.repeat_last_n * sizeof *s->uniq);
        if (!s->hist || !s->uniq) {
            loom_sampler_free(s);
            return LOOM_FAIL(err, LOOM_ERR_NOMEM, "sampler: out of memory (history)");
        }
    }
    seed_rng(s);
    *out = s;
    return LOOM_OK;
}

void loom_sampler_free(loom_sampler *s) {
    if (!s) return;
    loom_free(s->hist);
    loom_free(s->uniq);
    loom_free(s->logit);
    loom_free(s->heap);
    loom_free(s->keep);
    loom_free(s->w);
    loom_free(s->pw);
    loom_free(s->queue);
    loom_free(s);
}

void loom_sampler_accept(loom_sampler *s, int32_t id) {
    if (!s || s->p.repeat_last_n <= 0) return;
    s->hist[s->hist_pos] = id;
    s->hist_pos = (s->hist_pos + 1) % s->p.repeat_last_n;
    if (s->hist_n < s->p.repeat_last_n) s->hist_n++;
}

void loom_sampler_reset(loom_sampler *s) {
    if (!s) return;
    s->hist_n = s->hist_pos = 0;
    seed_rng(s);
}

/* ==== the chain ==== */

static int reserve(loom_sampler *s, int32_t n) {
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
    if (pw) s->pw = pw;
    int32_t *q = pw ? loom_realloc(s->queue, ((size_t)n + 1) * sizeof *q) : NULL;
    if (!q) return 0;
    s->queue = q;
    s->cap = n;
    return 1;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* llama.cpp's repetition penalty: every distinct id of the window once; positive logits shrink, negative grow. */
static void apply_penalty(loom_sampler *s, int32_t n) {
    if (s->p.repeat_penalty == 1.0f || s->hist_n == 0) return;
    memcpy(s->uniq, s->hist, (size_t)s->hist_n * sizeof *s->uniq);
    qsort(s->uniq, (size_t)s->hist_n, sizeof *s->uniq, cmp_i32);
    for (int32_t i = 0; i < s->hist_n; i++) {
        int32_t id = s->uniq[i];
        if ((i > 0 && id == s->uniq[i - 1]) || id < 0 || id >= n) continue;
        float *l = &s->logit[id];
        *l = *l > 0 ? *l / s->p.repeat_penalty : *l * s->p.repeat_penalty;
    }
}

/* better(a, b): a sorts before b (higher logit, then lower id) */
static inline int better(const float *l, int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); }

/* Binary heap of ids; max = 1: best on top, max = 0: worst on top (top-k selection, heap sort). */
static void sift_down(const float *l, int32_t *h, int32_t n, int32_t i, int max) {
    int32_t v = h[i];
    for (;;) {
        int32_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && (max ? better(l, h[c + 1], h[c]) : better(l, h[c], h[c + 1]))) c++;
        if (max ? !better(l, h[c], v) : !better(l, v, h[c])) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
}

static double weight(double lv, double M, int inf_max) { return inf_max ? (lv == M) : exp(lv - M); }

/* out[i] = (float)exp(((double)l[id] - M) / T), id = ids ? ids[i] : i: the weights of the top-p selection
 * (T = 1) and of the draw. The AVX2 path gives the same floats (see sampler_avx2.c), about five times faster. */
static void exp_weights(const loom_sampler *s, float *out, const float *l, const int32_t *ids, int32_t n, double M,
                        double T) {
    if (s->avx2) {
        sampler_exp_weights_avx2(out, l, ids, n, M, T);
        return;
    }
    for (int32_t i = 0; i < n; i++) out[i] = (float)exp(((double)l[ids ? ids[i] : i] - M) / T);
}


/* Sorts ids a[0..n) best first: heap sort on a worst-on-top heap, which leaves the best at the front. */
static void sort_best_first(const float *l, int32_t *a, int32_t n) {
    for (int32_t i = n / 2 - 1; i >= 0; i--) sift_down(l, a, n, i, 0);
    for (int32_t e = n - 1; e > 0; e--) {
        int32_t tmp = a[0];
        a[0] = a[e];
        a[e] = tmp;
        sift_down(l, a, e, 0, 0);
    }
}

/* Lomuto's partition of a[lo, hi) around piv (better ids first, in their order, then piv at the returned index,
 * then the rest), without its unpredictable branch: the better ids are compacted in place, and the worse block
 * behaves as a queue (Lomuto swaps a better id with the block's first element, which moves to the block's end),
 * kept in q [hi - lo + 1]. The result is element for element the in-place swap loop's, whose order the draw
 * depends on. */
static int32_t partition(const float *l, int32_t *a, int32_t lo, int32_t hi, int32_t piv, int32_t *q) {
    const float pv = l[piv];
    int32_t     nb = lo, head = 0, tail = 0;
    for (int32_t i = lo; i < hi; i++) {
        int32_t x = a[i];
        float   lx = l[x];
        /* bitwise, not ||/?: both outcomes are equally likely, so a branch would mispredict half the time */
        int32_t b = (lx > pv) | ((lx == pv) & (x < piv)), ne = tail > head, mask = -b;
        a[nb] = x; /* nb <= i: only overwrites what was read */
        nb += b;
        q[tail] = (q[head] & mask) | (x & ~mask); /* better: the block's front moves to its end; worse: x joins */
        tail += (b == 0) | ne;
        head += b & ne;
    }
    memcpy(a + nb, q + head, (size_t)(tail - head) * sizeof *a);
    for (int32_t i = nb; i < hi; i++) /* the pivot goes first in the worse block, swapped as Lomuto does */
        if (a[i] == piv) {
            a[i] = a[nb];
            a[nb] = piv;
            break;
        }
    return nb;
}

/* The top-p selection's weights and target. The reference computes w[id] = (float)exp(l[id] - M) for every id,
 * D = their sum in id order and target = top_p * D, and compares sequential sums of w with the target. Here pw
 * starts as fast approximations (sampler_approx_weights_avx2, within a relative 1e-5) with D summed in lanes,
 * and the comparisons carry a margin that covers both errors; only a comparison inside the margin switches to
 * the exact weights and D (`exact`), so every comparison has the reference's answer and the selection its
 * result. Sums that decide a kept set (acc, upper on a step that keeps the worse side) are always exact. */
typedef struct topp {
    const loom_sampler *s;
    const float        *l;
    float              *pw;      /* [n_id] weights, approximate until exact is set */
    float              *scratch; /* [n_id] exact weights of a list of ids */
    int32_t             n_id;
    double              M;
    float               top_p;
    int                 exact;
    int                 identity; /* a[] stands for 0..n_id-1 (no -inf logit) and is not written */
    double              target, margin;
} topp;

static void topp_make_exact(topp *t) {
    exp_weights(t->s, t->pw, t->l, NULL, t->n_id, t->M, 1.0);
    double D = 0;
    for (int32_t i = 0; i < t->n_id; i++) D += t->pw[i];
    t->target = (double)t->top_p * D;
    /* sums of the same n floats in another order differ by at most n * 2^-53 * D each */
    t->margin = ((double)t->n_id + 64) * 0x1p-47 * (D + 1);
    t->exact = 1;
}

static float topp_weight(const topp *t, int32_t id) {
    return t->exact ? t->pw[id] : (float)exp((double)t->l[id] - t->M);
}

/* the reference's sequential sum of the exact weights of ids[0..n) */
static double topp_sum(topp *t, const int32_t *ids, int32_t n) {
    const float *w = t->pw;
    if (!t->exact && n > t->n_id / 8) topp_make_exact(t); /* a large share: all at once, and never again */
    if (!t->exact) {
        exp_weights(t->s, t->scratch, t->l, ids, n, t->M, 1.0);
        w = t->scratch;
    }
    double u = 0;
    for (int32_t i = 0; i < n; i++) u += t->exact ? w[ids[i]] : w[i];
    return u;
}

/* sum >= target, sum exact */
static int topp_reaches(topp *t, double sum) {
    if (sum >= t->target + t->margin) return 1;
    if (sum < t->target - t->margin) return 0;
    if (!t->exact) topp_make_exact(t);
    return sum >= t->target;
}

/* One split in plain C, as sampler_split_avx2: the ids of seg[0..n) better than the pivot to b in order, their
 * count returned and their weights added to *mass (in four chains: one would be a latency chain). Branch-free:
 * both outcomes are equally likely. */
static int32_t split(int32_t *b, double *mass, const float *l, const float *pw, const int32_t *seg, int32_t n,
                     float pv, int32_t piv) {
    int32_t nb = 0, i = 0;
    double  s[4] = {0, 0, 0, 0};
    for (; i < n; i++) {
        int32_t  id = seg[i];
        float    li = l[id], w = pw[id];
        uint32_t bt = (uint32_t)((li > pv) | ((li == pv) & (id < piv))), wb;
        b[nb] = id;
        nb += (int32_t)bt;
        memcpy(&wb, &w, 4);
        wb &= 0u - bt; /* the weight or +0 */
        memcpy(&w, &wb, 4);
        s[i & 3] += w;
    }
    *mass += (s[0] + s[1]) + (s[2] + s[3]);
    return nb;
}

/* Reorders ids a[0..n) so that a[0..cut) is the shortest prefix of the best-first order whose weight reaches
 * the target, and returns cut (n when rounding leaves the total short). Quickselect on (logit, id), which is a
 * strict order, so the cut is the one a full sort would give; the reorderings are exactly the reference's
 * (Lomuto partitions, median-of-three pivots), because the draw walks the kept ids in this order.
 * Most steps keep the better side: a first pass copies it, in order, to b [n] and sums its weight in four lanes;
 * when that decides the step (nearly always), the worse side's order does not matter and the partition is
 * skipped. A step that keeps the worse side, or a close call, sums `upper` exactly. */
static int32_t select_top_p(topp *t, int32_t *a, int32_t n, int32_t *q, int32_t *b) {
    const float *l = t->l;
    int32_t      lo = 0, hi = n, built = !t->identity; /* identity: a[] would be 0..n-1 and is not written yet */
    double       acc = 0; /* weight of a[0..lo), all kept and better than everything after; the reference's sum */
    if (!built && n <= 16)
        for (int32_t i = 0; i < n; i++) a[i] = i;
    while (hi - lo > 16) {
        int32_t mid = lo + (hi - lo) / 2, x = built ? a[lo] : lo, y = built ? a[mid] : mid,
                z = built ? a[hi - 1] : hi - 1, piv;
        /* median of three */
        if (better(l, x, y)) piv = better(l, y, z) ? y : better(l, x, z) ? z : x;
        else piv = better(l, x, z) ? x : better(l, y, z) ? z : y;
        const float  pv = l[piv];
        int32_t nb;
        double  approx = acc;
        if (t->s->avx2) {
            /* the first split of a vocabulary without -inf runs over the ids 0..n-1 themselves */
            nb = sampler_split_avx2(b, &approx, l, t->pw, built ? a + lo : NULL, hi - lo, pv, piv);
        } else {
            if (!built)
                for (int32_t i = 0; i < n; i++) a[i] = i;
            built = 1;
            nb = split(b, &approx, l, t->pw, a + lo, hi - lo, pv, piv);
        }
        double upper = -1; /* exact, once needed */
        int left;
        if (approx >= t->target + 2 * t->margin) left = 1;
        else if (approx < t->target - 2 * t->margin) left = 0;
        else left = topp_reaches(t, acc + (upper = topp_sum(t, b, nb)));
        if (left) {
            memcpy(a + lo, b, (size_t)nb * sizeof *a); /* what Lomuto leaves in a[lo, pi) */
            hi = lo + nb; /* the cut lies among the better ones */
            built = 1;
        } else {
            if (!built)
                for (int32_t i = 0; i < n; i++) a[i] = i;
            built = 1;
            int32_t pi = partition(l, a, lo, hi, piv, q);
            if (upper < 0) upper = topp_sum(t, a + lo, pi - lo);
            acc += upper + topp_weight(t, piv);
            if (topp_reaches(t, acc)) return pi + 1;
            lo = pi + 1;
        }
    }
    sort_best_first(l, a + lo, hi - lo);
    for (int32_t i = lo; i < hi; i++)
        if (topp_reaches(t, acc += topp_weight(t, a[i]))) return i + 1;
    return hi;
}

/* The three passes over the whole vocabulary that every call makes. The main loops run over multiples of 8 with
 * a separate tail so that the compiler's cheap vectorizer (-O2) takes them; a single running max would be a
 * latency chain. */
static void copy_logits(float *restrict l, const float *restrict logits, int32_t n) {
    int32_t i8 = n & ~7;
    for (int32_t i = 0; i < i8; i += 8)
        for (int j = 0; j < 8; j++) {
            float v = logits[i + j];
            l[i + j] = v == v ? v : -INFINITY; /* NaN counts as -inf */
        }
    for (int32_t i = i8; i < n; i++) l[i] = logits[i] == logits[i] ? logits[i] : -INFINITY;
}

static float max_logit(const float *l, int32_t n) {
    float   lane[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int32_t i8 = n & ~7;
    for (int32_t i = 0; i < i8; i += 8)
        for (int j = 0; j < 8; j++) lane[j] = l[i + j] > lane[j] ? l[i + j] : lane[j];
    float mx = -INFINITY;
    for (int j = 0; j < 8; j++) mx = lane[j] > mx ? lane[j] : mx;
    for (int32_t i = i8; i < n; i++) mx = l[i] > mx ? l[i] : mx;
    return mx;
}

static int32_t count_finite(const float *l, int32_t n) {
    int32_t lane[8] = {0}, i8 = n & ~7, c = 0;
    for (int32_t i = 0; i < i8; i += 8)
        for (int j = 0; j < 8; j++) lane[j] += l[i + j] > -INFINITY;
    for (int j = 0; j < 8; j++) c += lane[j];
    for (int32_t i = i8; i < n; i++) c += l[i] > -INFINITY;
    return c;
}

/* Runs the chain up to the draw: s->keep[0..m) with weights s->w (summing to *wsum), best first when the
 * filters needed the order or `sorted` asks for it. Returns m, 0 when no logit is finite, -1 on bad arguments
 * or memory. */
static int32_t prepare(loom_sampler *s, const float *logits, int32_t n, double *wsum, int sorted) {
    if (!s || !logits || n <= 0 || !reserve(s, n)) return -1;
    float *l = s->logit;
    copy_logits(l, logits, n);
    apply_penalty(s, n);
    const float mx = max_logit(l, n);
    if (mx == -INFINITY) return 0; /* no finite logit */
    int32_t best = 0;
    while (l[best] != mx) best++; /* the first maximum: ties go to the lower id */
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
    const int32_t n_fin = s->p.top_k > 0 ? count_finite(l, n) : n; /* only top-k needs the count */
    const int32_t K = s->p.top_k > 0 && s->p.top_k < n_fin ? s->p.top_k : n_fin;
    int32_t *keep = s->keep, kept = 0;

    if (K < n_fin) {
        /* top-k in one pass with a worst-on-top heap of K ids, then sorted best first (heap sort) */
        int32_t hn = 0, i = 0;
        for (; i < n && hn < K; i++) {
            if (l[i] == -INFINITY) continue;
            int32_t j = hn++;
            keep[j] = i;
            while (j > 0 && better(l, keep[(j - 1) / 2], keep[j])) { /* sift up: worse parent stays on top */
                int32_t p = (j - 1) / 2, tmp = keep[p];
                keep[p] = keep[j];
                keep[j] = tmp;
                j = p;
            }
        }
        /* the rest only enter by beating the worst kept logit strictly (a tie loses: every kept id is lower),
         * so the scan compares against a register and touches the heap rarely */
        for (float worst = l[keep[0]]; i < n; i++)
            if (l[i] > worst) {
                keep[0] = i;
                sift_down(l, keep, hn, 0, 0);
                worst = l[keep[0]];
            }
        for (int32_t e = hn - 1; e > 0; e--) { /* finish the heap sort: best first */
            int32_t tmp = keep[0];
            keep[0] = keep[e];
            keep[e] = tmp;
            sift_down(l, keep, e, 0, 0);
        }
        double D = 0, cum = 0; /* top-p renormalises over the top-k set */
        for (int32_t i = 0; i < K; i++) D += weight(l[keep[i]], M, inf_max);
        for (kept = 0; kept < K; kept++) {
            double lv = l[keep[kept]];
            if (kept > 0 && (lv < thr || (inf_max && lv != M))) break; /* min-p; the best token always stays */
            if (use_p && (cum += weight(lv, M, inf_max) / D) >= s->p.top_p) {
                kept++;
                break;
            }
        }
    } else if (use_p) {
        /* top-p without top-k: quickselect the shortest best-first prefix whose mass reaches top_p, O(n)
         * expected; a heap would pop half the vocabulary on a flat distribution */
        int32_t *a = s->heap, m = count_finite(l, n);
        float *pw = s->pw; /* [n] weight per id */
        if (m < n) /* else a[] is 0..n-1, which select_top_p writes only if it needs it */
            for (int32_t i = 0, j = 0; i < n; i++) {
                a[j] = i;
                j += l[i] > -INFINITY;
            }
        topp t = {.s = s, .l = l, .pw = pw, .scratch = s->w, .n_id = n, .M = M, .top_p = s->p.top_p};
        if (inf_max) { /* every +inf logit weighs 1, the rest 0 */
            double D = 0;
            for (int32_t i = 0; i < n; i++) D += (pw[i] = (float)(l[i] == M));
            t.exact = 1;
            t.target = (double)t.top_p * D;
        } else if (s->avx2) {
            double D = sampler_approx_weights_avx2(pw, l, n, (float)M);
            t.target = (double)t.top_p * D;
            t.margin = 4e-5 * (D + 1); /* 1e-5 on D and on every sum compared with it, twice over */
        } else {
            topp_make_exact(&t);
        }
        t.identity = m == n;
        int32_t cut = select_top_p(&t, a, m, s->queue, keep);
        for (int32_t i = 0; i < cut; i++) { /* min-p on top: both keep a best-first prefix */
            keep[kept] = a[i];
            kept += a[i] == best || (l[a[i]] >= thr && !(inf_max && l[a[i]] != M));
        }
        if (sorted) sort_best_first(l, keep, kept);
    } else {
        /* no top-k, no top-p: min-p is a plain threshold and the draw needs no order */
        for (int32_t i = 0; i < n; i++) { /* branch-free compaction */
            keep[kept] = i;
            kept += l[i] > -INFINITY && (i == best || (l[i] >= thr && !(inf_max && l[i] != M)));
        }
        if (sorted) sort_best_first(l, keep, kept);
    }

    const double T = s->p.temperature;
    double sum = 0;
    if (inf_max)
        for (int32_t i = 0; i < kept; i++) s->w[i] = (float)(l[keep[i]] == M);
    else
        exp_weights(s, s->w, l, keep, kept, M, T);
    for (int32_t i = 0; i < kept; i++) sum += s->w[i];
    *wsum = sum;
    return kept;
}

int32_t loom_sampler_sample(loom_sampler *s, const float *logits, int32_t n_vocab) {
    double sum;
    int32_t m = prepare(s, logits, n_vocab, &sum, 0);
    if (m <= 0) return -1;
    int32_t pick = m - 1;
    if (m > 1) {
        double u = uniform01(s->rng) * sum, acc = 0;
        for (int32_t i = 0; i < m; i++) {
            acc += s->w[i];
            if (u < acc) {
                pick = i;
                break;
            }
        }
    }
    int32_t id = s->keep[pick];
    loom_sampler_accept(s, id);
    return id;
}

int32_t loom_sampler_candidates(loom_sampler *s, const float *logits, int32_t n_vocab, int32_t *ids, float *probs,
                                int32_t cap) {
    double sum;
    int32_t m = prepare(s, logits, n_vocab, &sum, 1);
    if (m <= 0) return -1;
    for (int32_t i = 0; i < m && i < cap; i++) {
        if (ids) ids[i] = s->keep[i];
        if (probs) probs[i] = (float)(s->w[i] / sum);
    }
    return m;
}
