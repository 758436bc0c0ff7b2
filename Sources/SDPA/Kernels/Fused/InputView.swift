import CSDPAKernels

/// One input as the kernel layer reads it: a base pointer into storage and element strides
/// `[B, H, S, E]` (the last one 1). Half-precision inputs keep their storage; the kernel layer
/// converts or packs tiles.
@usableFromInline
struct _InputView: @unchecked Sendable {
    @usableFromInline let base: UnsafeRawPointer
    @usableFromInline let dtype: DType
    @usableFromInline let strides: [Int]
    @usableFromInline let _keepAlive: _TensorStorage

    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` when a strided last
    ///   dimension must be copied and cannot be.
    @usableFromInline
    init(_ t: Tensor) throws {
        // A [H, L, E] input is a [1, H, L, E] one; a strided last dimension is copied once.
        var t = t.rank == 3 ? t._unsqueezed(at: 0) : t
        if t.strides[3] != 1 && t.shape[3] > 1 { t = try t.contiguous() }
        base = UnsafeRawPointer(t._storage.bytes) + t._offset * t.dtype.byteWidth
        dtype = t.dtype
        strides = t.strides
        _keepAlive = t._storage
    }

    /// The element kind the kernel layer reads (float32, float16 or bfloat16).
    @inlinable var kind: sdpa_element_kind { dtype._elementKind }

    /// Rows `first...` of head `head` in batch `batch`: their address and row stride.
    @inlinable
    func rows(batch: Int, head: Int, first: Int) -> sdpa_rows {
        let offset = batch * strides[0] + head * strides[1] + first * strides[2]
        return sdpa_rows(base: base + offset * dtype.byteWidth, stride: strides[2], rows: nil)
    }
}
