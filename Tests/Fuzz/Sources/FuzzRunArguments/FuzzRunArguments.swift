import Foundation
import SDPA
@_spi(Fuzzing) import SDPACommandLine

/// One fuzzing input: `sdpa run` arguments separated by newlines (or NUL bytes). The command's parser,
/// its --bias spellings and the attention call on small inputs (no file is read or written) either
/// succeed or report a `UsageError` (exit 2) or an `SDPAError` (exit 1); anything else, a trap
/// included, stops the fuzzer with the input saved.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRunArguments(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    let arguments = text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\0" }.map(String.init)
    do { try SDPACommandLine.checkRunArguments(arguments) } catch is UsageError {} catch is SDPAError {} catch {
        fatalError("sdpa run \(arguments) threw \(type(of: error)), neither a usage error nor an SDPAError: \(error)")
    }
    return 0
}
