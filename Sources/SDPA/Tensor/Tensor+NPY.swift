import Foundation

// NumPy's .npy format (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
// magic "\x93NUMPY", version bytes, a little-endian header length (2 bytes in
// v1, 4 in v2/v3), a Python dict literal, then the raw data.

extension Tensor {
    /// Reads a `.npy` file written by `numpy.save` or `torch`'s numpy bridge.
    ///
    /// Versions 1.0, 2.0 and 3.0; dtypes `<f4`, `<f2`, `<f8` and `|b1` (little-endian);
    /// C or Fortran order (a Fortran-order file is read into a row-major tensor).
    ///
    /// ```swift
    /// let q = try Tensor(contentsOf: URL(fileURLWithPath: "q.npy"))
    /// ```
    /// - Throws: ``SDPAError/npy(path:reason:)`` naming what is wrong: a missing file,
    ///   a bad magic string, an unsupported dtype, a malformed header, or too few data bytes.
    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw SDPAError.npy(path: url.path, reason: "cannot read the file (\(error.localizedDescription))")
        }
        self = try Tensor(npyData: data, path: url.path)
    }

    /// Parses the bytes of a `.npy` file; `path` only labels errors.
    public init(npyData data: Data, path: String = "<data>") throws {
        func fail(_ reason: String) -> SDPAError { .npy(path: path, reason: reason) }
        let bytes = [UInt8](data)
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
        guard bytes.count >= 6, Array(bytes[0..<6]) == magic else {
            throw fail("not a .npy file (missing the \\x93NUMPY magic string)")
        }
        guard bytes.count >= 10 else { throw fail("truncated header: the file ends after \(bytes.count) bytes") }
        let major = bytes[6]
        let headerLength: Int, headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("truncated header") }
            headerLength = (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
            headerStart = 12
        default:
            throw fail("unsupported .npy format version \(major).\(bytes[7]) (1.0, 2.0 and 3.0 are supported)")
        }
        guard headerStart + headerLength <= bytes.count else {
            throw fail("truncated header: it declares \(headerLength) bytes but the file has \(bytes.count - headerStart) after the preamble")
        }
        guard let header = String(bytes: bytes[headerStart..<(headerStart + headerLength)], encoding: major == 3 ? .utf8 : .isoLatin1) else {
            throw fail("the header is not text")
        }
        let descr = try Tensor.npyValue(of: "descr", in: header, path: path)
        let fortran = try Tensor.npyValue(of: "fortran_order", in: header, path: path)
        let shapeText = try Tensor.npyValue(of: "shape", in: header, path: path)

        let dtype: DType
        switch descr.trimmingCharacters(in: CharacterSet(charactersIn: "'\"")) {
        case "<f4", "=f4", "f4": dtype = .float32
        case "<f2", "=f2", "f2": dtype = .float16
        case "<f8", "=f8", "f8": dtype = .float64
        case "|b1", "<b1", "=b1", "b1", "?", "|?": dtype = .bool
        case let other where other.hasPrefix(">"):
            throw fail("big-endian dtype \(other) is not supported; save with little-endian ('<') data")
        case let other:
            throw fail("unsupported dtype \(other); supported: <f4, <f2, <f8, |b1")
        }
        let isFortran: Bool
        switch fortran {
        case "False": isFortran = false
        case "True": isFortran = true
        default: throw fail("malformed header: fortran_order is \(fortran)")
        }
        guard shapeText.hasPrefix("("), shapeText.hasSuffix(")") else {
            throw fail("malformed header: shape is \(shapeText)")
        }
        let shape = try shapeText.dropFirst().dropLast().split(separator: ",").map { part -> Int in
            let text = part.trimmingCharacters(in: .whitespaces)
            guard let n = Int(text), n >= 0 else { throw fail("malformed header: shape entry '\(text)'") }
            return n
        }
        do { try Tensor.validate(shape: shape, argument: "shape") } catch {
            throw fail("malformed header: shape \(shape) has more elements than memory can address")
        }
        let count = shape.reduce(1, *)
        let dataStart = headerStart + headerLength
        let (needed, overflow) = count.multipliedReportingOverflow(by: dtype.byteWidth)
        if overflow { throw fail("malformed header: shape \(shape) of \(dtype) needs more bytes than memory can address") }
        guard bytes.count - dataStart >= needed else {
            throw fail("truncated data: shape \(shape) of \(dtype) needs \(needed) bytes but the file has \(bytes.count - dataStart)")
        }
        // Fortran order is row-major order of the reversed shape.
        let storedShape = isFortran ? shape.reversed() : shape
        var tensor = Tensor(_zeros: storedShape, dtype: dtype)
        bytes.withUnsafeBytes { raw in
            tensor._storage.bytes.copyMemory(from: raw.baseAddress! + dataStart, byteCount: needed)
        }
        if dtype == .bool {
            let p = tensor._storage.bytes.assumingMemoryBound(to: UInt8.self)
            for i in 0..<count where p[i] > 1 { p[i] = 1 }
        }
        if isFortran {
            tensor = try tensor.permuted(Array((0..<shape.count).reversed())).contiguous()
        }
        self = tensor
    }

    /// The text of `key`'s value in a Python dict literal.
    private static func npyValue(of key: String, in header: String, path: String) throws -> String {
        guard let keyRange = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\"") else {
            throw SDPAError.npy(path: path, reason: "malformed header: no '\(key)' entry in \(header.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        var rest = header[keyRange.upperBound...].drop { $0 == " " }
        guard rest.first == ":" else { throw SDPAError.npy(path: path, reason: "malformed header near '\(key)'") }
        rest = rest.dropFirst().drop { $0 == " " }
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")") else {
                throw SDPAError.npy(path: path, reason: "malformed header: unterminated \(key)")
            }
            return String(rest[...close])
        }
        let end = rest.firstIndex { $0 == "," || $0 == "}" } ?? rest.endIndex
        return rest[..<end].trimmingCharacters(in: .whitespaces)
    }

    /// The bytes of a `.npy` (version 1.0, C order) file holding this tensor.
    ///
    /// `bfloat16` has no NumPy dtype, so it is written widened, exactly, as `<f4`.
    public func npyData() -> Data {
        let stored = dtype == .bfloat16 ? converted(to: .float32) : contiguous()
        let descr: String
        switch stored.dtype {
        case .float32, .bfloat16: descr = "<f4"
        case .float16: descr = "<f2"
        case .float64: descr = "<f8"
        case .bool: descr = "|b1"
        }
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        // Pad so that the data starts on a 64-byte boundary, as numpy does; the header ends in a newline.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        let length = UInt16(header.utf8.count)
        data.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        data.append(contentsOf: Array(header.utf8))
        data.append(Data(bytes: stored._storage.bytes + stored._offset * stored.dtype.byteWidth, count: count * stored.dtype.byteWidth))
        return data
    }

    /// Writes this tensor as a `.npy` file that `numpy.load` reads back.
    ///
    /// - Throws: ``SDPAError/npy(path:reason:)`` when the file cannot be written.
    public func write(to url: URL) throws {
        do { try npyData().write(to: url) } catch {
            throw SDPAError.npy(path: url.path, reason: "cannot write the file (\(error.localizedDescription))")
        }
    }
}
