/* core/tls_scratch.c — see tls_scratch.h. One pthread key holds all of a thread's slots. */
#include "core/tls_scratch.h"

#include <pthread.h>

#include "core/alloc.h"

typedef struct tls_buffers {
    void  *p[LOOM_TLS_SLOTS];
    size_t cap[LOOM_TLS_SLOTS];
} tls_buffers;

static pthread_key_t  g_key;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void buffers_destroy(void *v) {
    tls_buffers *b = v;
    if (!b) return;
    for (int i = 0; i < LOOM_TLS_SLOTS; i++) loom_free(b->p[i]);
    loom_free(b);
}

static void key_init(void) { pthread_key_create(&g_key, buffers_destroy); }

void *loom_tls_scratch_get(loom_tls_slot slot, size_t n) {
    pthread_once(&g_once, key_init);
    tls_buffers *b = pthread_getspecific(g_key);
    if (!b) {
        b = loom_calloc(1, sizeof *b);
        if (!b) return NULL;
        if (pthread_setspecific(g_key, b) != 0) {
            loom_free(b);
            return NULL;
        }
    }
    if (b->cap[slot] < n) {
        size_t cap = b->cap[slot] + b->cap[slot] / 2 > n ? b->cap[slot] + b->cap[slot] / 2 : n; /* grow geometrically */
        void *p = loom_malloc(cap);
        if (!p) return NULL;
        loom_free(b->p[slot]);
        b->p[slot] = p;
        b->cap[slot] = cap;
    }
    return b->p[slot];
}

void loom_tls_scratch_release(loom_tls_slot slot) {
    pthread_once(&g_once, key_init);
    tls_buffers *b = pthread_getspecific(g_key);
    if (!b) return;
    loom_free(b->p[slot]);
    b->p[slot] = NULL;
    b->cap[slot] = 0;
    int empty = 1;
    for (int i = 0; i < LOOM_TLS_SLOTS; i++) empty &= b->p[i] == NULL;
    if (empty) {
        pthread_setspecific(g_key, NULL);
        loom_free(b);
    }
}
