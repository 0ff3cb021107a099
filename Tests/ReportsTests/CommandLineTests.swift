import Foundation
import TestSupport
import Testing

/// Command-line conventions: --version, help with examples, and a man page and completion
/// scripts that match the argument parser (regenerate with scripts/generate-docs).
@Suite struct CommandLineTests {
    static let docs = Paths.repository.appendingPathComponent("docs")

    @Test func version() throws {
        let result = try tlsreuse(["--version"])
        #expect(result.status == 0)
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".").count == 3)
    }

    @Test(arguments: ["report", "handshakes", "live"])
    func helpHasExamples(_ subcommand: String) throws {
        let help = try tlsreuse([subcommand, "--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("Examples:\n  tlsreuse \(subcommand == "report" ? "" : subcommand)"))
    }

    /// Help is written for an 80-column terminal: each example is one whole line, and option
    /// values have real placeholders.
    @Test(arguments: ["report", "handshakes", "live"])
    func helpExamplesAreWholeLines(_ subcommand: String) throws {
        let lines = try tlsreuse([subcommand, "--help"]).stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let start = try #require(lines.firstIndex(of: "Examples:"))
        let examples = lines[(start + 1)...].prefix { !$0.isEmpty }
        #expect(examples.count >= 3)
        for line in examples {
            #expect(line.hasPrefix("  tlsreuse ") || line.hasPrefix("  tcpdump "), "broken example line: \(line)")
            #expect(line.count <= 80, "\(line)")
        }
        let help = lines.joined(separator: "\n")
        let shared =
            ["--bpf <EXPR>", "--since <TIME>", "--memory-limit <SIZE>"] + (subcommand == "live" ? [] : ["--jobs <N>"])
        for placeholder in shared {
            #expect(help.contains(placeholder), "\(placeholder)")
        }
        if subcommand == "live" {
            #expect(help.contains("-i <IFACE>") && help.contains("-w <FILE>"))
        } else {
            #expect(help.contains("-o, --output <FILE>") && help.contains("--format <FORMAT>"))
        }
        if subcommand == "report" {
            for verdict in ["sticky", "not-sticky", "shared", "sticky-or-shared", "single-backend", "unknown"] {
                #expect(help.replacingOccurrences(of: "\n", with: " ").contains(" \(verdict) ("), "\(verdict)")
            }
        }
    }

    /// The man page renders without warnings or hyphenated words, keeps examples whole, and
    /// lists every exit status of the README's table.
    @Test(.enabled(if: toolAvailable("groff"), "groff is not installed"))
    func manPageIsWrittenForMan() throws {
        let page = Self.docs.appendingPathComponent("man/tlsreuse.1").path
        let warnings = try runProcess("groff", ["-mdoc", "-ww", "-z", page])
        #expect(warnings.stderr.isEmpty, "\(warnings.stderr)")
        let rendered = try runProcess("groff", ["-mdoc", "-Tutf8", "-rLL=80n", page]).stdout
        // groff marks a hyphen it inserted with U+2010 (a hyphen of the text stays ASCII).
        #expect(!rendered.contains("\u{2010}\n"), "a word is hyphenated at a line end")
        #expect(rendered.contains("tlsreuse live -i eth0 --duration 600 -w tls.pcap --format json > r.json"))
        let readme = try String(contentsOf: Paths.repository.appendingPathComponent("README.md"), encoding: .utf8)
        let tableStart = try #require(readme.range(of: "| situation | exit |")).lowerBound
        let table = readme[tableStart...].split(separator: "\n")
            .prefix { $0.hasPrefix("|") }
        let codes = Set(
            table.dropFirst(2).compactMap { row in row.split(separator: "|")[1].split(separator: " ").first }
        )
        #expect(codes == ["0", "1", "64", "66", "73", "77"])
        let manual = try String(contentsOfFile: page, encoding: .utf8)
        for code in codes { #expect(manual.contains(".It \(code)\n"), "exit status \(code) missing") }
    }

    /// The completions offer file names for captures and outputs, and interfaces for `-i`.
    @Test func completionsOfferFilesAndInterfaces() throws {
        let bash = try tlsreuse(["--generate-completion-script", "bash"]).stdout
        #expect(bash.contains("ls /sys/class/net"))
        #expect(bash.components(separatedBy: "__tlsreuse_add_completions -f").count > 6)
        let fish = try tlsreuse(["--generate-completion-script", "fish"]).stdout
        #expect(fish.contains("ls /sys/class/net"))
    }

    @Test(arguments: ["bash", "zsh", "fish"])
    func completionScriptsAreCurrent(_ shell: String) throws {
        let name = ["bash": "tlsreuse.bash", "zsh": "_tlsreuse", "fish": "tlsreuse.fish"][shell]!
        let committed = try String(contentsOf: Self.docs.appendingPathComponent("completions/\(name)"), encoding: .utf8)
        #expect(try tlsreuse(["--generate-completion-script", shell]).stdout == committed, "run scripts/generate-docs")
    }

    /// Every option of every subcommand is in the man page.
    @Test func manPageListsEveryOption() throws {
        let manual = try String(contentsOf: Self.docs.appendingPathComponent("man/tlsreuse.1"), encoding: .utf8)
        let dump = try tlsreuse(["--experimental-dump-help"]).stdout
        let tree = try JSONSerialization.jsonObject(with: Data(dump.utf8)) as! [String: Any]
        let subcommands = (tree["command"] as! [String: Any])["subcommands"] as! [[String: Any]]
        var checked = 0
        for subcommand in subcommands where subcommand["commandName"] as? String != "help" {
            #expect(manual.contains(subcommand["commandName"] as! String))
            for argument in subcommand["arguments"] as? [[String: Any]] ?? [] {
                for name in argument["names"] as? [[String: Any]] ?? [] where name["kind"] as? String == "long" {
                    let option = name["name"] as! String
                    // mdoc writes an option as "Fl -name", or "Fl q , -name" with a short name.
                    #expect(
                        manual.contains("Fl -\(option)") || manual.contains(", -\(option)"),
                        "--\(option) missing; run scripts/generate-docs"
                    )
                    checked += 1
                }
            }
        }
        #expect(checked > 30)
    }
}
