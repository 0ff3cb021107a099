// swift-tools-version: 6.0
// tlsreuse: passive TLS session-reuse and load-balancer stickiness analysis.
// One module per pipeline stage, in data-flow order (see ARCHITECTURE.md).
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]
// Every stage of the product is built alike (issue 20): exclusivity checks off and
// cross-module optimisation in release builds (debug builds, and so the tests, keep the checks).
// Large structs (a ClientHello, a record's fields, a handshake's state) are copied and
// destroyed by code written for their type, not through its metadata: swiftc 6's
// large-loadable-types pass made each such copy or destroy a generic runtime call (about 150
// instructions for an optional ClientHello, three per handshake). Off: 5.6% fewer
// instructions on `dense.pcap` and on the QUIC Initial flood, 9% less CPU on `dense.pcap`.
let optimised: [SwiftSetting] =
    strict + [
        .unsafeFlags(
            [
                "-enforce-exclusivity=unchecked", "-cross-module-optimization",
                "-Xfrontend", "-disable-large-loadable-types-reg2mem",
            ],
            .when(configuration: .release)
        )
    ]

let package = Package(
    name: "tlsreuse",
    products: [
        .executable(name: "tlsreuse", targets: ["tlsreuse"]),
        // The stages as a library, for the fuzz targets in fuzz/.
        .library(
            name: "TLSReuseStages",
            targets: ["Capture", "Packets", "Reassembly", "TLSWire", "Handshakes", "Reports"]
        ),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", "4.5.2"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
    ],
    targets: [
        .systemLibrary(name: "CPcap", pkgConfig: "libpcap", providers: [.apt(["libpcap-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // Header-only wrappers for prctl(2) and capset(2), which are variadic or not in Glibc.
        .systemLibrary(name: "CPrivileges"),
        // Header-only wrappers for __builtin_prefetch and mallopt.
        .systemLibrary(name: "CHints"),
        .target(
            name: "Capture",
            dependencies: [
                "CPcap", "CZlib", "CPrivileges", .product(name: "HeapModule", package: "swift-collections"),
            ],
            swiftSettings: optimised
        ),
        .target(name: "Packets", dependencies: ["Capture"], swiftSettings: optimised),
        .target(name: "Reassembly", dependencies: ["Packets"], swiftSettings: optimised),
        .target(
            name: "TLSWire",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: optimised
        ),
        .target(
            name: "Handshakes",
            dependencies: [
                "Capture", "Packets", "Reassembly", "TLSWire", "CHints",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: optimised
        ),
        // The driver, the worker threads, their merge and the spill file: packets in, records
        // out in order of first ClientHello.
        .target(
            name: "Extraction",
            dependencies: ["Capture", "Packets", "Reassembly", "Handshakes"],
            swiftSettings: optimised
        ),
        // Records in order, linked: balancer legs paired, then resumptions linked to the
        // sessions they resume. The analyses read linked records only.
        .target(
            name: "Linking",
            dependencies: ["Capture", "Packets", "TLSWire", "Handshakes"],
            swiftSettings: optimised
        ),
        .target(
            name: "Resumption",
            dependencies: ["Handshakes", "Linking", .product(name: "HeapModule", package: "swift-collections")],
            swiftSettings: optimised
        ),
        .target(name: "Stickiness", dependencies: ["Handshakes", "Linking", "Resumption"], swiftSettings: optimised),
        .target(
            name: "Reports",
            dependencies: [
                "Handshakes", "Resumption", "Stickiness", .product(name: "HeapModule", package: "swift-collections"),
            ],
            swiftSettings: optimised
        ),
        // Extraction, pairing, linking and the analyses wired together: the one way from
        // inputs to analysed records, for the command line and the tests.
        .target(
            name: "Pipeline",
            dependencies: ["Capture", "Reassembly", "Handshakes", "Extraction", "Linking", "Resumption", "Stickiness"],
            swiftSettings: optimised
        ),
        .executableTarget(
            name: "tlsreuse",
            dependencies: [
                "Capture", "TLSWire", "Handshakes", "Extraction", "Linking", "Resumption", "Stickiness", "Pipeline",
                "Reports", "CHints",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: optimised
        ),
        .testTarget(name: "CaptureTests", dependencies: ["Capture", "CPcap", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "PacketsTests", dependencies: ["Packets", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "ReassemblyTests",
            dependencies: ["Reassembly", "Handshakes", "Reports", "TestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TLSWireTests",
            dependencies: ["TLSWire", "TestSupport", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "HandshakesTests",
            dependencies: ["Handshakes", "Reports", "TestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ExtractionTests",
            dependencies: ["Extraction", "Handshakes", "TestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "LinkingTests",
            dependencies: ["Linking", "Handshakes", "Packets", "TestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ResumptionTests",
            dependencies: ["Resumption", "Linking", "Packets", "Pipeline", "Reports", "TestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "StickinessTests",
            dependencies: ["Stickiness", "Resumption", "Pipeline", "Reports", "TestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ReportsTests",
            dependencies: ["Reports", "Handshakes", "Packets", "TestSupport"],
            exclude: ["check_flat.py", "png_colors.py"],
            swiftSettings: strict
        ),
        .target(
            name: "TestSupport",
            dependencies: ["Capture", "Handshakes", "Extraction", "Packets", "TLSWire", "Stickiness", "Pipeline"],
            path: "Tests/TestSupport",
            swiftSettings: strict
        ),
    ]
)
