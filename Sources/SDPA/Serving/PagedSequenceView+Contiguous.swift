extension PagedSequenceView {
    /// The sequence's keys gathered into one contiguous `[Hkv, length, E]` tensor of the cache's dtype:
    /// a copy, what the reference attention path reads.
    ///
    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` when the copy cannot be allocated.
    public func contiguousKeys() throws -> Tensor { try gathered(headDim) { keyRows(from: $0, kvHead: $1) } }

    /// The sequence's values gathered into one contiguous `[Hkv, length, Ev]` tensor; see ``contiguousKeys()``.
    public func contiguousValues() throws -> Tensor { try gathered(valueHeadDim) { valueRows(from: $0, kvHead: $1) } }

    private func gathered(_ width: Int, _ rows: (Int, Int) -> PagedRows) throws -> Tensor {
        let result = try Tensor(_zeros: [keyValueHeads, length, width], dtype: dtype, argument: "a gathered sequence")
        let bytes = dtype.byteWidth
        for h in 0..<keyValueHeads {
            var p = 0
            while p < length {
                let run = rows(p, h)
                (result._storage.bytes + ((h * length + p) * width) * bytes).copyMemory(from: run.base, byteCount: run.count * width * bytes)
                p += run.count
            }
        }
        return result
    }
}
