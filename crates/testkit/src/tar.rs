//! Tar archives of one file, as layers and `docker import` take them.

/// The size of a tar block.
pub(crate) const BLOCK: usize = 512;

/// A ustar header for a regular file `name` (at most 100 bytes) of `size` bytes, mode 0644,
/// owned by root.
pub(crate) fn header(name: &str, size: usize) -> [u8; BLOCK] {
    assert!(
        name.len() <= 100,
        "testkit: tar entry name {name:?} is too long"
    );
    let mut header = [0u8; BLOCK];
    let field = |header: &mut [u8; BLOCK], at: usize, value: &[u8]| {
        header[at..at + value.len()].copy_from_slice(value);
    };
    field(&mut header, 0, name.as_bytes());
    field(&mut header, 100, b"0000644\0");
    field(&mut header, 108, b"0000000\0");
    field(&mut header, 116, b"0000000\0");
    field(&mut header, 124, format!("{size:011o}\0").as_bytes());
    field(&mut header, 136, b"14000000000\0");
    field(&mut header, 148, b"        ");
    header[156] = b'0';
    field(&mut header, 257, b"ustar\0");
    field(&mut header, 263, b"00");
    let checksum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    field(&mut header, 148, format!("{checksum:06o}\0 ").as_bytes());
    header
}

/// A tar archive holding one regular file `name` with `contents`: its header, the contents
/// padded to a block, and the two zero blocks that end an archive.
///
/// ```
/// let archive = testkit::tar_file("data.bin", &testkit::pseudo_random_bytes(1000, 1));
/// assert_eq!(archive.len(), 512 + 1024 + 1024);
/// ```
pub fn tar_file(name: &str, contents: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(contents.len() + 4 * BLOCK);
    out.extend_from_slice(&header(name, contents.len()));
    out.extend_from_slice(contents);
    out.resize(out.len().next_multiple_of(BLOCK) + 2 * BLOCK, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_lists_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("one.tar");
        std::fs::write(&path, tar_file("hello.txt", b"hello\n")).expect("write");
        if let Ok(out) = std::process::Command::new("tar")
            .arg("-tvf")
            .arg(&path)
            .output()
        {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let listing = String::from_utf8_lossy(&out.stdout);
            assert!(listing.contains("hello.txt"), "{listing}");
            assert!(listing.contains(" 6 "), "{listing}");
        }
    }
}
