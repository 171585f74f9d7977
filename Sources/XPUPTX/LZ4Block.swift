/// Decoder for the LZ4 block format (no frame): sequences of a token (literal length, match
/// length), literals, and a 16-bit back offset. Fatbinary entries of `-compress-mode=speed` use it.
enum LZ4Block {
    /// The most bytes `count` input bytes can decode to: past the first, every byte of a match's
    /// length extension adds at most 255 output bytes, so a size claimed beyond this is a lie.
    static func maximumDecodedSize(ofInputCount count: Int) -> Int { count * 255 + 19 }

    /// The decoded bytes, or nil if the input is corrupt or does not decode to `expectedSize`.
    static func decode(_ input: [UInt8], expectedSize: Int) -> [UInt8]? {
        // Checked before reserving: the size comes from the input's own header.
        guard expectedSize >= 0, expectedSize <= maximumDecodedSize(ofInputCount: input.count) else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(expectedSize)
        var i = 0
        let n = input.count
        func length(_ initial: Int) -> Int? {
            var total = initial
            guard initial == 15 else { return total }
            while true {
                guard i < n else { return nil }
                let b = Int(input[i])
                i += 1
                total += b
                guard total <= expectedSize else { return nil }
                if b != 255 { return total }
            }
        }
        while i < n {
            let token = Int(input[i])
            i += 1
            guard let literals = length(token >> 4), i + literals <= n, output.count + literals <= expectedSize else { return nil }
            output.append(contentsOf: input[i..<(i + literals)])
            i += literals
            if i == n { break }  // the last sequence has literals only
            guard i + 2 <= n else { return nil }
            let offset = Int(input[i]) | Int(input[i + 1]) << 8
            i += 2
            guard offset > 0, offset <= output.count, let match = length(token & 15) else { return nil }
            let count = match + 4
            guard output.count + count <= expectedSize else { return nil }
            // Overlapping copies repeat the bytes just written, one at a time.
            let from = output.count - offset
            for k in 0..<count { output.append(output[from + k]) }
        }
        return output.count == expectedSize ? output : nil
    }
}
