//! Kubernetes quantities: byte counts as a `LimitRange` writes them, and back.

use crate::ByteSize;

/// A byte count as a Kubernetes quantity: the largest binary suffix that divides it exactly.
///
/// ```
/// use limits_core::{ByteSize, quantity};
///
/// assert_eq!(quantity(ByteSize::new(1 << 30)), "1Gi");
/// assert_eq!(quantity(ByteSize::new(20 << 20)), "20Mi");
/// assert_eq!(quantity(ByteSize::new(1_395_864_371)), "1395864371");
/// ```
pub fn quantity(size: ByteSize) -> String {
    let bytes = size.bytes();
    for (shift, suffix) in [
        (60, "Ei"),
        (50, "Pi"),
        (40, "Ti"),
        (30, "Gi"),
        (20, "Mi"),
        (10, "Ki"),
    ] {
        let unit = 1u64 << shift;
        if bytes != 0 && bytes % unit == 0 {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    bytes.to_string()
}

/// A Kubernetes quantity as bytes: a whole number with an optional binary (`Ki` to `Ei`) or
/// decimal (`k`, `M`, `G`, `T`, `P`, `E`) suffix.
pub fn parse_quantity(text: &str) -> Result<u64, &'static str> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    if number.is_empty() {
        return Err("not a whole number of bytes");
    }
    let multiplier: u64 = match suffix {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "Ei" => 1 << 60,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "E" => 1_000_000_000_000_000_000,
        _ => {
            return Err(
                "expected a whole number with a suffix Ki, Mi, Gi, Ti, Pi, Ei, k, M, G, T, P or E",
            );
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or("does not fit in 64 bits")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        let cases: &[(&str, Result<u64, ()>)] = &[
            ("1Gi", Ok(1 << 30)),
            ("20Mi", Ok(20 << 20)),
            ("100", Ok(100)),
            ("1G", Ok(1_000_000_000)),
            ("5k", Ok(5_000)),
            ("1.5Gi", Err(())),
            ("100m", Err(())),
            ("Gi", Err(())),
            ("99999Ei", Err(())),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_quantity(text).map_err(|_| ()), *expected, "{text}");
        }
        for bytes in [1u64, 1023, 1024, 20 << 20, 1_395_864_371, 5 << 30, u64::MAX] {
            let printed = quantity(ByteSize::new(bytes));
            assert_eq!(parse_quantity(&printed), Ok(bytes), "{printed}");
        }
    }
}
