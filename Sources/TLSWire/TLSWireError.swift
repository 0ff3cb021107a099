/// The one error type of the TLS parser: a code, a short reason for the record's
/// `malformed` field, and where in this package it was raised.
public struct TLSWireError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        // Named after the TLS alert a peer would send for the same bytes (RFC 8446 6.2).
        /// A length or field is out of range or contradicts the structure that holds it
        /// (decode_error).
        public static let decodeError = Code(rawValue: "decode-error")
        /// A field breaks a rule of the protocol, such as an extension sent twice (RFC 8446
        /// 4.2; illegal_parameter).
        public static let illegalParameter = Code(rawValue: "illegal-parameter")
        /// A message or frame where none of its kind may come (unexpected_message).
        public static let unexpectedMessage = Code(rawValue: "unexpected-message")
        /// A record longer than 2^14+2048 bytes (RFC 5246 6.2.3; record_overflow).
        public static let recordOverflow = Code(rawValue: "record-overflow")
        /// Not TLS at all: a record header of no TLS content type or version.
        public static let notTLS = Code(rawValue: "not-tls")
        /// A size limit of this parser (not of the protocol) was reached.
        public static let tooLarge = Code(rawValue: "too-large")
    }

    public var code: Code
    public var reason: String
    public var sourceFile: String
    public var sourceLine: Int

    public var description: String { reason }

    /// Errors are the same when their codes are: the reason and the place are for people
    /// (as swift-asn1's errors compare).
    public static func == (a: TLSWireError, b: TLSWireError) -> Bool { a.code == b.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    /// Made out of line: building the reason stays off the parsing path.
    @inline(never)
    public init(_ code: Code, _ reason: String, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.reason = reason
        sourceFile = file
        sourceLine = line
    }
}
