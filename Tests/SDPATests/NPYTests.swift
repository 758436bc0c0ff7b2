import Foundation
import SDPA
import Testing

// Tolerances: none. A .npy round trip stores the bytes, so every comparison in
// this file is exact (bit patterns for floats). numpy reports values as hex floats
// (float.hex), parsed with Double(String): exact, unlike JSONSerialization's decimal
// parsing in corelibs Foundation, which can be off by an ulp.

// MARK: - helpers (private: the test module is shared with other files)

/// A fresh temporary directory, removed by the caller with `cleanUp`.
private func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("SDPANPYTests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

private func cleanUp(_ url: URL) { try? FileManager.default.removeItem(at: url) }

/// Bytes of a hand-built .npy file: magic, version, little-endian header length (2 bytes
/// for v1, 4 for v2/v3), the header padded with spaces to a multiple of 64 plus "\n", then `payload`.
private func npyBytes(major: UInt8 = 1, minor: UInt8 = 0, header: String, payload: [UInt8] = [], pad: Bool = true) -> Data {
    let preamble = major == 1 ? 10 : 12
    var text = header
    if pad {
        let unpadded = preamble + text.utf8.count + 1
        text += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
    }
    let length = text.utf8.count
    var data = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, major, minor])
    let lengthBytes = major == 1 ? 2 : 4
    for i in 0..<lengthBytes { data.append(UInt8((length >> (8 * i)) & 0xFF)) }
    data.append(contentsOf: Array(text.utf8))
    data.append(contentsOf: payload)
    return data
}

private func littleEndianBytes(_ values: [Float]) -> [UInt8] {
    values.flatMap { v in (0..<4).map { UInt8((v.bitPattern >> (8 * $0)) & 0xFF) } }
}

private func littleEndianBytes(_ values: [Double]) -> [UInt8] {
    values.flatMap { v in (0..<8).map { UInt8((v.bitPattern >> (8 * UInt64($0))) & 0xFF) } }
}

private func header(_ descr: String, fortran: Bool = false, shape: String) -> String {
    "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shape), }"
}

/// Bit patterns of the doubles, so the comparison is exact and -0 differs from +0.
private func bitPatterns(_ t: Tensor) -> [UInt64] { t.doubleScalars.map(\.bitPattern) }

/// The `.npy` error thrown by `body`, or nil after recording an issue.
private func npyError(
    _ body: () throws -> Tensor, sourceLocation: SourceLocation = #_sourceLocation
) -> (path: String, reason: String, description: String)? {
    do {
        let t = try body()
        Issue.record("expected SDPAError.npy, got a tensor of shape \(t.shape)", sourceLocation: sourceLocation)
    } catch let error as SDPAError {
        if case let .npy(path, reason) = error { return (path, reason, error.description) }
        Issue.record("expected SDPAError.npy, got \(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected SDPAError.npy, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

// MARK: - round trips

@Suite("NPY round trips")
struct NPYRoundTripTests {
    @Test(arguments: [DType.float32, .float16, .float64])
    func floatRoundTripThroughAFile(dtype: DType) throws {
        let dir = try makeTemporaryDirectory()
        defer { cleanUp(dir) }
        var t = try Tensor.randomNormal(shape: [2, 3, 4], seed: 11, dtype: dtype)
        t[0, 0, 0] = -0.0
        t[1, 2, 3] = .infinity
        t[1, 2, 2] = -.infinity
        let url = dir.appendingPathComponent("t.npy")
        try t.write(to: url)
        let back = try Tensor(contentsOf: url)
        #expect(back.dtype == dtype)
        #expect(back.shape == [2, 3, 4])
        #expect(back.isContiguous)
        #expect(bitPatterns(back) == bitPatterns(t))
    }

    @Test func nanSurvives() throws {
        let t = try Tensor(shape: [3], scalars: [.nan, 1, -.nan] as [Float])
        let back = try Tensor(npyData: t.npyData())
        #expect(back.scalars.map(\.bitPattern) == t.scalars.map(\.bitPattern))
    }

    @Test func boolRoundTrip() throws {
        let dir = try makeTemporaryDirectory()
        defer { cleanUp(dir) }
        let t = try Tensor.randomBools(shape: [3, 5], seed: 2)
        let url = dir.appendingPathComponent("mask.npy")
        try t.write(to: url)
        let back = try Tensor(contentsOf: url)
        #expect(back.dtype == .bool)
        #expect(back.shape == [3, 5])
        #expect(back.bools == t.bools)
        #expect(String(decoding: try t.npyData(), as: UTF8.self).contains("'descr': '|b1'"))
    }

    @Test func bfloat16IsWrittenAsFloat32() throws {
        let t = try Tensor.randomNormal(shape: [2, 5], seed: 3, dtype: .bfloat16)
        let data = try t.npyData()
        #expect(String(decoding: data, as: UTF8.self).contains("'descr': '<f4'"))
        let back = try Tensor(npyData: data)
        #expect(back.dtype == .float32)
        #expect(back.shape == [2, 5])
        #expect(back.scalars == t.scalars, "widening bfloat16 to float32 is exact")
        #expect(try back.converted(to: .bfloat16).scalars == t.scalars)
    }

    @Test func zeroDimensional() throws {
        let t = try Tensor(shape: [], scalars: [2.5] as [Float])
        let data = try t.npyData()
        #expect(String(decoding: data, as: UTF8.self).contains("'shape': ()"))
        let back = try Tensor(npyData: data)
        #expect(back.shape == [])
        #expect(back.scalars == [2.5])
    }

    @Test(arguments: [[0], [2, 0, 3], [0, 0]])
    func emptyShapes(shape: [Int]) throws {
        for dtype in DType.allCases {
            let t = try Tensor(zeros: shape, dtype: dtype)
            let back = try Tensor(npyData: t.npyData())
            #expect(back.shape == shape)
            #expect(back.dtype == (dtype == .bfloat16 ? .float32 : dtype))
            #expect(back.count == 0)
        }
        #expect(String(decoding: try Tensor(zeros: [0]).npyData(), as: UTF8.self).contains("'shape': (0,)"))
    }

    @Test func oneDimensionalShapeHasATrailingComma() throws {
        let data = try Tensor(shape: [3], scalars: [1, 2, 3] as [Float]).npyData()
        #expect(String(decoding: data, as: UTF8.self).contains("'shape': (3,)"))
        #expect(try Tensor(npyData: data).scalars == [1, 2, 3])
    }

    @Test func nonContiguousTensorsAreWrittenInRowMajorOrder() throws {
        let t = try Tensor(shape: [2, 3], scalars: [0, 1, 2, 3, 4, 5] as [Float])
        let transposed = try t.transposed(0, 1)
        let back = try Tensor(npyData: transposed.npyData())
        #expect(back.shape == [3, 2])
        #expect(back.scalars == [0, 3, 1, 4, 2, 5])

        let broadcast = try Tensor(shape: [1, 2], scalars: [7, 8] as [Float]).broadcast(to: [3, 2])
        let back2 = try Tensor(npyData: broadcast.npyData())
        #expect(back2.shape == [3, 2])
        #expect(back2.scalars == [7, 8, 7, 8, 7, 8])

        let half = try Tensor.randomNormal(shape: [2, 3, 4], seed: 5, dtype: .float16).permuted([2, 0, 1])
        let back3 = try Tensor(npyData: half.npyData())
        #expect(back3.dtype == .float16)
        #expect(back3.shape == [4, 2, 3])
        #expect(bitPatterns(back3) == bitPatterns(half))

        // A view with an offset (row 1 of a reshaped tensor, seen through a transpose of a transpose).
        let rows = try Tensor(shape: [4], scalars: [1, 2, 3, 4] as [Float]).reshaped([2, 2]).transposed(0, 1).transposed(0, 1)
        #expect(try Tensor(npyData: rows.npyData()).scalars == [1, 2, 3, 4])
    }

    @Test func writtenHeaderIsVersion1Aligned() throws {
        for shape in [[], [1], [2, 3], [7, 1, 12, 3, 9]] {
            let data = try Tensor(zeros: shape, dtype: .float64).npyData()
            let bytes = [UInt8](data)
            #expect(Array(bytes[0..<8]) == [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
            let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            #expect((10 + headerLength) % 64 == 0, "data starts on a 64-byte boundary")
            #expect(bytes[10 + headerLength - 1] == 0x0A, "the header ends in a newline")
            #expect(bytes.count == 10 + headerLength + 8 * shape.reduce(1, *))
        }
    }
}

// MARK: - reading hand-built files

@Suite("NPY reading")
struct NPYReadingTests {
    @Test func version1() throws {
        let data = npyBytes(header: header("<f4", shape: "(2, 3)"), payload: littleEndianBytes([1, 2, 3, 4, 5, 6] as [Float]))
        let t = try Tensor(npyData: data)
        #expect(t.dtype == .float32)
        #expect(t.shape == [2, 3])
        #expect(t.scalars == [1, 2, 3, 4, 5, 6])
    }

    @Test func version1WithDoubleQuotesAndNoTrailingComma() throws {
        let text = "{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (2,)}"
        let data = npyBytes(header: text, payload: littleEndianBytes([0.1, -3] as [Double]))
        let t = try Tensor(npyData: data)
        #expect(t.dtype == .float64)
        #expect(t.doubleScalars == [0.1, -3])
    }

    @Test func version2HasAFourByteHeaderLength() throws {
        let data = npyBytes(major: 2, header: header("<f8", shape: "(3,)"), payload: littleEndianBytes([0.5, -1, 1e-300] as [Double]))
        #expect(data.count % 64 == 24)
        let t = try Tensor(npyData: data)
        #expect(t.dtype == .float64)
        #expect(t.shape == [3])
        #expect(t.doubleScalars == [0.5, -1, 1e-300])
    }

    @Test func version2LongHeader() throws {
        // A header longer than 65535 bytes, which only v2 can describe.
        let text = header("<f4", shape: "(2,)") + String(repeating: " ", count: 70_000)
        let data = npyBytes(major: 2, header: text, payload: littleEndianBytes([3, 4] as [Float]))
        #expect(try Tensor(npyData: data).scalars == [3, 4])
    }

    @Test func version3() throws {
        let data = npyBytes(major: 3, header: header("<f4", shape: "(1, 2)"), payload: littleEndianBytes([9, 8] as [Float]))
        let t = try Tensor(npyData: data)
        #expect(t.shape == [1, 2])
        #expect(t.scalars == [9, 8])
    }

    @Test func float16AndBoolDescriptors() throws {
        // 1.0 = 0x3C00, -2.0 = 0xC000 in binary16.
        let half = try Tensor(npyData: npyBytes(header: header("<f2", shape: "(2,)"), payload: [0x00, 0x3C, 0x00, 0xC0]))
        #expect(half.dtype == .float16)
        #expect(half.scalars == [1, -2])
        // numpy writes bool as |b1; any nonzero byte reads as true.
        let mask = try Tensor(npyData: npyBytes(header: header("|b1", shape: "(4,)"), payload: [0, 1, 2, 255]))
        #expect(mask.dtype == .bool)
        #expect(mask.bools == [false, true, true, true])
        #expect(mask.scalars == [0, 1, 1, 1])
    }

    @Test func fortranOrderIsReadIntoARowMajorTensor() throws {
        // The 2x3 matrix [[1 2 3] [4 5 6]] stored column by column.
        let data = npyBytes(header: header("<f4", fortran: true, shape: "(2, 3)"), payload: littleEndianBytes([1, 4, 2, 5, 3, 6] as [Float]))
        let t = try Tensor(npyData: data)
        #expect(t.shape == [2, 3])
        #expect(t.isContiguous)
        #expect(t.scalars == [1, 2, 3, 4, 5, 6])

        // 3-D: element (i, j, k) lives at i + 2j + 6k in Fortran order.
        var fortranValues = [Float](repeating: 0, count: 24)
        for i in 0..<2 { for j in 0..<3 { for k in 0..<4 { fortranValues[i + 2 * j + 6 * k] = Float(100 * i + 10 * j + k) } } }
        let t3 = try Tensor(npyData: npyBytes(header: header("<f4", fortran: true, shape: "(2, 3, 4)"), payload: littleEndianBytes(fortranValues)))
        #expect(t3.shape == [2, 3, 4])
        #expect(t3[1, 2, 3] == 123)
        #expect(t3[0, 1, 2] == 12)
        let rowMajor: [Float] = (0..<24).map { (n: Int) -> Float in
            let (i, j, k) = (n / 12, n / 4 % 3, n % 4)
            return Float(100 * i + 10 * j + k)
        }
        #expect(t3.scalars == rowMajor)
    }

    @Test func zeroDimensionalAndEmptyHeaders() throws {
        let scalar = try Tensor(npyData: npyBytes(header: header("<f8", shape: "()"), payload: littleEndianBytes([42] as [Double])))
        #expect(scalar.shape == [])
        #expect(scalar.doubleScalars == [42])
        let empty = try Tensor(npyData: npyBytes(header: header("<f4", shape: "(0, 5)")))
        #expect(empty.shape == [0, 5])
        #expect(empty.count == 0)
    }

}

// MARK: - malformed files

@Suite("NPY errors")
struct NPYErrorTests {
    private let path = "bad.npy"

    private func check(_ data: Data, reasonContains needles: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        guard let e = npyError({ try Tensor(npyData: data, path: path) }, sourceLocation: sourceLocation) else { return }
        #expect(e.path == path, sourceLocation: sourceLocation)
        #expect(e.description.hasPrefix("\(path): "), sourceLocation: sourceLocation)
        for needle in needles {
            #expect(e.reason.contains(needle), "reason '\(e.reason)' should mention '\(needle)'", sourceLocation: sourceLocation)
        }
    }

    @Test func notNPYMagic() {
        check(Data("this is not a numpy file at all".utf8), reasonContains: ["not a .npy file", "magic"])
        check(Data(), reasonContains: ["not a .npy file"])
        var almost = npyBytes(header: header("<f4", shape: "(1,)"), payload: [0, 0, 0, 0])
        almost[1] = 0x6E   // "\x93nUMPY"
        check(almost, reasonContains: ["not a .npy file"])
    }

    @Test func unsupportedVersion() {
        check(npyBytes(major: 4, header: header("<f4", shape: "(1,)"), payload: [0, 0, 0, 0]),
              reasonContains: ["unsupported .npy format version 4.0"])
        check(npyBytes(major: 0, minor: 9, header: header("<f4", shape: "(1,)"), payload: [0, 0, 0, 0]),
              reasonContains: ["version 0.9"])
    }

    @Test func truncatedHeader() {
        let full = npyBytes(header: header("<f4", shape: "(2, 3)"), payload: littleEndianBytes([Float](repeating: 1, count: 6)))
        check(full.prefix(40), reasonContains: ["truncated header", "declares"])
        let full2 = npyBytes(major: 2, header: header("<f4", shape: "(2, 3)"))
        check(full2.prefix(30), reasonContains: ["truncated header"])
        // A v2 preamble cut inside its 4-byte length.
        check(full2.prefix(11), reasonContains: ["truncated header"])
    }

    @Test func truncatedData() {
        let data = npyBytes(header: header("<f4", shape: "(2, 3)"), payload: littleEndianBytes([Float](repeating: 1, count: 5)))
        check(data, reasonContains: ["truncated data", "[2, 3]", "24 bytes", "has 20"])
        check(npyBytes(header: header("<f8", shape: "()")), reasonContains: ["truncated data", "8 bytes"])
    }

    @Test func unsupportedDType() {
        check(npyBytes(header: header("<i4", shape: "(2,)"), payload: [0, 0, 0, 0, 0, 0, 0, 0]),
              reasonContains: ["unsupported dtype <i4", "<f4"])
        check(npyBytes(header: header("<c8", shape: "(1,)"), payload: [UInt8](repeating: 0, count: 8)),
              reasonContains: ["unsupported dtype <c8"])
    }

    @Test func bigEndian() {
        check(npyBytes(header: header(">f4", shape: "(2,)"), payload: [0, 0, 0, 0, 0, 0, 0, 0]),
              reasonContains: ["big-endian", ">f4", "little-endian"])
    }

    @Test func malformedShape() {
        check(npyBytes(header: header("<f4", shape: "(2, x)")), reasonContains: ["malformed header", "integer, got 'x'"])
        check(npyBytes(header: header("<f4", shape: "(-1, 3)")), reasonContains: ["malformed header", "'-1'"])
        check(npyBytes(header: header("<f4", shape: "[2, 3]")), reasonContains: ["malformed header", "got '[2, 3]'"])
        check(npyBytes(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, }"),
              reasonContains: ["malformed header", "got '}'"])
    }

    @Test func malformedHeaderEntries() {
        check(npyBytes(header: "{'fortran_order': False, 'shape': (1,), }"), reasonContains: ["malformed header", "'descr'"])
        check(npyBytes(header: "{'descr': '<f4', 'shape': (1,), }"), reasonContains: ["malformed header", "'fortran_order'"])
        check(npyBytes(header: "{'descr': '<f4', 'fortran_order': False, }"), reasonContains: ["malformed header", "'shape'"])
        check(npyBytes(header: header("<f4", shape: "(1,)").replacingOccurrences(of: "False", with: "Maybe")),
              reasonContains: ["malformed header", "got 'Maybe'"])
    }

    @Test func missingFile() throws {
        let dir = try makeTemporaryDirectory()
        defer { cleanUp(dir) }
        let url = dir.appendingPathComponent("does-not-exist.npy")
        guard let e = npyError({ try Tensor(contentsOf: url) }) else { return }
        #expect(e.path == url.path)
        #expect(e.reason.contains("cannot read the file"))
        #expect(e.description.contains("does-not-exist.npy"))
    }

    @Test func unwritableLocation() throws {
        let dir = try makeTemporaryDirectory()
        defer { cleanUp(dir) }
        let url = dir.appendingPathComponent("no-such-dir").appendingPathComponent("t.npy")
        let error = #expect(throws: SDPAError.self) { try Tensor(zeros: [2]).write(to: url) }
        guard case let .npy(path, reason)? = error else {
            Issue.record("expected SDPAError.npy, got \(String(describing: error))")
            return
        }
        #expect(path == url.path)
        #expect(reason.contains("cannot write the file"))
    }

    /// A shape whose element or byte count overflows `Int` is rejected with an error, not a trap.
    @Test func overflowingShapeIsAnErrorNotACrash() throws {
        for shape in ["(4294967296, 4294967296)", "(4611686018427387904,)"] {
            var text = "{'descr': '<f8', 'fortran_order': False, 'shape': \(shape), }"
            text += String(repeating: " ", count: (64 - (10 + text.utf8.count + 1) % 64) % 64) + "\n"
            var data = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(text.utf8.count & 0xFF), UInt8(text.utf8.count >> 8)])
            data.append(contentsOf: Array(text.utf8))
            #expect(throws: SDPAError.self, "shape \(shape)") { try Tensor(npyData: data) }
        }
        #expect(throws: SDPAError.self) { try Tensor(zeros: [1 << 32, 1 << 32]) }
    }
}

// MARK: - a strict header parser (what numpy rejects, and what the format specification rules out)

@Suite("NPY header strictness")
struct NPYHeaderStrictnessTests {
    private let path = "hostile.npy"
    private let valid = "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }"
    private let payload = littleEndianBytes([1, 2, 3, 4] as [Float])

    private func rejects(_ data: Data, _ needles: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        guard let e = npyError({ try Tensor(npyData: data, path: path) }, sourceLocation: sourceLocation) else { return }
        for needle in needles {
            #expect(e.reason.contains(needle), "reason '\(e.reason)' should mention '\(needle)'", sourceLocation: sourceLocation)
        }
    }

    /// `text` padded with spaces and a newline so that the data starts on a multiple of `alignment`.
    private func padded(_ text: String, preamble: Int = 10, to alignment: Int) -> String {
        text + String(repeating: " ", count: (alignment - (preamble + text.utf8.count + 1) % alignment) % alignment) + "\n"
    }

    /// The issue's first case: a header length that stops inside the header's padding, so that a lax
    /// reader takes the shape and then reads the rest of the padding as data.
    @Test func aHeaderLengthEndingInsideThePaddingIsRejected() throws {
        var data = npyBytes(header: valid, payload: payload)
        #expect(try Tensor(npyData: data).scalars == [1, 2, 3, 4])
        let short = valid.utf8.count + 2
        data[8] = UInt8(short & 0xFF)
        data[9] = UInt8(short >> 8)
        rejects(data, ["malformed header", "does not end in a newline"])
        // Inside the dict itself.
        data[8] = 30
        data[9] = 0
        rejects(data, ["malformed header"])
    }

    /// A header that ends in a newline on a 16-byte boundary, followed by more padding before the data:
    /// the bytes after the header are more than the shape needs.
    @Test func paddingAfterTheDeclaredHeaderIsTrailingData() {
        var text = padded(valid, to: 16)
        let data = npyBytes(header: text, payload: [UInt8](repeating: 0x20, count: 16) + payload, pad: false)
        rejects(data, ["16 bytes after the data", "needs 16 bytes but the file has 32"])
        text = padded(valid, to: 64)
        rejects(npyBytes(header: text, payload: payload + [0], pad: false), ["1 bytes after the data"])
    }

    /// The issue's second case: a key inside a string value is not a key.
    @Test func aKeyInsideAStringIsNotAKey() {
        let text = "{'x': \"'shape': (64,)\", 'descr': '<f4', 'fortran_order': False, 'shape': (4,), }"
        rejects(npyBytes(header: text, payload: payload), ["unexpected key 'x'"])
        let onlyInString = "{'descr': '<f4', 'fortran_order': False, 'note': \"'shape': (4,)\"}"
        rejects(npyBytes(header: onlyInString, payload: payload), ["unexpected key 'note'"])
    }

    /// The issue's third case: `(,,,)` is not a shape (a lax reader took it for a 0-d scalar).
    @Test func commasWithoutDimensionsAreNotAShape() {
        for shape in ["(,,,)", "(,)", "(4,,)", "(, 4)"] {
            rejects(npyBytes(header: header("<f4", shape: shape), payload: payload), ["malformed header", "integer"])
        }
    }

    /// Exactly the keys descr, fortran_order and shape, each once.
    @Test func theKeysAreExactlyDescrFortranOrderAndShape() {
        rejects(npyBytes(header: valid.replacingOccurrences(of: "}", with: "'extra': 1}"), payload: payload), ["unexpected key 'extra'"])
        rejects(npyBytes(header: "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (4,)}", payload: payload),
                ["'descr' appears twice"])
        rejects(npyBytes(header: "{'descr': '<f4', 'shape': (4,)}", payload: payload), ["no 'fortran_order' entry"])
        rejects(npyBytes(header: "{'Descr': '<f4', 'fortran_order': False, 'shape': (4,)}", payload: payload), ["unexpected key 'Descr'"])
    }

    /// Values of the right Python type only, as numpy checks them.
    @Test func valuesOfTheWrongTypeAreRejected() {
        rejects(npyBytes(header: header("<f4", shape: "(4)"), payload: payload), ["shape is 4, not a tuple"])
        rejects(npyBytes(header: "{'descr': '<f4', 'fortran_order': 0, 'shape': (4,)}", payload: payload),
                ["fortran_order is 0, not True or False"])
        rejects(npyBytes(header: "{'descr': (4,), 'fortran_order': False, 'shape': (4,)}", payload: payload), ["descr is (4,)"])
        rejects(npyBytes(header: "{'descr': '<f4', 'fortran_order': Falsey, 'shape': (4,)}", payload: payload), ["got 'Falsey'"])
        rejects(npyBytes(header: header("<f4", shape: "(04,)"), payload: payload), ["leading zero"])
        rejects(npyBytes(header: header("<f4", shape: "(4, 99999999999999999999)"), payload: payload), ["does not fit in Int"])
    }

    /// Not a dict, text after the dict, a string with an escape or unterminated.
    @Test func malformedSyntaxIsRejected() {
        rejects(npyBytes(header: "['descr', '<f4']", payload: payload), ["not a dict literal"])
        rejects(npyBytes(header: valid + " # comment", payload: payload), ["unexpected text after the dict"])
        rejects(npyBytes(header: valid + "\0", payload: payload), ["unexpected text after the dict"])
        rejects(npyBytes(header: "{'descr': '<f\\x34', 'fortran_order': False, 'shape': (4,)}", payload: payload), ["escaped string"])
        rejects(npyBytes(header: "{'descr': '<f4, 'fortran_order': False, 'shape': (4,)}", payload: payload), ["malformed header"])
        rejects(npyBytes(header: "{'descr' '<f4', 'fortran_order': False, 'shape': (4,)}", payload: payload), ["expected ':'"])
        rejects(npyBytes(header: "{'descr': '<f4' 'fortran_order': False, 'shape': (4,)}", payload: payload), ["expected ',' or '}'"])
    }

    /// Versions 1.0, 2.0 and 3.0 only, as numpy (`we only support format version (1,0), (2,0), and (3,0)`).
    @Test func onlyVersionsOneTwoAndThreePointZero() {
        for (major, minor) in [(1, 1), (2, 5), (3, 1), (0, 0), (4, 0), (255, 255)] as [(UInt8, UInt8)] {
            rejects(npyBytes(major: major, minor: minor, header: valid, payload: payload), ["version \(major).\(minor)"])
        }
    }

    /// The data starts on a 16-byte boundary: numpy pads to 64 bytes, to 16 before numpy 1.14 (both are read).
    @Test func theDataStartsOnASixteenByteBoundary() throws {
        for alignment in [16, 64] {
            let data = npyBytes(header: padded(valid, to: alignment), payload: payload, pad: false)
            #expect(try Tensor(npyData: data).scalars == [1, 2, 3, 4], "padded to \(alignment)")
        }
        let misaligned = npyBytes(header: padded(valid, to: 16) + "\n", payload: payload, pad: false)
        rejects(misaligned, ["not on a 16-byte boundary"])
    }

    /// What numpy's writers produce in spacing and quoting, and Python 2's `L` suffix in versions 1 and 2 only
    /// (numpy reads it there, with a warning; Python 3 syntax has no `L`).
    @Test func writerVariantsNumpyReadsAreRead() throws {
        for text in [
            "{'descr':'<f4','fortran_order':False,'shape':(4,)}",
            "{'descr': '<f4',\n 'fortran_order': False,\t'shape': ( 4 , ), }",
            "  {\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (4,)}",
            "{'shape': (4,), 'fortran_order': False, 'descr': '<f4'}",
        ] {
            #expect(try Tensor(npyData: npyBytes(header: text, payload: payload)).scalars == [1, 2, 3, 4], "\(text)")
        }
        let long = "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 2L), }"
        for major: UInt8 in [1, 2] {
            #expect(try Tensor(npyData: npyBytes(major: major, header: long, payload: payload)).shape == [2, 2])
        }
        rejects(npyBytes(major: 3, header: long, payload: payload), ["malformed header"])
    }

    /// A shape whose byte count overflows is an error naming the shape, before anything is allocated.
    @Test func aShapeTooLargeForIntIsAnErrorNamingIt() {
        rejects(npyBytes(header: header("<f4", shape: "(2305843009213693952,)")), ["shape [2305843009213693952]", "bytes"])
        rejects(npyBytes(header: header("<f4", shape: "(0, 4294967296, 4294967296, 4)")), ["strides overflow Int"])
        // Fits Int, but the file is far too short for it: no allocation is attempted.
        rejects(npyBytes(header: header("<f4", shape: "(1099511627776,)"), payload: payload), ["truncated data", "4398046511104 bytes"])
    }
}
