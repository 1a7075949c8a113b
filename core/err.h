/* core/err.h — status codes and the per-call error record.
 *
 * Two tiers (see ../shared/design/STYLE.md §9.2): data from outside the program never asserts; a function
 * returns a loom_status and, when the caller passed a loom_err, a message saying what is wrong and where.
 * Programmer errors (shape mismatches at an op boundary) use LOOM_ASSERT, which prints and aborts.
 *
 *   loom_err err = {0};
 *   if (loom_gguf_open(&g, path, NULL, &err) != LOOM_OK)
 *       fprintf(stderr, "loom: %s\n", err.msg);
 */
#ifndef LOOM_CORE_ERR_H
#define LOOM_CORE_ERR_H

#include <stdio.h>
#include <stdlib.h>

typedef enum loom_status {
    LOOM_OK = 0,
    LOOM_ERR_NOMEM,       /* an allocation failed or would exceed a limit */
    LOOM_ERR_IO,          /* open/read/write/mmap failed */
    LOOM_ERR_FORMAT,      /* a file is corrupt, truncated or inconsistent */
    LOOM_ERR_UNSUPPORTED, /* valid input that loom cannot handle (type, feature, library missing) */
    LOOM_ERR_INVALID,     /* a bad argument or option from the caller */
    LOOM_ERR_DEVICE,      /* GPU runtime failure */
    LOOM_ERR_LIMIT,       /* a configured limit was exceeded (context, pixels, prompt size) */
} loom_status;

typedef struct loom_err {
    loom_status code;
    char        msg[256];
    const char *file; /* where the failure was raised (developer aid) */
    int         line;
} loom_err;

const char *loom_status_str(loom_status s);

/* Fills *err (when non-NULL) and returns code, so `return LOOM_FAIL(err, LOOM_ERR_IO, "...")` reads naturally.
 * Every failure in the library goes through loom_err_set: one breakpoint catches them all. */
loom_status loom_err_set(loom_err *err, loom_status code, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
#define LOOM_FAIL(err, code, ...) loom_err_set((err), (code), __FILE__, __LINE__, __VA_ARGS__)

/* Prefix an existing message with context ("model.gguf: " + msg). Keeps the code. */
void loom_err_prefix(loom_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Programmer errors: print file:line: expr and abort. Never used for data from outside. */
#define LOOM_ASSERT(x)                                                                                         \
    do {                                                                                                       \
        if (!(x)) {                                                                                            \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #x);                          \
            abort();                                                                                           \
        }                                                                                                      \
    } while (0)

/* "Cannot happen" checks that stay in release builds but do not abort (sqlite ALWAYS/NEVER). */
#define LOOM_ALWAYS(x) (__builtin_expect(!!(x), 1))
#define LOOM_NEVER(x)  (__builtin_expect(!!(x), 0))

#endif
