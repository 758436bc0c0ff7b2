import CSDPAKernels

/// Where the keys and values of one (batch, key/value head) live: the seam between the fused
/// driver and its inputs. A strided tensor (`_TensorKeyValues`) is one source; a paged cache, whose
/// rows sit in blocks, is another: the kernel layer packs the same tile from either, so the same
/// keys and values give the same bits.
@usableFromInline
protocol _KeyValueSource: Sendable {
    /// The element kind of the keys and values.
    var kind: sdpa_element_kind { get }

    /// Keys `rows` of (`batch`, `kvHead`): a base and stride, or a list of row addresses written
    /// into `addresses` (room for `rows.count`).
    func keys(batch: Int, kvHead: Int, rows: Range<Int>, addresses: UnsafeMutablePointer<UnsafeRawPointer?>) -> sdpa_rows

    /// Values `rows` of (`batch`, `kvHead`), as ``keys(batch:kvHead:rows:addresses:)``.
    func values(batch: Int, kvHead: Int, rows: Range<Int>, addresses: UnsafeMutablePointer<UnsafeRawPointer?>) -> sdpa_rows
}

/// Keys and values in two tensors, read in place through their strides.
@usableFromInline
struct _TensorKeyValues: _KeyValueSource {
    @usableFromInline let key: _InputView, value: _InputView

    @inlinable
    init(key: borrowing Tensor, value: borrowing Tensor) throws { (self.key, self.value) = (try _InputView(key), try _InputView(value)) }

    @inlinable var kind: sdpa_element_kind { key.kind }

    @inlinable
    func keys(batch: Int, kvHead: Int, rows: Range<Int>, addresses: UnsafeMutablePointer<UnsafeRawPointer?>) -> sdpa_rows {
        key.rows(batch: batch, head: kvHead, first: rows.lowerBound)
    }

    @inlinable
    func values(batch: Int, kvHead: Int, rows: Range<Int>, addresses: UnsafeMutablePointer<UnsafeRawPointer?>) -> sdpa_rows {
        value.rows(batch: batch, head: kvHead, first: rows.lowerBound)
    }
}
