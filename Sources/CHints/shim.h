// Hints to the CPU and the allocator that Swift cannot spell.

/// Starts loading the cache line holding `address` (__builtin_prefetch, for reading): for a
/// table whose next entry to leave is known one packet ahead, cold by then in a flood. Never
/// faults, whatever `address` is.
static inline void tlsreuse_prefetch(const void *address) { __builtin_prefetch(address); }

#if defined(__linux__)
#include <malloc.h>
#endif

/// Hints to glibc's allocator: a new heap (one per thread arena) starts with `bytes` more
/// mapped, and the main heap grows by as much at a time (mallopt M_TOP_PAD). Mapped pages
/// that are never touched are not resident. Does nothing on other C libraries.
static inline void tlsreuse_pad_heaps(int bytes) {
#if defined(__GLIBC__)
    mallopt(M_TOP_PAD, bytes);
#else
    (void)bytes;
#endif
}
