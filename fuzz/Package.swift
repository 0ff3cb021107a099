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
    "FuzzKeyLog",
]
/// FuzzKeyLog seals the records it feeds with swift-crypto, as a server would.
let extraDependencies: [String: [Target.Dependency]] = [
    "FuzzKeyLog": [.product(name: "Crypto", package: "swift-crypto")]
]

let package = Package(
    name: "tlsreuse-fuzz",
    dependencies: [
        .package(path: ".."),
        // The version the main package resolves.
        .package(url: "https://github.com/apple/swift-crypto", "4.5.2"..<"5.0.0"),
    ],
    targets: [.target(name: "FuzzDriver", swiftSettings: [.swiftLanguageMode(.v6)])]
        + targets.map { name in
            .executableTarget(
                name: name,
                dependencies: ["FuzzDriver", .product(name: "TLSReuseStages", package: root)]
                    + (extraDependencies[name] ?? []),
                swiftSettings: [.swiftLanguageMode(.v6)]
            )
        }
)
