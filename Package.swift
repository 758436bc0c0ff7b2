// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "SDPA",
    products: [
        .library(name: "SDPA", targets: ["SDPA"]),
        .executable(name: "sdpa", targets: ["SDPACommand"]),
        // The command as a library: what the fuzzing package (Tests/Fuzz) drives, without a process.
        .library(name: "SDPACommandLine", targets: ["SDPACommandLine"]),
        .executable(name: "DispatchOverhead", targets: ["DispatchOverhead"]),
        .executable(name: "KernelThroughput", targets: ["KernelThroughput"]),
        .executable(name: "Memory", targets: ["Memory"]),
        .executable(name: "BiasScaling", targets: ["BiasScaling"]),
    ],
    targets: [
        // Only the innermost ISA micro-kernels live in C, so that AVX2+FMA variants can be
        // chosen at run time with no unsafe build flags (see RFC.md, "Instruction set").
        .target(name: "CSDPAKernels"),
        .target(name: "SDPA", dependencies: ["CSDPAKernels"]),
        .testTarget(
            name: "SDPATests",
            dependencies: ["SDPA"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(name: "SDPAExternalTests", dependencies: ["SDPA"]),

        // Timing, memory, JSON and SVG, shared by `sdpa bench` and the benchmark executables.
        .target(name: "SDPABenchmarkHarness", dependencies: ["SDPA"]),
        // The `sdpa` command as a library, so that tests run it in process, and a thin executable.
        // The executable's module is not called `sdpa`: it would collide with `SDPA` on a
        // case-insensitive file system.
        .target(name: "SDPACommandLine", dependencies: ["SDPA", "SDPABenchmarkHarness"]),
        .executableTarget(name: "SDPACommand", dependencies: ["SDPACommandLine"], path: "Sources/sdpa"),
        .testTarget(name: "SDPACLITests", dependencies: ["SDPA", "SDPABenchmarkHarness", "SDPACommandLine"]),

        // Benchmarks/<Name>/<Name>.swift, run by `swift package benchmark` (Plugins/Benchmark).
        .executableTarget(
            name: "DispatchOverhead", dependencies: ["SDPA", "SDPABenchmarkHarness", "SDPACommandLine"],
            path: "Benchmarks/DispatchOverhead"),
        .executableTarget(
            name: "KernelThroughput", dependencies: ["SDPA", "SDPABenchmarkHarness", "SDPACommandLine"],
            path: "Benchmarks/KernelThroughput"),
        .executableTarget(
            name: "Memory", dependencies: ["SDPA", "SDPABenchmarkHarness", "SDPACommandLine"],
            path: "Benchmarks/Memory"),
        .executableTarget(
            name: "BiasScaling", dependencies: ["SDPA", "SDPABenchmarkHarness", "SDPACommandLine"],
            path: "Benchmarks/BiasScaling"),
        .plugin(
            name: "Benchmark",
            capability: .command(
                intent: .custom(verb: "benchmark", description: "Build the benchmarks in release mode, run them, and write JSON and SVG into results/"),
                permissions: [.writeToPackageDirectory(reason: "The benchmark results (JSON, SVG) are written to results/")]
            )
        ),
    ],
    swiftLanguageModes: [.v6]
)
