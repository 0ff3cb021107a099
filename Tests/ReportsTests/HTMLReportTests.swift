import Foundation
import Reports
import TestSupport
import Testing

/// `report --html`: one page that loads nothing, a card per service, charts that a real
/// browser draws.
@Suite struct HTMLReportTests {
    static let captures = ["lb-roundrobin.pcap", "nginx-timeout.pcap"].map {
        Paths.captures.appendingPathComponent($0).path
    }

    func page(_ arguments: [String]) throws -> (html: String, stdout: String, dir: URL) {
        let dir = try scratchDirectory()
        let file = dir.appendingPathComponent("report.html").path
        let result = try tlsreuse(["report", "-q", "--html", file] + arguments)
        #expect(result.status == 0, "\(result.stderr)")
        return (try String(contentsOfFile: file, encoding: .utf8), result.stdout, dir)
    }

    @Test func selfContainedWithACardPerService() throws {
        let (html, stdout, dir) = try page(Self.captures)
        defer { try? FileManager.default.removeItem(at: dir) }
        // Nothing to fetch: no scripts, no external references, and a policy that forbids loading.
        #expect(html.contains("Content-Security-Policy\" content=\"default-src 'none'"))
        for forbidden in ["<script", "src=", "http://", "https://", "url(", "@import", "<link"] {
            #expect(!html.contains(forbidden), "\(forbidden)")
        }
        #expect(html.components(separatedBy: "<article class=\"card\"").count - 1 == 2)
        // Three charts per service, but no empty chart where backends are not told apart: a line.
        #expect(html.components(separatedBy: "<svg ").count - 1 == 5)
        #expect(html.components(separatedBy: "<figure class=\"note\">").count - 1 == 1)
        // The page says what the text report says.
        #expect(stdout.contains("not-sticky") && html.contains("<span class=\"badge bad\">not-sticky</span>"))
        #expect(html.contains("127.0.0.1:14501") && html.contains("127.0.0.1:14502"))
        #expect(html.contains("at least 3 s, at most 4.9 s"))
        // One count per support row (the reason has it), and a server that issues no tickets
        // is off, not failing: a neutral badge; so is a mechanism nothing offered.
        #expect(!html.contains("offers accepted</td><td>"))
        #expect(html.contains("<span class=\"badge off\">no</span></td><td>no ticket issued in 3 full handshakes"))
        #expect(html.contains("<span class=\"badge off\">unknown</span></td><td>no PSK offers"))
        #expect(html.contains("<div class=\"scroll\"><table class=\"overview\">"))
    }

    /// HAND-MADE RECORDS: a server name chosen by an attacker is shown, not interpreted.
    @Test func hostileNamesAreEscaped() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let records = dir.appendingPathComponent("records.jsonl").path
        try tlsreuse([
            "handshakes", "-q", "--format", "jsonl", "-o", records,
            Paths.captures.appendingPathComponent("tls12-ticket.pcap").path,
        ])
        let hostile = try String(contentsOfFile: records, encoding: .utf8)
            .replacingOccurrences(of: "\"sni\":null", with: "\"sni\":\"<script>alert('x')</script>&\"")
        try hostile.write(toFile: records, atomically: true, encoding: .utf8)
        let (html, _, pageDir) = try page(["--from", records])
        defer { try? FileManager.default.removeItem(at: pageDir) }
        #expect(!html.contains("<script"))
        #expect(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;"))
    }

    /// The layout holds at common widths, measured by Chromium on a copy of the page with a
    /// script added (the page itself runs none): at 1280 px each card's charts sit in one
    /// row; at 800 px nothing is wider than the window but the overview table, which scrolls.
    @Test(
        .enabled(if: toolAvailable("chromium"), "chromium renders the page"),
        arguments: [1280, 800]
    )
    func layoutHoldsAtCommonWidths(width: Int) throws {
        let (html, _, dir) = try page(Self.captures)
        defer { try? FileManager.default.removeItem(at: dir) }
        let measure = """
            <script>
            const rows = [...document.querySelectorAll('.charts')].map(c =>
              new Set([...c.children].map(f => Math.round(f.getBoundingClientRect().top))).size);
            const overflow = [...document.querySelectorAll('figure, .card, .stats, .support')]
              .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).length;
            document.body.setAttribute('data-rows', rows.join(','));
            document.body.setAttribute('data-overflow', String(overflow));
            </script></body>
            """
        let measured = html.replacingOccurrences(
            of: "<meta http-equiv=\"Content-Security-Policy\"",
            with: "<meta name=\"x\""
        )
        .replacingOccurrences(of: "</body>", with: measure)
        let file = dir.appendingPathComponent("measured.html")
        try measured.write(to: file, atomically: true, encoding: .utf8)
        let dom = try runProcess(
            "chromium",
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                "--user-data-dir=\(dir.appendingPathComponent("profile").path)", "--window-size=\(width),1500",
                "--dump-dom", file.absoluteString,
            ]
        ).stdout
        let rows = try #require(dom.firstMatch(of: /data-rows="([0-9,]*)"/)).1.split(separator: ",")
        let overflow = try #require(dom.firstMatch(of: /data-overflow="([0-9]+)"/)).1
        #expect(rows.count == 2)
        if width >= 1280 { #expect(rows.allSatisfy { $0 == "1" }, "chart rows per card: \(rows)") }
        #expect(overflow == "0", "\(overflow) boxes wider than \(width) px")
    }

    /// Headless Chromium renders the page; the screenshot holds each chart's colour: the
    /// age chart's offer and acceptance bars, the connections over time, the backend bars.
    @Test(
        .enabled(if: toolAvailable("chromium") && toolAvailable("python3"), "chromium renders the page"),
        arguments: [1280, 800]
    )
    func chromiumScreenshotShowsTheCharts(width: Int) throws {
        let (_, _, dir) = try page(Self.captures)
        defer { try? FileManager.default.removeItem(at: dir) }
        let screenshot = dir.appendingPathComponent("report.png").path
        let render = try runProcess(
            "chromium",
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                "--user-data-dir=\(dir.appendingPathComponent("profile").path)",
                "--screenshot=\(screenshot)", "--window-size=\(width),\(width < 1000 ? 3000 : 1500)",
                dir.appendingPathComponent("report.html").absoluteString,
            ]
        )
        #expect(FileManager.default.fileExists(atPath: screenshot), "\(render.stderr)")
        let palette = [
            HTMLReport.Palette.accepted, HTMLReport.Palette.offers, HTMLReport.Palette.connections,
            HTMLReport.Palette.backends,
        ]
        let counted = try runProcess(
            "python3",
            [Paths.repository.appendingPathComponent("Tests/ReportsTests/png_colors.py").path, screenshot] + palette
        )
        let counts = try JSONDecoder().decode([String: Int].self, from: Data(counted.stdout.utf8))
        for color in palette {
            #expect((counts[color] ?? 0) > 1000, "\(color): \(counts[color] ?? 0) pixels")
        }
    }
}
