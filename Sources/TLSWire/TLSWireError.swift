/// The one error type of the TLS parser: a code, a short reason for the record's
/// `malformed` field, and where in this package it was raised.
public struct TLSWireError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// A length or field contradicts the structure that holds it.
        public static let malformed = Code(rawValue: "malformed")
        /// A size limit of this parser was reached.
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

    @inline(never)
    public static func malformed(_ reason: String, file: String = #fileID, line: Int = #line) -> TLSWireError {
        TLSWireError(code: .malformed, reason: reason, sourceFile: file, sourceLine: line)
    }

    @inline(never)
    public static func tooLarge(_ reason: String, file: String = #fileID, line: Int = #line) -> TLSWireError {
        TLSWireError(code: .tooLarge, reason: reason, sourceFile: file, sourceLine: line)
    }
}
