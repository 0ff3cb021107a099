import Handshakes
import Resumption
import Stickiness

extension Mechanism {
    var title: String {
        switch self {
        case .sessionID: "session ID"
        case .ticket: "ticket"
        case .psk: "TLS 1.3 PSK"
        }
    }
}

/// The reuse report as fields, for JSON.
package enum ReuseReportFields {
    /// Writes the report as one JSON object, service by service and pair by pair, so the
    /// whole document never sits in memory at once.
    package static func write(
        _ report: ReuseReport,
        stickiness: [ServiceKey: StickinessVerdict],
        source: ReportSource,
        extra: [Field] = [],
        to writer: LineWriter
    ) {
        var json = JSONWriter()
        func spill() { if json.bytes.count > 1 << 16 { writer.part(json.takeBytes()) } }
        json.beginObject()
        json.key(source.field.key)
        json.value(source.field.value)
        json.key("services")
        json.beginArray()
        for s in report.services {
            json.object(service(s, stickiness: stickiness[s.key]))
            spill()
        }
        json.endArray()
        json.key("other_services_connections")
        json.int(report.connectionsToOtherServices)
        json.key("pairs")
        json.beginArray()
        for p in report.pairs {
            json.object(pair(p))
            spill()
        }
        json.endArray()
        json.key("omitted_pairs")
        json.int(report.omittedPairs)
        json.key("anomalies")
        json.beginArray()
        for anomaly in report.anomalies {
            json.object([
                Field("kind", .string(anomaly.kind.rawValue)), Field("uids", .strings(anomaly.uids)),
                Field("detail", .string(anomaly.detail)),
            ])
            spill()
        }
        json.endArray()
        json.key("anomaly_counts")
        json.object(
            report.anomalyCounts.sorted { $0.key < $1.key }.map { Field($0.key.rawValue, .int(Int64($0.value))) }
        )
        json.key("not_kept_for_memory")
        json.object(report.notKeptForMemory.map { Field($0.key, .int(Int64($0.count))) })
        for field in extra {
            json.key(field.key)
            json.value(field.value)
        }
        json.endObject()
        writer.part(json.takeBytes())
        writer.line(bytes: [])
    }

    static func service(_ s: ServiceReuse, stickiness: StickinessVerdict?) -> [Field] {
        [
            Field("server", .string(s.key.serverText)),
            Field("port", .int(Int64(s.key.port))),
            Field("names", .strings(s.names.sorted())),
            Field("connections", .int(Int64(s.connections))),
            Field("full", .int(Int64(s.full))),
            Field("resumed", .int(Int64(s.resumed))),
            Field("undecided", .int(Int64(s.undecided))),
            Field(
                "versions",
                .object(s.versions.sorted { $0.key < $1.key }.map { Field($0.key, .int(Int64($0.value))) })
            ),
            Field(
                "offers",
                .object(
                    Mechanism.allCases.map { m in
                        let count = s.offers[m] ?? OfferCount()
                        return Field(
                            m.rawValue,
                            .object([
                                Field("made", .int(Int64(count.made))), Field("accepted", .int(Int64(count.accepted))),
                            ])
                        )
                    }
                )
            ),
            Field(
                "support",
                .object(
                    Mechanism.allCases.map { Field($0.rawValue, .string(s.support[$0]?.value.rawValue ?? "unknown")) }
                )
            ),
            Field(
                "support_reasons",
                .object(Mechanism.allCases.map { Field($0.rawValue, .optional(s.support[$0]?.reason($0))) })
            ),
            Field("by_age", .objects(s.byAge.map(bucket))),
            Field(
                "by_age_per_mechanism",
                .object(
                    Mechanism.allCases.map { m in
                        Field(m.rawValue, .objects((s.byAgePerMechanism[m] ?? []).map(bucket)))
                    }
                )
            ),
            Field(
                "age_bucket_tolerance",
                .string(
                    "an age up to 10% of an edge or 1 s past it, whichever is less, counts in the bucket below the edge"
                )
            ),
            Field("first_offer_ages", .objects(s.offerAges.map(offerAge))),
            Field("lifetime", s.lifetime.map { .object(bracket($0)) } ?? .null),
            Field("lifetime_reason", .optional(s.lifetimeReason)),
            Field(
                "lifetimes",
                .object(
                    Mechanism.allCases.map { m in
                        let entry = s.lifetimes[m]
                        return Field(
                            m.rawValue,
                            .object([
                                Field("bracket", entry?.bracket.map { .object(bracket($0)) } ?? .null),
                                Field("reason", .optional(entry.flatMap { $0.basis.reason(bracket: $0.bracket) })),
                            ])
                        )
                    }
                )
            ),
            Field(
                "ticket_lifetime_hints",
                .objects(
                    s.ticketLifetimeHints.sorted { $0.key < $1.key }.map {
                        [Field("seconds", .int(Int64($0.key))), Field("count", .int(Int64($0.value)))]
                    }
                )
            ),
            Field(
                "early_data",
                .object([
                    Field("offered", .int(Int64(s.earlyData.offered))),
                    Field("accepted", .int(Int64(s.earlyData.accepted))),
                    Field("rejected", .int(Int64(s.earlyData.rejected))),
                    Field("answer_unknown", .int(Int64(s.earlyData.answerUnknown))),
                    Field("tickets_read", .int(Int64(s.earlyData.ticketsRead))),
                    Field("tickets_allowing", .int(Int64(s.earlyData.ticketsAllowing))),
                    Field("largest_allowed", .int(Int64(s.earlyData.largestAllowed))),
                ])
            ),
            Field(
                "renegotiations",
                .object([
                    Field("connections", .int(Int64(s.renegotiatingConnections))),
                    Field("total", .int(Int64(s.renegotiations))),
                    Field("full", .int(Int64(s.fullRenegotiations))),
                    Field("abbreviated", .int(Int64(s.abbreviatedRenegotiations))),
                ])
            ),
            Field("stickiness", stickiness.map { .object(verdict($0)) } ?? .null),
            Field(
                "over_time",
                .object([
                    Field("start", s.overTime.startNanos.map(FieldValue.timestamp) ?? .null),
                    Field("bin_seconds", .seconds(Double(s.overTime.binNanos) / 1e9)),
                    Field("connections", .ints(s.overTime.bins.map { Int64($0.connections) })),
                    Field("offers", .ints(s.overTime.bins.map { Int64($0.offers) })),
                    Field("accepted", .ints(s.overTime.bins.map { Int64($0.accepted) })),
                ])
            ),
        ]
    }

    static func verdict(_ v: StickinessVerdict) -> [Field] {
        [
            Field("verdict", .string(v.verdict.rawValue)),
            Field(
                "backends",
                .objects(
                    v.backends.map {
                        [
                            Field("id", .string($0.id)), Field("identified_by", .string($0.identifiedBy.words)),
                            Field("connections", .int(Int64($0.connections))),
                        ]
                    }
                )
            ),
            Field("offers_elsewhere", v.offersElsewhere.map { .seconds($0) } ?? .null),
            Field("offers_elsewhere_is_lower_bound", .bool(v.offersElsewhereIsLowerBound)),
            Field("evidence", .strings(v.evidence.map(\.sentence))),
            Field(
                "judged_with",
                .strings(v.services.map(\.description))
            ),
        ]
    }

    static func bucket(_ b: AgeBucket) -> [Field] {
        [
            Field("max_age", b.maxAge.map { .seconds($0) } ?? .null), Field("offers", .int(Int64(b.offers))),
            Field("accepted", .int(Int64(b.accepted))),
        ]
    }

    static func offerAge(_ o: OfferAge) -> [Field] {
        [
            Field("age", .seconds(o.age)), Field("accepted", .bool(o.accepted)),
            Field("mechanism", .string(o.mechanism.rawValue)),
        ]
    }

    static func bracket(_ b: LifetimeBracket) -> [Field] {
        [
            Field("at_least", .seconds(b.atLeast)), Field("at_most", b.atMost.map { .seconds($0) } ?? .null),
            Field("mechanism", .string(b.mechanism.rawValue)),
            Field("accepted_offers", .int(Int64(b.acceptedOffers))),
            Field("refused_offers", .int(Int64(b.refusedOffers))),
        ]
    }

    static func pair(_ p: PairSequence) -> [Field] {
        [
            Field("client", .string(p.client.description)),
            Field("server", .string(p.service.serverText)),
            Field("port", .int(Int64(p.service.port))),
            Field(
                "connections",
                .objects(
                    p.connections.map { c in
                        [
                            Field("uid", .string(c.uid)), Field("ts", .timestamp(c.timestampNanos)),
                            Field("verdict", .string(c.verdict.rawValue)),
                            Field("offer", .optional(c.offer?.rawValue)),
                            Field("session_age", c.sessionAge.map { .seconds($0) } ?? .null),
                        ]
                    }
                )
            ),
            Field("omitted", .int(Int64(p.omitted))),
        ]
    }
}

/// The reuse report as text: a one-line-per-service overview a newcomer reads at a glance,
/// then a block per service, pairs (with `--pairs`), anomalies and what was skipped.
package struct ReuseReportText {
    package var showPairs = false
    /// ANSI colours for a terminal: verdicts green, red or yellow, headings bold.
    package var style = TextStyle(colors: false)
    package init(showPairs: Bool = false, colors: Bool = false) {
        self.showPairs = showPairs
        style = TextStyle(colors: colors)
    }

    package func lines(
        _ report: ReuseReport,
        stickiness: [ServiceKey: StickinessVerdict] = [:],
        source: ReportSource
    ) -> [String] {
        var out: [String] = []
        let connections = report.services.reduce(0) { $0 + $1.connections }
        var heading =
            "\(report.services.count) service\(report.services.count == 1 ? "" : "s"), \(connections) TLS "
            + "connection\(connections == 1 ? "" : "s")"
        if let span = source.span {
            heading +=
                ", \(utcTimestamp(span.first, fractionDigits: 0)) to \(utcTimestamp(span.last, fractionDigits: 0)) UTC"
        }
        out.append(heading)
        var coverage: String?
        if case let .capture(statistics) = source, let line = CaptureSummary.coverageLine(statistics) {
            coverage = "coverage: " + line
        }
        guard !report.services.isEmpty else {
            out.append("no TLS connections found")
            if let coverage { out.append(coverage) }
            return out.map(DisplayText.line)
        }
        out.append("")
        var table: [[String]] = [
            ["SERVICE", "NAMES", "CONNS", "RESUMED", "SESSION ID", "TICKET", "TLS1.3 PSK", "LIFETIME", "STICKINESS"]
        ]
        for s in report.services {
            let percent = s.connections > 0 ? " (\(s.resumed * 100 / s.connections)%)" : ""
            table.append([
                s.key.description,
                s.names.isEmpty
                    ? "-"
                    : DisplayText.cell(
                        s.names.sorted().joined(separator: ","),
                        width: HandshakeTextTable.maximumColumnWidth
                    ),
                String(s.connections),
                "\(s.resumed)\(percent)",
                s.support[.sessionID]?.value.rawValue ?? "unknown",
                s.support[.ticket]?.value.rawValue ?? "unknown",
                s.support[.psk]?.value.rawValue ?? "unknown",
                lifetimeShort(s),
                stickiness[s.key]?.verdict.rawValue ?? "-",
            ])
        }
        out += aligned(table) { row, column, cell in
            if row == 0 { return style.bold(cell) }
            switch column {
            case 4, 5, 6: return style.support(cell)
            case 8: return style.stickiness(cell)
            default: return cell
            }
        }
        for s in report.services { out += serviceBlock(s, stickiness: stickiness[s.key]) }
        if showPairs {
            out.append("")
            out.append("client sequences (full = full handshake, refused = offer not accepted)")
            for pair in report.pairs {
                out.append(
                    "  \(pair.client) -> "
                        + "\(pair.service.description)"
                )
                for c in pair.connections {
                    var line = "    \(utcTimestamp(c.timestampNanos))  \(c.uid)  \(c.verdict.rawValue)"
                    if let offer = c.offer { line += "  offer=\(offer.rawValue)" }
                    if let age = c.sessionAge { line += "  age=\(formatAge(age))" }
                    out.append(line)
                }
                if pair.omitted > 0 { out.append("    ... \(pair.omitted) more") }
            }
        }
        if !report.anomalies.isEmpty {
            out.append("")
            out.append(style.yellow("anomalies"))
            for anomaly in report.anomalies {
                out.append(
                    "  \(anomaly.kind.rawValue): \(DisplayText.escaped(anomaly.detail))  "
                        + "[\(anomaly.uids.joined(separator: " "))]"
                )
            }
            for (kind, count) in report.anomalyCounts.sorted(by: { $0.key < $1.key })
            where count > report.anomalies.filter({ $0.kind == kind }).count {
                out.append("  ... \(count) \(kind.rawValue) in all")
            }
        }
        if let coverage {
            out.append("")
            out.append(coverage)
        }
        if !report.notKeptForMemory.isEmpty {
            out.append("")
            out.append(
                style.yellow("not kept within --memory-limit: ")
                    + report.notKeptForMemory.map { "\($0.key.replacingUnderscores()) \($0.count)" }.joined(
                        separator: ", "
                    )
                    + " (links, pairings or verdicts may be missing; a larger --memory-limit keeps more)"
            )
        }
        // Wire strings were escaped where they entered a line; this pass shows anything else.
        return out.map(DisplayText.line)
    }

    /// Names shown in a service's heading at most; the rest are counted.
    static let maximumNamesShown = 8

    /// A service's names, escaped, each cut to a column's width, the first few only.
    static func nameList(_ names: some Collection<String>) -> String {
        let sorted = names.sorted()
        var text = sorted.prefix(maximumNamesShown).map {
            DisplayText.cell($0, width: HandshakeTextTable.maximumColumnWidth)
        }
        .joined(separator: ", ")
        if sorted.count > maximumNamesShown { text += ", … \(sorted.count - maximumNamesShown) more" }
        return text
    }

    private func lifetimeShort(_ s: ServiceReuse) -> String {
        guard let b = s.lifetime else { return "-" }
        // TLS 1.3 ages without a full handshake before the first offer count from that offer.
        let firstOffer = b.fromFirstOffer ? " (from 1st offer)" : ""
        if let atMost = b.atMost { return "\(formatAge(b.atLeast))..\(formatAge(atMost))" + firstOffer }
        return ">= \(formatAge(b.atLeast))" + firstOffer
    }

    private func serviceBlock(_ s: ServiceReuse, stickiness: StickinessVerdict?) -> [String] {
        var out = [
            "",
            style.bold(s.key.description)
                + (s.names.isEmpty ? "" : "  (\(Self.nameList(s.names)))"),
        ]
        var summary = "  connections   \(s.connections): \(s.full) full, \(s.resumed) resumed"
        if s.undecided > 0 { summary += ", \(s.undecided) undecided (capture ended before the server answered)" }
        out.append(summary)
        out.append(
            "  versions      "
                + s.versions.sorted { $0.key < $1.key }.map { "\($0.key) x\($0.value)" }.joined(separator: ", ")
        )
        for m in Mechanism.allCases {
            let value = s.support[m]?.value ?? .unknown
            let name = (m.title + ":").padding(12)
            out.append("  \(name)  \(style.support(value.rawValue.padding(7))) \(s.supportReason(m))")
        }
        let withAge = s.byAge.reduce(0) { $0 + $1.offers }
        if withAge > 0 {
            out.append(
                "  acceptance by session age (\(withAge) offer\(withAge == 1 ? "" : "s") of sessions seen issued):"
            )
            let lastUsed = s.byAge.lastIndex { $0.offers > 0 } ?? 0
            for (index, bucket) in s.byAge[...lastUsed].enumerated() {
                let label = AgeBucketLabel.text(s.byAge, index)
                guard bucket.offers > 0 else {
                    out.append("    \(label.padding(13))      -")
                    continue
                }
                let share = bucket.accepted * 100 / bucket.offers
                let bar = String(repeating: "#", count: share / 10) + String(repeating: ".", count: 10 - share / 10)
                out.append(
                    "    \(label.padding(13)) \(String(bucket.accepted).leftPadding(5)) of "
                        + "\(String(bucket.offers).padding(5)) accepted  \(bar) \(share)%"
                )
            }
            out.append("    (an age up to 10% or 1 s past an edge counts below it: probes arrive a little late)")
            // With few offers, each one.
            if withAge <= 10, s.offerAges.count == withAge {
                out.append(
                    "  offers        "
                        + s.offerAges.map { "\(formatAge($0.age)) \($0.accepted ? "accepted" : "refused")" }.joined(
                            separator: ", "
                        )
                )
            }
        }
        if let b = s.lifetime {
            var line = "  lifetime      at least \(formatAge(b.atLeast)) (oldest accepted \(b.mechanism.title) offer)"
            if let atMost = b.atMost { line += ", at most \(formatAge(atMost)) (youngest refused older one)" }
            out.append(line)
            if let reason = s.lifetimeReason { out.append("                \(reason)") }
        } else {
            out.append("  lifetime      unknown: \(s.lifetimeReason ?? "")")
        }
        if !s.ticketLifetimeHints.isEmpty {
            out.append(
                "  ticket hint   "
                    + s.ticketLifetimeHints.sorted { $0.key < $1.key }.map { "\($0.key) s (x\($0.value))" }.joined(
                        separator: ", "
                    )
            )
        }
        if let early = earlyDataSummary(s.earlyData) { out.append("  early data    " + early) }
        if let renegotiations = renegotiationSummary(s) { out.append("  renegotiated  " + renegotiations) }
        if let v = stickiness {
            var line = "  stickiness    \(style.stickiness(v.verdict.rawValue))"
            if let share = v.offersElsewhere {
                line +=
                    ": \(v.offersElsewhereIsLowerBound ? "at least " : "")\(Int((share * 100).rounded()))% of offers "
                    + "landed on another backend"
            }
            out.append(line)
            if v.backends.count > 1 {
                out.append(
                    "    backends    "
                        + v.backends.map { "\(DisplayText.escaped($0.id)) (\($0.connections))" }.joined(separator: ", ")
                )
            }
            for evidence in v.evidence { out.append("    - \(DisplayText.escaped(evidence.sentence))") }
        }
        return out
    }
}

/// Rows of cells in aligned columns; `style` may wrap a padded cell in colour codes (the
/// widths are measured without them).
func aligned(_ rows: [[String]], style: (_ row: Int, _ column: Int, _ cell: String) -> String = { $2 }) -> [String] {
    guard let columns = rows.first?.count else { return [] }
    var widths = [Int](repeating: 0, count: columns)
    for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
    return rows.enumerated().map { index, row in
        var line = ""
        for (i, cell) in row.enumerated() {
            line += style(index, i, cell)
            if i < row.count - 1 { line += String(repeating: " ", count: widths[i] + 2 - cell.count) }
        }
        return line
    }
}

/// ANSI SGR colours (ECMA-48 8.3.117), or plain text when off.
package struct TextStyle: Sendable {
    package var colors: Bool
    package init(colors: Bool) { self.colors = colors }

    /// The SGR parameters used (ECMA-48 8.3.117): reset, bold, red, green, yellow. `DisplayText.line`
    /// lets exactly these through.
    static let codes = ["0", "1", "31", "32", "33"]

    func wrap(_ text: String, _ code: String) -> String {
        colors && !text.isEmpty ? "\u{1b}[\(code)m\(text)\u{1b}[0m" : text
    }
    package func bold(_ text: String) -> String { wrap(text, "1") }
    package func green(_ text: String) -> String { wrap(text, "32") }
    package func red(_ text: String) -> String { wrap(text, "31") }
    package func yellow(_ text: String) -> String { wrap(text, "33") }

    /// A support value: yes green, no red, unknown yellow (padding kept outside the colour).
    func support(_ cell: String) -> String {
        let word = cell.trimmingTrailingSpaces
        let padding = String(repeating: " ", count: cell.count - word.count)
        switch word {
        case "yes": return green(word) + padding
        case "no": return red(word) + padding
        case "unknown": return yellow(word) + padding
        default: return cell
        }
    }

    func stickiness(_ cell: String) -> String {
        switch cell {
        case "sticky", "shared", "sticky-or-shared", "single-backend": return green(cell)
        case "not-sticky": return red(cell)
        case "unknown": return yellow(cell)
        default: return cell
        }
    }
}

extension String {
    var trimmingTrailingSpaces: String {
        var text = Substring(self)
        while text.last == " " { text.removeLast() }
        return String(text)
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
    func leftPadding(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}

/// Age bucket labels as ranges: "0-5 s", "5-10 s", "30 s-5 min", "over 1 h".
package enum AgeBucketLabel {
    package static func text(_ buckets: [AgeBucket], _ index: Int) -> String {
        let lower = index > 0 ? buckets[index - 1].maxAge : 0
        switch (lower, buckets[index].maxAge) {
        case let (low?, high?):
            let (lowText, highText) = (formatAge(low), formatAge(high))
            // "5-10 s" when both share the unit, "30 s-5 min" when not.
            if low > 0, let lowUnit = lowText.split(separator: " ").last, lowText.hasSuffix(" " + lowUnit),
                highText.hasSuffix(" " + lowUnit)
            {
                return "\(lowText.dropLast(lowUnit.count + 1))-\(highText)"
            }
            return low == 0 ? "0-\(highText)" : "\(lowText)-\(highText)"
        case let (low?, nil): return "over \(formatAge(low))"
        default: return "-"
        }
    }
}

/// What a service did with TLS 1.3 early data (RFC 8446 4.2.10), in words; nil when no
/// client offered it and no ticket read with a key log allowed it.
func earlyDataSummary(_ e: EarlyDataCount) -> String? {
    guard e.offered > 0 || e.ticketsAllowing > 0 else { return nil }
    var parts: [String] = []
    if e.offered > 0 {
        var answers: [String] = []
        if e.accepted > 0 { answers.append("\(e.accepted) accepted") }
        if e.rejected > 0 { answers.append("\(e.rejected) rejected") }
        if e.answerUnknown > 0 {
            answers.append("\(e.answerUnknown) resumed with the answer encrypted (a key log shows it)")
        }
        let connections = e.offered == 1 ? "connection" : "connections"
        parts.append("offered in \(e.offered) \(connections): " + answers.joined(separator: ", "))
    } else {
        parts.append("never offered")
    }
    if e.ticketsRead > 0 {
        let read = "\(e.ticketsAllowing) of \(e.ticketsRead) tickets read"
        if e.ticketsAllowing == 0 {
            parts.append("no ticket allows it (\(e.ticketsRead) read)")
        } else if e.largestAllowed == UInt32.max {
            // QUIC tickets allow early data with this value; transport parameters set the amount (RFC 9001 4.6.1).
            parts.append(read + " allow it (QUIC: the amount is the transport's)")
        } else {
            parts.append(read + " allow up to \(e.largestAllowed) bytes")
        }
    }
    return parts.joined(separator: "; ")
}

/// TLS 1.2 renegotiations a key log opened at a service, in words; nil when none was read.
func renegotiationSummary(_ s: ServiceReuse) -> String? {
    guard s.renegotiations > 0 else { return nil }
    let connections = s.renegotiatingConnections == 1 ? "connection" : "connections"
    var kinds: [String] = []
    if s.fullRenegotiations > 0 { kinds.append("\(s.fullRenegotiations) full") }
    if s.abbreviatedRenegotiations > 0 { kinds.append("\(s.abbreviatedRenegotiations) abbreviated") }
    let unfinished = s.renegotiations - s.fullRenegotiations - s.abbreviatedRenegotiations
    if unfinished > 0 { kinds.append("\(unfinished) not seen to the end") }
    return "\(s.renegotiations) in \(s.renegotiatingConnections) \(connections) (" + kinds.joined(separator: ", ")
        + "; read with the key log's master secrets)"
}
