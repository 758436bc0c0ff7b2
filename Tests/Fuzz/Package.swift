// swift-tools-version: 6.0
import PackageDescription

// libFuzzer targets, in a package of their own: an executable whose only entry point is
// LLVMFuzzerTestOneInput links only with libFuzzer's main, so it cannot live in the root package,
// whose plain `swift build` must keep working. Built and run by .ci/run:
//
//   swift build -c release --package-path Tests/Fuzz --sanitize fuzzer --sanitize address -Xswiftc -parse-as-library
//   Tests/Fuzz/.build/release/FuzzNPY -max_total_time=60 <corpus> Tests/Fuzz/Corpus/npy
let package = Package(
    name: "SDPAFuzz",
    platforms: [.macOS(.v13), .iOS(.v16), .tvOS(.v16), .watchOS(.v9), .visionOS(.v1)],  // SDPA's
    dependencies: [.package(name: "SDPA", path: "../..")],
    targets: [
        // Tensor(npyData:): every input either reads or is an SDPAError, and what reads writes back the same.
        .executableTarget(name: "FuzzNPY", dependencies: [.product(name: "SDPA", package: "SDPA")]),
        // `sdpa run`'s arguments and --bias spellings, up to the attention call on small inputs.
        .executableTarget(
            name: "FuzzRunArguments",
            dependencies: [.product(name: "SDPA", package: "SDPA"), .product(name: "SDPACommandLine", package: "SDPA")]),
    ],
    swiftLanguageModes: [.v6]
)
