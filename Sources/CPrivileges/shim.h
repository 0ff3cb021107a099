// Wrappers for the variadic Linux calls Swift cannot import: prctl(2) and capset(2).
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/// PR_SET_NO_NEW_PRIVS (prctl(2)): execve can never again grant privileges. 0 on success.
static inline int tlsreuse_set_no_new_privs(void) { return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); }

/// Clears the permitted, effective and inheritable capability sets (capset(2), version 3). 0 on success.
static inline int tlsreuse_clear_capabilities(void) {
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {{0, 0, 0}, {0, 0, 0}};
    return (int)syscall(SYS_capset, &header, data);
}

/// Clears the ambient capability set (prctl(2) PR_CAP_AMBIENT). 0 on success.
static inline int tlsreuse_clear_ambient_capabilities(void) { return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); }

/// The effective capability set's first 64 bits, or -1 (capget(2)).
static inline long long tlsreuse_effective_capabilities(void) {
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    if (syscall(SYS_capget, &header, data) != 0) return -1;
    return (long long)data[0].effective | ((long long)data[1].effective << 32);
}
