import Resumption
import Stickiness

/// An anomaly in words, the same for text, HTML and JSON.
extension Anomaly {
    package var detail: String {
        switch facts {
        case let .ticketReuse(identity): "TLS 1.3 PSK identity \(identity) offered \(offers) times"
        case let .movedSession(mechanism, issuedTo, resumedFrom):
            "\(mechanism.rawValue) issued to \(issuedTo) resumed from \(resumedFrom)"
        case let .sniChanged(issuedUnder, resumedUnder):
            "issued under \(issuedUnder ?? "no SNI"), resumed under \(resumedUnder ?? "no SNI")"
        case let .ticketPastLifetime(lifetime, age, accepted):
            "TLS 1.3 ticket offered \(formatAge(age)) after its issue, past its \(lifetime) s lifetime; "
                + (accepted ? "accepted" : "refused")
        case let .ageMismatch(clientAge, captureAge):
            "the client gave the ticket's age as \(formatAge(clientAge)), the capture shows \(formatAge(captureAge))"
        }
    }
}

extension BackendSignal {
    /// What told a backend apart, as the report names it.
    package var words: String {
        switch self {
        case .legs: "back-side connection"
        case .addresses: "server address"
        case .certificates: "certificate"
        case .tcpShapes: "TCP traits"
        case .helloShapes: "ServerHello shape"
        case .single: "none"
        }
    }
}

/// The stickiness evidence in words, the same for text, HTML and JSON.
extension StickinessEvidence {
    package var sentence: String {
        switch self {
        case let .legsPaired(paired, total, backends):
            "both legs captured: \(paired) of \(total) connections paired with their back-side connection by "
                + "ClientHello random; \(backends.count) backend\(backends.count == 1 ? "" : "s"): "
                + backends.joined(separator: ", ")
        case let .addresses(services):
            "\(services.count) server addresses serve the same name: "
                + services.map(\.description).joined(separator: ", ")
        case let .certificates(names):
            "\(names.count) different server certificates in full handshakes: " + names.joined(separator: ", ")
        case let .tcpTraits(shapes):
            "\(shapes.count) different server TCP traits: " + shapes.joined(separator: "; ")
        case let .helloShapes(shapes):
            "\(shapes.count) different ServerHello shapes in full handshakes: " + shapes.joined(separator: "; ")
        case let .oneBackendVisible(oneCertificate):
            "one server address\(oneCertificate ? ", one certificate" : ""), one ServerHello shape, one set of TCP "
                + "traits: one backend visible"
        case let .sharedTicketKey(keyName, backends):
            "ticket key name \(keyName) used by \(backends.count) backends (\(backends.joined(separator: ", "))): "
                + "shared ticket keys"
        case let .keyNamesOnePerBackend(count):
            "\(count) ticket key names, each used by one backend"
        case let .keyNamesInUse(count):
            counted(count, "ticket key name") + " in use"
        case let .offersElsewhere(known, accepted, refused):
            "\(accepted + refused) of \(known) offers landed on another backend than the one that issued the "
                + "session: \(accepted) accepted, \(refused) refused"
        case let .offersAtIssuer(accepted, refused):
            counted(accepted + refused, "offer") + " returned to the issuing backend: \(accepted) accepted"
                + (refused > 0 ? ", \(refused) refused (expired or evicted)" : "")
        case let .youngRefusals(count, upTo, acceptedUpTo):
            counted(count, "offer") + " refused at ages up to \(formatAge(upTo)) while offers up to "
                + "\(formatAge(acceptedUpTo)) old were accepted: they reached a backend that does not hold the session"
        case let .acceptedUnplaced(count):
            counted(count, "offer") + " accepted in abbreviated handshakes, which do not show the backend"
        case .noAnsweredOffers:
            "no resumption offers with an answer"
        case .mixedSharing:
            "mixed: some backends share sessions and some do not"
        case .rotation:
            "every offer returned to its issuing backend, but the backends also took turns connection by "
                + "connection, as round robin does: with these clients stickiness and rotation look alike; "
                + "clients that do not take turns would tell"
        case .backendsIndistinguishable:
            "nothing tells backends apart: one backend, or several that keep clients on the backend holding "
                + "their session or share sessions, look alike"
        case let .everyOfferRefused(youngest):
            "every offer refused"
                + (youngest.map { ", the youngest \(formatAge($0)) after its session was issued" } ?? "")
                + ", and nothing tells backends apart: no session cache, a cache too small or restarted, "
                + "or several backends without stickiness"
        case .howToDecide:
            "to decide: capture the back side of the balancer too, or look for a certificate, ticket key "
                + "name or server TCP trait that differs per backend"
        case let .judgedOnLatest(kept, skipped):
            "judged on the latest " + counted(kept, "connection") + "; \(skipped) earlier ones not kept"
        }
    }
}
