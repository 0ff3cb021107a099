import Handshakes
import Resumption
import Stickiness

/// `report --html`: one self-contained page (inline CSS and SVG, a Content-Security-Policy
/// that forbids loading anything) with a card per service and three charts each.
package enum HTMLReport {
    /// Chart colours; the screenshot test looks for them.
    package enum Palette {
        package static let accepted = "#2e9e5b"
        package static let offers = "#3b6fd8"
        package static let connections = "#b8c2cc"
        package static let backends = "#7b4fc9"
        package static let refused = "#d9534f"
    }

    package static func render(
        _ report: ReuseReport,
        stickiness: [ServiceKey: StickinessVerdict],
        source: ReportSource,
        version: String
    ) -> String {
        var html = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>tlsreuse report</title>
            <style>\(css)</style>
            </head>
            <body>

            """
        let connections = report.services.reduce(0) { $0 + $1.connections }
        html +=
            "<header><h1>TLS session reuse</h1><p class=\"meta\">\(report.services.count) "
            + "service\(report.services.count == 1 ? "" : "s"), \(connections) TLS "
            + "connection\(connections == 1 ? "" : "s")"
        if let span = source.span {
            html +=
                ", \(escape(utcTimestamp(span.first, fractionDigits: 0))) to "
                + "\(escape(utcTimestamp(span.last, fractionDigits: 0))) UTC"
        }
        html += "</p><p class=\"meta\">\(sourceLine(source))</p></header>\n"
        if report.services.isEmpty {
            html += "<p>No TLS connections found.</p>\n"
        } else {
            html += overview(report, stickiness: stickiness)
            html += "<main>\n"
            for service in report.services { html += card(service, stickiness: stickiness[service.key]) }
            html += "</main>\n"
        }
        if !report.anomalies.isEmpty { html += anomalies(report) }
        if !report.notKeptForMemory.isEmpty {
            html +=
                "<p>Not kept within --memory-limit: "
                + report.notKeptForMemory.map { "\($0.count) \(escape($0.key.replacingUnderscores()))" }.joined(
                    separator: ", "
                )
                + " (links, pairings or verdicts may be missing; a larger --memory-limit keeps more).</p>\n"
        }
        html +=
            "<footer>tlsreuse \(escape(version)) · passive analysis; nothing was sent to the "
            + "servers</footer>\n</body>\n</html>\n"
        return html
    }

    // MARK: sections

    private static func sourceLine(_ source: ReportSource) -> String {
        switch source {
        case let .capture(s):
            let names = s.inputs.map { escape($0.name) }.joined(separator: ", ")
            var line = "From \(s.decode.packets) packets in \(names)"
            let skipped = CaptureSummary.skipped(s)
            if !skipped.isEmpty {
                line +=
                    " · skipped: "
                    + skipped.map { "\($0.count) \(escape($0.key.replacingUnderscores()))" }.joined(separator: ", ")
            }
            return line
        case let .records(s):
            return "From \(s.records) saved handshake records in "
                + s.inputs.map { escape($0.name) }.joined(separator: ", ")
        }
    }

    private static func overview(_ report: ReuseReport, stickiness: [ServiceKey: StickinessVerdict]) -> String {
        var html =
            "<div class=\"scroll\"><table class=\"overview\"><thead><tr><th>Service</th><th>Names</th>"
            + "<th>Connections</th><th>Resumed</th><th>Session ID</th><th>Ticket</th><th>TLS 1.3 PSK</th>"
            + "<th>Lifetime</th><th>Stickiness</th></tr></thead><tbody>\n"
        for s in report.services {
            let percent = s.connections > 0 ? " (\(s.resumed * 100 / s.connections)%)" : ""
            html +=
                "<tr><td><a href=\"#\(anchor(s.key))\">\(escape(endpoint(s.key)))</a></td>"
                + "<td>\(escape(s.names.sorted().joined(separator: ", ")))</td>"
            html += "<td class=\"n\">\(s.connections)</td><td class=\"n\">\(s.resumed)\(percent)</td>"
            for m in Mechanism.allCases { html += "<td>\(supportBadge(s.support[m]))</td>" }
            html +=
                "<td>\(escape(lifetimeText(s)))</td>"
                + "<td>\(stickiness[s.key].map { badge($0.verdict.rawValue) } ?? "–")</td></tr>\n"
        }
        return html + "</tbody></table></div>\n"
    }

    private static func card(_ s: ServiceReuse, stickiness: StickinessVerdict?) -> String {
        var html = "<article class=\"card\" id=\"\(anchor(s.key))\">\n<h2>\(escape(endpoint(s.key)))"
        if !s.names.isEmpty {
            html += " <span class=\"names\">\(escape(s.names.sorted().joined(separator: ", ")))</span>"
        }
        html += "</h2>\n<div class=\"stats\">"
        html += stat("connections", String(s.connections))
        html += stat("full handshakes", String(s.full))
        html += stat("resumed", s.connections > 0 ? "\(s.resumed) (\(s.resumed * 100 / s.connections)%)" : "0")
        if s.undecided > 0 { html += stat("undecided", String(s.undecided)) }
        html += stat(
            "versions",
            s.versions.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")
        )
        html += "</div>\n<table class=\"support\"><tbody>\n"
        // The reason carries the counts: one count per row.
        for m in Mechanism.allCases {
            html +=
                "<tr><th>\(escape(m.title))</th><td>\(supportBadge(s.support[m]))</td>"
                + "<td>\(escape(s.supportReason(m)))</td></tr>\n"
        }
        html += "</tbody></table>\n<p class=\"lifetime\"><b>Lifetime</b> "
        if let b = s.lifetime {
            html += "at least \(escape(formatAge(b.atLeast)))"
            if let atMost = b.atMost { html += ", at most \(escape(formatAge(atMost)))" }
            html += " (\(escape(b.mechanism.title)) offers)"
            if let reason = s.lifetimeReason { html += " · \(escape(reason))" }
        } else {
            html += "unknown: \(escape(s.lifetimeReason ?? ""))"
        }
        if !s.ticketLifetimeHints.isEmpty {
            html +=
                " · ticket lifetime hint "
                + s.ticketLifetimeHints.sorted { $0.key < $1.key }.map { "\($0.key) s" }.joined(separator: ", ")
        }
        if let early = earlyDataSummary(s.earlyData) { html += " · early data " + escape(early) }
        if let renegotiations = renegotiationSummary(s) { html += " · renegotiated " + escape(renegotiations) }
        html += "</p>\n"
        if let v = stickiness {
            html += "<div class=\"stickiness\"><b>Stickiness</b> \(badge(v.verdict.rawValue))"
            if let share = v.offersElsewhere {
                html +=
                    " \(v.offersElsewhereIsLowerBound ? "at least " : "")\(Int((share * 100).rounded()))% of offers "
                    + "landed on another backend"
            }
            html += "<ul>" + v.evidence.map { "<li>\(escape($0.sentence))</li>" }.joined() + "</ul></div>\n"
        }
        html += "<div class=\"charts\">\n"
        html += figure("Acceptance by session age", ageChart(s.byAge))
        html += figure("Offers and acceptances over time", timeChart(s.overTime))
        var backends = (stickiness?.backends ?? []).map {
            (id: $0.id, connections: $0.connections, identifiedBy: $0.identifiedBy.words)
        }
        if backends.isEmpty, stickiness?.verdict == .singleBackend {
            backends = [(id: "one backend", connections: s.connections, identifiedBy: "one backend visible")]
        }
        if backends.isEmpty {
            // A line, not an empty chart: with one backend visible there is nothing to draw.
            html +=
                "<figure class=\"note\"><figcaption>Connections per backend</figcaption><p>Backends not told "
                + "apart: one backend visible, or several that look alike.</p></figure>\n"
        } else {
            html += figure("Connections per backend", backendChart(backends))
        }
        html += "</div>\n</article>\n"
        return html
    }

    private static func anomalies(_ report: ReuseReport) -> String {
        var html =
            "<section class=\"card\"><h2>Anomalies</h2><table "
            + "class=\"anomalies\"><thead><tr><th>Kind</th><th>Detail</th><th>Connections</th></tr></thead><tbody>\n"
        for a in report.anomalies {
            html +=
                "<tr><td>\(escape(a.kind.rawValue))</td><td>\(escape(a.detail))</td><td "
                + "class=\"uids\">\(escape(a.uids.joined(separator: " ")))</td></tr>\n"
        }
        html += "</tbody></table>"
        for (kind, count) in report.anomalyCounts.sorted(by: { $0.key < $1.key })
        where count > report.anomalies.filter({ $0.kind == kind }).count {
            html += "<p>\(count) \(escape(kind.rawValue)) in all.</p>"
        }
        return html + "</section>\n"
    }

    // MARK: charts (inline SVG)

    static let chartWidth = 360.0, chartHeight = 210.0
    static let plotLeft = 40.0, plotRight = 350.0, plotTop = 24.0, plotBottom = 176.0

    private static func figure(_ title: String, _ svg: String) -> String {
        "<figure><figcaption>\(escape(title))</figcaption>\(svg)</figure>\n"
    }

    private static func svgOpen(_ label: String, height: Double = chartHeight) -> String {
        "<svg viewBox=\"0 0 \(Int(chartWidth)) \(Int(height))\" width=\"\(Int(chartWidth))\" "
            + "height=\"\(Int(height))\" role=\"img\" aria-label=\"\(escape(label))\">"
    }

    private static func emptyChart(_ message: String) -> String {
        svgOpen(message)
            + "<rect x=\"0.5\" y=\"0.5\" width=\"\(Int(chartWidth) - 1)\" height=\"\(Int(chartHeight) - 1)\" "
            + "class=\"frame\"/>"
            + "<text x=\"\(Int(chartWidth / 2))\" y=\"\(Int(chartHeight / 2))\" text-anchor=\"middle\" "
            + "class=\"muted\">\(escape(message))</text></svg>"
    }

    /// Y axis with gridlines at 0, the middle (when a whole number lies there) and the maximum.
    private static func yAxis(maximum: Int) -> String {
        var svg = ""
        let ticks = maximum >= 2 ? [0, maximum / 2, maximum] : [0, maximum]
        for value in ticks {
            let y = plotBottom - Double(value) / Double(max(1, maximum)) * (plotBottom - plotTop)
            svg +=
                "<line x1=\"\(fmt(plotLeft))\" y1=\"\(fmt(y))\" x2=\"\(fmt(plotRight))\" y2=\"\(fmt(y))\" "
                + "class=\"grid\"/>"
            svg +=
                "<text x=\"\(fmt(plotLeft - 4))\" y=\"\(fmt(y + 4))\" text-anchor=\"end\" "
                + "class=\"tick\">\(value)</text>"
        }
        return svg
    }

    private static func legend(_ entries: [(String, String)]) -> String {
        var svg = ""
        var x = plotLeft
        for (color, label) in entries {
            svg +=
                "<rect x=\"\(fmt(x))\" y=\"6\" width=\"10\" height=\"10\" fill=\"\(color)\"/><text "
                + "x=\"\(fmt(x + 14))\" y=\"15\" class=\"tick\">\(escape(label))</text>"
            x += 24 + Double(label.count) * 6.2
        }
        return svg
    }

    /// Offers (blue) and accepted offers (green) per age bucket, with the acceptance share.
    static func ageChart(_ buckets: [AgeBucket]) -> String {
        guard let lastUsed = buckets.lastIndex(where: { $0.offers > 0 }) else {
            return emptyChart("no offers of sessions seen issued")
        }
        let shown = Array(buckets[...lastUsed])
        let maximum = max(1, shown.map(\.offers).max() ?? 1)
        var svg =
            svgOpen("Acceptance by session age") + legend([(Palette.offers, "offers"), (Palette.accepted, "accepted")])
            + yAxis(maximum: maximum)
        let slot = (plotRight - plotLeft) / Double(shown.count)
        let barWidth = min(36, slot * 0.35)
        for (index, bucket) in shown.enumerated() {
            let center = plotLeft + slot * (Double(index) + 0.5)
            let offersHeight = Double(bucket.offers) / Double(maximum) * (plotBottom - plotTop)
            let acceptedHeight = Double(bucket.accepted) / Double(maximum) * (plotBottom - plotTop)
            svg +=
                "<rect x=\"\(fmt(center - barWidth - 1))\" y=\"\(fmt(plotBottom - offersHeight))\" "
                + "width=\"\(fmt(barWidth))\" height=\"\(fmt(offersHeight))\" "
                + "fill=\"\(Palette.offers)\"><title>\(bucket.offers) offers</title></rect>"
            svg +=
                "<rect x=\"\(fmt(center + 1))\" y=\"\(fmt(plotBottom - acceptedHeight))\" width=\"\(fmt(barWidth))\" "
                + "height=\"\(fmt(acceptedHeight))\" fill=\"\(Palette.accepted)\"><title>\(bucket.accepted) "
                + "accepted</title></rect>"
            let label = AgeBucketLabel.text(shown, index)
            svg +=
                "<text x=\"\(fmt(center))\" y=\"\(fmt(plotBottom + 14))\" text-anchor=\"middle\" "
                + "class=\"tick\">\(escape(label))</text>"
            if bucket.offers > 0 {
                svg +=
                    "<text x=\"\(fmt(center))\" y=\"\(fmt(plotBottom + 28))\" text-anchor=\"middle\" "
                    + "class=\"share\">\(bucket.accepted * 100 / bucket.offers)%</text>"
            }
        }
        return svg + "</svg>"
    }

    /// Connections per bin (grey bars), offers (blue line) and accepted offers (green line).
    static func timeChart(_ series: TimeSeries) -> String {
        guard let start = series.startNanos, !series.bins.isEmpty else { return emptyChart("no connections") }
        let bins = series.bins
        let maximum = max(1, bins.map(\.connections).max() ?? 1)
        var svg =
            svgOpen("Offers and acceptances over time")
            + legend([(Palette.connections, "connections"), (Palette.offers, "offers"), (Palette.accepted, "accepted")])
            + yAxis(maximum: maximum)
        let slot = (plotRight - plotLeft) / Double(bins.count)
        func y(_ value: Int) -> Double { plotBottom - Double(value) / Double(maximum) * (plotBottom - plotTop) }
        for (index, bin) in bins.enumerated() where bin.connections > 0 {
            svg +=
                "<rect x=\"\(fmt(plotLeft + slot * Double(index) + slot * 0.1))\" y=\"\(fmt(y(bin.connections)))\" "
                + "width=\"\(fmt(max(1, slot * 0.8)))\" height=\"\(fmt(plotBottom - y(bin.connections)))\" "
                + "fill=\"\(Palette.connections)\"/>"
        }
        for (color, values) in [(Palette.offers, bins.map(\.offers)), (Palette.accepted, bins.map(\.accepted))] {
            let points = values.enumerated().map {
                "\(fmt(plotLeft + slot * (Double($0.offset) + 0.5))),\(fmt(y($0.element)))"
            }.joined(separator: " ")
            svg +=
                "<polyline points=\"\(points)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2.5\" "
                + "stroke-linejoin=\"round\"/>"
            if values.count == 1 {
                svg +=
                    "<circle cx=\"\(fmt(plotLeft + slot * 0.5))\" cy=\"\(fmt(y(values[0])))\" r=\"4\" "
                    + "fill=\"\(color)\"/>"
            }
        }
        let end = start + series.binNanos * Int64(bins.count)
        svg +=
            "<text x=\"\(fmt(plotLeft))\" y=\"\(fmt(plotBottom + 14))\" "
            + "class=\"tick\">\(escape(clockTime(start)))</text>"
        svg +=
            "<text x=\"\(fmt(plotRight))\" y=\"\(fmt(plotBottom + 14))\" text-anchor=\"end\" "
            + "class=\"tick\">\(escape(clockTime(end)))</text>"
        svg +=
            "<text x=\"\(fmt((plotLeft + plotRight) / 2))\" y=\"\(fmt(plotBottom + 28))\" text-anchor=\"middle\" "
            + "class=\"share\">per \(escape(formatAge(Double(series.binNanos) / 1e9)))</text>"
        return svg + "</svg>"
    }

    /// Horizontal bars: connections each backend received.
    static func backendChart(_ backends: [(id: String, connections: Int, identifiedBy: String)]) -> String {
        guard !backends.isEmpty else { return emptyChart("backends not told apart") }
        let shown = Array(backends.prefix(8))
        let maximum = max(1, shown.map(\.connections).max() ?? 1)
        let rowHeight = min(34, (plotBottom - plotTop + 20) / Double(shown.count))
        // As tall as its rows (and the "more" line): one backend is one bar, not a tall box.
        let height = min(chartHeight, plotTop + rowHeight * Double(shown.count) + (backends.count > 8 ? 24 : 4))
        var svg = svgOpen("Connections per backend", height: height)
        let labelWidth = 150.0
        for (index, backend) in shown.enumerated() {
            let top = plotTop - 10 + rowHeight * Double(index)
            // Room after the longest bar for its count.
            let width = Double(backend.connections) / Double(maximum) * (plotRight - plotLeft - labelWidth - 36)
            svg +=
                "<text x=\"\(fmt(plotLeft + labelWidth - 6))\" y=\"\(fmt(top + rowHeight * 0.6))\" "
                + "text-anchor=\"end\" class=\"tick\">\(escape(String(backend.id.prefix(26))))</text>"
            svg +=
                "<rect x=\"\(fmt(plotLeft + labelWidth))\" y=\"\(fmt(top + rowHeight * 0.15))\" "
                + "width=\"\(fmt(max(1, width)))\" height=\"\(fmt(rowHeight * 0.7))\" "
                + "fill=\"\(Palette.backends)\"><title>\(escape(backend.identifiedBy))</title></rect>"
            svg +=
                "<text x=\"\(fmt(plotLeft + labelWidth + max(1, width) + 4))\" y=\"\(fmt(top + rowHeight * 0.6))\" "
                + "class=\"tick\">\(backend.connections)</text>"
        }
        if backends.count > shown.count {
            svg +=
                "<text x=\"\(fmt(plotLeft))\" y=\"\(fmt(height - 6))\" class=\"share\">and "
                + "\(backends.count - shown.count) more</text>"
        }
        return svg + "</svg>"
    }

    // MARK: helpers

    private static func stat(_ label: String, _ value: String) -> String {
        "<div><span class=\"value\">\(escape(value))</span><span class=\"label\">\(escape(label))</span></div>"
    }

    /// A support value's badge: neutral where the server is off by configuration (it issues
    /// no such sessions) or nothing was offered, which are choices, not failures.
    private static func supportBadge(_ support: Support?) -> String {
        guard let support else { return badge("unknown", neutral: true) }
        let neutral = support.basis == .issuance || support.evidence == .noOffers
        return badge(support.value.rawValue, neutral: neutral)
    }

    private static func badge(_ value: String, neutral: Bool = false) -> String {
        let kind: String
        switch value {
        case "yes", "sticky", "shared", "sticky-or-shared", "single-backend": kind = "good"
        case "no", "not-sticky": kind = "bad"
        default: kind = "unknown"
        }
        return "<span class=\"badge \(neutral ? "off" : kind)\">\(escape(value))</span>"
    }

    private static func lifetimeText(_ s: ServiceReuse) -> String {
        guard let b = s.lifetime else { return "–" }
        if let atMost = b.atMost { return "\(formatAge(b.atLeast)) – \(formatAge(atMost))" }
        return "≥ \(formatAge(b.atLeast))"
    }

    private static func endpoint(_ key: ServiceKey) -> String { key.description }

    private static func anchor(_ key: ServiceKey) -> String {
        "service-" + String(endpoint(key).map { $0.isLetter || $0.isNumber ? $0 : "-" })
    }

    /// "06:11:30" (UTC) for chart axes.
    private static func clockTime(_ nanos: Int64) -> String { String(utcTimestamp(nanos, fractionDigits: 0).suffix(8)) }

    private static func fmt(_ value: Double) -> String { formatFixed(value, decimals: 1) }

    /// Text for HTML content and attribute values (HTML 13.1.3: & < > " '), with characters
    /// that are not printable (controls, bidi overrides: `DisplayText`) shown as escapes.
    package static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in DisplayText.escaped(text).unicodeScalars {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }

    static let css = """
        body{font:14px/1.45 -apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;padding:24px \
        32px;background:#f4f6f8;color:#1d2733}
        h1{margin:0 0 4px;font-size:24px}h2{margin:0 0 10px;font-size:18px}
        .meta{margin:2px 0;color:#5b6875}
        header{margin-bottom:18px}
        table{border-collapse:collapse}
        .overview{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.12);margin-bottom:20px;width:100%}
        .overview th,.overview td{padding:7px 10px;text-align:left;border-bottom:1px solid #e3e8ee}
        .overview th{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#5b6875}
        td.n{text-align:right;font-variant-numeric:tabular-nums}
        a{color:#2b5fc4;text-decoration:none}
        .card{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.12);padding:18px \
        20px;margin-bottom:20px}
        .names{font-weight:normal;color:#5b6875;font-size:14px}
        .stats{display:flex;gap:28px;margin-bottom:12px;flex-wrap:wrap}
        .stats div{display:flex;flex-direction:column}
        .stats .value{font-size:20px;font-weight:600}.stats .label{font-size:12px;color:#5b6875}
        .support th{text-align:left;padding:4px 12px 4px 0;font-weight:600;white-space:nowrap}
        .support td{padding:4px 12px 4px 0;vertical-align:top}
        .badge{display:inline-block;padding:1px 9px;border-radius:10px;font-size:12px;font-weight:600}
        .badge.good{background:#dcf3e4;color:#1e7a43}.badge.bad{background:#fbe0df;color:#b3322c}\
        .badge.unknown{background:#fdf1d6;color:#8a6100}.badge.off{background:#eceef1;color:#555b63}
        .lifetime,.stickiness{margin:10px 0}
        .stickiness ul{margin:4px 0 0 18px;padding:0;color:#3c4854}
        .charts{display:flex;gap:16px;flex-wrap:wrap;margin-top:12px}
        figure{margin:0;border:1px solid #e3e8ee;border-radius:6px;padding:8px;max-width:100%;box-sizing:border-box}
        figure svg{max-width:100%;height:auto}.note{align-self:flex-start;max-width:360px}
        .note p{margin:4px 0 0;color:#5b6875;font-size:13px}
        .scroll{overflow-x:auto;margin-bottom:20px}.scroll .overview{margin-bottom:0}
        figcaption{font-weight:600;font-size:13px;margin-bottom:2px}
        svg .grid{stroke:#e3e8ee;stroke-width:1}svg .tick{font-size:11px;fill:#5b6875}svg \
        .share{font-size:11px;fill:#1d2733;font-weight:600}
        svg .muted{font-size:13px;fill:#8a96a3}svg .frame{fill:none;stroke:#e3e8ee}
        .anomalies td{padding:4px 12px 4px 0;vertical-align:top}.uids{font-family:monospace;font-size:12px}
        footer{color:#8a96a3;font-size:12px;margin-top:10px}
        """
}
