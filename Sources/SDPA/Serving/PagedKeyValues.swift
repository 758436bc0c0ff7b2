import CSDPAKernels

/// The keys and values of one sequence of a ``PagedKVCache``, read in place by the fused kernel: a key
/// tile that lies in one block is a base and a stride; one that crosses blocks is a list of row
/// addresses, one per key, from the block table. The kernel packs the same tile either way, so the
/// result has the bits of the same sequence as contiguous tensors.
@usableFromInline
struct _PagedKeyValues: _KeyValueSource {
    @usableFromInline let view: PagedSequenceView

    @inlinable init(_ view: PagedSequenceView) { self.view = view }

    @inlinable var kind: sdpa_element_kind { view.dtype._elementKind }

    @inlinable
    func keys(batch: Int, kvHead: Int, rows: Range<Int>, addresses: UnsafeMutablePointer<UnsafeRawPointer?>) -> sdpa_rows {
        Self.rows(rows, addresses, elementBytes: view.dtype.byteWidth) { view.keyRows(from: $0, kvHead: kvHead) }
    }

    @inlinable
    func values(batch: Int, kvHead: Int, rows: Range<Int>, addresses: UnsafeMutablePointer<UnsafeRawPointer?>) -> sdpa_rows {
        Self.rows(rows, addresses, elementBytes: view.dtype.byteWidth) { view.valueRows(from: $0, kvHead: kvHead) }
    }

    /// `positions` walked run by run (`run(p)`: the rows from `p` to the end of its block).
    @inlinable
    static func rows(
        _ positions: Range<Int>, _ addresses: UnsafeMutablePointer<UnsafeRawPointer?>, elementBytes: Int,
        run: (Int) -> PagedRows
    ) -> sdpa_rows {
        let first = run(positions.lowerBound)
        if first.count >= positions.count {
            return sdpa_rows(base: first.base, stride: first.rowStride, rows: nil)
        }
        var p = positions.lowerBound, slot = 0
        var rows = first
        while p < positions.upperBound {
            let n = Swift.min(rows.count, positions.upperBound - p)
            for r in 0..<n { addresses[slot + r] = rows.base + r * rows.rowStride * elementBytes }
            (p, slot) = (p + n, slot + n)
            if p < positions.upperBound { rows = run(p) }
        }
        return sdpa_rows(base: nil, stride: 0, rows: UnsafePointer(addresses))
    }
}
