import Foundation
import SDPA
import SDPAEmbedding
import Testing

/// The safetensors reader: well-formed files read back exactly, and every kind of malformed file is a typed
/// error naming what is wrong (never a trap).
@Suite struct SafeTensorsTests {
    /// A file from a header (as JSON text) and data bytes, laid out as the format says.
    /// Bytes rather than `Data`: a `Data` held by a static table outlives the tests, and LeakSanitizer cannot
    /// follow the tagged reference inside it, so it reports the table as a leak.
    static func file(header: String, data: [UInt8] = [], headerLength: UInt64? = nil) -> [UInt8] {
        var bytes: [UInt8] = []
        let json = Array(header.utf8)
        withUnsafeBytes(of: (headerLength ?? UInt64(json.count)).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: json)
        bytes.append(contentsOf: data)
        return bytes
    }

    static func floatBytes(_ values: [Float]) -> [UInt8] { values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) } }

    @Test func readsEveryFloatDType() throws {
        let f32 = Self.floatBytes([1.5, -2, 0.25, 0x1p-127, .infinity, -0.0])
        let f16: [UInt8] = [0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00, 0x00, 0x7C]      // 1, -2, smallest subnormal, inf
        let bf16: [UInt8] = [0xC0, 0x3F, 0x80, 0xBF]                               // 1.5, -1
        let f64 = withUnsafeBytes(of: (0.1 as Double).bitPattern.littleEndian, Array.init)
        let i64 = [UInt8](repeating: 0, count: 16)
        var offset = 0
        func range(_ count: Int) -> String { defer { offset += count }; return "[\(offset), \(offset + count)]" }
        let header = """
            {"a":{"dtype":"F32","shape":[2,3],"data_offsets":\(range(24))},"b":{"dtype":"F16","shape":[4],"data_offsets":\(range(8))},\
            "c":{"dtype":"BF16","shape":[2],"data_offsets":\(range(4))},"d":{"dtype":"F64","shape":[],"data_offsets":\(range(8))},\
            "e":{"dtype":"I64","shape":[2],"data_offsets":\(range(16))},"__metadata__":{"format":"pt"}}
            """
        let file = try SafeTensorsFile(data: Data(Self.file(header: header, data: f32 + f16 + bf16 + f64 + i64)), path: "t.safetensors")
        #expect(file.names == ["a", "b", "c", "d", "e"] && file.metadata == ["format": "pt"])
        let a = try file.tensor("a")
        #expect(a.shape == [2, 3] && a.scalars.map(\.bitPattern) == [1.5, -2, 0.25, 0x1p-127, .infinity, -0.0].map { Float($0).bitPattern })
        #expect(try file.floats("b") == [1, -2, 0x1p-24, .infinity])
        #expect(try file.floats("c") == [1.5, -1])
        #expect(try file.tensor("d").shape == [] && file.floats("d") == [Float(0.1)])
        #expect(throws: EmbeddingError.tensorMismatch(name: "e", shape: [2], dtype: "I64", expected: "a floating-point tensor (F32, F16, BF16 or F64)")) {
            try file.tensor("e")
        }
        #expect(throws: EmbeddingError.missingTensor(name: "z", path: "t.safetensors")) { try file.tensor("z") }
    }

    /// Each malformed file, and a phrase its error must contain.
    static let malformed: [(String, [UInt8], String)] = [
        ("too short", [1, 2, 3], "fewer than the 8"),
        ("header past the end", file(header: "{}", headerLength: 100), "runs past the end"),
        ("absurd header length", file(header: "{}", headerLength: UInt64.max), "exceeds the limit"),
        ("not JSON", file(header: "{not json"), "not a JSON object"),
        ("not an object", file(header: "[1, 2]"), "does not start with '{'"),
        ("unknown dtype", file(header: #"{"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "has dtype"),
        ("negative shape", file(header: #"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "has shape"),
        ("boolean shape", file(header: #"{"a":{"dtype":"F32","shape":[true],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "has shape"),
        ("fractional offset", file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4.5]}}"#, data: [0, 0, 0, 0]), "data_offsets"),
        ("offsets past the data", file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}"#, data: [0, 0, 0, 0]), "data_offsets"),
        ("reversed offsets", file(header: #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}"#, data: [0, 0, 0, 0]), "data_offsets"),
        ("size mismatch", file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "span 4"),
        ("huge shape", file(header: #"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "too large"),
        ("overlap", file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}"#, data: [UInt8](repeating: 0, count: 6)), "overlaps"),
        ("gap", file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: [UInt8](repeating: 0, count: 8)), "belong to no tensor"),
        ("trailing bytes", file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [UInt8](repeating: 0, count: 6)), "cover 4"),
        ("metadata not strings", file(header: #"{"__metadata__":{"a":1}}"#), "__metadata__"),
        ("entry not an object", file(header: #"{"a":3}"#), "not an object"),
    ]

    @Test(arguments: malformed)
    func malformedFilesAreTypedErrors(_ name: String, _ bytes: [UInt8], _ phrase: String) {
        do {
            _ = try SafeTensorsFile(data: Data(bytes), path: "bad.safetensors")
            Issue.record("\(name): read without error")
        } catch let EmbeddingError.safetensors(path, reason) {
            #expect(path == "bad.safetensors")
            #expect(reason.contains(phrase), "\(name): \(reason)")
        } catch {
            Issue.record("\(name): \(error)")
        }
    }

    @Test func truncatedModelFileIsAnError() throws {
        let model = EmbeddingReference.tinyModel.appending(path: "model.safetensors")
        let bytes = try Data(contentsOf: model)
        for length in [0, 7, 8, 100, bytes.count / 2, bytes.count - 1] {
            #expect(throws: EmbeddingError.self, "\(length) bytes") { try SafeTensorsFile(data: bytes.prefix(length)) }
        }
        #expect(throws: EmbeddingError.self) { try SafeTensorsFile(contentsOf: URL(fileURLWithPath: "/nonexistent.safetensors")) }
    }
}
