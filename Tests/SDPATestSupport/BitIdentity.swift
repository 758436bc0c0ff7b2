import SDPA
import Testing

/// What differs between two tensors that must be identical, or `nil`: shape, dtype, or the bits of
/// an element (the first that differs is named). NaN payloads count: identical means identical.
public func identityFailure(_ a: Tensor, _ b: Tensor) -> String? {
    if a.shape != b.shape { return "shape \(a.shape) vs \(b.shape)" }
    if a.dtype != b.dtype { return "dtype \(a.dtype) vs \(b.dtype)" }
    let (x, y) = (a.doubleScalars, b.doubleScalars)
    guard let i = x.indices.first(where: { x[$0].bitPattern != y[$0].bitPattern }) else { return nil }
    let count = x.indices.filter { x[$0].bitPattern != y[$0].bitPattern }.count
    return "\(count) of \(x.count) elements differ; first: element \(i) \(coordinates(of: i, in: a.shape)) is \(x[i]) vs \(y[i])"
}

/// Checks that `a` and `b` have the same shape, dtype and bits in every element.
public func expectIdentical(_ a: Tensor, _ b: Tensor, _ label: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
    if let failure = identityFailure(a, b) {
        Issue.record("\(label.isEmpty ? "" : label + ": ")\(failure)", sourceLocation: sourceLocation)
    }
}
