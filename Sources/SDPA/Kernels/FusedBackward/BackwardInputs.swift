import Foundation
import CSDPAKernels

/// What the fused backward pass reads: the forward's inputs, output and log-sum-exp, the output's
/// gradient, and `D = rowsum(dO ∘ O)` per query row (FlashAttention-2's), all in place where they
/// can be: the tensors through their strides (the kernel layer converts half-precision tiles), the
/// log-sum-exp and `D` as `[B·H·L]` float32 rows.
struct _BackwardInputs: @unchecked Sendable {
    let query: _InputView, key: _InputView, value: _InputView, gradOutput: _InputView
    /// The forward's log-sum-exp per row, `-inf` for a row that saw no key.
    let logSumExp: [Float]
    /// `rowsum(dO ∘ O)` per row in float32 (``_rowDeltas(_:shape:rowsPerTile:forward:)``).
    let rowDeltas: [Float]

    /// The inputs with their `D` rows computed already (a whole call's, or a segment's rows of the whole packed problem's).
    init(_ tensors: _BackwardTensors, rowDeltas: [Float]) throws {
        query = try _InputView(tensors.query)
        key = try _InputView(tensors.key)
        value = try _InputView(tensors.value)
        gradOutput = try _InputView(tensors.gradOutput)
        logSumExp = tensors.logSumExp._elements(as: Float.self)
        self.rowDeltas = rowDeltas
    }

    /// The element kind of every input (they share the query's dtype).
    var kind: sdpa_element_kind { query.kind }
}

/// `D = rowsum(dO ∘ O)` per row, `[B·H·L]`: for float32 from the given output; for float16 and bfloat16
/// from the forward's output recomputed in float32 by `forward` (the call's fused forward pass with its
/// log-sum-exp: the bits the given output was rounded from), each row scaled by `exp(own lse − given
/// lse)` where the two differ, so that `D` is that of the weights the given log-sum-exp stands for (a
/// forward with attention sinks normalized its rows by their mass too, which a backward call that leaves
/// `sinks` out does not know; a log-sum-exp from elsewhere differs by its rounding). Where a row's softmax is peaked,
/// `dP − D` cancels in `dS = P ∘ (dP − D)`, and `D` from an output rounded to the dtype took dQ and dK
/// from errors of a few ulp to ones as large as the gradients themselves (bfloat16, one key dominating a
/// row; PyTorch's CPU flash kernel has the same error, its math path not). Costs a forward pass, and `O`
/// in float32 while `D` is summed.
///
/// `forward` must return the log-sum-exp with the output.
///
/// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` (from `forward` too).
func _rowDeltas(_ tensors: _BackwardTensors, shape: AttentionShape, rowsPerTile: Int,
                forward: (_ outputDType: DType) throws -> _AttentionResult) throws -> [Float] {
    let gradOutput = try _InputView(tensors.gradOutput)
    guard tensors.query.dtype.isHalfPrecision else {
        return try _rowDeltas(gradOutput: gradOutput, output: try _InputView(tensors.output), shape: shape, rowsPerTile: rowsPerTile)
    }
    let recomputed = try forward(.float32)
    var deltas = try _rowDeltas(gradOutput: gradOutput, output: try _InputView(recomputed.output), shape: shape, rowsPerTile: rowsPerTile)
    // `forward` computes the log-sum-exp too (its contract): the rows' rescale needs it.
    guard let own = recomputed.logSumExp?._elements(as: Float.self) else { preconditionFailure("forward must return its log-sum-exp") }
    let given = tensors.logSumExp._elements(as: Float.self)
    for i in deltas.indices where own[i] != given[i] {
        // A row the given log-sum-exp gives no weight (-inf) or that saw no key here has no D to speak of.
        let factor = Foundation.exp(own[i] - given[i])
        deltas[i] = factor.isFinite ? deltas[i] * factor : 0
    }
    return deltas
}

/// `D[b, h, i] = Σ_e dO[b, h, i, e] · O[b, h, i, e]` in float32, `[B·H·L]`, in parallel over
/// (batch, head): each row summed by `sdpa_row_dot` alone, so the bits do not depend on the threads.
func _rowDeltas(gradOutput dO: _InputView, output o: _InputView, shape: AttentionShape, rowsPerTile: Int) throws -> [Float] {
    let (B, H, L, Ev) = (shape.batch, shape.queryHeads, shape.queryLength, shape.valueHeadDim)
    let heads = B * H, rows = Swift.max(1, rowsPerTile)
    var deltas = [Float](repeating: 0, count: heads * L)
    guard heads * L > 0 else { return deltas }
    let threads = Swift.min(SDPAThreads.effectiveCount, heads)
    // Per thread: one tile of dO rows and one of O rows as float32.
    let tileFloats = rows * Swift.max(Ev, 1)
    let scratch = try _TensorStorage(
        byteCount: _checkedProduct(4, 2, tileFloats, threads) ?? .max, for: "the backward pass's D = rowsum(dO ∘ O) tiles", zeroed: false)
    let slots = _WorkQueue(count: threads), queue = _WorkQueue(count: heads)
    deltas.withUnsafeMutableBufferPointer { buffer in
        let out = _SendablePointer(buffer.baseAddress)
        _parallelFor(threads) {
            guard let slot = slots.next() else { return }
            let tiles = scratch.bytes.assumingMemoryBound(to: Float.self) + slot * 2 * tileFloats
            while let bh = queue.next() {
                let (b, h) = (bh / H, bh % H)
                var i0 = 0
                while i0 < L {
                    let count = Swift.min(rows, L - i0)
                    let dORows = dO.rows(batch: b, head: h, first: i0), oRows = o.rows(batch: b, head: h, first: i0)
                    var lda = 0, ldb = 0
                    let a = sdpa_prepare_query(SDPA_LAYOUT_F32, dO.kind, Int32(count), Int32(Ev), dORows.base, dORows.stride, 1, tiles, &lda)
                    let c = sdpa_prepare_query(SDPA_LAYOUT_F32, o.kind, Int32(count), Int32(Ev), oRows.base, oRows.stride, 1,
                                               tiles + tileFloats, &ldb)
                    sdpa_row_dot(Int32(count), Int32(Ev), a?.assumingMemoryBound(to: Float.self), lda,
                                 c?.assumingMemoryBound(to: Float.self), ldb, out.pointer! + bh * L + i0)
                    i0 += count
                }
            }
        }
    }
    return deltas
}
