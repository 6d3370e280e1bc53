//! Every answer the gateway gives itself instead of the registry's: one enum, [`Refusal`], whose
//! variants carry the facts of the refusal, and whose status, distribution error code, metric
//! label, message and detail are each defined in one `match` here; its log line and its
//! rendering in `answer`, the one place that logs, counts and renders a refusal, for the hyper
//! path and the relay alike. The facts read from the upstream for a check are in `fact`.

mod answer;
mod fact;

use std::time::Duration;

use http::StatusCode;
use limits_core::{
    ByteSize, Decision, ImmutableDelete, LimitSource, QuotaDecision, ReadOnly, RepositoryName,
    TagMove,
};
use oci_manifest::{ManifestError, MeasureError};
use registry_api::RequestError;
use serde_json::{Value, json};
use upstream_client::UpstreamError;

use crate::coordination::CoordinationError;
use crate::inventory::InventoryError;

pub use self::answer::{Seen, answer, envelope};
pub use self::fact::Fact;
use self::fact::{Failure, failure};

/// Why the gateway answered a request itself, with the facts of the answer.
#[derive(Debug)]
#[non_exhaustive]
pub enum Refusal {
    /// A limit refused the push (image size, tag count, blob size): 403 `DENIED`. Logged and
    /// counted as a decision where it was decided, not here.
    Denied(Box<Decision>),
    /// A namespace quota refused the push (repositories, images, tags, storage): 403 `DENIED`.
    /// Logged and counted as a decision where it was decided, not here.
    QuotaDenied(Box<QuotaDecision>),
    /// A write to a read-only repository: 405 with distribution's own plain answer
    /// (`answer::READ_ONLY_BODY`), which clients do not retry.
    ReadOnly(ReadOnly),
    /// A push that would move an immutable tag to another digest: 403 `DENIED`.
    ImmutableTag(Box<TagMove>),
    /// A manifest delete that would remove an immutable tag: 403 `DENIED`.
    ImmutableTagDelete(Box<ImmutableDelete>),
    /// A path outside `/v2/`: 404 `NOT_FOUND`.
    NotRegistryApi {
        /// The path asked for.
        path: String,
    },
    /// A request the registry would read otherwise than the gateway: a method the API does not
    /// have (405 `UNSUPPORTED`), a reference that is neither tag nor digest (400
    /// `TAG_INVALID`), a path or name out of the grammar (400 `NAME_INVALID`).
    Request(RequestError),
    /// A request target that cannot be sent upstream: 400 `NAME_INVALID`.
    TargetInvalid {
        /// Why.
        cause: String,
    },
    /// An upload request with a form body, whose parameters the registry would read from the
    /// body: 400 `UNSUPPORTED`.
    FormBody,
    /// A write whose `Connection` header names a header the checks read (a proxy removes
    /// those before forwarding): 400 `UNSUPPORTED`.
    ConnectionNamesCheckedHeader {
        /// The header, in lower case.
        name: String,
    },
    /// A manifest push with several `Content-Type` headers: 400 `UNSUPPORTED`.
    SeveralContentTypes,
    /// A manifest body over 4 MiB: 413 `SIZE_INVALID`.
    ManifestTooLarge {
        /// Its declared size, when it declared one.
        size: Option<u64>,
    },
    /// A manifest that does not parse, whose content type is wrong, or a Docker schema 1
    /// manifest: 400 `MANIFEST_INVALID`.
    ManifestUnparsable(ManifestError),
    /// A manifest body that could not be read: 400 `MANIFEST_INVALID`.
    ManifestUnreadable {
        /// Why.
        cause: String,
    },
    /// An image whose manifest does not describe what the registry holds: a blob size that
    /// differs (400 `MANIFEST_INVALID`) or a blob the registry does not hold (400
    /// `MANIFEST_BLOB_UNKNOWN`).
    ManifestMismatch(MeasureError),
    /// The manifest body did not arrive in time: 408 `MANIFEST_INVALID`.
    BodyTimeout {
        /// The body read timeout.
        after: Duration,
    },
    /// The budget for buffered manifest bodies is spent: 503 `UNAVAILABLE`, `Retry-After: 1`.
    Busy,
    /// The upstream did not answer in time: 504 `UNAVAILABLE`.
    UpstreamTimeout {
        /// The upstream timeout.
        after: Duration,
    },
    /// No connection to the upstream could be made, so nothing was sent: 502 `UNAVAILABLE`.
    UpstreamConnect {
        /// Why.
        cause: String,
    },
    /// The upstream could not be reached, or failed after the request may have reached it:
    /// 502 `UNAVAILABLE`.
    UpstreamUnreachable {
        /// Why.
        cause: String,
    },
    /// The upstream closed the connection without an answer: 502 `UNAVAILABLE`.
    UpstreamClosed,
    /// Connecting to the upstream took longer than the connect timeout: 502 `UNAVAILABLE`.
    UpstreamConnectTimeout {
        /// The upstream's address.
        address: String,
    },
    /// The upstream's answer is not valid HTTP/1.1: 502 `UNAVAILABLE`.
    UpstreamInvalidAnswer {
        /// Why.
        why: String,
    },
    /// The task that forwarded an admitted push or delete ended without an answer: 502
    /// `UNAVAILABLE`.
    Incomplete {
        /// `manifest push` or `manifest delete`.
        what: &'static str,
        /// Why.
        cause: String,
    },
    /// A fact a check needs could not be read from the upstream (and `--fail-open` does not
    /// cover it): the upstream's own 401 (with its challenge) or 403 when it refused the
    /// client's credentials, 504 on a timeout, 502 when unreachable, 503 otherwise.
    FactUnavailable {
        /// Which fact.
        fact: Fact,
        /// What the upstream said.
        source: Box<UpstreamError>,
    },
    /// The repository's lease or reserved tags could not be had for a push: 503 `UNAVAILABLE`.
    Uncoordinated(CoordinationError),
    /// The namespace's inventory could not be read from the registry for an image count or a
    /// namespace quota: 503 `UNAVAILABLE`.
    InventoryUnavailable(InventoryError),
    /// The lease of a namespace (or of a repository without one), or the pushes other replicas
    /// admitted in it, could not be had for an image count or a namespace quota: 503
    /// `UNAVAILABLE`.
    NamespaceUncoordinated {
        /// The namespace, or `/<repository>` (`inventory::scope_of`).
        scope: String,
        /// Why.
        source: CoordinationError,
    },
    /// The repository's lease could not be had to check a delete: 503 `UNAVAILABLE`.
    DeleteUncoordinated {
        /// The repository.
        repository: RepositoryName,
        /// Why.
        source: CoordinationError,
    },
    /// An upload session's progress could not be read: the upstream's status answer has no
    /// `Range`: 503 `UNAVAILABLE`.
    UploadProgressUnread,
}

/// Why `lease` could not be had or kept while `what`.
fn lease_cause(source: &CoordinationError, lease: &str, what: &str) -> String {
    match source {
        CoordinationError::Unreachable(cause) => {
            format!("coordination store unreachable ({cause})")
        }
        CoordinationError::LeaseTimeout { waited } => {
            format!("waited {waited} for {lease}, held by another push; retry")
        }
        CoordinationError::LeaseLost => format!("{lease} expired while {what}; retry"),
    }
}

impl Refusal {
    /// A limit's refusal.
    pub fn denied(decision: &Decision) -> Self {
        Refusal::Denied(Box::new(decision.clone()))
    }

    /// A fact the upstream could not tell.
    pub fn fact(fact: Fact, source: UpstreamError) -> Self {
        Refusal::FactUnavailable {
            fact,
            source: Box::new(source),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::Denied(_)
            | Refusal::QuotaDenied(_)
            | Refusal::ImmutableTag(_)
            | Refusal::ImmutableTagDelete(_) => StatusCode::FORBIDDEN,
            Refusal::ReadOnly(_) => StatusCode::METHOD_NOT_ALLOWED,
            Refusal::NotRegistryApi { .. } => StatusCode::NOT_FOUND,
            Refusal::Request(RequestError::Method(_)) => StatusCode::METHOD_NOT_ALLOWED,
            Refusal::Request(_)
            | Refusal::TargetInvalid { .. }
            | Refusal::FormBody
            | Refusal::ConnectionNamesCheckedHeader { .. }
            | Refusal::SeveralContentTypes
            | Refusal::ManifestUnparsable(_)
            | Refusal::ManifestUnreadable { .. }
            | Refusal::ManifestMismatch(_) => StatusCode::BAD_REQUEST,
            Refusal::ManifestTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Refusal::Busy
            | Refusal::Uncoordinated(_)
            | Refusal::InventoryUnavailable(_)
            | Refusal::NamespaceUncoordinated { .. }
            | Refusal::DeleteUncoordinated { .. }
            | Refusal::UploadProgressUnread => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Refusal::UpstreamConnect { .. }
            | Refusal::UpstreamUnreachable { .. }
            | Refusal::UpstreamClosed
            | Refusal::UpstreamConnectTimeout { .. }
            | Refusal::UpstreamInvalidAnswer { .. }
            | Refusal::Incomplete { .. } => StatusCode::BAD_GATEWAY,
            Refusal::FactUnavailable { source, .. } => match failure(source) {
                Failure::Refused(status, ..) if status == StatusCode::UNAUTHORIZED => {
                    StatusCode::UNAUTHORIZED
                }
                Failure::Refused(..) => StatusCode::FORBIDDEN,
                Failure::Timeout => StatusCode::GATEWAY_TIMEOUT,
                Failure::Unreachable => StatusCode::BAD_GATEWAY,
                Failure::Other => StatusCode::SERVICE_UNAVAILABLE,
            },
        }
    }

    /// The distribution error code of the envelope: the upstream's own when its refusal of the
    /// client is passed on; `None` for the one answer without an envelope, the read-only one.
    pub fn code(&self) -> Option<&str> {
        let code = match self {
            Refusal::ReadOnly(_) => return None,
            Refusal::Denied(_)
            | Refusal::QuotaDenied(_)
            | Refusal::ImmutableTag(_)
            | Refusal::ImmutableTagDelete(_) => "DENIED",
            Refusal::NotRegistryApi { .. } => "NOT_FOUND",
            Refusal::Request(RequestError::Method(_))
            | Refusal::FormBody
            | Refusal::ConnectionNamesCheckedHeader { .. }
            | Refusal::SeveralContentTypes => "UNSUPPORTED",
            Refusal::Request(RequestError::Reference(_)) => "TAG_INVALID",
            Refusal::Request(_) | Refusal::TargetInvalid { .. } => "NAME_INVALID",
            Refusal::ManifestUnparsable(_)
            | Refusal::ManifestUnreadable { .. }
            | Refusal::BodyTimeout { .. }
            | Refusal::ManifestMismatch(MeasureError::SizeMismatch { .. }) => "MANIFEST_INVALID",
            Refusal::ManifestMismatch(MeasureError::BlobUnknown { .. }) => "MANIFEST_BLOB_UNKNOWN",
            Refusal::ManifestMismatch(_) => "MANIFEST_INVALID",
            Refusal::ManifestTooLarge { .. } => "SIZE_INVALID",
            Refusal::FactUnavailable { source, .. } => match failure(source) {
                Failure::Refused(status, code, _) => {
                    code.unwrap_or(if status == StatusCode::UNAUTHORIZED {
                        "UNAUTHORIZED"
                    } else {
                        "DENIED"
                    })
                }
                _ => "UNAVAILABLE",
            },
            Refusal::Busy
            | Refusal::UpstreamTimeout { .. }
            | Refusal::UpstreamConnect { .. }
            | Refusal::UpstreamUnreachable { .. }
            | Refusal::UpstreamClosed
            | Refusal::UpstreamConnectTimeout { .. }
            | Refusal::UpstreamInvalidAnswer { .. }
            | Refusal::Incomplete { .. }
            | Refusal::Uncoordinated(_)
            | Refusal::InventoryUnavailable(_)
            | Refusal::NamespaceUncoordinated { .. }
            | Refusal::DeleteUncoordinated { .. }
            | Refusal::UploadProgressUnread => "UNAVAILABLE",
        };
        Some(code)
    }

    /// The `reason` label of `registry_gateway_refusals_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::Denied(_) => "denied",
            Refusal::QuotaDenied(_) => "quota_denied",
            Refusal::ReadOnly(_) => "read_only",
            Refusal::ImmutableTag(_) => "immutable_tag",
            Refusal::ImmutableTagDelete(_) => "immutable_tag_delete",
            Refusal::NotRegistryApi { .. } => "not_registry_api",
            Refusal::Request(RequestError::Method(_)) => "method_not_allowed",
            Refusal::Request(RequestError::Reference(_)) => "reference_invalid",
            Refusal::Request(_) | Refusal::TargetInvalid { .. } => "name_invalid",
            Refusal::FormBody => "form_body",
            Refusal::ConnectionNamesCheckedHeader { .. } | Refusal::SeveralContentTypes => {
                "ambiguous_header"
            }
            Refusal::ManifestTooLarge { .. } => "manifest_too_large",
            Refusal::ManifestUnparsable(err) if err.is_schema1() => "schema1",
            Refusal::ManifestUnparsable(_) | Refusal::ManifestUnreadable { .. } => {
                "manifest_invalid"
            }
            Refusal::ManifestMismatch(MeasureError::SizeMismatch { .. }) => "layer_size_mismatch",
            Refusal::ManifestMismatch(MeasureError::BlobUnknown { .. }) => "blob_unknown",
            Refusal::ManifestMismatch(_) => "manifest_invalid",
            Refusal::BodyTimeout { .. } => "body_timeout",
            Refusal::Busy => "busy",
            Refusal::FactUnavailable { source, .. } => match failure(source) {
                Failure::Refused(status, ..) if status == StatusCode::UNAUTHORIZED => {
                    "unauthorized"
                }
                Failure::Refused(..) => "forbidden",
                _ => "upstream_unavailable",
            },
            Refusal::UpstreamTimeout { .. }
            | Refusal::UpstreamConnect { .. }
            | Refusal::UpstreamUnreachable { .. }
            | Refusal::UpstreamClosed
            | Refusal::UpstreamConnectTimeout { .. }
            | Refusal::UpstreamInvalidAnswer { .. }
            | Refusal::Incomplete { .. }
            | Refusal::Uncoordinated(_)
            | Refusal::InventoryUnavailable(_)
            | Refusal::NamespaceUncoordinated { .. }
            | Refusal::DeleteUncoordinated { .. }
            | Refusal::UploadProgressUnread => "upstream_unavailable",
        }
    }

    /// The message a client prints after `denied:` or the like.
    pub fn message(&self) -> String {
        const UNAVAILABLE: &str = "the upstream registry is unavailable";
        match self {
            Refusal::Denied(decision) => decision.to_string(),
            Refusal::QuotaDenied(decision) => decision.to_string(),
            Refusal::ReadOnly(read_only) => read_only.to_string(),
            Refusal::ImmutableTag(refused) => refused.to_string(),
            Refusal::ImmutableTagDelete(refused) => refused.to_string(),
            Refusal::NotRegistryApi { path } => {
                format!("{path} is not part of the registry API (/v2/)")
            }
            Refusal::Request(err) => err.to_string(),
            Refusal::TargetInvalid { cause } => format!("invalid request target: {cause}"),
            Refusal::FormBody => "blob upload requests with a form body \
                (application/x-www-form-urlencoded, multipart/form-data) are not accepted: the \
                registry would read their parameters from the body; send them in the query"
                .to_owned(),
            Refusal::ConnectionNamesCheckedHeader { name } => format!(
                "the Connection header names {name}, which the gateway reads for its checks and would have to remove before forwarding"
            ),
            Refusal::SeveralContentTypes => {
                "a manifest push must carry exactly one Content-Type header".to_owned()
            }
            Refusal::ManifestTooLarge { size } => {
                let max = oci_manifest::MAX_MANIFEST_BYTES;
                let measured =
                    size.map_or_else(|| format!("more than {max}"), |size| size.to_string());
                format!(
                    "manifest body of {measured} bytes exceeds the limit of {max} bytes (4 MiB)"
                )
            }
            Refusal::ManifestUnparsable(err) => err.to_string(),
            Refusal::ManifestUnreadable { cause } => {
                format!("the manifest body could not be read: {cause}")
            }
            Refusal::ManifestMismatch(err @ MeasureError::SizeMismatch { actual, .. }) => {
                format!("{err} ({})", ByteSize::new(*actual))
            }
            Refusal::ManifestMismatch(err) => err.to_string(),
            Refusal::BodyTimeout { after } => format!(
                "the manifest body did not arrive within {}",
                humantime::format_duration(*after)
            ),
            Refusal::Busy => {
                "the gateway is receiving too many manifests at once; retry shortly".to_owned()
            }
            Refusal::UpstreamTimeout { after } => format!(
                "the upstream registry did not answer within {}",
                humantime::format_duration(*after)
            ),
            Refusal::UpstreamConnect { cause } | Refusal::UpstreamUnreachable { cause } => {
                format!("{UNAVAILABLE}: {cause}")
            }
            Refusal::UpstreamClosed => {
                format!("{UNAVAILABLE}: it closed the connection without an answer")
            }
            Refusal::UpstreamConnectTimeout { address } => {
                format!("{UNAVAILABLE}: connecting to {address} timed out")
            }
            Refusal::UpstreamInvalidAnswer { why } => {
                format!("the upstream registry gave an invalid answer: {why}")
            }
            Refusal::Incomplete { what, cause } => format!("the {what} did not complete: {cause}"),
            Refusal::FactUnavailable { fact, source } => match failure(source) {
                Failure::Refused(status, ..) => format!(
                    "{}: the registry refused the client's credentials ({status})",
                    fact.what()
                ),
                _ => format!("{}: {source}", fact.what()),
            },
            Refusal::Uncoordinated(err) => err.to_string(),
            Refusal::InventoryUnavailable(err) => {
                format!("the namespace's usage could not be read from the registry: {err}")
            }
            Refusal::NamespaceUncoordinated { scope, source } => {
                let (what, lease) = match crate::inventory::lone_repository(scope) {
                    Some(repository) => (
                        format!("the image count of repository {repository}"),
                        "the lease on its images",
                    ),
                    None => (
                        format!("image counts and the quota of namespace {scope}"),
                        "the namespace's lease",
                    ),
                };
                let cause = lease_cause(source, lease, "the push was decided");
                format!("{what} cannot be enforced: {cause}")
            }
            Refusal::DeleteUncoordinated { repository, source } => {
                let cause = lease_cause(source, "the repository's lease", "the delete was checked");
                format!(
                    "the delete cannot be checked against the immutable tags of repository {repository}: {cause}"
                )
            }
            Refusal::UploadProgressUnread => "the upload's progress could not be read from the \
                upstream registry: the upstream registry's upload status has no Range header"
                .to_owned(),
        }
    }

    /// Machine-readable facts for the envelope's `detail`.
    pub fn detail(&self) -> Option<Value> {
        match self {
            Refusal::Denied(decision) => Some(to_value(decision.detail())),
            Refusal::QuotaDenied(decision) => Some(to_value(decision.detail())),
            Refusal::ReadOnly(read_only) => {
                let (rule, rule_path) = rule_of(&read_only.source);
                Some(json!({
                    "repository": read_only.repository.as_ref().map(RepositoryName::as_str),
                    "check": "read_only",
                    "rule": rule,
                    "rule_path": rule_path,
                }))
            }
            Refusal::ImmutableTag(refused) => Some(to_value(refused.detail())),
            Refusal::ImmutableTagDelete(refused) => Some(to_value(refused.detail())),
            Refusal::ManifestTooLarge { .. } => {
                Some(json!({ "limit": oci_manifest::MAX_MANIFEST_BYTES }))
            }
            Refusal::ManifestMismatch(MeasureError::SizeMismatch {
                field,
                digest,
                declared,
                actual,
            }) => Some(
                json!({"blob": field, "digest": digest.as_str(), "declared": declared, "actual": actual}),
            ),
            Refusal::ManifestMismatch(MeasureError::BlobUnknown { field, digest }) => {
                Some(json!({"blob": field, "digest": digest.as_str()}))
            }
            Refusal::ManifestMismatch(err) => Some(json!({"digest": err.digest().as_str()})),
            Refusal::FactUnavailable { fact, .. } => fact.detail(),
            _ => None,
        }
    }
}

fn to_value(detail: impl serde::Serialize) -> Value {
    serde_json::to_value(detail).unwrap_or_default()
}

fn rule_of(source: &LimitSource) -> (Option<usize>, Option<String>) {
    match source {
        LimitSource::Global => (None, None),
        LimitSource::Rule { position, path } => (Some(*position), Some(path.to_string())),
    }
}

/// `refusal`, with the request's unread body drained so that the client reads the answer
/// instead of a reset.
pub(crate) fn refused(request: http::Request<hyper::body::Incoming>, refusal: Refusal) -> Refusal {
    crate::body::drain(request.into_body());
    refusal
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_manifest::Digest;

    /// A namespace quota's refusal.
    fn quota_denied() -> Refusal {
        let policy = limits_core::Policy::from_yaml(
            "namespace_quotas:\n- namespace: ^team$\n  hard: {repositories: \"1\"}\n",
        )
        .expect("valid");
        let quota = policy
            .quota_for(&"team/app".parse().expect("name"))
            .expect("a quota");
        let usage = limits_core::NamespaceUsage {
            repositories: 1,
            ..Default::default()
        };
        let push = limits_core::PushDelta {
            new_repository: true,
            ..Default::default()
        };
        let decision = quota.check_kind(limits_core::QuotaKind::Repositories, &usage, &push);
        Refusal::QuotaDenied(Box::new(decision))
    }

    /// A namespace quota's refusal is a 403 `DENIED` with the decision's message and detail.
    #[test]
    fn quota_refusals_are_denied_with_the_message_and_detail() {
        let refusal = quota_denied();
        assert_eq!(refusal.status(), StatusCode::FORBIDDEN);
        assert_eq!(refusal.code(), Some("DENIED"));
        assert_eq!(
            refusal.message(),
            "namespace team would hold 2 repositories, over its quota of 1 (namespace quota 1: ^team$): it holds 1 and this push adds 1"
        );
        let detail = refusal.detail().expect("a detail");
        assert_eq!(detail["check"], "namespace_repositories");
        assert_eq!(detail["measured"], 2);
        assert_eq!(detail["quota_namespace"], "^team$");
    }

    fn samples() -> Vec<Refusal> {
        let digest: Digest =
            "sha256:0000000000000000000000000000000000000000000000000000000000000000"
                .parse()
                .expect("digest");
        vec![
            Refusal::ReadOnly(ReadOnly {
                repository: None,
                source: LimitSource::Global,
            }),
            Refusal::NotRegistryApi { path: "/x".into() },
            quota_denied(),
            Refusal::InventoryUnavailable(crate::inventory::InventoryError::Manifest {
                repository: "team/app".into(),
                digest: digest.to_string(),
                source: oci_manifest::parse(None, b"{}").expect_err("no content type"),
            }),
            Refusal::Request(RequestError::Method("BREW".into())),
            Refusal::TargetInvalid { cause: "x".into() },
            Refusal::FormBody,
            Refusal::ConnectionNamesCheckedHeader {
                name: "content-type".into(),
            },
            Refusal::SeveralContentTypes,
            Refusal::ManifestTooLarge {
                size: Some(5 << 20),
            },
            Refusal::ManifestUnreadable { cause: "x".into() },
            Refusal::ManifestMismatch(MeasureError::BlobUnknown {
                field: "config".into(),
                digest: digest.clone(),
            }),
            Refusal::BodyTimeout {
                after: Duration::from_secs(1),
            },
            Refusal::Busy,
            Refusal::UpstreamTimeout {
                after: Duration::from_secs(1),
            },
            Refusal::UpstreamConnect { cause: "x".into() },
            Refusal::UpstreamUnreachable { cause: "x".into() },
            Refusal::UpstreamClosed,
            Refusal::UpstreamConnectTimeout {
                address: "u:80".into(),
            },
            Refusal::UpstreamInvalidAnswer { why: "x".into() },
            Refusal::Incomplete {
                what: "manifest push",
                cause: "x".into(),
            },
            Refusal::fact(
                Fact::BlobSize { digest },
                UpstreamError::Timeout {
                    url: "http://u/v2/".into(),
                    timeout: Duration::from_secs(1),
                },
            ),
            Refusal::Uncoordinated(CoordinationError::LeaseLost),
            Refusal::NamespaceUncoordinated {
                scope: "team".into(),
                source: CoordinationError::Unreachable("x".into()),
            },
            Refusal::UploadProgressUnread,
        ]
    }

    #[test]
    fn every_refusal_is_a_client_or_server_error_with_a_known_code() {
        const CODES: [&str; 10] = [
            "DENIED",
            "NOT_FOUND",
            "UNSUPPORTED",
            "NAME_INVALID",
            "TAG_INVALID",
            "MANIFEST_INVALID",
            "MANIFEST_BLOB_UNKNOWN",
            "SIZE_INVALID",
            "UNAUTHORIZED",
            "UNAVAILABLE",
        ];
        for refusal in samples() {
            let status = refusal.status();
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{refusal:?}"
            );
            match refusal.code() {
                Some(code) => assert!(CODES.contains(&code), "{refusal:?}"),
                None => assert!(matches!(refusal, Refusal::ReadOnly(_))),
            }
            assert!(!refusal.label().is_empty());
        }
    }
}
