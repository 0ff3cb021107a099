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
