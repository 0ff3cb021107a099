import Handshakes
import Resumption

/// Support per mechanism, judged on where the offers went. A refusal at another backend
/// than the one that issued the session says nothing about that backend's cache, and with
/// nothing to tell backends apart a refusal does not show that there is no cache.
package enum PlacedSupport {
    /// Rewrites the support of each service with offers, from its stickiness verdict.
    package static func refine(_ report: inout ReuseReport, stickiness: [ServiceKey: StickinessVerdict]) {
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
                    backendsKnown: verdict.backendsKnown
                )
            }
        }
    }

    package static func support(
        _ base: Support,
        offers: OfferCount,
        places: OfferPlaces,
        backendsKnown: Bool
    ) -> Support {
        let at = places.atIssuer
        let away = places.elsewhere
        let lostElsewhere = away.made > away.accepted ? away : nil
        // A server that issues nothing supports nothing, wherever the offers went.
        guard base.basis == .offers else { return base }
        guard backendsKnown else {
            guard base.value == .no else { return base }
            return Support(
                value: .unknown,
                evidence: .noneAcceptedBackendsUnknown(made: offers.made, youngestRefusedAge: places.youngestRefusedAge)
            )
        }
        if at.accepted > 0 || (at.made > 0 && base.value == .no) {
            return Support(
                value: at.accepted > 0 ? .yes : .no,
                evidence: .atIssuingBackend(at, byBackend: places.atIssuerByBackend),
                landedElsewhere: lostElsewhere
            )
        }
        if at.made == 0, base.value == .no, away.made > 0 {
            return Support(value: .unknown, evidence: .lostToBalancer(known: away.made, made: offers.made))
        }
        var placed = base
        placed.landedElsewhere = lostElsewhere
        return placed
    }
}
