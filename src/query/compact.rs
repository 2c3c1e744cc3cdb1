//! Compact storage for what the index and the catalog keep per term and per
//! fact, and the binary format they are persisted in.
//!
//! Why: a `String` or a `Vec` per term or per posting list costs 24 bytes of
//! header and a heap allocation of its own; at 100,000 facts the index has
//! over 300,000 lists, and the per-list overhead was as large as the
//! postings themselves. Strings here live in one buffer with end offsets;
//! posting lists in flat arrays (see `index.rs`).
//!
//! The persisted format is a handful of little-endian arrays, each preceded
//! by its length, streamed through a CRC-32: a load reads straight into the
//! typed arrays (no second copy of the file in memory), refuses any length
//! longer than what is left of the file (a corrupt length cannot make it
//! allocate gigabytes), and rejects the whole file when the checksum at the
//! end does not match. Callers validate what they decode (offsets, ids)
//! before using it, so a damaged file is rebuilt, never trusted.

use std::io::{Read, Write};

/// Strings in one buffer: string `i` is `text[ends[i-1]..ends[i]]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StrTable {
    text: String,
    ends: Vec<u64>,
}

impl StrTable {
    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(self.text.len() as u64);
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// String `i`; empty for an `i` out of range.
    pub fn get(&self, i: usize) -> &str {
        let Some(&end) = self.ends.get(i) else {
            return "";
        };
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        // Offsets are checked on decode and only ever pushed otherwise.
        self.text.get(start as usize..end as usize).unwrap_or("")
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Position of `s` in a table whose strings are in ascending order.
    pub fn find_sorted(&self, s: &str) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid).cmp(s) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// Whether the strings are in strictly ascending order.
    pub fn is_sorted_strictly(&self) -> bool {
        (1..self.len()).all(|i| self.get(i - 1) < self.get(i))
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.text.capacity() + self.ends.capacity() * 8
    }

    pub fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
    }

    pub fn encode<W: Write>(&self, e: &mut Encoder<W>) {
        e.bytes(self.text.as_bytes());
        e.u64s(&self.ends);
    }

    pub fn decode<R: Read>(d: &mut Decoder<R>) -> Result<StrTable, CodecError> {
        let text = String::from_utf8(d.bytes()?)
            .map_err(|_| CodecError::Corrupt("string table is not UTF-8"))?;
        let ends = d.u64s()?;
        let mut prev = 0;
        for &end in &ends {
            if end < prev || end > text.len() as u64 || !text.is_char_boundary(end as usize) {
                return Err(CodecError::Corrupt("string table offsets"));
            }
            prev = end;
        }
        if prev != text.len() as u64 {
            return Err(CodecError::Corrupt("string table length"));
        }
        Ok(StrTable { text, ends })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt: {0}")]
    Corrupt(&'static str),
}

/// Bytes converted per write or read of an array.
const CHUNK: usize = 64 * 1024;

/// Writes values little-endian, keeping a CRC-32 of everything written.
/// The first I/O error is kept and returned by [`Encoder::finish`].
pub struct Encoder<W: Write> {
    w: W,
    crc: crc32fast::Hasher,
    buf: Vec<u8>,
    error: Option<std::io::Error>,
}

impl<W: Write> Encoder<W> {
    pub fn new(w: W) -> Self {
        Encoder {
            w,
            crc: crc32fast::Hasher::new(),
            buf: Vec::with_capacity(CHUNK),
            error: None,
        }
    }

    fn raw(&mut self, b: &[u8]) {
        if self.error.is_some() {
            return;
        }
        self.crc.update(b);
        if let Err(e) = self.w.write_all(b) {
            self.error = Some(e);
        }
    }

    pub fn u32(&mut self, v: u32) {
        self.raw(&v.to_le_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.raw(&v.to_le_bytes());
    }

    pub fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.raw(b);
    }

    fn array<T: Copy, const N: usize>(&mut self, items: &[T], le: impl Fn(T) -> [u8; N]) {
        self.u64(items.len() as u64);
        let mut buf = std::mem::take(&mut self.buf);
        for chunk in items.chunks(CHUNK / N) {
            buf.clear();
            for &v in chunk {
                buf.extend_from_slice(&le(v));
            }
            self.raw(&buf);
        }
        self.buf = buf;
    }

    pub fn u16s(&mut self, v: &[u16]) {
        self.array(v, u16::to_le_bytes);
    }

    pub fn u32s(&mut self, v: &[u32]) {
        self.array(v, u32::to_le_bytes);
    }

    pub fn u64s(&mut self, v: &[u64]) {
        self.array(v, u64::to_le_bytes);
    }

    /// Writes the checksum of everything so far and returns the writer.
    pub fn finish(mut self) -> Result<W, std::io::Error> {
        let crc = self.crc.clone().finalize();
        self.raw(&crc.to_le_bytes());
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.w),
        }
    }
}

/// Reads what an [`Encoder`] wrote, at most `limit` bytes in all.
pub struct Decoder<R: Read> {
    r: R,
    crc: crc32fast::Hasher,
    /// Bytes the input may still hold: no length may promise more.
    remaining: u64,
    buf: Vec<u8>,
}

impl<R: Read> Decoder<R> {
    pub fn new(r: R, limit: u64) -> Self {
        Decoder {
            r,
            crc: crc32fast::Hasher::new(),
            remaining: limit,
            buf: Vec::new(),
        }
    }

    fn raw(&mut self, out: &mut [u8]) -> Result<(), CodecError> {
        if out.len() as u64 > self.remaining {
            return Err(CodecError::Corrupt("truncated"));
        }
        self.r.read_exact(out).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => CodecError::Corrupt("truncated"),
            _ => CodecError::Io(e),
        })?;
        self.remaining -= out.len() as u64;
        self.crc.update(out);
        Ok(())
    }

    pub fn u32(&mut self) -> Result<u32, CodecError> {
        let mut b = [0; 4];
        self.raw(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    pub fn u64(&mut self) -> Result<u64, CodecError> {
        let mut b = [0; 8];
        self.raw(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// A length of `size`-byte items, refused if the input cannot hold it.
    fn len(&mut self, size: u64) -> Result<usize, CodecError> {
        let n = self.u64()?;
        if n.saturating_mul(size) > self.remaining {
            return Err(CodecError::Corrupt("length beyond the end of the file"));
        }
        usize::try_from(n).map_err(|_| CodecError::Corrupt("length"))
    }

    pub fn bytes(&mut self) -> Result<Vec<u8>, CodecError> {
        let n = self.len(1)?;
        let mut out = vec![0; n];
        self.raw(&mut out)?;
        Ok(out)
    }

    fn array<T, const N: usize>(
        &mut self,
        from: impl Fn([u8; N]) -> T,
    ) -> Result<Vec<T>, CodecError> {
        let n = self.len(N as u64)?;
        let mut out = Vec::with_capacity(n);
        let mut buf = std::mem::take(&mut self.buf);
        while out.len() < n {
            let take = (n - out.len()).min(CHUNK / N);
            buf.resize(take * N, 0);
            self.raw(&mut buf)?;
            out.extend(buf.chunks_exact(N).map(|c| {
                let mut a = [0; N];
                a.copy_from_slice(c);
                from(a)
            }));
        }
        self.buf = buf;
        Ok(out)
    }

    pub fn u16s(&mut self) -> Result<Vec<u16>, CodecError> {
        self.array(u16::from_le_bytes)
    }

    pub fn u32s(&mut self) -> Result<Vec<u32>, CodecError> {
        self.array(u32::from_le_bytes)
    }

    pub fn u64s(&mut self) -> Result<Vec<u64>, CodecError> {
        self.array(u64::from_le_bytes)
    }

    /// Checks the checksum that ends the input, and that nothing follows it.
    pub fn finish(mut self) -> Result<(), CodecError> {
        let want = self.crc.clone().finalize();
        let mut b = [0; 4];
        self.raw(&mut b)?;
        if u32::from_le_bytes(b) != want {
            return Err(CodecError::Corrupt("checksum mismatch"));
        }
        if self.remaining != 0 {
            return Err(CodecError::Corrupt("trailing bytes"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded() -> Vec<u8> {
        let mut e = Encoder::new(Vec::new());
        let mut t = StrTable::default();
        for s in ["alpha", "beta", "гамма", ""] {
            t.push(s);
        }
        e.u32(7);
        t.encode(&mut e);
        e.u16s(&[1, 2, 65535]);
        e.u32s(&(0..100_000).collect::<Vec<u32>>());
        e.u64s(&[u64::MAX]);
        e.finish().unwrap()
    }

    type Decoded = (u32, StrTable, Vec<u16>, Vec<u32>, Vec<u64>);

    fn decode(b: &[u8]) -> Result<Decoded, CodecError> {
        let mut d = Decoder::new(b, b.len() as u64);
        let v = (
            d.u32()?,
            StrTable::decode(&mut d)?,
            d.u16s()?,
            d.u32s()?,
            d.u64s()?,
        );
        d.finish()?;
        Ok(v)
    }

    #[test]
    fn round_trips() {
        let (n, t, a, b, c) = decode(&encoded()).unwrap();
        assert_eq!(n, 7);
        assert_eq!(t.iter().collect::<Vec<_>>(), ["alpha", "beta", "гамма", ""]);
        assert_eq!(a, [1, 2, 65535]);
        assert_eq!(b, (0..100_000).collect::<Vec<u32>>());
        assert_eq!(c, [u64::MAX]);
    }

    #[test]
    fn any_flipped_byte_or_truncation_is_refused() {
        let good = encoded();
        for i in (0..good.len()).step_by(997).chain([good.len() - 1]) {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            assert!(decode(&bad).is_err(), "byte {i}");
        }
        for cut in [0, 3, 20, good.len() / 2, good.len() - 1] {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
    }

    #[test]
    fn a_huge_length_is_refused_before_allocating() {
        let mut e = Encoder::new(Vec::new());
        e.u64(u64::MAX / 2);
        let b = e.finish().unwrap();
        let mut d = Decoder::new(&b[..], b.len() as u64);
        assert!(matches!(d.u32s(), Err(CodecError::Corrupt(_))));
    }

    #[test]
    fn sorted_lookup() {
        let mut t = StrTable::default();
        for s in ["a", "b", "d", "еж"] {
            t.push(s);
        }
        assert!(t.is_sorted_strictly());
        assert_eq!(t.find_sorted("d"), Some(2));
        assert_eq!(t.find_sorted("еж"), Some(3));
        assert_eq!(t.find_sorted("c"), None);
        assert_eq!(t.get(9), "");
    }
}
