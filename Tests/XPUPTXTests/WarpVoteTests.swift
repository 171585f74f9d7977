import Testing
@testable import XPUPTX

/// `vote` in its `.sync` and pre-Volta forms: `.uni` is true only when the predicate is the same
/// on every participating lane, whether the warp is converged or diverged.
@Suite struct WarpVoteTests {
    @Test func uniformityAcrossConvergedAndDivergedLanes() throws {
        let out = try runBody(
            """
                setp.lt.u32 %p1, %r0, 100;
                and.b32 %r1, %r0, 1;
                setp.eq.u32 %p2, %r1, 1;
                vote.sync.uni.pred %p3, %p1, -1;
                vote.sync.uni.pred %p4, %p2, -1;
                vote.sync.uni.pred %p5, !%p1, -1;
                vote.uni.pred %p6, %p2;
                vote.any.pred %p7, %p2;
                selp.u32 %r2, 1, 0, %p3;
                selp.u32 %r3, 1, 0, %p4;
                selp.u32 %r4, 1, 0, %p5;
                selp.u32 %r5, 1, 0, %p6;
                selp.u32 %r6, 1, 0, %p7;
                st.global.u64 [%rd1], %r2;
                st.global.u64 [%rd1+8], %r3;
                st.global.u64 [%rd1+16], %r4;
                st.global.u64 [%rd1+24], %r5;
                st.global.u64 [%rd1+32], %r6;
                @%p2 bra ODD;
                // Even lanes only: %p2 is false on all of them, so it is uniform here.
                vote.sync.uni.pred %p3, %p2, 0x55555555;
                setp.lt.u32 %p4, %r0, 8;
                vote.sync.uni.pred %p5, %p4, 0x55555555;
                vote.sync.ballot.b32 %r7, %p4, 0x55555555;
                selp.u32 %r8, 1, 0, %p3;
                selp.u32 %r9, 1, 0, %p5;
                st.global.u64 [%rd1+40], %r8;
                st.global.u64 [%rd1+48], %r9;
                st.global.u64 [%rd1+56], %r7;
            ODD:
            """, threads: 32)
        for t in 0..<32 {
            #expect(out[t][0...4] == [1, 0, 1, 0, 1], "t=\(t)")
            if t % 2 == 0 { #expect(out[t][5...7] == [1, 0, 0b0101_0101], "t=\(t)") }
        }
    }
}
