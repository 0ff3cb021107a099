import Handshakes
import Resumption

// The reuse analysis in words, the same for text, HTML and JSON.

/// "3.2 s", "4 min", "2.0 h": an age for people.
package func formatAge(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds.magnitude < 1e15 else { return "-" }
    if seconds < 0.1 { return "\(Int((seconds * 1000).rounded())) ms" }
    // Rounded, not cut: 14.942 s is "15 s", 2.96 s is "3 s", 2.94 s is "2.9 s".
    let tenths = (seconds * 10).rounded() / 10
    if tenths < 10 { return tenths == tenths.rounded(.down) ? "\(Int(tenths)) s" : "\(tenths) s" }
    if seconds < 119.5 { return "\(Int(seconds.rounded())) s" }
    if seconds < 7170 { return "\(Int((seconds / 60).rounded())) min" }
    return "\((seconds / 360).rounded() / 10) h"
}

extension Support {
    /// Why the value is what it is, in a sentence a reader can check against the counts.
    package func reason(_ mechanism: Mechanism) -> String {
        let name = mechanism.title
        let refusals = { (made: Int) in made > 0 ? "; none of " + counted(made, "\(name) offer") + " accepted" : "" }
        let sentence: String
        switch evidence {
        case let .offersAccepted(offers): sentence = "\(offers.accepted) of \(offers.made) \(name) offers accepted"
        case let .noneAccepted(made): sentence = "none of " + counted(made, "\(name) offer") + " accepted"
        case let .noSessionIDIssued(full, refused):
            sentence =
                "no session ID issued in " + counted(full, "full handshake") + " that gave no ticket either"
                + refusals(refused)
        case let .noTicketIssued(full, refused):
            sentence =
                "no ticket issued in " + counted(full, "full handshake") + " whose client accepts tickets"
                + refusals(refused)
        case .noOffers:
            sentence = mechanism == .psk ? "no PSK offers (TLS 1.3 tickets travel encrypted)" : "no \(name) offers seen"
        case let .noneAcceptedBackendsUnknown(made, youngest):
            sentence =
                "none of " + counted(made, "\(name) offer") + " accepted"
                + (youngest.map { ", the youngest \(formatAge($0)) after its session was issued" } ?? "")
                + ", and nothing tells backends apart: no session cache, a cache too small or restarted, or several "
                + "backends without stickiness"
        case let .atIssuingBackend(offers, byBackend):
            let perBackend =
                byBackend.count > 1
                ? " ("
                    + byBackend.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value.accepted) of \($0.value.made)" }
                    .joined(separator: ", ") + ")" : ""
            if offers.accepted > 0 {
                let refusing = byBackend.values.filter { $0.accepted == 0 }.count
                sentence =
                    (refusing > 0 ? "yes on \(byBackend.count - refusing) of \(byBackend.count) backends: " : "")
                    + "\(offers.accepted) of \(offers.made) \(name) offers that returned to the issuing backend "
                    + "accepted" + perBackend
            } else {
                sentence =
                    "none of \(offers.made) \(name) offers that returned to the issuing backend accepted\(perBackend) "
                    + "(no cache there, or the sessions expired, were evicted or the server restarted)"
            }
        case let .lostToBalancer(known, made):
            sentence =
                "every \(name) offer whose backend is known (\(known) of \(made)) landed on another backend than the "
                + "one that issued its session, and was refused: lost to the balancer; the backends' own support "
                + "cannot be judged"
        }
        guard let away = landedElsewhere else { return sentence }
        return sentence
            + "; \(away.made - away.accepted) of \(away.made) that landed on another backend refused (lost to the "
            + "balancer)"
    }
}

extension ServiceReuse {
    /// The reason for the support of `mechanism` ("" when there is none).
    package func supportReason(_ mechanism: Mechanism) -> String { support[mechanism]?.reason(mechanism) ?? "" }

    /// What the service's lifetime rests on, or why it has none.
    package var lifetimeReason: String? { lifetimeBasis.reason(bracket: lifetime) }
}

extension LifetimeBasis {
    /// What a bracket rests on (nil when it needs no word), or why there is none.
    package func reason(bracket: LifetimeBracket?) -> String? {
        var parts: [String] = []
        switch gap {
        case .noOfferOfKnownIssue: parts.append("no offer of a session whose issue was seen")
        case let .noneAccepted(refused, youngest):
            parts.append("no offer was accepted (\(refused) refused, youngest \(formatAge(youngest)))")
        case let .acceptanceDoesNotFollowAge(younger, oldest):
            parts.append(
                counted(younger, "offer")
                    + " refused younger than the oldest accepted (\(formatAge(oldest))): acceptance "
                    + "does not follow age (several backends, or cache eviction)"
            )
        case nil:
            guard let bracket else { break }
            if bracket.atMost == nil {
                parts.append("no refused offer older than the oldest accepted: lower bound only")
            }
            if mechanism == .psk, agesFromTicketIssue > 0, agesFromTicketIssue == offers {
                parts.append("TLS 1.3 ages count from each ticket's issue (its connection read with a key log)")
            } else if mechanism == .psk {
                if agesFromTicketIssue > 0 {
                    parts.append(
                        "TLS 1.3 ages of " + counted(agesFromTicketIssue, "offer")
                            + " count from the ticket's issue (read with a key log)"
                    )
                }
                parts.append(
                    agesFromFirstOffer > 0
                        ? "TLS 1.3 ages of " + counted(agesFromFirstOffer, "offer")
                            + " count from the identity's first offer (no full handshake of the client before it), so "
                            + "they are low"
                        : "TLS 1.3 ages count from the client's last full handshake before the identity's first offer, "
                            + "where its ticket was issued"
                )
                if bracket.atMost != nil { parts.append("a refusal may also mean new ticket keys") }
            }
        }
        if refusalsUnderNewKeyName > 0 {
            parts.append(
                "\(refusalsUnderNewKeyName) refusals left out: the server issued a ticket under a new key name"
            )
        }
        return parts.isEmpty ? nil : parts.joined(separator: "; ")
    }
}
