// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "SDPA",
    products: [
        .library(name: "SDPA", targets: ["SDPA"]),
    ],
    targets: [
        // Only the innermost ISA micro-kernels live in C, so that AVX2+FMA variants can be
        // chosen at run time without unsafeFlags (see RFC.md, "Instruction set").
        .target(name: "CSDPAKernels"),
        .target(name: "SDPA", dependencies: ["CSDPAKernels"]),
        .testTarget(
            name: "SDPATests",
            dependencies: ["SDPA"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(name: "SDPAExternalTests", dependencies: ["SDPA"]),
    ],
    swiftLanguageModes: [.v6]
)
