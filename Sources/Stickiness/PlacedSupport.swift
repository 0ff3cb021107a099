import Handshakes
import Resumption

/// Support per mechanism, judged on where the offers went. A refusal at another backend
/// than the one that issued the session says nothing about that backend's cache, and with
/// nothing to tell backends apart a refusal does not show that there is no cache.
public enum PlacedSupport {
    /// Rewrites the support of each service with offers, from its stickiness verdict.
    public static func refine(_ report: inout ReuseReport, stickiness: [ServiceKey: StickinessVerdict]) {
        for index in report.services.indices {
            let service = report.services[index]
            guard let verdict = stickiness[service.key] else { continue }
            for mechanism in Mechanism.allCases {
                guard let base = service.support[mechanism], let offers = service.offers[mechanism], offers.made > 0
                else { continue }
                report.services[index].support[mechanism] = support(
                    base,
                    offers: offers,
                    places: verdict.offerPlaces[mechanism] ?? OfferPlaces(),
                    backendsKnown: verdict.backendsKnown,
                    name: name(mechanism)
                )
            }
        }
    }

    public static func support(
        _ base: Support,
        offers: OfferCount,
        places: OfferPlaces,
        backendsKnown: Bool,
        name: String
    ) -> Support {
        let at = places.atIssuer
        let away = places.elsewhere
        let lost = away.made - away.accepted
        let lostNote =
            lost > 0 ? "; \(lost) of \(away.made) that landed on another backend refused (lost to the balancer)" : ""
        // A server that issues nothing supports nothing, wherever the offers went.
        guard base.basis == .offers else { return base }
        guard backendsKnown else {
            guard base.value == .no else { return base }
            let youngest =
                places.youngestRefusedAge.map { ", the youngest \(formatAge($0)) after its session was issued" } ?? ""
            return Support(
                value: .unknown,
                reason:
                    "none of \(offers.made) \(name) offers accepted\(youngest), and nothing tells backends apart: no "
                    + "session cache, a cache too small or restarted, or several backends without stickiness"
            )
        }
        // Each backend's own answer to the offers of its sessions.
        let byBackend = places.atIssuerByBackend.sorted { $0.key < $1.key }
        let perBackend =
            byBackend.count > 1
            ? " (" + byBackend.map { "\($0.key): \($0.value.accepted) of \($0.value.made)" }.joined(separator: ", ")
                + ")" : ""
        if at.accepted > 0 {
            let refusing = byBackend.filter { $0.value.accepted == 0 }.count
            let onSome = refusing > 0 ? "yes on \(byBackend.count - refusing) of \(byBackend.count) backends: " : ""
            return Support(
                value: .yes,
                reason: onSome
                    + "\(at.accepted) of \(at.made) \(name) offers that returned to the issuing backend accepted"
                    + perBackend + lostNote
            )
        }
        if at.made > 0 {
            guard base.value == .no else { return Support(value: base.value, reason: base.reason + lostNote) }
            return Support(
                value: .no,
                reason:
                    "none of \(at.made) \(name) offers that returned to the issuing backend accepted\(perBackend) "
                    + "(no cache there, or the sessions expired, were evicted or the server restarted)"
                    + lostNote
            )
        }
        if base.value == .no, away.made > 0 {
            return Support(
                value: .unknown,
                reason:
                    "every \(name) offer whose backend is known (\(away.made) of \(offers.made)) landed on another "
                    + "backend than the one that issued its session, and was refused: lost to the balancer; the "
                    + "backends' own support cannot be judged"
            )
        }
        return Support(value: base.value, reason: base.reason + lostNote, basis: base.basis)
    }

    private static func name(_ mechanism: Mechanism) -> String {
        switch mechanism {
        case .sessionID: "session ID"
        case .ticket: "ticket"
        case .psk: "TLS 1.3 PSK"
        }
    }
}
