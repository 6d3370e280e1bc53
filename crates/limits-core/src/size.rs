//! Byte sizes: parsing the size strings of the configuration and printing them back.

use std::fmt;
use std::str::FromStr;

use humansize::{FormatSizeOptions, format_size};

/// Units of exact size strings, largest first, as the configuration spells them (every
/// multiple is a power of 1024), with their names in messages (`MiB`: clients print decimal
/// megabytes, so `MB` for 1,048,576 bytes would read as a contradiction there).
const UNITS: [(&str, &str, u32); 4] = [
    ("TB", "TiB", 40),
    ("GB", "GiB", 30),
    ("MB", "MiB", 20),
    ("KB", "KiB", 10),
];

/// The most fractional digits a size string may carry.
const MAX_FRACTION_DIGITS: usize = 24;

/// A number of bytes, parsed from a size string such as `20MB`, `1.5 GiB` or `512`.
///
/// Units are case-insensitive and all are powers of 1024, as Docker's own size flags are:
/// `B`; `K`, `KB`, `KiB`, `Ki`; `M`, `MB`, `MiB`, `Mi`; `G`, `GB`, `GiB`, `Gi`; `T`, `TB`, `TiB`,
/// `Ti`. A bare number is bytes; fractions round down to whole bytes.
///
/// `Display` prints the size the way refusal messages do, in binary units spelled so
/// (`25.0 MiB`); the alternate form (`{:#}`) prints a whole number of the largest unit that
/// divides the size exactly (`20 MiB`) and falls back to the one-decimal form otherwise. The
/// one-decimal form is rounded: messages print the exact bytes beside it.
///
/// ```
/// use limits_core::ByteSize;
///
/// let size: ByteSize = "25 MB".parse()?;
/// assert_eq!(size.bytes(), 26_214_400);
/// assert_eq!(size.to_string(), "25.0 MiB");
/// assert_eq!(format!("{size:#}"), "25 MiB");
/// assert_eq!("1.5gi".parse::<ByteSize>()?.bytes(), 1_610_612_736);
/// # Ok::<(), limits_core::SizeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(u64);

/// Why a size string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SizeError {
    /// The string is empty or blank.
    #[error("empty size")]
    Empty,
    /// The number is negative.
    #[error("negative size \"{0}\"")]
    Negative(String),
    /// The string does not start with a number.
    #[error("no number in \"{0}\"")]
    NotANumber(String),
    /// More fractional digits than a byte count can use.
    #[error("too many decimal places in \"{0}\" (at most {MAX_FRACTION_DIGITS})")]
    TooPrecise(String),
    /// The unit is none of the known ones.
    #[error("unknown unit \"{0}\" (expected B, K, KB, KiB, M, MB, MiB, G, GB, GiB, T, TB or TiB)")]
    UnknownUnit(String),
    /// The size does not fit in 64 bits.
    #[error("size \"{0}\" does not fit in 64 bits")]
    Overflow(String),
}

impl ByteSize {
    /// A size of `bytes` bytes.
    pub const fn new(bytes: u64) -> Self {
        Self(bytes)
    }

    /// The number of bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// The exact size as a size string that parses back to the same value: a whole number of
    /// the largest unit that divides it, spelled as the configuration spells it (`20MB`, the
    /// form the original plugin reads too), or a bare number of bytes.
    pub fn to_exact_string(self) -> String {
        match exact_unit(self.0) {
            Some((value, (unit, _))) => format!("{value}{unit}"),
            None => self.0.to_string(),
        }
    }
}

impl From<u64> for ByteSize {
    fn from(bytes: u64) -> Self {
        Self(bytes)
    }
}

/// The largest unit that divides `bytes` exactly, with the quotient: its configuration
/// spelling and its name in messages.
fn exact_unit(bytes: u64) -> Option<(u64, (&'static str, &'static str))> {
    if bytes == 0 {
        return None;
    }
    UNITS
        .iter()
        .find(|(_, _, shift)| bytes.trailing_zeros() >= *shift)
        .map(|(unit, name, shift)| (bytes >> shift, (*unit, *name)))
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            if let Some((value, (_, name))) = exact_unit(self.0) {
                return write!(f, "{value} {name}");
            }
        }
        if self.0 < 1024 {
            return write!(f, "{} B", self.0);
        }
        // Powers of 1024, named KiB, MiB, GiB, ...
        let options = FormatSizeOptions::from(humansize::BINARY)
            .decimal_places(1)
            .decimal_zeroes(1);
        f.write_str(&format_size(self.0, options))
    }
}

impl FromStr for ByteSize {
    type Err = SizeError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let text = input.trim();
        if text.is_empty() {
            return Err(SizeError::Empty);
        }
        if text.starts_with('-') {
            return Err(SizeError::Negative(input.to_owned()));
        }
        let number_len = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(number_len);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return Err(SizeError::NotANumber(input.to_owned()));
        }
        if fraction.len() > MAX_FRACTION_DIGITS {
            return Err(SizeError::TooPrecise(input.to_owned()));
        }
        let shift = unit_shift(unit.trim())
            .ok_or_else(|| SizeError::UnknownUnit(unit.trim().to_owned()))?;
        let overflow = || SizeError::Overflow(input.to_owned());

        let mut whole_value: u64 = 0;
        for digit in whole.bytes() {
            whole_value = whole_value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(digit - b'0')))
                .ok_or_else(overflow)?;
        }
        let whole_bytes = whole_value
            .checked_mul(1u64 << shift)
            .ok_or_else(overflow)?;
        if whole_value != 0 && whole_bytes >> shift != whole_value {
            return Err(overflow());
        }
        // 10^24 * 2^40 < 2^128: the fraction is exact in u128 before rounding down.
        let mut fraction_value: u128 = 0;
        for digit in fraction.bytes() {
            fraction_value = fraction_value * 10 + u128::from(digit - b'0');
        }
        let scale = 10u128.pow(u32::try_from(fraction.len()).unwrap_or(0));
        let fraction_bytes =
            u64::try_from((fraction_value << shift) / scale).map_err(|_| overflow())?;
        whole_bytes
            .checked_add(fraction_bytes)
            .map(Self)
            .ok_or_else(overflow)
    }
}

/// The power of two of a unit, or `None` for an unknown unit.
fn unit_shift(unit: &str) -> Option<u32> {
    let unit = unit.to_ascii_lowercase();
    let shift = match unit.as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" | "ki" => 10,
        "m" | "mb" | "mib" | "mi" => 20,
        "g" | "gb" | "gib" | "gi" => 30,
        "t" | "tb" | "tib" | "ti" => 40,
        _ => return None,
    };
    Some(shift)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KI: u64 = 1024;
    const MI: u64 = KI * KI;
    const GI: u64 = MI * KI;
    const TI: u64 = GI * KI;

    #[test]
    fn parses_every_form() {
        let cases: &[(&str, u64)] = &[
            ("0", 0),
            ("512", 512),
            ("512B", 512),
            ("512 b", 512),
            ("1K", KI),
            ("1k", KI),
            ("1KB", KI),
            ("1kb", KI),
            ("1KiB", KI),
            ("1kib", KI),
            ("1Ki", KI),
            ("20MB", 20 * MI),
            ("20 MB", 20 * MI),
            ("20M", 20 * MI),
            ("20MiB", 20 * MI),
            ("20Mi", 20 * MI),
            ("20mb", 20 * MI),
            ("100MB", 100 * MI),
            ("1GB", GI),
            ("1G", GI),
            ("1GiB", GI),
            ("1gi", GI),
            ("5GB", 5 * GI),
            ("2TB", 2 * TI),
            ("2T", 2 * TI),
            ("2TiB", 2 * TI),
            ("2ti", 2 * TI),
            ("1.5GB", GI + GI / 2),
            ("1.5 gib", GI + GI / 2),
            ("0.5K", 512),
            (".5K", 512),
            ("1.K", KI),
            ("1.3GB", 1_395_864_371),
            ("0.1B", 0),
            ("1.9", 1),
            ("  7 MB  ", 7 * MI),
            ("007", 7),
            ("16777215.999999TB", 18_446_744_073_708_452_104),
            ("18446744073709551615", u64::MAX),
        ];
        for (input, bytes) in cases {
            assert_eq!(input.parse::<ByteSize>(), Ok(ByteSize(*bytes)), "{input:?}");
        }
    }

    #[test]
    fn refuses_bad_sizes() {
        let cases: &[(&str, &str)] = &[
            ("", "empty size"),
            ("   ", "empty size"),
            ("-1MB", "negative size \"-1MB\""),
            ("- 1", "negative size \"- 1\""),
            ("MB", "no number in \"MB\""),
            (".", "no number in \".\""),
            ("1.2.3", "no number in \"1.2.3\""),
            ("+1", "no number in \"+1\""),
            (
                "12XB",
                "unknown unit \"XB\" (expected B, K, KB, KiB, M, MB, MiB, G, GB, GiB, T, TB or TiB)",
            ),
            (
                "1PB",
                "unknown unit \"PB\" (expected B, K, KB, KiB, M, MB, MiB, G, GB, GiB, T, TB or TiB)",
            ),
            (
                "1e3",
                "unknown unit \"e3\" (expected B, K, KB, KiB, M, MB, MiB, G, GB, GiB, T, TB or TiB)",
            ),
            (
                "10 M B",
                "unknown unit \"M B\" (expected B, K, KB, KiB, M, MB, MiB, G, GB, GiB, T, TB or TiB)",
            ),
            (
                "18446744073709551616",
                "size \"18446744073709551616\" does not fit in 64 bits",
            ),
            ("16777216TB", "size \"16777216TB\" does not fit in 64 bits"),
            (
                "99999999999999999999999999GB",
                "size \"99999999999999999999999999GB\" does not fit in 64 bits",
            ),
            (
                "18446744073709551615.9K",
                "size \"18446744073709551615.9K\" does not fit in 64 bits",
            ),
            (
                "1.0000000000000000000000001",
                "too many decimal places in \"1.0000000000000000000000001\" (at most 24)",
            ),
        ];
        for (input, message) in cases {
            let err = input.parse::<ByteSize>().expect_err(input);
            assert_eq!(err.to_string(), *message, "{input:?}");
        }
    }

    #[test]
    fn display() {
        let cases: &[(u64, &str, &str)] = &[
            (0, "0 B", "0 B"),
            (512, "512 B", "512 B"),
            (1023, "1023 B", "1023 B"),
            (KI, "1.0 KiB", "1 KiB"),
            (1536, "1.5 KiB", "1.5 KiB"),
            (20 * MI, "20.0 MiB", "20 MiB"),
            (20 * MI + 1, "20.0 MiB", "20.0 MiB"),
            (25 * MI, "25.0 MiB", "25 MiB"),
            (1536 * MI, "1.5 GiB", "1536 MiB"),
            (GI, "1.0 GiB", "1 GiB"),
            (1_395_864_371, "1.3 GiB", "1.3 GiB"),
            (5 * GI, "5.0 GiB", "5 GiB"),
            (3 * TI, "3.0 TiB", "3 TiB"),
            (u64::MAX, "16.0 EiB", "16.0 EiB"),
        ];
        for (bytes, human, compact) in cases {
            assert_eq!(ByteSize(*bytes).to_string(), *human);
            assert_eq!(format!("{:#}", ByteSize(*bytes)), *compact);
        }
    }

    #[test]
    fn exact_string() {
        assert_eq!(ByteSize(20 * MI).to_exact_string(), "20MB");
        assert_eq!(ByteSize(1_395_864_371).to_exact_string(), "1395864371");
        assert_eq!(ByteSize(0).to_exact_string(), "0");
    }

    proptest! {
        #[test]
        fn exact_string_round_trips(bytes in any::<u64>()) {
            let size = ByteSize(bytes);
            prop_assert_eq!(size.to_exact_string().parse::<ByteSize>(), Ok(size));
        }

        #[test]
        fn display_round_trips_where_exact(tenths in 0u64..10_000, shift in prop::sample::select(vec![10u32, 20, 30, 40])) {
            // tenths of a unit that a tenth divides exactly print exactly with one decimal
            let unit = 1u64 << shift;
            let size = ByteSize(tenths * unit / 10 * 10 / 10);
            let exact = (tenths * unit) % 10 == 0 && size.bytes() >= unit;
            if exact && size.bytes() < unit * 1024 {
                prop_assert_eq!(size.to_string().parse::<ByteSize>(), Ok(size));
            }
        }

        #[test]
        fn parse_never_panics(input in "\\PC{0,40}") {
            let _ = input.parse::<ByteSize>();
        }

        #[test]
        fn whole_units_parse(value in 0u64..1_000_000, unit in prop::sample::select(vec![("K", 10u32), ("mb", 20), ("GiB", 30), ("t", 40)])) {
            let (name, shift) = unit;
            let expected = value.checked_mul(1 << shift);
            let parsed = format!("{value}{name}").parse::<ByteSize>().ok().map(ByteSize::bytes);
            prop_assert_eq!(parsed, expected);
        }
    }
}
