// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "SDPA",
    // `Duration` and `ContinuousClock` (the worker pool's spin, the benchmarks' clocks), `URL.appending(path:)`
    // (model and results paths) and `split(separator:)` with a string need macOS 13 / iOS 16;
    // `Synchronization` (macOS 15 on) is used behind availability checks, with locks and GCD before it.
    platforms: [.macOS(.v13), .iOS(.v16), .tvOS(.v16), .watchOS(.v9), .visionOS(.v1)],
    products: [
        .library(name: "SDPA", targets: ["SDPA"]),
        .library(name: "SDPAEmbedding", targets: ["SDPAEmbedding"]),
        .executable(name: "sdpa", targets: ["SDPACommand"]),
        // The command as a library: what the fuzzing package (Tests/Fuzz) drives, without a process.
        .library(name: "SDPACommandLine", targets: ["SDPACommandLine"]),
        .executable(name: "DispatchOverhead", targets: ["DispatchOverhead"]),
        .executable(name: "KernelThroughput", targets: ["KernelThroughput"]),
        .executable(name: "Memory", targets: ["Memory"]),
        .executable(name: "BiasScaling", targets: ["BiasScaling"]),
        .executable(name: "Backward", targets: ["Backward"]),
        .executable(name: "Decode", targets: ["Decode"]),
        .executable(name: "ThreadScaling", targets: ["ThreadScaling"]),
        .executable(name: "BenchmarkPage", targets: ["BenchmarkPage"]),
        .executable(name: "Embed", targets: ["Embed"]),
    ],
    targets: [
        // Only the innermost ISA micro-kernels live in C, so that AVX2+FMA variants can be
        // chosen at run time with no unsafe build flags (see RFC.md, "Instruction set").
        .target(name: "CSDPAKernels"),
        // README.md: which folder holds what, and the layer rules LayerRuleTests checks.
        .target(name: "SDPA", dependencies: ["CSDPAKernels"], exclude: ["README.md"]),
        // What every test target shares: random inputs, the one closeness and bit-identity check,
        // fixture manifests, the fused sweep's cases and the kernel families to run them on.
        .target(name: "SDPATestSupport", dependencies: ["SDPA"], path: "Tests/SDPATestSupport"),
        .testTarget(
            name: "SDPATests",
            dependencies: ["SDPA", "SDPATestSupport"],
            resources: [.copy("Fixtures")]
        ),
        // The C micro-kernels against Double, and the fused kernel against the math backend, on
        // every kernel family this processor runs.
        .testTarget(name: "SDPAKernelTests", dependencies: ["SDPA", "CSDPAKernels", "SDPATestSupport"]),
        .testTarget(name: "SDPAExternalTests", dependencies: ["SDPA", "SDPATestSupport"]),

        // Sentence embeddings with a BERT-style sentence-transformers model: safetensors, WordPiece,
        // the encoder on SDPA's layers. The tiny model in the fixtures is random; the real one is
        // installed by Scripts/install-minilm.sh into Models/ (gitignored).
        .target(name: "SDPAEmbedding", dependencies: ["SDPA"]),
        .testTarget(
            name: "SDPAEmbeddingTests",
            dependencies: ["SDPA", "SDPAEmbedding"],
            resources: [.copy("Fixtures")]
        ),

        // Timing, memory, JSON and SVG, shared by `sdpa bench` and the benchmark executables.
        // CSDPAKernels directly: the machine's peak is measured by the kernel families' FMA loops.
        .target(name: "SDPABenchmarkHarness", dependencies: ["SDPA", "CSDPAKernels"]),
        // The `sdpa` command as a library, so that tests run it in process, and a thin executable.
        // The executable's module is not called `sdpa`: it would collide with `SDPA` on a
        // case-insensitive file system.
        .target(name: "SDPACommandLine", dependencies: ["SDPA", "SDPABenchmarkHarness", "SDPAEmbedding"]),
        .executableTarget(name: "SDPACommand", dependencies: ["SDPACommandLine"], path: "Sources/sdpa"),
        .testTarget(name: "SDPACLITests", dependencies: ["SDPA", "SDPABenchmarkHarness", "SDPACommandLine", "SDPATestSupport"]),

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
        .executableTarget(
            name: "Backward", dependencies: ["SDPA", "SDPABenchmarkHarness", "SDPACommandLine"],
            path: "Benchmarks/Backward"),
        .executableTarget(
            name: "Decode", dependencies: ["SDPA", "SDPABenchmarkHarness", "SDPACommandLine"],
            path: "Benchmarks/Decode"),
        .executableTarget(
            name: "ThreadScaling", dependencies: ["SDPA", "SDPABenchmarkHarness", "SDPACommandLine"],
            path: "Benchmarks/ThreadScaling"),
        // results/index.html from the reports in results/; the plugin runs it after the benchmarks.
        .executableTarget(name: "BenchmarkPage", dependencies: ["SDPABenchmarkHarness"]),
        .executableTarget(
            name: "Embed", dependencies: ["SDPA", "SDPAEmbedding", "SDPABenchmarkHarness", "SDPACommandLine"],
            path: "Benchmarks/Embed"),
        .plugin(
            name: "Benchmark",
            capability: .command(
                intent: .custom(verb: "benchmark", description: "Build the benchmarks in release mode, run them, and write JSON, SVG and index.html into results/"),
                permissions: [.writeToPackageDirectory(reason: "The benchmark results (JSON, SVG, index.html) are written to results/")]
            )
        ),
    ],
    swiftLanguageModes: [.v6]
)
