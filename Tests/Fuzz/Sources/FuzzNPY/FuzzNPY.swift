import Foundation
import SDPA

/// One fuzzing input: the bytes of a `.npy` file. Reading either gives a tensor or throws an
/// `SDPAError`; a tensor that reads is written and read back to the same shape, dtype and bits.
/// Anything else (a trap, another error, a mismatch) stops the fuzzer with the input saved.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNPY(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> Int32 {
    let data = Data(bytes: bytes, count: count)
    let tensor: Tensor
    do { tensor = try Tensor(npyData: data) } catch is SDPAError { return 0 } catch {
        fatalError("Tensor(npyData:) threw \(type(of: error)), not SDPAError: \(error)")
    }
    do {
        let back = try Tensor(npyData: try tensor.npyData())
        guard back.shape == tensor.shape, back.dtype == tensor.dtype,
              back.doubleScalars.map(\.bitPattern) == tensor.doubleScalars.map(\.bitPattern)
        else { fatalError("a tensor of shape \(tensor.shape) \(tensor.dtype) does not survive a round trip") }
    } catch {
        fatalError("writing back a tensor that was read failed: \(error)")
    }
    return 0
}
