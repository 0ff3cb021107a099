private import CPrivileges

#if canImport(Glibc)
import Glibc
#endif

/// Gives up privileges once the capture device is open, before the first packet is parsed,
/// as tcpdump does with -Z: traffic anyone can shape is never parsed with root's rights.
package enum Privileges {
    /// The user `live` switches to when started as root and none is named: a dedicated
    /// account if the system has one, else nobody.
    package static let preferredUsers = ["tlsreuse", "nobody"]

    package struct Dropped: Sendable {
        package var user: String
        package var uid: UInt32
        package var gid: UInt32
    }

    /// Started as root: switches to `user` (or the first of `preferredUsers` that exists),
    /// with its primary group and no supplementary groups; Linux clears every capability on
    /// the switch from uid 0. Started as another user (capabilities on the binary): keeps the
    /// user and clears the capabilities. Either way no_new_privs is set, so nothing exec'd
    /// later can regain them. Throws a sentence when a step fails; the caller must then stop.
    package static func drop(to user: String?) throws(CaptureError) -> Dropped {
        defer { _ = tlsreuse_set_no_new_privs() }
        guard geteuid() == 0 || getuid() == 0 else {
            guard tlsreuse_clear_ambient_capabilities() == 0 || errno == EINVAL, tlsreuse_clear_capabilities() == 0
            else {
                throw CaptureError.make(
                    .capturePermission,
                    "cannot clear capabilities: \(String(cString: strerror(errno)))"
                )
            }
            return Dropped(user: name(of: getuid()) ?? String(getuid()), uid: getuid(), gid: getgid())
        }
        let candidates = user.map { [$0] } ?? preferredUsers
        guard let (name, uid, gid) = candidates.lazy.compactMap(lookUp).first else {
            throw CaptureError.make(
                .capturePermission,
                user.map { "--user: no such user '\($0)'" }
                    ?? "no unprivileged user to run as (tried \(preferredUsers.joined(separator: ", "))); name one "
                    + "with --user"
            )
        }
        guard uid != 0 else {
            throw CaptureError.make(.capturePermission, "--user: '\(name)' is root; name an unprivileged user")
        }
        guard setgroups(0, nil) == 0, setgid(gid) == 0, setuid(uid) == 0 else {
            throw CaptureError.make(
                .capturePermission,
                "cannot switch to user \(name): \(String(cString: strerror(errno)))"
            )
        }
        // The switch must be for good: no way back to uid 0.
        guard getuid() == uid, geteuid() == uid, setuid(0) != 0 else {
            throw CaptureError.make(.capturePermission, "the switch to user \(name) did not hold")
        }
        _ = tlsreuse_clear_ambient_capabilities()
        _ = tlsreuse_clear_capabilities()
        return Dropped(user: name, uid: uid, gid: gid)
    }

    /// The effective capabilities' bit set (0 when none are left).
    package static var effectiveCapabilities: Int64 { Int64(tlsreuse_effective_capabilities()) }

    private static func lookUp(_ user: String) -> (String, UInt32, UInt32)? {
        if let entry = getpwnam(user) { return (user, entry.pointee.pw_uid, entry.pointee.pw_gid) }
        if let id = UInt32(user), let entry = getpwuid(id) {
            return (String(cString: entry.pointee.pw_name), id, entry.pointee.pw_gid)
        }
        return nil
    }

    private static func name(of uid: UInt32) -> String? {
        getpwuid(uid).map { String(cString: $0.pointee.pw_name) }
    }
}
