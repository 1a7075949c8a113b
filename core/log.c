/* core/log.c — see log.h. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int level_initialised;
static loom_log_level current_level = LOOM_LOG_INFO;

static void init_level_from_env(void) {
    if (level_initialised) return;
    level_initialised = 1;
    const char *e = getenv("LOOM_LOG");
    if (!e) return;
    if (!strcmp(e, "debug")) current_level = LOOM_LOG_DEBUG;
    else if (!strcmp(e, "info")) current_level = LOOM_LOG_INFO;
    else if (!strcmp(e, "warn")) current_level = LOOM_LOG_WARN;
    else if (!strcmp(e, "error")) current_level = LOOM_LOG_ERROR;
    else if (!strcmp(e, "none")) current_level = LOOM_LOG_NONE;
}

void loom_log_set_level(loom_log_level lvl) {
    level_initialised = 1;
    current_level = lvl;
}

loom_log_level loom_log_get_level(void) {
    init_level_from_env();
    return current_level;
}

void loom_log(loom_log_level lvl, const char *fmt, ...) {
    init_level_from_env();
    if (lvl < current_level) return;
    static const char *tags[] = {"debug: ", "", "warning: ", "error: "};
    fprintf(stderr, "loom: %s", tags[lvl < 4 ? lvl : 3]);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

double loom_time_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void loom_progress_begin(loom_progress *p, const char *label, int64_t total) {
    memset(p, 0, sizeof *p);
    p->label = label;
    p->total = total;
    p->t_start = loom_time_s();
    p->t_last_draw = p->t_start; /* short jobs never draw: the first line comes after one interval */
    p->is_tty = isatty(STDERR_FILENO);
    p->enabled = loom_log_get_level() <= LOOM_LOG_INFO;
}

static void progress_draw(loom_progress *p, int final) {
    double el = loom_time_s() - p->t_start;
    if (p->is_tty) {
        int width = 30, fill = p->total > 0 ? (int)(width * p->done / p->total) : 0;
        char bar[64];
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
        bar[width] = 0;
        fprintf(stderr, "\r%s [%s] %lld/%lld %.1fs%s", p->label, bar, (long long)p->done, (long long)p->total, el,
                final ? "\n" : "");
    } else {
        fprintf(stderr, "%s: %lld/%lld (%.1fs)\n", p->label, (long long)p->done, (long long)p->total, el);
    }
    fflush(stderr);
}

void loom_progress_update(loom_progress *p, int64_t done) {
    p->done = done;
    if (!p->enabled) return;
    double now = loom_time_s();
    double every = p->is_tty ? 0.1 : 5.0; /* plain logs: a line every few seconds, not a flood */
    if (now - p->t_last_draw < every) return;
    p->t_last_draw = now;
    progress_draw(p, 0);
}

void loom_progress_end(loom_progress *p) {
    if (!p->enabled) return;
    if (p->is_tty || loom_time_s() - p->t_start > 1.0) progress_draw(p, 1);
}
