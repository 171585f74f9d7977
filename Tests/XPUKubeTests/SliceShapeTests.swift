import Testing
import XPUKube

@Suite struct SliceShapeTests {
    @Test func quantitiesAreWholeNumbers() {
        #expect(KubeQuantity.parse("4Gi") == 4 << 30)
        #expect(KubeQuantity.parse("1536Mi") == 1536 << 20)
        #expect(KubeQuantity.parse("30") == 30)
        #expect(KubeQuantity.parse("1.5G") == 1_500_000_000)
        #expect(KubeQuantity.parse("100m") == 1)  // rounded up
        #expect(KubeQuantity.parse("1e3") == 1000)
        #expect(KubeQuantity.parse("0") == 0)
        for bad in ["", "Gi", "4GiB", "-1", "1.2.3", "16Ei", "99999999999999999999999"] {
            #expect(KubeQuantity.parse(bad) == nil, "\(bad)")
        }
        #expect(KubeQuantity.bytes(4 << 30) == "4Gi")
        #expect(KubeQuantity.bytes(1536 << 20) == "1536Mi")
        #expect(KubeQuantity.bytes(1000) == "1000")
    }

    @Test func annotationBecomesXPUSlice() throws {
        let shape = try SliceShape(annotation: "mem=4GiB, compute=30%,priority=high,mode=capped")
        #expect(shape == SliceShape(memoryBytes: 4 << 30, computePercent: 30, priority: .high, mode: .capped))
        #expect(shape.xpuSlice() == "mem=4GiB,compute=30%,priority=high,mode=capped")
        #expect(shape.xpuSlice(device: 2) == "mem=4GiB,compute=30%,priority=high,mode=capped,device=2")
        #expect(try SliceShape(annotation: "mem=1536Mi").xpuSlice() == "mem=1536MiB")
        #expect(try SliceShape(annotation: "compute=40").xpuSlice() == "compute=40%")
    }

    @Test(arguments: ["", "mem", "mem=", "mem=lots", "compute=0", "compute=101%", "compute=2.5", "priority=urgent",
        "mode=free", "device=1", "grant=x", "mem=1GiB,mem=2GiB"])
    func badAnnotationsAreRefused(_ text: String) {
        #expect(throws: KubeError.self) { try SliceShape(annotation: text) }
    }
}
