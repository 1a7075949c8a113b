/* core/gguf_int.h — what the GGUF writer needs from the reader (core/ only; not API).
 *
 * loom_gguf_writer_copy_kv copies each KV value as the exact bytes the reader validated, so nested arrays and
 * every scalar type round-trip without the writer re-encoding them.
 */
#ifndef LOOM_CORE_GGUF_INT_H
#define LOOM_CORE_GGUF_INT_H

#include <stdint.h>

#include "core/gguf.h"

/* The encoded value of KV i (after its u32 type field): *ptr, *len bytes inside g's buffer. 0 when i is out of range. */
int gguf_kv_raw(const loom_gguf *g, int64_t i, const uint8_t **ptr, uint64_t *len);

#endif
