/// Where a bias materializes its mask and where attention runs.
///
/// Only the CPU exists today; the type is here so that a GPU backend can be
/// added without changing the signature every ``AttnBias`` conformer implements.
public enum Device: Sendable, Hashable, CustomStringConvertible {
    /// The host processor.
    case cpu

    /// The device's name, as PyTorch spells it.
    public var description: String { "cpu" }
}
