//! How a limit is enforced: refuse (`deny`), let the push through and tell the client (`warn`),
//! or let it through silently and only record it (`audit`); and the warning threshold below a
//! limit (`warn_at`).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// What happens to a push that breaks a limit.
///
/// ```
/// use limits_core::Enforcement;
///
/// assert_eq!("audit".parse::<Enforcement>()?, Enforcement::Audit);
/// assert_eq!(Enforcement::default(), Enforcement::Deny);
/// assert!("enforce".parse::<Enforcement>().is_err());
/// # Ok::<(), limits_core::EnforcementError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Enforcement {
    /// The push is refused (the default, and the only behaviour before this key existed).
    #[default]
    Deny,
    /// The push goes through, and the client is told with a `Warning` header.
    Warn,
    /// The push goes through silently; the decision is logged and counted as one `deny` would
    /// have refused.
    Audit,
}

impl Enforcement {
    /// `deny`, `warn` or `audit`, as written in the configuration and in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Deny => "deny",
            Enforcement::Warn => "warn",
            Enforcement::Audit => "audit",
        }
    }
}

impl fmt::Display for Enforcement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value that is not `deny`, `warn` or `audit`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid enforcement \"{0}\" (expected deny, warn or audit)")]
pub struct EnforcementError(pub String);

impl FromStr for Enforcement {
    type Err = EnforcementError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "deny" => Ok(Enforcement::Deny),
            "warn" => Ok(Enforcement::Warn),
            "audit" => Ok(Enforcement::Audit),
            other => Err(EnforcementError(other.to_owned())),
        }
    }
}

/// From which share of a limit an allowed push is warned about: `warn_at: 80%`.
///
/// ```
/// use limits_core::WarnAt;
///
/// assert_eq!("80%".parse::<WarnAt>()?, WarnAt::Percent(80));
/// assert_eq!("off".parse::<WarnAt>()?, WarnAt::Off);
/// assert!("0%".parse::<WarnAt>().is_err());
/// assert!("101%".parse::<WarnAt>().is_err());
/// assert!(WarnAt::Percent(80).reached(80, 100));
/// assert!(!WarnAt::Percent(80).reached(79, 100));
/// # Ok::<(), limits_core::WarnAtError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WarnAt {
    /// No warning below the limit (the default).
    #[default]
    Off,
    /// A push that reaches this percentage of a limit (1 to 100) is warned about.
    Percent(u8),
}

impl WarnAt {
    /// Whether `measured` reaches the threshold of `limit`.
    pub fn reached(self, measured: u64, limit: u64) -> bool {
        match self {
            WarnAt::Off => false,
            WarnAt::Percent(percent) => {
                u128::from(measured) * 100 >= u128::from(limit) * u128::from(percent)
            }
        }
    }
}

impl fmt::Display for WarnAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WarnAt::Off => f.write_str("off"),
            WarnAt::Percent(percent) => write!(f, "{percent}%"),
        }
    }
}

/// A `warn_at` that is not a percentage from 1% to 100%, or `off`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid warn_at \"{0}\" (expected a percentage from 1% to 100%, such as 80%, or off)")]
pub struct WarnAtError(pub String);

impl FromStr for WarnAt {
    type Err = WarnAtError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        if trimmed == "off" {
            return Ok(WarnAt::Off);
        }
        let digits = trimmed.strip_suffix('%').unwrap_or(trimmed).trim_end();
        match digits.parse::<u8>() {
            Ok(percent @ 1..=100) if digits.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(WarnAt::Percent(percent))
            }
            _ => Err(WarnAtError(trimmed.to_owned())),
        }
    }
}
