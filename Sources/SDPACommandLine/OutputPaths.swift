import Foundation

/// Which file a path names, so that two spellings of one file (`o.npy`, `./o.npy`, a symbolic or hard
/// link, `dir/../o.npy`) compare equal: the path with every link resolved, and for an existing file
/// its device and inode.
struct FileIdentity: Equatable {
    /// The absolute path with links resolved (of the folder, for a file that does not exist yet).
    let resolvedPath: String
    /// Device and inode of an existing file.
    let node: [UInt64]?

    init(path: String) {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL
        func resolved(_ path: String) -> String? {
            guard let real = realpath(path, nil) else { return nil }
            defer { free(real) }
            return String(cString: real)
        }
        resolvedPath = resolved(absolute.path)
            ?? resolved(absolute.deletingLastPathComponent().path).map { $0 + "/" + absolute.lastPathComponent }
            ?? absolute.path
        var info = stat()
        node = stat(absolute.path, &info) == 0 ? [UInt64(info.st_dev), UInt64(info.st_ino)] : nil
    }

    /// Whether both name one file.
    func isSameFile(as other: FileIdentity) -> Bool {
        resolvedPath == other.resolvedPath || (node != nil && node == other.node)
    }
}

/// Throws a ``UsageError`` when an output path names one of the inputs (it would be overwritten) or
/// another output (one would be written over the other). Each entry is the option and its path.
func checkOutputPaths(_ outputs: [(option: String, path: String)], inputs: [(option: String, path: String)], command: String) throws {
    let inputFiles = inputs.map { ($0.option, $0.path, FileIdentity(path: $0.path)) }
    var earlierOutputs = [(String, String, FileIdentity)]()
    for (option, path) in outputs {
        let file = FileIdentity(path: path)
        if let input = inputFiles.first(where: { $0.2.isSameFile(as: file) }) {
            throw UsageError("--\(option) \(path) names the --\(input.0) file \(input.1), which it would overwrite; write the output elsewhere", command: command)
        }
        if let other = earlierOutputs.first(where: { $0.2.isSameFile(as: file) }) {
            throw UsageError("--\(option) \(path) and --\(other.0) \(other.1) name the same file; give each output its own", command: command)
        }
        earlierOutputs.append((option, path, file))
    }
}
