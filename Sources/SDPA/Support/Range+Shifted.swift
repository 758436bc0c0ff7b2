extension Range where Bound == Int {
    /// The range moved by `offset`: positions of a part of a problem (a segment's rows and keys, one call's
    /// work items among a job's) in the whole problem's numbering.
    @inlinable
    func shifted(by offset: Int) -> Range<Int> { (lowerBound + offset)..<(upperBound + offset) }
}
