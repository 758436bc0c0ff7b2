import Foundation
import Testing

/// The layer rules of `Sources/SDPA/README.md`: no folder uses a name declared in a folder above it.
@Suite("Layer rules")
struct LayerRuleTests {
    /// The folders of `Sources/SDPA`, lowest first; a folder may use its own level and those below.
    static let levels: [[String]] = [
        ["Tensor", "Support", "Attention"],
        ["Kernels"],
        // One level: a bias type's default `dispatch` runs the routed paths, and the routing reads biases.
        ["Bias", "Dispatch"],
        ["Layers", "Serving"],
    ]

    static let moduleDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/SDPA")

    /// The folders above `folder`'s level.
    static func above(_ folder: String) -> Set<String> {
        guard let level = levels.firstIndex(where: { $0.contains(folder) }) else { return [] }
        return Set(levels[(level + 1)...].joined())
    }

    @Test("every folder of Sources/SDPA has a level")
    func everyFolderHasALevel() throws {
        let folders = try FileManager.default.contentsOfDirectory(atPath: Self.moduleDirectory.path).filter { name in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: Self.moduleDirectory.appendingPathComponent(name).path, isDirectory: &isDirectory)
                && isDirectory.boolValue && !name.hasSuffix(".docc")
        }
        #expect(!folders.isEmpty, "no folders under \(Self.moduleDirectory.path)")
        for folder in folders {
            #expect(Self.levels.joined().contains(folder), "Sources/SDPA/\(folder) is in no level of LayerRuleTests.levels (and README.md)")
        }
    }

    @Test("no folder uses a name declared in a folder above it (Kernels never Bias, Tensor none of Kernels, Bias, Dispatch)")
    func noUpwardUses() throws {
        let layers = try SourceLayers(moduleDirectory: Self.moduleDirectory)
        #expect(layers.files.count > 50, "read \(layers.files.count) files")
        // What the reading must find, or it would pass vacuously.
        #expect(layers.declarations["Tensor"] == "Tensor" && layers.declarations["_FusedBiasKernel"] == "Bias")
        #expect(layers.declarations["_fusedAttention"] == "Kernels" && layers.declarations["_route"] == "Dispatch")
        for folder in Self.levels.joined() {
            let uses = layers.uses(from: folder, of: Self.above(folder))
            #expect(uses.isEmpty, "\(folder)/ uses names of a higher layer:\n\(uses.map { "  \($0)" }.joined(separator: "\n"))")
        }
    }

    /// The folders that may reach the C kernels: the kernel layer, and the layers above it that run their
    /// own loops (a matrix product, a paged cache's row addresses). Bias, Dispatch, Tensor, Support and
    /// Attention go through `Kernels/`.
    static let cKernelFolders: Set<String> = ["Kernels", "Layers", "Serving"]

    @Test("only Kernels (and Layers, Serving above it) import CSDPAKernels or call its sdpa_ functions")
    func cKernelsStayInTheKernelLayer() throws {
        let layers = try SourceLayers(moduleDirectory: Self.moduleDirectory)
        // What the reading must find, or it would pass vacuously.
        #expect(layers.files.contains { $0.folder == "Kernels" && !SourceLayers.cKernelUses($0.code).isEmpty })
        for file in layers.files where !Self.cKernelFolders.contains(file.folder) {
            let uses = SourceLayers.cKernelUses(file.code)
            #expect(uses.isEmpty, "\(file.path) reaches the C kernels: \(uses.joined(separator: ", "))")
        }
    }

    @Test("the C-kernel check finds an import and a call, and not a mention in a comment")
    func findsCKernelUses() {
        #expect(SourceLayers.cKernelUses(SourceLayers.codeOnly("import CSDPAKernels\nlet x = sdpa_kernels_isa()"))
                == ["import CSDPAKernels", "sdpa_kernels_isa"])
        #expect(SourceLayers.cKernelUses(SourceLayers.codeOnly("// import CSDPAKernels, sdpa_pack_keys\nlet s = \"sdpa_x\"")).isEmpty)
    }

    @Test("the reading finds a violation, and is not fooled by comments or strings")
    func findsViolations() {
        let layers = SourceLayers(sources: [
            ("Bias/Thing.swift", "Bias", """
                /// A bias.
                public struct ThingBias: AttnBias {
                    func helper() {}
                }
                @usableFromInline
                func _thingHelper() -> Int { 1 }
                private func _hidden() {}
                extension Float {
                    static var thingScale: Float { 2 }
                }
                """),
            ("Kernels/Good.swift", "Kernels", """
                // ThingBias in a comment, /* _thingHelper() */ in a block comment
                let text = "ThingBias in a string"
                let nested = "\\(1 + 2) _thingHelper"
                func _hidden() {}
                """),
            ("Kernels/Bad.swift", "Kernels", """
                func run(_ bias: ThingBias) -> String {
                    "value: \\(_thingHelper())" + "\\(Float.thingScale)"
                }
                """),
        ])
        let uses = layers.uses(from: "Kernels", of: ["Bias"])
        #expect(uses.map(\.description) == [
            "Kernels/Bad.swift uses ThingBias (declared in Bias/)",
            "Kernels/Bad.swift uses _thingHelper (declared in Bias/)",
            "Kernels/Bad.swift uses thingScale (declared in Bias/)",
        ])
        #expect(layers.declarations["_hidden"] == "Kernels", "a private declaration is the file's own")
        #expect(layers.declarations["helper"] == nil, "a member is not a top-level name")
    }
}
