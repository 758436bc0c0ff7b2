import Foundation

/// Every error of reading a model directory or running it: each names the file or tensor at fault
/// and what was expected, so a user can tell a truncated download from a model of another kind.
public enum EmbeddingError: Error, Equatable, Sendable, CustomStringConvertible, LocalizedError {
    /// A `.safetensors` file is malformed: its header, an entry, or the offsets do not hold together.
    case safetensors(path: String, reason: String)
    /// A tensor the model needs is not in its weights.
    case missingTensor(name: String, path: String)
    /// A tensor has another shape or dtype than the configuration implies.
    case tensorMismatch(name: String, shape: [Int], dtype: String, expected: String)
    /// A configuration file (`config.json`, the pooling or tokenizer settings) is missing or malformed, or
    /// describes a model this implementation does not run.
    case configuration(path: String, reason: String)
    /// The WordPiece vocabulary is missing or lacks a token the tokenizer needs.
    case vocabulary(path: String, reason: String)
    /// An argument of an embedding call is out of range.
    case invalidArgument(argument: String, value: String, reason: String)

    /// The message, naming the file or tensor.
    public var description: String {
        switch self {
        case let .safetensors(path, reason): return "\(path): not a valid safetensors file: \(reason)"
        case let .missingTensor(name, path): return "\(path): has no tensor '\(name)'"
        case let .tensorMismatch(name, shape, dtype, expected): return "tensor '\(name)' is \(dtype) \(shape); expected \(expected)"
        case let .configuration(path, reason): return "\(path): \(reason)"
        case let .vocabulary(path, reason): return "\(path): \(reason)"
        case let .invalidArgument(argument, value, reason): return "\(argument) = \(value): \(reason)"
        }
    }

    /// ``description``, so that `localizedDescription` shows it.
    public var errorDescription: String? { description }
}
