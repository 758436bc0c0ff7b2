import Foundation
import PackagePlugin

/// `swift package --allow-writing-to-package-directory benchmark [--filter NAME] [--pytorch PYTHON] [--quick]`
///
/// Builds each benchmark executable of `Benchmarks/` in release mode, runs it, and leaves in
/// `results/` its JSON (`<Name>.json`) and chart (`<Name>.svg`); the table goes to standard output.
/// Then `BenchmarkPage` writes `results/index.html`: every report in `results/`, charts and tables,
/// on one self-contained page.
/// With `--pytorch PYTHON`, `Benchmarks/pytorch_bench.py` first runs PyTorch on the benchmark's
/// workloads (`results/pytorch-<Name>.json`); a PyTorch JSON already in `results/` is compared too.
/// `KernelThroughput`, `Decode` and `Embed` instead time PyTorch themselves, workload by workload between
/// their own timings (`--rounds N` rounds, default 3), so that both sides see the same spells of a shared machine.
/// Any other argument is passed to every benchmark (e.g. `--threads 1`).
@main
struct BenchmarkPlugin: CommandPlugin {
    func performCommand(context: PluginContext, arguments: [String]) async throws {
        var extractor = ArgumentExtractor(arguments)
        let filters = extractor.extractOption(named: "filter")
        let python = extractor.extractOption(named: "pytorch").last
        let passThrough = extractor.remainingArguments

        let packageDirectory = context.package.directoryURL
        let benchmarksDirectory = packageDirectory.appending(path: "Benchmarks")
        // A benchmark is an executable product whose target lives in Benchmarks/<Name>.
        let benchmarks = context.package.products.compactMap { $0 as? ExecutableProduct }.filter { product in
            guard let target = product.mainTarget as? SwiftSourceModuleTarget else { return false }
            return target.directoryURL.deletingLastPathComponent().standardizedFileURL.path == benchmarksDirectory.standardizedFileURL.path
        }.map(\.name).sorted()
        let selected = filters.isEmpty ? benchmarks : benchmarks.filter { name in filters.contains { name.localizedCaseInsensitiveContains($0) } }
        guard !selected.isEmpty else {
            throw BenchmarkPluginError("no benchmark matches --filter \(filters.joined(separator: ", ")); benchmarks: \(benchmarks.joined(separator: ", "))")
        }

        let results = packageDirectory.appending(path: "results")
        try FileManager.default.createDirectory(at: results, withIntermediateDirectories: true)
        for name in selected {
            print("== \(name): building (release)")
            let build = try packageManager.build(.product(name), parameters: .init(configuration: .release, logging: .concise))
            guard build.succeeded, let executable = build.builtArtifacts.first(where: { $0.kind == .executable })?.url else {
                print(build.logText)
                throw BenchmarkPluginError("building \(name) failed")
            }
            let json = results.appending(path: "\(name).json")
            let pytorchJSON = results.appending(path: "pytorch-\(name).json")
            var benchmarkArguments = ["--json", json.path, "--svg", results.appending(path: "\(name).svg").path]
            if let python, let script = Self.interleavesPyTorch[name] {
                benchmarkArguments += [
                    "--pytorch", python, "--pytorch-json", pytorchJSON.path,
                    "--pytorch-script", benchmarksDirectory.appending(path: script).path,
                ]
            } else if let python {
                let workloads = results.appending(path: "\(name).workloads.json")
                try run(executable, ["--list", "--json", workloads.path] + passThrough)
                print("== \(name): PyTorch")
                try run(URL(fileURLWithPath: python), [
                    benchmarksDirectory.appending(path: "pytorch_bench.py").path,
                    "--benchmark", name, "--workloads", workloads.path, "--json", pytorchJSON.path,
                ] + passThrough)
            }
            print("== \(name): running")
            if !benchmarkArguments.contains("--pytorch"), FileManager.default.fileExists(atPath: pytorchJSON.path) {
                benchmarkArguments += ["--compare", pytorchJSON.path]
            }
            try run(executable, benchmarkArguments + passThrough)
            print("== \(name): wrote \(json.path) and \(name).svg")
        }
        print("== results page: building (release)")
        let page = try packageManager.build(.product("BenchmarkPage"), parameters: .init(configuration: .release, logging: .concise))
        guard page.succeeded, let pageTool = page.builtArtifacts.first(where: { $0.kind == .executable })?.url else {
            print(page.logText)
            throw BenchmarkPluginError("building BenchmarkPage failed")
        }
        try run(pageTool, [results.path])
    }

    /// Benchmarks that take `--pytorch` themselves and interleave PyTorch's timings with their own, and the
    /// script in `Benchmarks/` that serves PyTorch's side.
    static let interleavesPyTorch: [String: String] = [
        "KernelThroughput": "pytorch_bench.py", "Decode": "pytorch_bench.py", "Embed": "embed_bench.py",
    ]

    /// Runs `executable` with `arguments`, its output going straight to the terminal.
    private func run(_ executable: URL, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            throw BenchmarkPluginError("\(executable.lastPathComponent) \(arguments.joined(separator: " ")) failed with status \(process.terminationStatus)")
        }
    }
}

/// A failure of the benchmark plugin, shown as its message.
struct BenchmarkPluginError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
