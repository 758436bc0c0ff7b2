import CSDPAKernels

extension DType {
    /// The element kind the kernel layer reads or writes for this dtype: float16 and bfloat16 as
    /// themselves, float32 otherwise (the kernels see no other dtype).
    @inlinable var _elementKind: sdpa_element_kind {
        self == .float16 ? SDPA_ELEMENT_F16 : self == .bfloat16 ? SDPA_ELEMENT_BF16 : SDPA_ELEMENT_F32
    }
}
