/* core/log.h — leveled logging and a progress reporter, both on stderr.
 *
 * Log level comes from loom_log_set_level (the CLI maps -v/-q) or LOOM_LOG=debug|info|warn|error.
 * The progress reporter redraws one line in place on a TTY and prints sparse plain lines otherwise,
 * so logs piped to a file stay readable.
 */
#ifndef LOOM_CORE_LOG_H
#define LOOM_CORE_LOG_H

#include <stdint.h>

typedef enum loom_log_level { LOOM_LOG_DEBUG, LOOM_LOG_INFO, LOOM_LOG_WARN, LOOM_LOG_ERROR, LOOM_LOG_NONE } loom_log_level;

void loom_log_set_level(loom_log_level lvl);
loom_log_level loom_log_get_level(void);
void loom_log(loom_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define LOOM_DEBUG(...) loom_log(LOOM_LOG_DEBUG, __VA_ARGS__)
#define LOOM_INFO(...)  loom_log(LOOM_LOG_INFO, __VA_ARGS__)
#define LOOM_WARN(...)  loom_log(LOOM_LOG_WARN, __VA_ARGS__)

typedef struct loom_progress {
    const char *label;
    int64_t     total;
    int64_t     done;
    double      t_start;
    double      t_last_draw;
    int         is_tty;
    int         enabled;
} loom_progress;

void loom_progress_begin(loom_progress *p, const char *label, int64_t total);
void loom_progress_update(loom_progress *p, int64_t done); /* rate-limited redraw */
void loom_progress_end(loom_progress *p);

double loom_time_s(void); /* monotonic seconds */

#endif
