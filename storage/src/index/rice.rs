//! Fingerprint sets of index v3 as Golomb-Rice codes: one partition's sorted 16-bit sets
//! (one per posting block) in a bit stream, about 1.33 bytes a fingerprint at 128 per set.

/// Rice parameters a partition may use: remainders of 0 to 15 bits.
pub const MAX_RICE_BITS: u8 = 15;
/// Most fingerprints one set can hold: every 16-bit value once.
const MAX_SET: u64 = 1 << 16;

/// Appends bits least significant first, eight to a byte.
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    bits: u32,
}

impl BitWriter {
    /// The low `n` (≤ 32) bits of `value`.
    fn put(&mut self, value: u32, n: u32) {
        debug_assert!(n <= 32 && (n == 32 || value >> n == 0));
        self.acc |= u64::from(value) << self.bits;
        self.bits += n;
        while self.bits >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.bits -= 8;
        }
    }

    /// `q` zero bits, then a one.
    fn unary(&mut self, mut q: u64) {
        while q >= 32 {
            self.put(0, 32);
            q -= 32;
        }
        self.put(1 << q, q as u32 + 1);
    }

    fn rice(&mut self, value: u32, k: u8) {
        self.unary(u64::from(value >> k));
        self.put(value & ((1 << k) - 1), u32::from(k));
    }

    /// Elias gamma of `m` ≥ 1: its bit length minus one in unary, then its bits below the top.
    fn gamma(&mut self, m: u32) {
        let top = 31 - m.leading_zeros();
        self.unary(u64::from(top));
        self.put(m & ((1 << top) - 1), top);
    }

    /// The bytes, the last padded with zero bits.
    fn finish(mut self) -> Vec<u8> {
        if self.bits > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// Reads what [`BitWriter`] wrote; `None` past the end.
struct BitReader<'a> {
    bytes: &'a [u8],
    /// Position in bits.
    pos: usize,
}

impl BitReader<'_> {
    /// The next up-to-57 bits at the position (zeros past the end) and how many are real.
    fn peek(&self) -> (u64, usize) {
        let byte = self.pos / 8;
        let mut word = [0u8; 8];
        let end = (byte + 8).min(self.bytes.len());
        if byte < end {
            word[..end - byte].copy_from_slice(&self.bytes[byte..end]);
        }
        let shift = self.pos % 8;
        let real = ((end.saturating_sub(byte)) * 8).saturating_sub(shift);
        (u64::from_le_bytes(word) >> shift, real.min(64 - 7))
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        debug_assert!(n <= 32);
        let (word, real) = self.peek();
        if (n as usize) > real {
            return None;
        }
        self.pos += n as usize;
        Some((word & ((1u64 << n) - 1)) as u32)
    }

    /// Zero bits up to a one, consumed with it; `None` if more than `max` zeros or past the end.
    fn unary(&mut self, max: u64) -> Option<u64> {
        let mut q = 0u64;
        loop {
            let (word, real) = self.peek();
            if real == 0 {
                return None;
            }
            let zeros = u64::from(word.trailing_zeros()).min(real as u64);
            if zeros < real as u64 {
                q += zeros;
                self.pos += zeros as usize + 1;
                return (q <= max).then_some(q);
            }
            q += zeros;
            self.pos += zeros as usize;
            if q > max {
                return None;
            }
        }
    }

    fn rice(&mut self, k: u8, max: u32) -> Option<u32> {
        let q = self.unary(u64::from(max >> k))?;
        let value = (q << k) as u32 | self.bits(u32::from(k))?;
        (value <= max).then_some(value)
    }

    fn gamma(&mut self, max: u64) -> Option<u64> {
        let top = self.unary(u64::from(64 - max.leading_zeros()))?;
        let m = 1u64 << top | u64::from(self.bits(top as u32)?);
        (m <= max).then_some(m)
    }
}

/// The values a set is coded as: its first fingerprint, then each gap minus one.
fn coded(set: &[u16]) -> impl Iterator<Item = u32> + '_ {
    set.iter().enumerate().map(move |(i, &f)| {
        if i == 0 {
            u32::from(f)
        } else {
            u32::from(f - set[i - 1] - 1)
        }
    })
}

/// Encodes one partition: the Rice parameter `k` as one byte, then per set the gamma code of
/// its length + 1 and its values Rice-coded with `k`. `k` is the one giving the fewest bits.
/// Each set must be strictly increasing.
pub fn encode_partition(sets: &[&[u16]]) -> Vec<u8> {
    let mut cost = [0u64; MAX_RICE_BITS as usize + 1];
    for set in sets {
        for v in coded(set) {
            for (k, c) in cost.iter_mut().enumerate() {
                *c += u64::from(v >> k) + 1 + k as u64;
            }
        }
    }
    let k = (0..=MAX_RICE_BITS)
        .min_by_key(|&k| cost[k as usize])
        .expect("non-empty range");
    let mut w = BitWriter {
        out: vec![k],
        acc: 0,
        bits: 0,
    };
    for set in sets {
        debug_assert!(set.windows(2).all(|p| p[0] < p[1]));
        w.gamma(set.len() as u32 + 1);
        for v in coded(set) {
            w.rice(v, k);
        }
    }
    w.finish()
}

/// Decodes `sets` sets written by [`encode_partition`]. `Err` says what is wrong: a bad
/// parameter, a set too long, a value past 16 bits, bytes or set bits left over.
pub fn decode_partition(bytes: &[u8], sets: u32) -> Result<Vec<Vec<u16>>, &'static str> {
    let (&k, stream) = bytes.split_first().ok_or("empty")?;
    if k > MAX_RICE_BITS {
        return Err("bad rice parameter");
    }
    let mut r = BitReader {
        bytes: stream,
        pos: 0,
    };
    // Every set takes at least one bit.
    if sets as usize > stream.len() * 8 {
        return Err("more sets than bits");
    }
    let mut out = Vec::with_capacity(sets as usize);
    for _ in 0..sets {
        let n = r.gamma(MAX_SET + 1).ok_or("bad set length")? - 1;
        // Each fingerprint takes at least k + 1 bits.
        if n * (u64::from(k) + 1) > (stream.len() * 8 - r.pos.min(stream.len() * 8)) as u64 {
            return Err("set longer than its partition");
        }
        let mut set = Vec::with_capacity(n as usize);
        let mut next = 0u32;
        for _ in 0..n {
            let room = u32::from(u16::MAX)
                .checked_sub(next)
                .ok_or("fingerprint past 16 bits")?;
            let v = r.rice(k, room).ok_or("fingerprint past 16 bits")?;
            let f = next + v;
            set.push(f as u16);
            next = f + 1;
        }
        out.push(set);
    }
    let used = r.pos.div_ceil(8);
    if used != stream.len() || (!r.pos.is_multiple_of(8) && stream[used - 1] >> (r.pos % 8) != 0) {
        return Err("bytes after the last set");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(sets: &[Vec<u16>]) -> Vec<u8> {
        let refs: Vec<&[u16]> = sets.iter().map(Vec::as_slice).collect();
        let bytes = encode_partition(&refs);
        assert_eq!(decode_partition(&bytes, sets.len() as u32).unwrap(), sets);
        bytes
    }

    #[test]
    fn sets_round_trip_at_every_density() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for per_set in [0usize, 1, 3, 40, 128, 1000, 30_000] {
            let sets: Vec<Vec<u16>> = (0..7)
                .map(|_| {
                    let mut s: Vec<u16> = (0..per_set).map(|_| next() as u16).collect();
                    s.sort_unstable();
                    s.dedup();
                    s
                })
                .collect();
            round_trip(&sets);
        }
        round_trip(&[vec![], vec![0], vec![u16::MAX], vec![0, u16::MAX], vec![]]);
        round_trip(&[(0..=u16::MAX).collect()]);
        assert_eq!(round_trip(&[]), [0]);
    }

    #[test]
    fn about_one_and_a_third_bytes_a_fingerprint_at_128_per_set() {
        let mut state = 7u64;
        let sets: Vec<Vec<u16>> = (0..500)
            .map(|_| {
                let mut s: Vec<u16> = (0..128)
                    .map(|_| {
                        state = state
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        (state >> 48) as u16
                    })
                    .collect();
                s.sort_unstable();
                s.dedup();
                s
            })
            .collect();
        let prints: usize = sets.iter().map(Vec::len).sum();
        let bytes = round_trip(&sets).len();
        let per = bytes as f64 / prints as f64;
        assert!((1.25..1.45).contains(&per), "{per} bytes a fingerprint");
    }

    #[test]
    fn damage_is_an_error_never_a_panic() {
        let sets = [vec![3u16, 900, 901, 40_000], vec![], vec![7]];
        let refs: Vec<&[u16]> = sets.iter().map(Vec::as_slice).collect();
        let good = encode_partition(&refs);
        assert!(decode_partition(&good, 4).is_err(), "a set too many");
        assert!(decode_partition(&good, 2).is_err(), "bits left over");
        assert!(decode_partition(&good[..good.len() - 1], 3).is_err());
        assert!(decode_partition(&[16], 0).is_err(), "bad parameter");
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(decode_partition(&trailing, 3).is_err());
        for i in 0..good.len() * 8 {
            let mut bad = good.clone();
            bad[i / 8] ^= 1 << (i % 8);
            if let Ok(decoded) = decode_partition(&bad, 3) {
                assert!(decoded.iter().all(|s| s.windows(2).all(|p| p[0] < p[1])));
            }
        }
        // A long run of zeros is a unary code that never ends, not a loop.
        assert!(decode_partition(&[0; 64], 1).is_err());
    }
}
