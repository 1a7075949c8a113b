/* core/err.c — status strings and the single place where failures are recorded. */
#include "core/err.h"

#include <stdarg.h>
#include <string.h>

const char *loom_status_str(loom_status s) {
    switch (s) {
    case LOOM_OK: return "ok";
    case LOOM_ERR_NOMEM: return "out of memory";
    case LOOM_ERR_IO: return "i/o error";
    case LOOM_ERR_FORMAT: return "bad format";
    case LOOM_ERR_UNSUPPORTED: return "unsupported";
    case LOOM_ERR_INVALID: return "invalid argument";
    case LOOM_ERR_DEVICE: return "device error";
    case LOOM_ERR_LIMIT: return "limit exceeded";
    }
    return "unknown status";
}

loom_status loom_err_set(loom_err *err, loom_status code, const char *file, int line, const char *fmt, ...) {
    if (!err) return code;
    err->code = code;
    err->file = file;
    err->line = line;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void loom_err_prefix(loom_err *err, const char *fmt, ...) {
    if (!err) return;
    char head[128], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t hl = strlen(head);
    if (hl >= sizeof err->msg) hl = sizeof err->msg - 1;
    memcpy(err->msg, head, hl);
    size_t room = sizeof err->msg - 1 - hl, ol = strnlen(old, sizeof old);
    if (ol > room) ol = room;
    memcpy(err->msg + hl, old, ol);
    err->msg[hl + ol] = 0;
}
