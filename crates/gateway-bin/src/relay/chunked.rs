//! The chunked transfer coding (RFC 9112 section 7.1): a synchronous state machine that
//! follows a chunked body fed in pieces, without changing it.

/// Follows the framing of a chunked body (RFC 9112 section 7.1) without changing it.
#[derive(Debug, Default)]
pub(super) struct Chunks {
    state: ChunkState,
    /// Bytes of the current size or trailer line, to bound them.
    line: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// In a chunk-size line: the size so far, whether a digit was seen, whether in the
    /// extensions.
    #[default]
    Size,
    SizeDigits(u64),
    Extension(u64),
    SizeLf(u64),
    /// Chunk data bytes left.
    Data(u64),
    DataCr,
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    TrailerStart,
    Trailer,
    TrailerLf {
        empty: bool,
    },
    Done,
}

/// Longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 8 * 1024;

impl Chunks {
    /// Follows `bytes`; returns how many belong to the body and whether the body ended, and
    /// adds the ranges of `bytes` that are chunk data to `data`.
    pub(super) fn feed(
        &mut self,
        bytes: &[u8],
        data: &mut Vec<std::ops::Range<usize>>,
    ) -> Result<(usize, bool), &'static str> {
        let mut i = 0;
        while i < bytes.len() {
            if self.state == ChunkState::Done {
                return Ok((i, true));
            }
            if let ChunkState::Data(left) = self.state {
                let take = (bytes.len() - i).min(usize::try_from(left).unwrap_or(usize::MAX));
                data.push(i..i + take);
                i += take;
                let left = left - take as u64;
                self.state = if left == 0 {
                    ChunkState::DataCr
                } else {
                    ChunkState::Data(left)
                };
                continue;
            }
            let byte = bytes[i];
            i += 1;
            self.line += 1;
            if self.line > MAX_LINE {
                return Err("chunk line too long");
            }
            self.state = match (self.state, byte) {
                (ChunkState::Size, b) => ChunkState::SizeDigits(u64::from(hex(b)?)),
                (ChunkState::SizeDigits(n), b'\r') => ChunkState::SizeLf(n),
                (ChunkState::SizeDigits(n), b';' | b' ' | b'\t') => ChunkState::Extension(n),
                (ChunkState::SizeDigits(n), b) => ChunkState::SizeDigits(
                    n.checked_mul(16)
                        .and_then(|n| n.checked_add(u64::from(hex(b).ok()?)))
                        .ok_or("invalid chunk size")?,
                ),
                (ChunkState::Extension(n), b'\r') => ChunkState::SizeLf(n),
                (ChunkState::Extension(_), b'\n') => return Err("bare LF in chunk extension"),
                (ChunkState::Extension(n), _) => ChunkState::Extension(n),
                (ChunkState::SizeLf(n), b'\n') => {
                    self.line = 0;
                    if n == 0 {
                        ChunkState::TrailerStart
                    } else {
                        ChunkState::Data(n)
                    }
                }
                (ChunkState::DataCr, b'\r') => ChunkState::DataLf,
                (ChunkState::DataLf, b'\n') => {
                    self.line = 0;
                    ChunkState::Size
                }
                (ChunkState::TrailerStart, b'\r') => ChunkState::TrailerLf { empty: true },
                (ChunkState::TrailerStart | ChunkState::Trailer, b'\n') => {
                    return Err("bare LF in trailer");
                }
                (ChunkState::Trailer, b'\r') => ChunkState::TrailerLf { empty: false },
                (ChunkState::TrailerStart | ChunkState::Trailer, _) => ChunkState::Trailer,
                (ChunkState::TrailerLf { empty }, b'\n') => {
                    self.line = 0;
                    if empty {
                        ChunkState::Done
                    } else {
                        ChunkState::TrailerStart
                    }
                }
                _ => return Err("invalid chunked framing"),
            };
        }
        Ok((i, self.state == ChunkState::Done))
    }
}

fn hex(byte: u8) -> Result<u8, &'static str> {
    match byte {
        b'0'..=b'9' => Ok(byte - b'0'),
        b'a'..=b'f' => Ok(byte - b'a' + 10),
        b'A'..=b'F' => Ok(byte - b'A' + 10),
        _ => Err("invalid chunk size"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `body` split at `at` and returns what `Chunks` made of it.
    fn follow(body: &[u8], at: usize) -> Result<(usize, bool), &'static str> {
        let mut chunks = Chunks::default();
        let mut data = Vec::new();
        let (first, done) = chunks.feed(&body[..at], &mut data)?;
        if done {
            return Ok((first, true));
        }
        let (second, done) = chunks.feed(&body[at..], &mut data)?;
        Ok((first + second, done))
    }

    /// The data of a chunked body, fed split at `at`.
    fn decode(body: &[u8], at: usize) -> Vec<u8> {
        let mut chunks = Chunks::default();
        let mut out = Vec::new();
        for part in [&body[..at], &body[at..]] {
            let mut data = Vec::new();
            chunks.feed(part, &mut data).expect("valid");
            for range in data {
                out.extend_from_slice(&part[range]);
            }
        }
        out
    }

    #[test]
    fn chunk_data_is_found_however_the_body_is_split() {
        let body = b"5\r\nhello\r\nA;x=1\r\n, chunked!\r\n0\r\nX-Sum: 1\r\n\r\n";
        for at in 0..=body.len() {
            assert_eq!(decode(body, at), b"hello, chunked!", "split at {at}");
        }
    }

    #[test]
    fn chunked_bodies_end_where_their_framing_ends_however_they_are_split() {
        let cases: &[(&[u8], Option<usize>)] = &[
            (b"5\r\nhello\r\n0\r\n\r\n", Some(15)),
            (b"5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1", Some(15)),
            (b"A;ext=1\r\n0123456789\r\n0\r\nX-Sum: 1\r\n\r\n", Some(36)),
            (
                b"1f \r\n0123456789012345678901234567890\r\n0\r\n\r\n",
                Some(43),
            ),
            (b"5\r\nhello\r\n0\r\n", None),
            (b"5\r\nhelloXX0\r\n\r\n", Some(0)),
            (b"g\r\n", Some(0)),
            (b"\r\n", Some(0)),
            (b"5\nhello\r\n0\r\n\r\n", Some(0)),
            (b"ffffffffffffffffff\r\n", Some(0)),
        ];
        for (body, end) in cases {
            for at in 0..=body.len() {
                let got = follow(body, at);
                match end {
                    Some(0) => assert!(got.is_err(), "{:?} split at {at}: {got:?}", body),
                    Some(end) => assert_eq!(got, Ok((*end, true)), "{:?} split at {at}", body),
                    None => assert_eq!(got, Ok((body.len(), false)), "{:?} split at {at}", body),
                }
            }
        }
    }
}
