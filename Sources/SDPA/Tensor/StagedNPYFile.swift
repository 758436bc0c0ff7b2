import Foundation

/// A tensor's `.npy` file written in full under a temporary name in its destination's folder, and put in
/// place by ``commit()``, one `rename`: a reader never sees a half-written file, and a write that fails
/// (or is never committed) leaves nothing behind. Several staged files committed together let a command
/// that writes more than one output write all of them or, if any cannot be written, none.
///
/// A destination that is a symbolic link is written through: the file it points to is replaced, the
/// link stays. One that exists and is not a regular file (`/dev/stdout`, a pipe) cannot be renamed over,
/// so ``commit()`` writes to it directly.
package final class _StagedNPYFile {
    /// Where the file goes, as given.
    package let url: URL
    /// The file the bytes go to: `url`, or what it links to.
    private let destination: String
    /// The temporary file, or `nil` for a destination written directly (the bytes wait in `stored`).
    private let temporaryPath: String?
    private let stored: Tensor?
    private var isCommitted = false

    /// Writes `tensor`'s `.npy` bytes to a new temporary file next to `url`.
    ///
    /// - Throws: ``SDPAError/npy(path:reason:)`` naming `url` when the file cannot be written, and the
    ///   errors of ``Tensor/npyData()``.
    package init(_ tensor: Tensor, at url: URL) throws {
        self.url = url
        let stored = try tensor._npyStored()
        var info = stat()
        let exists = stat(url.path, &info) == 0
        if exists, let resolved = realpath(url.path, nil) {
            destination = String(cString: resolved)
            free(resolved)
        } else {
            destination = url.path
        }
        if exists && info.st_mode & S_IFMT != S_IFREG {
            (temporaryPath, self.stored) = (nil, stored)
            return
        }
        let folder = URL(fileURLWithPath: destination).deletingLastPathComponent()
        let temporaryPath = folder.appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp").path
        (self.temporaryPath, self.stored) = (temporaryPath, nil)
        let flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC
        try _StagedNPYFile.write(stored, to: temporaryPath, flags: flags, naming: url)
    }

    /// Renames the file into place, replacing any file already there (or writes a non-regular destination).
    ///
    /// - Throws: ``SDPAError/npy(path:reason:)`` when that fails; the temporary file is then removed.
    package func commit() throws {
        guard !isCommitted else { return }
        isCommitted = true
        guard let temporaryPath else {
            return try _StagedNPYFile.write(stored!, to: destination, flags: O_WRONLY | O_TRUNC | O_CLOEXEC, naming: url)
        }
        guard rename(temporaryPath, destination) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporaryPath)
            throw SDPAError.npy(path: url.path, reason: "cannot write the file (renaming it into place failed: \(reason))")
        }
    }

    deinit {
        if !isCommitted, let temporaryPath { unlink(temporaryPath) }
    }

    /// Writes `tensor`'s `.npy` bytes (contiguous, not bfloat16) to `path`, opened with `flags`; a
    /// file created here is removed again when writing fails.
    private static func write(_ tensor: Tensor, to path: String, flags: Int32, naming url: URL) throws {
        func fail(_ what: String) -> SDPAError {
            .npy(path: url.path, reason: "cannot write the file (\(what): \(String(cString: strerror(errno))))")
        }
        let descriptor = open(path, flags, 0o666)
        guard descriptor >= 0 else { throw fail(flags & O_CREAT != 0 ? "cannot create a file in its folder" : "cannot open it") }
        var failure: SDPAError?
        func writeAll(_ pointer: UnsafeRawPointer, _ count: Int) {
            var done = 0
            while failure == nil, done < count {
                let n = Foundation.write(descriptor, pointer + done, Swift.min(count - done, 1 << 30))
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { failure = fail("writing failed"); return }
                done += n
            }
        }
        tensor.npyHeader.withUnsafeBytes { writeAll($0.baseAddress!, $0.count) }
        let width = tensor.dtype.byteWidth
        writeAll(tensor._storage.bytes + tensor._offset * width, tensor.count * width)
        if close(descriptor) != 0, failure == nil { failure = fail("closing failed") }
        if let failure {
            if flags & O_CREAT != 0 { unlink(path) }
            throw failure
        }
    }
}
