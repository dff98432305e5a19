//! Checksummed frames for the catalog's files: `len u32 LE | crc32c u32 LE | bytes`, the crc
//! covering the bytes. Reading stops cleanly at a torn tail and fails on damage before it.

/// A frame claiming more than this is corrupt.
pub const MAX_FRAME_BYTES: u32 = 256 << 20;
const FRAME_HEADER_BYTES: usize = 8;

pub fn encode(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Outcome of scanning a buffer of frames.
#[derive(Debug)]
pub struct Frames<'a> {
    pub frames: Vec<&'a [u8]>,
    /// Offset just after the last good frame.
    pub good_len: usize,
    /// Set when bytes after `good_len` do not form a frame: (offset, reason).
    pub bad: Option<(usize, &'static str)>,
}

impl Frames<'_> {
    /// True when the bad part looks like an interrupted append: no intact frame after it.
    pub fn bad_is_torn_tail(&self, buf: &[u8]) -> bool {
        let Some((at, _)) = self.bad else {
            return false;
        };
        (at + 1..buf.len()).all(|start| decode_one(&buf[start..]).is_err())
    }
}

fn decode_one(buf: &[u8]) -> Result<(&[u8], usize), &'static str> {
    if buf.len() < FRAME_HEADER_BYTES {
        return Err("truncated frame header");
    }
    let len = u32::from_le_bytes(buf[0..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(buf[4..8].try_into().expect("4 bytes"));
    if len == 0 || len > MAX_FRAME_BYTES {
        return Err("bad frame length");
    }
    let end = FRAME_HEADER_BYTES + len as usize;
    if buf.len() < end {
        return Err("frame runs past the end of the file");
    }
    let payload = &buf[FRAME_HEADER_BYTES..end];
    if crc32c::crc32c(payload) != crc {
        return Err("frame checksum mismatch");
    }
    Ok((payload, end))
}

pub fn decode_all(buf: &[u8]) -> Frames<'_> {
    let mut frames = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        match decode_one(&buf[pos..]) {
            Ok((payload, used)) => {
                frames.push(payload);
                pos += used;
            }
            Err(reason) => {
                return Frames {
                    frames,
                    good_len: pos,
                    bad: Some((pos, reason)),
                };
            }
        }
    }
    Frames {
        frames,
        good_len: pos,
        bad: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_tail_versus_damage() {
        let mut buf = Vec::new();
        for p in [&b"one"[..], b"two", b"three"] {
            encode(p, &mut buf);
        }
        let all = decode_all(&buf);
        assert_eq!(all.frames, [&b"one"[..], b"two", b"three"]);
        for cut in 1..buf.len() {
            let part = decode_all(&buf[..cut]);
            if part.bad.is_some() {
                assert!(part.bad_is_torn_tail(&buf[..cut]), "cut at {cut}");
            }
        }
        let mut damaged = buf.clone();
        damaged[9] ^= 1; // inside the first payload
        let d = decode_all(&damaged);
        assert_eq!(d.bad.map(|b| b.0), Some(0));
        assert!(!d.bad_is_torn_tail(&damaged));
    }
}
