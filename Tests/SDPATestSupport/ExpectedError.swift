import SDPA
import Testing

/// Runs `body`, expecting an `SDPAError`, and checks that its description mentions every string in
/// `mentions`; records an issue when `body` returns (naming the result) or throws anything else.
@discardableResult
public func expectSDPAError<T>(
    mentions: [String] = [], sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> T
) -> SDPAError? {
    do {
        let result = try body()
        let described = (result as? Tensor).map { "a result of shape \($0.shape)" } ?? "a result (\(T.self))"
        Issue.record("expected an SDPAError, got \(described)", sourceLocation: sourceLocation)
        return nil
    } catch let error as SDPAError {
        for needle in mentions {
            #expect(error.description.contains(needle), "'\(error.description)' should mention '\(needle)'", sourceLocation: sourceLocation)
        }
        return error
    } catch {
        Issue.record("expected an SDPAError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
