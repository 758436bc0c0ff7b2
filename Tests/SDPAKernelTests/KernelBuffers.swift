import Foundation
import SDPATestSupport
import Testing

/// What a micro-kernel check found, collected rather than recorded one by one, so that a check of
/// thousands of elements reports a count and the first few.
struct KernelMismatches {
    private(set) var found: [String] = []

    /// Records `message` unless `condition` holds.
    mutating func expect(_ condition: Bool, _ message: @autoclosure () -> String) {
        if !condition { found.append(message()) }
    }

    /// Records the suite's closeness failure of `actual` against `expected`, if any.
    mutating func expectClose(_ actual: [Double], _ expected: [Double], shape: [Int], bound: String, _ label: String,
                              allowed: (Int) -> Double) {
        if let failure = closenessFailure(actual, expected, shape: shape, bound: bound, allowed: allowed) {
            found.append("\(label): \(failure)")
        }
    }

    /// A summary for `#expect`: the count and the first few.
    var summary: String { "\(found.count) mismatches, first: \(found.prefix(4).joined(separator: " | "))" }
}

/// A `rows × columns` float matrix stored with a row stride wider than its rows, the gap (and a
/// tail after the last row) filled with a sentinel NaN, so a test sees any write outside the window.
struct StridedMatrix {
    /// A quiet NaN with a payload no kernel produces.
    static let sentinel = Float(bitPattern: 0x7FA5_A5A5)

    let rows: Int, columns: Int, stride: Int
    var storage: [Float]

    /// A matrix of `value(r, c)`, stride `columns + gap`.
    init(rows: Int, columns: Int, gap: Int = 3, _ value: (Int, Int) -> Float = { _, _ in 0 }) {
        (self.rows, self.columns, stride) = (rows, columns, columns + gap)
        storage = [Float](repeating: Self.sentinel, count: Swift.max(1, rows * stride + gap))
        for r in 0..<rows { for c in 0..<columns { storage[r * stride + c] = value(r, c) } }
    }

    subscript(r: Int, c: Int) -> Float { storage[r * stride + c] }

    /// The window's elements, row-major, as `Double`.
    var values: [Double] { (0..<rows).flatMap { r in (0..<columns).map { Double(storage[r * stride + $0]) } } }

    /// Whether every element outside the window still holds the sentinel's bits.
    var paddingIsUntouched: Bool {
        storage.indices.allSatisfy { i in
            let inside = i / stride < rows && i % stride < columns
            return inside || storage[i].bitPattern == Self.sentinel.bitPattern
        }
    }
}

/// `count` bytes that end where an unreadable page begins, so reading one byte past them crashes.
final class GuardedBytes {
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let region: UnsafeMutableRawPointer
    let bytes: UnsafeMutableRawPointer

    init(count: Int) {
        let dataPages = (count + page - 1) / page
        region = mmap(nil, (dataPages + 1) * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
        precondition(region != MAP_FAILED)
        precondition(mprotect(region + dataPages * page, page, PROT_NONE) == 0)
        bytes = region + dataPages * page - count
    }

    deinit {
        let dataPages = (bytes - region + page - 1) / page
        munmap(region, (dataPages + 1) * page)
    }
}

/// The spacing of floats at `x` (the ulp of `Float(x)`), for bounds stated in ulps.
func floatULP(_ x: Double) -> Double { Double(Float(Swift.abs(x)).ulp) }

extension KernelFamily {
    /// Runs `check` with this family selected on the calling thread and records what it found, if anything.
    func expectNoMismatches(_ check: () throws -> [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let found = try run(check)
        #expect(found.isEmpty, "\(name): \(found.count) mismatches, first: \(found.prefix(4).joined(separator: " | "))",
                sourceLocation: sourceLocation)
    }
}
