/// The one error type of the Capture stage: a code callers switch on, a reason for people,
/// and where it was raised. Factories are `@inline(never)` so the read loop stays small.
public struct CaptureError: Error, CustomStringConvertible, Sendable {
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public static let notFound = Code(rawValue: "not-found")
        public static let permissionDenied = Code(rawValue: "permission-denied")
        public static let notACapture = Code(rawValue: "not-a-capture")
        public static let unsupported = Code(rawValue: "unsupported")
        public static let io = Code(rawValue: "io")
        public static let badFilter = Code(rawValue: "bad-filter")
        public static let capturePermission = Code(rawValue: "capture-permission")
        public static let noSuchInterface = Code(rawValue: "no-such-interface")
        public var description: String { rawValue }
    }

    public var code: Code
    /// One line a person can act on, without the input's name.
    public var reason: String
    /// The file or interface concerned, when there is one.
    public var input: String?
    public var sourceFile: String
    public var sourceLine: Int

    public var description: String {
        if let input { return "\(input): \(reason)" }
        return reason
    }

    @inline(never)
    public static func make(
        _ code: Code,
        _ reason: String,
        input: String? = nil,
        file: String = #fileID,
        line: Int = #line
    ) -> CaptureError {
        CaptureError(code: code, reason: reason, input: input, sourceFile: file, sourceLine: line)
    }
}
