import Foundation
import SDPA
import SDPABenchmarkHarness
import Testing

/// The CPU flags `/proc/cpuinfo` lists (empty elsewhere).
private let cpuFlags: Set<String> = {
    let text = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    let line = text.split(separator: "\n").first { $0.hasPrefix("flags") } ?? ""
    return Set(line.split(separator: ":").last?.split(separator: " ").map(String.init) ?? [])
}()

@Suite("Machine peak") struct MachinePeakTests {
    @Test func everyFamilysFMALoopRunsWhereTheProcessorCanRunIt() throws {
        #if arch(x86_64)
        let avx2 = ["avx2", "fma", "f16c"].allSatisfy(cpuFlags.contains)
        let avx512 = avx2 && ["avx512f", "avx512bw", "avx512vl", "avx512dq"].allSatisfy(cpuFlags.contains)
        let bf16 = avx512 && cpuFlags.contains("avx512_bf16")
        // The kernel lists amx_tile only where it saves the tile state; it grants the tiles to a process that asks.
        let runs = ["amx": bf16 && ["amx_tile", "amx_bf16"].allSatisfy(cpuFlags.contains), "avx512": avx512, "avx512bf16": bf16,
                    "avx2": avx2, "portable": true, "neon": false]
        #elseif arch(arm64)
        let runs = ["amx": false, "avx512": false, "avx512bf16": false, "avx2": false, "portable": true, "neon": true]
        #else
        let runs = ["amx": false, "avx512": false, "avx512bf16": false, "avx2": false, "portable": true, "neon": false]
        #endif
        for (family, expected) in runs.sorted(by: { $0.key < $1.key }) {
            let peak = MachinePeak.measuredGFLOPSPerCore(family: family)
            #expect((peak != nil) == expected, "\(family): \(peak.map { "\($0)" } ?? "no loop")")
            if let peak { #expect(peak.isFinite && peak > 0, "\(family): \(peak)") }
        }
        #expect(MachinePeak.measuredGFLOPSPerCore(family: "mmx") == nil)
        #expect(MachinePeak.measuredGFLOPSPerCore(family: "") == nil)
    }

    @Test func thePeakIsMeasuredOncePerFamilyAndProcess() throws {
        // Measured again, a loop would not give the same figure to the last bit.
        for family in FusedKernelInstructionSet.available {
            let first = try #require(MachinePeak.measuredGFLOPSPerCore(family: family))
            #expect(MachinePeak.measuredGFLOPSPerCore(family: family) == first)
        }
        #expect(MachinePeak.measuredGFLOPSPerCore == MachinePeak.measuredGFLOPSPerCore(family: FusedKernelInstructionSet.current))
    }

    @Test func machineDescriptionRecordsProcessorFamilyAndWhereThePeakCameFrom() throws {
        let measured = MachineDescription(threads: 1)
        #expect(measured.peakSource == .measured && measured.kernelFamily == FusedKernelInstructionSet.current)
        #expect(measured.peakGFLOPSPerCore == MachinePeak.measuredGFLOPSPerCore && measured.peakGFLOPS == measured.peakGFLOPSPerCore)
        #expect(measured.cpuModel == MachinePeak.cpuModelName)
        #expect(measured.summary.contains("measured: \(FusedKernelInstructionSet.current) FMA loop on one thread × 1"))

        var given = MachineDescription(threads: 4, peakGFLOPSPerCore: 50)
        given.processors = 2
        #expect(given.peakSource == .given && given.peakGFLOPSPerCore == 50)
        given.peakGFLOPS = MachinePeak.gflops(threads: 4, perCore: 50)
        #expect(given.summary.hasSuffix("(50 per core, given with --peak-gflops)"))
        #expect(given.summary.contains("4 threads on 2 processors"))

        // Reports written before these fields decode with them absent.
        let old = #"{"processors": 2, "threads": 2, "peakGFLOPSPerCore": 98, "peakGFLOPS": 196}"#
        let decoded = try JSONDecoder().decode(MachineDescription.self, from: Data(old.utf8))
        #expect(decoded.cpuModel == nil && decoded.kernelFamily == nil && decoded.peakSource == nil)
        #expect(decoded.summary.contains("source not recorded"))
    }

    @Test func processorModelNameIsReadFromCPUInfo() {
        let x86 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9B45\nflags\t\t: fpu avx2\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 9B45\n"
        #expect(MachinePeak.modelName(inCPUInfo: x86) == "AMD EPYC 9B45")
        #expect(MachinePeak.modelName(inCPUInfo: "processor\t: 0\nBogoMIPS\t: 50.00\nModel\t\t: Raspberry Pi 5 Model B Rev 1.0\n") == "Raspberry Pi 5 Model B Rev 1.0")
        #expect(MachinePeak.modelName(inCPUInfo: "processor\t: 0\nmodel name\t:\n") == nil)
        #expect(MachinePeak.modelName(inCPUInfo: "") == nil)
    }
}
