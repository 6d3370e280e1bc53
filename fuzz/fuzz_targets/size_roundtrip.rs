//! Size strings: parsing never panics, and every accepted size prints in its exact form and
//! parses back to the same number of bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use limits_core::ByteSize;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(size) = text.parse::<ByteSize>() {
        let exact = size.to_exact_string();
        assert_eq!(exact.parse::<ByteSize>(), Ok(size), "{text:?} -> {exact:?}");
        // The message form never panics and names a unit.
        let human = size.to_string();
        assert!(human.ends_with('B'), "{human}");
    }
    // Every u64 read from the input round-trips through the exact form.
    if data.len() >= 8 {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&data[..8]);
        let size = ByteSize::new(u64::from_le_bytes(bytes));
        assert_eq!(size.to_exact_string().parse::<ByteSize>(), Ok(size));
    }
});
