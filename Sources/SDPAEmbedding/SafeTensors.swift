import Foundation
import SDPA

/// A `.safetensors` file (Hugging Face's weight format): an 8-byte little-endian header length, a
/// JSON header naming each tensor's dtype, shape and byte range, then the raw little-endian data.
///
/// Reading is strict, like the reference implementation: the header length must fit the file, the
/// header must be a JSON object whose entries have a known dtype, a non-negative shape and offsets
/// inside the data whose length matches the shape, and the entries must cover the data exactly, with
/// no overlap and no gap. Every violation is an ``EmbeddingError/safetensors(path:reason:)``; nothing traps.
/// The file is memory-mapped; a tensor is copied out only when asked for.
///
/// ```swift
/// let weights = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: "model.safetensors"))
/// let embeddings = try weights.tensor("embeddings.word_embeddings.weight")   // [30522, 384] float32
/// ```
public struct SafeTensorsFile: Sendable {
    /// One tensor's header entry.
    public struct Entry: Sendable, Hashable {
        /// The dtype as the file spells it: `F32`, `F16`, `BF16`, `F64`, `I64`, ...
        public var dtype: String
        /// The shape (empty for a scalar).
        public var shape: [Int]
        /// The bytes of the data section it occupies.
        public var byteRange: Range<Int>
    }

    /// The bytes per element of each dtype the format defines.
    public static let elementBytes: [String: Int] = [
        "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
        "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8,
    ]
    /// Headers beyond this size are refused (the reference implementation's limit), so a corrupt length
    /// cannot make the reader allocate gigabytes.
    public static let maximumHeaderBytes = 100_000_000

    /// Where the file was read from, for messages.
    public let path: String
    /// The tensors, by name.
    public let entries: [String: Entry]
    /// The header's `__metadata__` strings, if any.
    public let metadata: [String: String]
    private let bytes: Data
    private let dataStart: Int

    /// Reads (memory-maps) and checks a file.
    ///
    /// - Throws: ``EmbeddingError/safetensors(path:reason:)`` for a file that cannot be read or is malformed.
    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw EmbeddingError.safetensors(path: url.path, reason: "cannot be read (\(error.localizedDescription))")
        }
        try self.init(data: data, path: url.path)
    }

    /// Checks the bytes of a file already in memory; `path` names it in errors.
    ///
    /// - Throws: ``EmbeddingError/safetensors(path:reason:)`` for malformed bytes.
    public init(data: Data, path: String = "<memory>") throws {
        func fail(_ reason: String) -> EmbeddingError { .safetensors(path: path, reason: reason) }
        self.path = path
        bytes = data
        guard data.count >= 8 else { throw fail("it has \(data.count) bytes, fewer than the 8 of the header length") }
        let headerLength = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard headerLength <= UInt64(Self.maximumHeaderBytes) else {
            throw fail("the header length \(headerLength) exceeds the limit of \(Self.maximumHeaderBytes) bytes")
        }
        guard headerLength <= UInt64(data.count - 8) else {
            throw fail("the header length \(headerLength) runs past the end of the file (\(data.count) bytes)")
        }
        dataStart = 8 + Int(headerLength)
        let header = data.subdata(in: (data.startIndex + 8)..<(data.startIndex + dataStart))
        guard header.first == UInt8(ascii: "{") else { throw fail("the header does not start with '{'") }
        guard let object = try? JSONSerialization.jsonObject(with: header), let fields = object as? [String: Any] else {
            throw fail("the header is not a JSON object")
        }
        let dataLength = data.count - dataStart
        var entries = [String: Entry](), metadata = [String: String]()
        for (name, value) in fields {
            if name == "__metadata__" {
                guard let strings = value as? [String: Any], strings.values.allSatisfy({ $0 is String }) else {
                    throw fail("__metadata__ must map strings to strings")
                }
                metadata = strings.mapValues { $0 as! String }
                continue
            }
            entries[name] = try Self.entry(name, value, dataLength: dataLength, fail: fail)
        }
        // The entries must tile the data section: sorted by offset, each starts where the last ended.
        var end = 0
        for (name, entry) in entries.sorted(by: { ($0.value.byteRange.lowerBound, $0.value.byteRange.upperBound) < ($1.value.byteRange.lowerBound, $1.value.byteRange.upperBound) }) {
            if entry.byteRange.lowerBound < end { throw fail("tensor '\(name)' overlaps the tensor before it (bytes \(entry.byteRange) of the data)") }
            if entry.byteRange.lowerBound > end { throw fail("bytes \(end)..<\(entry.byteRange.lowerBound) of the data belong to no tensor") }
            end = entry.byteRange.upperBound
        }
        guard end == dataLength else { throw fail("the data section has \(dataLength) bytes but the tensors cover \(end)") }
        self.entries = entries
        self.metadata = metadata
    }

    private static func entry(_ name: String, _ value: Any, dataLength: Int, fail: (String) -> EmbeddingError) throws -> Entry {
        guard let fields = value as? [String: Any] else { throw fail("the entry of '\(name)' is not an object") }
        guard let dtype = fields["dtype"] as? String, let width = elementBytes[dtype] else {
            throw fail("tensor '\(name)' has dtype \(String(describing: fields["dtype"] ?? "nothing")); expected one of \(elementBytes.keys.sorted().joined(separator: ", "))")
        }
        guard let shape = integers(fields["shape"]), shape.allSatisfy({ $0 >= 0 }) else {
            throw fail("tensor '\(name)' has shape \(String(describing: fields["shape"] ?? "nothing")); expected a list of non-negative integers")
        }
        guard let offsets = integers(fields["data_offsets"]), offsets.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= dataLength else {
            throw fail("tensor '\(name)' has data_offsets \(String(describing: fields["data_offsets"] ?? "nothing")); expected [begin, end] with 0 <= begin <= end <= \(dataLength)")
        }
        var expected = width
        for d in shape {
            let (product, overflow) = expected.multipliedReportingOverflow(by: d)
            guard !overflow else { throw fail("tensor '\(name)' has shape \(shape), too large to address") }
            expected = product
        }
        guard offsets[1] - offsets[0] == expected else {
            throw fail("tensor '\(name)' is \(dtype) \(shape), \(expected) bytes, but its data_offsets \(offsets) span \(offsets[1] - offsets[0])")
        }
        return Entry(dtype: dtype, shape: shape, byteRange: offsets[0]..<offsets[1])
    }

    /// A JSON list of integers (not booleans, not fractions), or `nil`.
    private static func integers(_ value: Any?) -> [Int]? {
        guard let list = value as? [Any] else { return nil }
        var result = [Int]()
        for element in list {
            // Booleans decode as numbers too; a shape of [true] is not a shape.
            guard let number = element as? NSNumber, String(cString: number.objCType) != "c" else { return nil }
            let real = number.doubleValue
            guard real.isFinite, real == real.rounded(), Swift.abs(real) < 0x1p53 else { return nil }
            result.append(Int(real))
        }
        return result
    }

    /// The tensor names, sorted.
    public var names: [String] { entries.keys.sorted() }

    /// The tensor `name` as a float32 ``Tensor`` (`F32` copied, `F16`, `BF16` and `F64` converted exactly
    /// or rounded to nearest).
    ///
    /// - Throws: ``EmbeddingError/missingTensor(name:path:)``, or ``EmbeddingError/tensorMismatch(name:shape:dtype:expected:)``
    ///   for a dtype that is not floating point.
    public func tensor(_ name: String) throws -> Tensor {
        try Tensor(shape: entry(name).shape, scalars: floats(name))
    }

    /// The elements of tensor `name` as float32, in row-major order.
    ///
    /// - Throws: as ``tensor(_:)``.
    public func floats(_ name: String) throws -> [Float] {
        let entry = try entry(name)
        let count = entry.shape.reduce(1, *)
        let start = dataStart + entry.byteRange.lowerBound
        return try bytes.withUnsafeBytes { raw -> [Float] in
            let base = raw.baseAddress! + start
            switch entry.dtype {
            case "F32": return (0..<count).map { Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
            case "F64": return (0..<count).map { Float(Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)))) }
            case "BF16": return (0..<count).map { Float(bitPattern: UInt32(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) << 16) }
            case "F16": return (0..<count).map { Self.halfToFloat(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) }
            default:
                throw EmbeddingError.tensorMismatch(name: name, shape: entry.shape, dtype: entry.dtype, expected: "a floating-point tensor (F32, F16, BF16 or F64)")
            }
        }
    }

    /// The entry of `name`.
    ///
    /// - Throws: ``EmbeddingError/missingTensor(name:path:)``.
    public func entry(_ name: String) throws -> Entry {
        guard let entry = entries[name] else { throw EmbeddingError.missingTensor(name: name, path: path) }
        return entry
    }

    /// IEEE binary16 bits to float (exact).
    static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31, exponent = Int(h >> 10 & 0x1F), mantissa = UInt32(h & 0x3FF)
        if exponent == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13) }
        if exponent == 0 { return (sign != 0 ? -1 : 1) * Float(mantissa) * 0x1p-24 }
        return Float(bitPattern: sign | UInt32(exponent + 112) << 23 | mantissa << 13)
    }
}
