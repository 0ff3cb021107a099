// Hints to the CPU that Swift cannot spell.

/// Starts loading the cache line holding `address` (__builtin_prefetch, for reading): for a
/// table whose next entry to leave is known one packet ahead, cold by then in a flood. Never
/// faults, whatever `address` is.
static inline void tlsreuse_prefetch(const void *address) { __builtin_prefetch(address); }
