/// A pointer handed to concurrent workers that write disjoint parts of one buffer.
@usableFromInline
struct _SendablePointer<T>: @unchecked Sendable {
    @usableFromInline let pointer: UnsafeMutablePointer<T>?
    @inlinable init(_ pointer: UnsafeMutablePointer<T>?) { self.pointer = pointer }
}
