// swift-tools-version: 6.0
// libFuzzer targets for tlsreuse's parsers. Built separately from the main package:
//   swift build -c release --package-path fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
// See fuzz/README.md.
import Foundation
import PackageDescription

// SwiftPM names a path dependency after its folder, which is the clone's name.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent
    .lowercased()

let targets = [
    "FuzzTLSWire", "FuzzPackets", "FuzzReassembly", "FuzzCapture", "FuzzCertificate", "FuzzRecords", "FuzzOptions",
]

let package = Package(
    name: "tlsreuse-fuzz",
    dependencies: [.package(path: "..")],
    targets: [.target(name: "FuzzDriver", swiftSettings: [.swiftLanguageMode(.v6)])]
        + targets.map { name in
            .executableTarget(
                name: name,
                dependencies: ["FuzzDriver", .product(name: "TLSReuseStages", package: root)],
                swiftSettings: [.swiftLanguageMode(.v6)]
            )
        }
)
