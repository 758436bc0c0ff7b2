import Foundation

// NumPy's .npy format (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
// magic "\x93NUMPY", version bytes, a little-endian header length (2 bytes in
// v1, 4 in v2/v3), a Python dict literal padded with spaces and ended by a newline, then the raw data.

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
    ///   a bad magic string, an unsupported dtype, a malformed header, or too few or too many data bytes.
    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw SDPAError.npy(path: url.path, reason: "cannot read the file (\(error.localizedDescription))")
        }
        self = try Tensor(npyData: data, path: url.path)
    }

    /// Parses the bytes of a `.npy` file; `path` only labels errors.
    ///
    /// The header is parsed strictly, as the format specification describes it: a dict literal with exactly
    /// the keys `descr`, `fortran_order` and `shape`, ending in a newline where the declared header length
    /// says, the data starting on a 16-byte boundary (numpy pads to 64 bytes, to 16 before numpy 1.14), and
    /// exactly as many data bytes as the shape needs.
    ///
    /// - Throws: ``SDPAError/npy(path:reason:)`` naming what is wrong.
    public init(npyData data: Data, path: String = "<data>") throws {
        self = try data.withUnsafeBytes { try Tensor._readNPY($0, path: path) }
    }

    private static func _readNPY(_ bytes: UnsafeRawBufferPointer, path: String) throws -> Tensor {
        func fail(_ reason: String) -> SDPAError { .npy(path: path, reason: reason) }
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
        guard bytes.count >= 6, bytes.prefix(6).elementsEqual(magic) else {
            throw fail("not a .npy file (missing the \\x93NUMPY magic string)")
        }
        guard bytes.count >= 10 else { throw fail("truncated header: the file ends after \(bytes.count) bytes") }
        let (major, minor) = (bytes[6], bytes[7])
        guard [1, 2, 3].contains(major), minor == 0 else {
            throw fail("unsupported .npy format version \(major).\(minor) (1.0, 2.0 and 3.0 are supported)")
        }
        let lengthBytes = major == 1 ? 2 : 4, headerStart = 8 + lengthBytes
        guard bytes.count >= headerStart else { throw fail("truncated header: the file ends inside the header length") }
        let headerLength = (0..<lengthBytes).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
        let dataStart = headerStart + headerLength
        guard dataStart <= bytes.count else {
            throw fail("truncated header: it declares \(headerLength) bytes but the file has \(bytes.count - headerStart) after the preamble")
        }
        let header: _NPYHeader
        do { header = try _NPYHeader(ArraySlice(bytes[headerStart..<dataStart]), majorVersion: major) } catch {
            throw fail("malformed header: \(error.reason): \(Tensor._quoted(bytes[headerStart..<dataStart]))")
        }
        guard dataStart % 16 == 0 else {
            throw fail("malformed header: the data would start at byte \(dataStart), not on a 16-byte boundary as every .npy writer pads it")
        }

        let dtype: DType
        switch header.descr {
        case "<f4", "=f4", "f4": dtype = .float32
        case "<f2", "=f2", "f2": dtype = .float16
        case "<f8", "=f8", "f8": dtype = .float64
        case "|b1", "<b1", "=b1", "b1", "?", "|?": dtype = .bool
        case let other where other.hasPrefix(">"):
            throw fail("big-endian dtype \(other) is not supported; save with little-endian ('<') data")
        case let other:
            throw fail("unsupported dtype \(other); supported: <f4, <f2, <f8, |b1")
        }
        let shape = header.shape
        do { try Tensor.validate(shape: shape, argument: "shape", dtype: dtype) } catch let error as SDPAError {
            guard case let .invalidShape(_, _, reason) = error else { throw error }
            throw fail("malformed header: shape \(shape): \(reason)")
        }
        let count = shape.reduce(1, *), needed = count * dtype.byteWidth, available = bytes.count - dataStart
        guard available >= needed else {
            throw fail("truncated data: shape \(shape) of \(dtype) needs \(needed) bytes but the file has \(available)")
        }
        guard available == needed else {
            throw fail("\(available - needed) bytes after the data: shape \(shape) of \(dtype) needs \(needed) bytes but the file has \(available)")
        }
        // Fortran order is row-major order of the reversed shape.
        let storedShape = header.fortranOrder ? shape.reversed() : shape
        var tensor = try Tensor(_zeros: storedShape, dtype: dtype, argument: path)
        tensor._storage.bytes.copyMemory(from: bytes.baseAddress! + dataStart, byteCount: needed)
        if dtype == .bool {
            let p = tensor._storage.bytes.assumingMemoryBound(to: UInt8.self)
            for i in 0..<count where p[i] > 1 { p[i] = 1 }
        }
        if header.fortranOrder {
            tensor = try tensor.permuted(Array((0..<shape.count).reversed())).contiguous()
        }
        return tensor
    }

    /// The header bytes as text for an error message, shortened if long.
    private static func _quoted(_ bytes: Slice<UnsafeRawBufferPointer>) -> String {
        let text = String(decoding: bytes.prefix(200), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return "\"\(text)\(bytes.count > 200 ? "…" : "")\""
    }

    /// The bytes of a `.npy` file holding this tensor: version 1.0 (2.0 when the header needs more than
    /// 65535 bytes), C order, the data starting on a 64-byte boundary, as `numpy.save` writes it.
    ///
    /// `bfloat16` has no NumPy dtype, so it is written widened, exactly, as `<f4`.
    /// - Throws: ``SDPAError/allocationFailed(argument:byteCount:reason:)`` when a contiguous copy is needed
    ///   and cannot be allocated.
    public func npyData() throws -> Data {
        let stored = try _npyStored()
        var data = stored.npyHeader
        // `stored` may be a copy made here: held until its bytes are copied out.
        withExtendedLifetime(stored) {
            data.append(Data(bytes: stored._storage.bytes + stored._offset * stored.dtype.byteWidth, count: count * stored.dtype.byteWidth))
        }
        return data
    }

    /// Writes this tensor as a `.npy` file that `numpy.load` reads back.
    ///
    /// The file is written under a temporary name in the same folder and renamed into place, so a
    /// failure leaves no half-written file and a reader never sees one.
    /// - Throws: ``SDPAError/npy(path:reason:)`` when the file cannot be written.
    public func write(to url: URL) throws {
        let file = try _StagedNPYFile(self, at: url)
        try file.commit()
    }

    /// This tensor as its `.npy` file stores it: contiguous, `bfloat16` widened to float32.
    func _npyStored() throws -> Tensor {
        dtype == .bfloat16 ? try converted(to: .float32) : try contiguous()
    }

    /// The magic string, version, header length and header of this tensor's `.npy` file (contiguous, not bfloat16).
    var npyHeader: Data {
        let descr: String
        switch dtype {
        case .float32, .bfloat16: descr = "<f4"
        case .float16: descr = "<f2"
        case .float64: descr = "<f8"
        case .bool: descr = "|b1"
        }
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        // Version 2 only when the header does not fit a 2-byte length, as numpy does.
        let major: UInt8 = 10 + header.utf8.count + 1 + 63 > 0xFFFF ? 2 : 1
        let preamble = major == 1 ? 10 : 12
        // Pad so that the data starts on a 64-byte boundary, as numpy does; the header ends in a newline.
        let unpadded = preamble + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, major, 0])
        let length = header.utf8.count
        data.append(contentsOf: (0..<(preamble - 8)).map { UInt8(truncatingIfNeeded: length >> (8 * $0)) })
        data.append(contentsOf: Array(header.utf8))
        return data
    }
}
