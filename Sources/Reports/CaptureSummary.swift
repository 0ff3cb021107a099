import Capture
import Handshakes
import Packets

/// What was read and what was skipped, as fields (for JSON) and as sentences (for text).
package enum CaptureSummary {
    package static func fields(_ s: ExtractionStatistics) -> [Field] {
        [
            Field(
                "inputs",
                .objects(
                    s.inputs.map { input in
                        [
                            Field("name", .string(input.name)),
                            Field("format", input.format.isEmpty ? .null : .string(input.format)),
                            Field("packets", .int(Int64(input.packets))),
                            Field("truncated", .bool(input.truncated)),
                            Field("unusable_records", .int(Int64(input.unusableRecords))),
                            Field("error", .optional(input.error?.description)),
                            Field("problems", .strings(input.problems)),
                        ]
                    }
                )
            ),
            Field("first_packet", s.firstPacketNanos.map(FieldValue.timestamp) ?? .null),
            Field("last_packet", s.lastPacketNanos.map(FieldValue.timestamp) ?? .null),
            Field("packets", .int(Int64(s.decode.packets))),
            Field("tcp_segments", .int(Int64(s.decode.tcpSegments))),
            Field("tcp_flows", .int(Int64(s.reassembly.flows))),
            Field("tls_connections", .int(Int64(s.connections.tlsConnections))),
            Field("decapsulated", .object(s.decode.tunnels.named.map { Field($0.name, .int(Int64($0.count))) })),
            Field("skipped", .object(skipped(s).map { Field($0.key, .int(Int64($0.count))) })),
            Field("coverage", .object(coverageFields(s))),
        ]
    }

    /// Conversations that left no record, by reason, with a few examples of each.
    package static func coverageFields(_ s: ExtractionStatistics) -> [Field] {
        let coverage = s.connections.coverage
        let reasons = MissedReason.allCases.filter { (coverage.counts[$0] ?? 0) > 0 }
        return [
            Field("tcp_conversations", .int(Int64(s.reassembly.flows))),
            Field("without_handshake", .object(reasons.map { Field($0.rawValue, .int(Int64(coverage.counts[$0]!))) })),
            Field("examples", .object(reasons.map { Field($0.rawValue, .strings(coverage.examples[$0] ?? [])) })),
        ]
    }

    /// The coverage in words: "3 conversations without a handshake: 2 not TLS, 1 no payload".
    package static func coverageLine(_ s: ExtractionStatistics) -> String? {
        let coverage = s.connections.coverage
        guard coverage.total > 0 else { return nil }
        let parts = MissedReason.allCases.compactMap { reason -> String? in
            guard let count = coverage.counts[reason], count > 0 else { return nil }
            return "\(count) \(reason.words)"
        }
        let total = coverage.total
        return "\(total) conversation\(total == 1 ? "" : "s") without a readable handshake: "
            + parts.joined(separator: ", ")
    }

    /// Named counts of what could not be used; zero counts left out.
    package static func skipped(_ s: ExtractionStatistics) -> [(key: String, count: Int)] {
        let d = s.decode
        let r = s.reassembly
        let c = s.connections
        let all: [(String, Int)] = [
            ("filtered_out", s.filteredOut),
            ("unusable_capture_records", s.inputs.reduce(0) { $0 + $1.unusableRecords }),
            ("non_ip_frames", d.nonIPFrames),
            ("unsupported_link_type_packets", d.unsupportedLinkTypePackets),
            ("truncated_headers", d.truncatedHeaders),
            ("malformed_headers", d.malformedHeaders),
            ("too_deep_encapsulation", d.tooDeep),
            ("dropped_ip_fragments", d.droppedFragments),
            ("non_tcp_ip_packets", d.otherTransport),
            ("non_dtls_udp_datagrams", d.udpDatagrams - c.dtlsDatagrams),
            ("tcp_flows_without_tls", c.flowsWithoutTLS),
            ("tcp_gaps", r.gaps),
            ("tcp_gap_bytes", Int(r.gapBytes)),
            ("tcp_conflicting_overlaps", r.conflictingOverlaps),
            ("tcp_out_of_window_segments", r.outOfWindowSegments),
            ("tcp_reorder_waits_expired", r.reorderWaitsExpired),
            ("tcp_buffer_limit_gaps", r.bufferLimitGaps),
            ("flows_evicted", r.flowsEvicted),
            ("flows_evicted_for_memory", r.flowsEvictedForMemory),
            ("udp_flows_evicted", c.udpFlowsEvicted),
            ("udp_flows_without_client_hello", c.udpFlowsWithoutClientHello),
            ("quic_retries_ignored", c.quicRetriesIgnored),
            ("tls_handshakes_lost_to_gaps", c.clientHellosLostToGaps),
            ("malformed_tls_connections", c.malformed),
            ("tls_connections_with_gaps", c.withGaps),
            ("undecided_tls_connections", c.undecided),
            ("records_lost_in_temporary_file", s.recordsLostInSpill),
            ("records_released_out_of_order", c.releasedOutOfOrder),
        ]
        return all.filter { $0.1 > 0 }.map { (key: $0.0, count: $0.1) }
    }

    /// Lines for stderr about input that could not be used: one per unreadable or damaged
    /// input, per unsupported link type, per link type the --bpf expression does not fit.
    /// Printed even with --quiet.
    package static func problems(_ s: ExtractionStatistics) -> [String] {
        var lines: [String] = []
        for input in s.inputs {
            if let error = input.error {
                lines.append("could not read \(error)")
            } else {
                for problem in input.problems { lines.append("\(input.name): \(problem)") }
            }
        }
        for (linkType, count) in s.decode.unsupportedLinkTypes.sorted(by: { $0.key < $1.key }) {
            lines.append("link type \(LinkType(rawValue: linkType)) is not supported: \(count) packets skipped")
        }
        for (linkType, reason) in s.filterInapplicable.sorted(by: { $0.key < $1.key }) {
            lines.append("--bpf does not apply to link type \(LinkType(rawValue: linkType)): \(reason)")
        }
        if s.recordsLostInSpill > 0 {
            lines.append(
                "\(s.recordsLostInSpill) handshake records could not be read back from the temporary file (TMPDIR) "
                    + "they waited in"
            )
        }
        // Key log secrets the input carried (pcapng Decryption Secrets Blocks); those of
        // --keylog files are named as they are read.
        for problem in s.keyLogProblems { lines.append("key log: \(problem)") }
        if s.keyLogMalformedLines > s.keyLogProblems.count {
            lines.append("key log: \(s.keyLogMalformedLines) lines in all that are not key log lines")
        }
        if s.keyLogSecretsNotKept > 0 {
            lines.append(
                "key log: \(s.keyLogSecretsNotKept) secrets of connections past what the memory budget keeps were "
                    + "passed over (raise --memory-limit)"
            )
        }
        if s.keyLogConnections > 0, s.connections.decrypted == 0, s.connections.tlsConnections > 0 {
            lines.append(
                "key log: it names \(counted(s.keyLogConnections, "connection")), and no connection in the input "
                    + "that it could open is one of them (a key log of other traffic?)"
            )
        }
        return lines
    }

    /// One line with what was read and the counts of what was skipped.
    package static func summary(_ s: ExtractionStatistics) -> String {
        // Counted as the report counts: a back leg repeats its client's connection.
        let clients = s.connections.tlsConnections - s.backLegs
        var summary = counted(clients, "TLS connection")
        if s.backLegs > 0 { summary += ", plus " + counted(s.backLegs, "back leg") + " (balancer to backend)," }
        summary += " in " + counted(s.decode.packets, "packet") + " from " + counted(s.inputs.count, "input")
        let skipped = skipped(s).filter {
            $0.key != "non_dtls_udp_datagrams" && $0.key != "tcp_flows_without_tls" && $0.key != "non_tcp_ip_packets"
        }
        let tunnels = s.decode.tunnels.named
        if !tunnels.isEmpty {
            summary +=
                " (decapsulated "
                + tunnels.map { "\($0.name.replacingUnderscores()) \($0.count)" }.joined(separator: ", ") + ")"
        }
        if s.connections.decrypted > 0 {
            summary += ", \(s.connections.decrypted) of them decrypted with key log secrets"
        }
        if !skipped.isEmpty {
            summary += "; " + skipped.map { "\($0.key.replacingUnderscores()) \($0.count)" }.joined(separator: ", ")
        }
        return summary
    }
}

extension MissedReason {
    /// What the reason means, for the text report.
    var words: String {
        switch self {
        case .noPayload: "no payload"
        case .notTLS: "not TLS"
        case .plaintextNotUpgraded: "plaintext that did not upgrade to TLS"
        case .proxyNotCompleted: "proxy handshake not completed"
        case .clientHelloLostToGap: "ClientHello lost to a capture gap"
        case .noClientHello: "server TLS without a ClientHello (capture began mid-handshake)"
        case .outOfWindow: "bytes outside the TCP sequence window"
        case .udpClientHelloIncomplete: "DTLS or QUIC ClientHello incomplete"
        case .quicVersionNotRead: "QUIC of a version not read"
        }
    }
}

extension String {
    func replacingUnderscores() -> String { String(map { $0 == "_" ? " " : $0 }) }
}
