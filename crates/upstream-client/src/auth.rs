//! Which credentials a call to the upstream uses.

use std::fmt;

use base64::Engine as _;
use http::HeaderValue;

/// The credentials one call uses.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Auth<'a> {
    /// No credentials. Against a token registry, an anonymous token is asked for.
    Anonymous,
    /// The pushing client's own `Authorization` header, sent as it is. No token flow: a 401 or
    /// 403 answer is the client's fault.
    Forward(&'a HeaderValue),
    /// The client's configured [`Credentials`]: sent as Basic when the upstream asks for Basic,
    /// or used to fetch a token when it asks for Bearer. Without configured credentials this is
    /// [`Auth::Anonymous`].
    Configured,
}

impl Auth<'_> {
    /// The kind of credentials, as errors report it.
    pub fn kind(&self) -> AuthKind {
        match self {
            Auth::Anonymous => AuthKind::Anonymous,
            Auth::Forward(_) => AuthKind::Forwarded,
            Auth::Configured => AuthKind::Configured,
        }
    }
}

/// The kind of credentials a failed call used, without the secret itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthKind {
    /// No credentials.
    Anonymous,
    /// The pushing client's own `Authorization` header.
    Forwarded,
    /// The gateway's configured account.
    Configured,
}

impl fmt::Display for AuthKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthKind::Anonymous => "anonymous access",
            AuthKind::Forwarded => "the client's forwarded credentials",
            AuthKind::Configured => "the configured credentials",
        })
    }
}

/// A username and password for the upstream (a robot account in Harbor mode).
///
/// `Debug` shows the username only; the password is never printed.
///
/// ```
/// use upstream_client::Credentials;
///
/// let c = Credentials::new("robot$ci", "s3cret");
/// assert_eq!(c.username(), "robot$ci");
/// assert!(!format!("{c:?}").contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    username: String,
    password: String,
}

impl Credentials {
    /// Credentials from a username and a password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The username.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The `Authorization: Basic ...` value, marked sensitive so that `http` never prints it.
    pub(crate) fn basic_header(&self) -> Option<HeaderValue> {
        let raw = format!("{}:{}", self.username, self.password);
        let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
        let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_is_rfc7617() {
        let h = Credentials::new("Aladdin", "open sesame")
            .basic_header()
            .expect("valid");
        assert_eq!(h.to_str().ok(), Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="));
        assert!(h.is_sensitive());
    }

    #[test]
    fn debug_redacts() {
        let shown = format!("{:?}", Credentials::new("user", "hunter2"));
        assert!(
            shown.contains("user") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
