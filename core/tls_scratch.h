/* core/tls_scratch.h — per-thread scratch buffers for kernels that need room for packed or quantized operands
 * (internal to core/). Each calling thread owns one buffer per slot, grown geometrically and reused across
 * calls; it is freed when the thread exits or by loom_tls_scratch_release. Workers of a pool only read the
 * caller's buffer during a call, so no locking is needed. */
#ifndef LOOM_CORE_TLS_SCRATCH_H
#define LOOM_CORE_TLS_SCRATCH_H

#include <stddef.h>

typedef enum loom_tls_slot { LOOM_TLS_MATMUL = 0, LOOM_TLS_GEMM = 1, LOOM_TLS_SLOTS = 2 } loom_tls_slot;

/* At least n bytes, 64-byte aligned; NULL when the allocation fails. Contents are not kept across growth. */
void *loom_tls_scratch_get(loom_tls_slot slot, size_t n);
/* Frees the calling thread's buffer of that slot (leak checks in tests). */
void  loom_tls_scratch_release(loom_tls_slot slot);

#endif
