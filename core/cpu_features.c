/* core/cpu_features.c — x86 feature detection (CPUID + XGETBV) and the choice of kernel ISA.
 *
 * A CPUID bit alone is not enough: the OS must also save the wider register state, which XGETBV reports
 * (XCR0 bits 1-2 for YMM, 5-7 for the AVX-512 opmask/ZMM state). A hypervisor that hides AVX-512 state keeps
 * us on AVX2 even when CPUID claims avx512f.
 *
 * ISA levels used by the kernels:
 *   LOOM_ISA_AVX2    avx2 + fma + f16c
 *   LOOM_ISA_AVX512  the AVX2 set + avx512 f/bw/vl/dq + avx512_vnni (Ice Lake, Sapphire Rapids, Zen 4). The
 *                    whole dot_avx512.c is compiled with those flags, so a CPU without VNNI (Skylake-X) uses
 *                    the AVX2 kernels rather than risk an illegal instruction.
 * LOOM_ISA env var (scalar|avx2|avx512) caps the choice, for debugging and benchmarks.
 */
#include <cpuid.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/matmul.h"

static loom_cpu_features g_feat;
static atomic_int        g_feat_done; /* 0 = not yet, 1 = filled; detection is idempotent so races are benign */
static atomic_int        g_forced = -1;

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void detect(loom_cpu_features *f) {
    memset(f, 0, sizeof *f);
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return;
    f->amd = b == 0x68747541 && d == 0x69746e65 && c == 0x444d4163; /* "Auth" "enti" "cAMD" */
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    const int base_family = (a >> 8) & 0xF, base_model = (a >> 4) & 0xF;
    f->family = base_family + (base_family == 0xF ? (a >> 20) & 0xFF : 0);
    f->model = base_model | (base_family == 0xF || base_family == 0x6 ? ((a >> 16) & 0xF) << 4 : 0);
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    int fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    int ymm_ok = osxsave && avx && (xcr0 & 0x6) == 0x6;
    int zmm_ok = ymm_ok && (xcr0 & 0xE0) == 0xE0;
    if (!ymm_ok) return;
    f->fma = fma;
    f->f16c = f16c;
    if (__get_cpuid_max(0, NULL) < 7) return;
    __cpuid_count(7, 0, a, b, c, d);
    f->avx2 = (b >> 5) & 1;
    if (zmm_ok) {
        f->avx512f = (b >> 16) & 1;
        f->avx512bw = (b >> 30) & 1;
        f->avx512vl = (b >> 31) & 1;
        f->avx512vnni = (c >> 11) & 1;
        unsigned a1, b1, c1, d1;
        __cpuid_count(7, 1, a1, b1, c1, d1);
        f->avx512bf16 = (a1 >> 5) & 1;
        f->avxvnni = (a1 >> 4) & 1;
    } else {
        unsigned a1, b1, c1, d1;
        __cpuid_count(7, 1, a1, b1, c1, d1);
        f->avxvnni = (a1 >> 4) & 1;
    }
}

static int has_dq(void) {
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 17) & 1;
}

const loom_cpu_features *loom_cpu_features_get(void) {
    if (!atomic_load_explicit(&g_feat_done, memory_order_acquire)) {
        loom_cpu_features f;
        detect(&f);
        g_feat = f; /* every racer writes the same bytes */
        atomic_store_explicit(&g_feat_done, 1, memory_order_release);
    }
    return &g_feat;
}

static loom_isa isa_hw(void) {
    const loom_cpu_features *f = loom_cpu_features_get();
    loom_isa best = LOOM_ISA_SCALAR;
    if (f->avx2 && f->fma && f->f16c) best = LOOM_ISA_AVX2;
    if (best == LOOM_ISA_AVX2 && f->avx512f && f->avx512bw && f->avx512vl && f->avx512vnni && has_dq())
        best = LOOM_ISA_AVX512;
    const char *env = getenv("LOOM_ISA");
    if (env && *env) {
        loom_isa cap = best;
        if (!strcasecmp(env, "scalar")) cap = LOOM_ISA_SCALAR;
        else if (!strcasecmp(env, "avx2")) cap = LOOM_ISA_AVX2;
        if (cap < best) best = cap;
    }
    return best;
}

static atomic_int g_hw = -1; /* cached isa_hw(); the environment is read once */

loom_isa loom_isa_best(void) {
    int hw = atomic_load_explicit(&g_hw, memory_order_relaxed);
    if (hw < 0) {
        hw = (int)isa_hw();
        atomic_store_explicit(&g_hw, hw, memory_order_relaxed);
    }
    return (loom_isa)hw;
}

/* Clamped to the hardware when used; loom_isa_force(LOOM_ISA_AVX512) therefore undoes an earlier lower pin. */
void loom_isa_force(loom_isa isa) { atomic_store(&g_forced, (int)isa); }

loom_isa loom_isa_active(void) {
    int forced = atomic_load_explicit(&g_forced, memory_order_relaxed);
    loom_isa hw = loom_isa_best();
    return forced >= 0 && (loom_isa)forced < hw ? (loom_isa)forced : hw;
}

/* Zen 4 (family 0x19, models 0x10-0x1F and from 0x60; Zen 3 is 0x00-0x0F and 0x20-0x5F, measured at 0x01) reads
 * one stream per thread faster: on a 2-vCPU EPYC (family 0x19 model 0x11) a plain read loop gave 36-38 GB/s from
 * one stream per thread against 25-31 from two, and the Q4_K matvec 31-32 against 25-27 (alternating in one
 * process). Everything else keeps the two streams measured faster on Intel (~7 %, Q6_K) and on Zen 3. */
static int streams_hw(void) {
    const char *env = getenv("LOOM_ROW_STREAMS");
    if (env && (!strcmp(env, "1") || !strcmp(env, "2"))) return *env - '0';
    const loom_cpu_features *f = loom_cpu_features_get();
    return f->amd && f->family == 0x19 && f->model >= 0x10 && !(f->model >= 0x20 && f->model < 0x60) ? 1 : 2;
}

static atomic_int g_streams_hw, g_streams_forced; /* 0 = not chosen yet / not forced */

int loom_row_streams(void) {
    int forced = atomic_load_explicit(&g_streams_forced, memory_order_relaxed);
    if (forced) return forced;
    int s = atomic_load_explicit(&g_streams_hw, memory_order_relaxed);
    if (!s) {
        s = streams_hw();
        atomic_store_explicit(&g_streams_hw, s, memory_order_relaxed);
    }
    return s;
}

void loom_row_streams_force(int streams) {
    atomic_store(&g_streams_forced, streams == 1 || streams == 2 ? streams : 0);
}

int loom_far_prefetch(void) {
    const char *env = getenv("LOOM_FAR_PREFETCH");
    return !(env && !strcmp(env, "0"));
}

const char *loom_isa_name(loom_isa isa) {
    switch (isa) {
    case LOOM_ISA_SCALAR: return "scalar";
    case LOOM_ISA_AVX2: return "avx2";
    case LOOM_ISA_AVX512: return "avx512-vnni";
    }
    return "?";
}
