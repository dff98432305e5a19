//! Posting lists: the sorted row-block numbers of one term, as delta varints when short and
//! as a portable roaring bitmap when long.

use roaring::RoaringBitmap;

use super::{SMALL_POSTINGS_MAX, varint};

/// Appends the encoding of sorted, distinct `blocks` to `out`:
/// `varint(n)`, then either `n` varints (first value, then gaps) when `n <= SMALL_POSTINGS_MAX`,
/// or `varint(len)` and `len` bytes of a portable roaring bitmap.
pub fn encode_postings(blocks: &[u32], out: &mut Vec<u8>) {
    varint::put(out, blocks.len() as u64);
    if blocks.len() <= SMALL_POSTINGS_MAX {
        let mut prev = 0u32;
        for (i, &b) in blocks.iter().enumerate() {
            varint::put(out, u64::from(if i == 0 { b } else { b - prev }));
            prev = b;
        }
    } else {
        let bitmap: RoaringBitmap = blocks.iter().copied().collect();
        varint::put(out, bitmap.serialized_size() as u64);
        bitmap
            .serialize_into(&mut *out)
            .expect("writing to a Vec cannot fail");
    }
}

/// Decodes one posting list at `*pos`, advancing it. `Err` says what is wrong.
pub fn decode_postings(buf: &[u8], pos: &mut usize) -> Result<RoaringBitmap, &'static str> {
    let n = varint::get(buf, pos).ok_or("truncated posting count")?;
    if n as usize <= SMALL_POSTINGS_MAX {
        let mut bitmap = RoaringBitmap::new();
        let mut prev = 0u64;
        for i in 0..n {
            let v = varint::get(buf, pos).ok_or("truncated posting")?;
            let block = if i == 0 {
                v
            } else {
                prev.checked_add(v)
                    .filter(|_| v > 0)
                    .ok_or("unsorted postings")?
            };
            let block32 = u32::try_from(block).map_err(|_| "posting block out of range")?;
            bitmap.insert(block32);
            prev = block;
        }
        Ok(bitmap)
    } else {
        let len = varint::get(buf, pos).ok_or("truncated posting length")? as usize;
        let end = pos
            .checked_add(len)
            .filter(|&e| e <= buf.len())
            .ok_or("posting bitmap past block end")?;
        let bitmap = RoaringBitmap::deserialize_from(&buf[*pos..end])
            .map_err(|_| "invalid roaring bitmap")?;
        if bitmap.len() != n {
            return Err("posting count does not match bitmap");
        }
        *pos = end;
        Ok(bitmap)
    }
}
