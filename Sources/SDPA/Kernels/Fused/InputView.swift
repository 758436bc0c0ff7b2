import CSDPAKernels

/// One input as the kernel layer reads it: a base pointer into storage and element strides
/// `[B, H, S, E]` (the last one 1). Half-precision inputs keep their storage; the kernel layer
/// converts or packs tiles.
@usableFromInline
struct _InputView: @unchecked Sendable {
    @usableFromInline let base: UnsafeRawPointer
    @usableFromInline let dtype: DType
    /// Element strides of the batch, head and row dimensions (a `[H, L, E]` input has one batch).
    @usableFromInline let batchStride: Int, headStride: Int, rowStride: Int
    @usableFromInline let _keepAlive: _TensorStorage

    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` when a strided last
    ///   dimension must be copied and cannot be.
    @usableFromInline
    init(_ t: borrowing Tensor) throws {
        // A strided last dimension is copied once. (The strides are read, not the tensor copied: a tiny
        // call felt each retain of its shape and strides.) An empty tensor is read nowhere, and its "copy" would be
        // itself (every empty tensor is contiguous): taken as it is.
        if t.strides[t.rank - 1] != 1 && t.shape[t.rank - 1] > 1 && !t.shape.contains(0) {
            self = try _InputView(t.contiguous())
            return
        }
        base = UnsafeRawPointer(t._storage.bytes) + t._offset * t.dtype.byteWidth
        dtype = t.dtype
        (batchStride, headStride, rowStride) = t.rank == 3 ? (0, t.strides[0], t.strides[1]) : (t.strides[0], t.strides[1], t.strides[2])
        _keepAlive = t._storage
    }

    /// The element kind the kernel layer reads (float32, float16 or bfloat16).
    @inlinable var kind: sdpa_element_kind { dtype._elementKind }

    /// Rows `first...` of head `head` in batch `batch`: their address and row stride.
    @inlinable
    func rows(batch: Int, head: Int, first: Int) -> sdpa_rows {
        let offset = batch * batchStride + head * headStride + first * rowStride
        return sdpa_rows(base: base + offset * dtype.byteWidth, stride: rowStride, rows: nil)
    }
}
