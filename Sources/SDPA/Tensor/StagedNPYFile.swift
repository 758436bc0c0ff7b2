import Foundation

/// A tensor's `.npy` file written in full under a temporary name in its destination's folder, and put in
/// place by ``commit()``, one `rename`: a reader never sees a half-written file, and a write that fails
/// (or is never committed) leaves nothing behind. Several staged files committed together let a command
/// that writes more than one output write all of them or, if any cannot be written, none.
package final class _StagedNPYFile {
    /// Where the file goes.
    package let url: URL
    private let temporaryPath: String
    private var isCommitted = false

    /// Writes `tensor`'s `.npy` bytes to a new temporary file next to `url`.
    ///
    /// - Throws: ``SDPAError/npy(path:reason:)`` naming `url` when the file cannot be written, and the
    ///   errors of ``Tensor/npyData()``.
    package init(_ tensor: Tensor, at url: URL) throws {
        self.url = url
        temporaryPath = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp").path
        func fail(_ what: String) -> SDPAError {
            .npy(path: url.path, reason: "cannot write the file (\(what): \(String(cString: strerror(errno))))")
        }
        let stored = try tensor._npyStored()
        let descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        guard descriptor >= 0 else { throw fail("cannot create a file in its folder") }
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
        stored.npyHeader.withUnsafeBytes { writeAll($0.baseAddress!, $0.count) }
        let width = stored.dtype.byteWidth
        writeAll(stored._storage.bytes + stored._offset * width, stored.count * width)
        if close(descriptor) != 0, failure == nil { failure = fail("closing failed") }
        if let failure {
            unlink(temporaryPath)
            throw failure
        }
    }

    /// Renames the file into place, replacing any file already there.
    ///
    /// - Throws: ``SDPAError/npy(path:reason:)`` when the rename fails; the temporary file is then removed.
    package func commit() throws {
        guard !isCommitted else { return }
        guard rename(temporaryPath, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporaryPath)
            isCommitted = true
            throw SDPAError.npy(path: url.path, reason: "cannot write the file (renaming it into place failed: \(reason))")
        }
        isCommitted = true
    }

    deinit {
        if !isCommitted { unlink(temporaryPath) }
    }
}
