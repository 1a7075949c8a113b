/* tests/core/test_roofline.c — the bandwidth probe's two readings: best-of-passes (the peak) and a time window
 * (what `loom bench` matches against each stretch of decode). Rates are not asserted against any expected
 * speed (that belongs in the benchmark); what is tested is the accounting the benchmark's ratios rest on. */
#include <criterion/criterion.h>
#include <math.h>

#include "core/log.h"
#include "core/roofline.h"
#include "core/threadpool.h"

static const size_t PROBE_BYTES = (size_t)4 << 20;

Test(roofline, window_streams_whole_passes_for_at_least_the_time_asked) {
    loom_pool *pool = NULL;
    loom_err err = {0};
    cr_assert_eq(loom_pool_new(&pool, 2, &err), LOOM_OK, "%s", err.msg);
    loom_bw_probe *p = loom_bw_probe_new(PROBE_BYTES);
    cr_assert_not_null(p);
    const double asked[] = {0.0, 0.002, 0.02};
    for (size_t i = 0; i < sizeof asked / sizeof *asked; i++) {
        double bytes = -1, elapsed = -1, t0 = loom_time_s();
        const double rate = loom_bw_probe_window(p, pool, asked[i], &bytes, &elapsed);
        const double wall = loom_time_s() - t0;
        cr_expect(elapsed >= asked[i], "asked %g s, streamed %g s", asked[i], elapsed);
        cr_expect(elapsed <= wall, "window %g s longer than the call (%g s)", elapsed, wall);
        /* at least one pass, and only whole passes */
        cr_expect(bytes >= (double)PROBE_BYTES, "%g bytes read", bytes);
        cr_expect_float_eq(fmod(bytes, (double)PROBE_BYTES), 0.0, 1e-9, "%g bytes is not whole passes", bytes);
        cr_expect(isfinite(rate) && rate > 0);
        cr_expect_float_eq(rate, bytes / elapsed, 1e-9 * rate, "rate %g != bytes / time %g", rate, bytes / elapsed);
    }
    /* the first window calibrated the read shape; the peak reading works on the same buffer and keeps a shape */
    cr_expect(loom_bw_probe_streams(p) == 1 || loom_bw_probe_streams(p) == 2, "%d streams", loom_bw_probe_streams(p));
    const double peak = loom_bw_probe_best(p, pool, 4);
    cr_expect(isfinite(peak) && peak > 0);
    cr_expect(loom_bw_probe_streams(p) == 1 || loom_bw_probe_streams(p) == 2, "%d streams", loom_bw_probe_streams(p));
    loom_bw_probe_free(p);
    loom_pool_free(pool);
}

Test(roofline, probe_that_cannot_allocate_says_so) {
    cr_expect_null(loom_bw_probe_new(0));
    cr_expect_null(loom_bw_probe_new((size_t)1 << 62), "an impossible buffer must fail, not abort");
    loom_bw_probe_free(NULL);
}
