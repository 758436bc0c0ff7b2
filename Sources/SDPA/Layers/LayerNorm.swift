import Foundation

/// Layer normalization over the last dimension, PyTorch's `nn.LayerNorm(features, eps)`:
/// `(x − mean) / sqrt(var + eps) · weight + bias`, with the biased variance.
///
/// ```swift
/// let norm = try LayerNorm(weight: gamma, bias: beta, epsilon: 1e-12)   // [D] each
/// let y = try norm(x)                                                   // [..., D]
/// ```
public struct LayerNorm: Sendable {
    /// `D`, the size of the last dimension.
    public let features: Int
    /// Added to the variance before the square root.
    public let epsilon: Float
    /// `[D]` float32, contiguous.
    let gamma: Tensor, beta: Tensor

    /// A layer norm with the given scale (`weight`) and shift (`bias`), each `[D]`.
    ///
    /// - Throws: ``SDPAError`` when they are not rank 1 of one size, or `epsilon` is negative or not finite.
    public init(weight: Tensor, bias: Tensor, epsilon: Float = 1e-5) throws {
        guard weight.rank == 1 else { throw SDPAError.rank(argument: "weight", shape: weight.shape, expected: "rank 1 [D]") }
        guard bias.shape == weight.shape else {
            throw SDPAError.shapeMismatch(argument: "bias", shape: bias.shape, other: "weight", otherShape: weight.shape,
                                          reason: "a layer norm's bias and weight have one size")
        }
        guard epsilon >= 0, epsilon.isFinite else {
            throw SDPAError.invalidArgument(argument: "epsilon", value: "\(epsilon)", reason: "must be finite and non-negative")
        }
        features = weight.shape[0]
        self.epsilon = epsilon
        gamma = try weight._contiguousFloat32("weight")
        beta = try bias._contiguousFloat32("bias")
    }

    /// An identity-initialised layer norm (weight 1, bias 0), as PyTorch's.
    public init(features: Int, epsilon: Float = 1e-5) throws {
        try self.init(weight: Tensor(shape: [features], scalars: [Float](repeating: 1, count: features)),
                      bias: Tensor(zeros: [features]), epsilon: epsilon)
    }

    /// The scale, `[D]`.
    public var weight: Tensor { gamma }
    /// The shift, `[D]`.
    public var bias: Tensor { beta }

    /// Normalizes `x` (`[..., D]`, any float dtype) over its last dimension; the result is float32.
    ///
    /// - Throws: ``SDPAError/shapeMismatch(argument:shape:other:otherShape:reason:)`` when the last dimension is not `D`.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        guard x.rank >= 1, x.shape.last == features else {
            throw SDPAError.shapeMismatch(argument: "x", shape: x.shape, other: "LayerNorm.weight", otherShape: [features],
                                          reason: "the last dimension is the one normalized")
        }
        let result = try x._contiguousFloat32("x")._copiedIfShared(from: x)
        _normalizeInParallel(result._floats, rows: features == 0 ? 0 : result.count / features)
        return result
    }

    /// Normalizes `rows` contiguous rows of ``features`` floats in place, blocks of 256 rows shared among the threads.
    @usableFromInline
    func _normalizeInParallel(_ x: UnsafeMutablePointer<Float>, rows: Int) {
        let (base, blocks) = (_SendablePointer(x), (rows + 255) / 256)
        let queue = _WorkQueue(count: blocks)
        _parallelFor(Swift.min(SDPAThreads.effectiveCount, Swift.max(1, blocks))) {
            while let block = queue.next() {
                _normalizeRows(base.pointer! + block * 256 * features, rows: Swift.min(256, rows - block * 256), stride: features)
            }
        }
    }

    /// Normalizes `rows` rows of ``features`` floats in place, one after another.
    @usableFromInline
    func _normalizeRows(_ x: UnsafeMutablePointer<Float>, rows: Int, stride: Int) {
        let (g, b, n) = (gamma._floats, beta._floats, features)
        for r in 0..<rows {
            let row = x + r * stride
            // Two passes in float, as PyTorch's CPU kernel: the mean, then the mean squared deviation.
            var sum = SIMD8<Float>(repeating: 0), tail: Float = 0
            var i = 0
            while i + 8 <= n { sum += UnsafeRawPointer(row + i).loadUnaligned(as: SIMD8<Float>.self); i += 8 }
            while i < n { tail += row[i]; i += 1 }
            let mean = (sum.sum() + tail) / Float(n)
            var squares = SIMD8<Float>(repeating: 0), tailSquares: Float = 0
            i = 0
            while i + 8 <= n {
                let d = UnsafeRawPointer(row + i).loadUnaligned(as: SIMD8<Float>.self) - mean
                squares += d * d
                i += 8
            }
            while i < n { tailSquares += (row[i] - mean) * (row[i] - mean); i += 1 }
            let inverse = 1 / (((squares.sum() + tailSquares) / Float(n)) + epsilon).squareRoot()
            for j in 0..<n { row[j] = (row[j] - mean) * inverse * g[j] + b[j] }
        }
    }
}

extension Tensor {
    /// `self` (a contiguous float32 tensor made from `original`) with storage of its own, so that
    /// writing into it in place cannot change `original`.
    @usableFromInline
    func _copiedIfShared(from original: Tensor) throws -> Tensor {
        guard _storage === original._storage else { return self }
        let copy = try Tensor._floatMatrix(shape)
        copy._floats.update(from: _floats, count: count)
        return copy
    }
}
