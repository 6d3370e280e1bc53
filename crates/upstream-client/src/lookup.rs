//! Lookups of one thing in a repository: a manifest by tag or digest, the digest a tag points
//! to, the size of a blob. A 404 is an answer (`None`), not an error.

use http::{Method, StatusCode, header};
use limits_core::RepositoryName;
use oci_manifest::Digest;

use crate::auth::Auth;
use crate::error::{ResponseProblem, UpstreamError, shown};
use crate::inventory::is_reference;
use crate::request::header_value;
use crate::session::Session;
use crate::upstream::{FetchedManifest, MANIFEST_ACCEPT};

/// Sends `method` to `v2/<repo>/<rest>` with pull scope: `None` for 404, the answer and its URL
/// as shown in errors for 200, an error otherwise.
async fn pull(
    session: &Session,
    method: Method,
    repo: &RepositoryName,
    rest: &str,
    accept: Option<&'static str>,
    auth: Auth<'_>,
) -> Result<Option<(reqwest::Response, String)>, UpstreamError> {
    let requester = session.requester();
    let url = requester.url(&format!("v2/{repo}/{rest}"))?;
    let shown_url = shown(&url);
    let scope = format!("repository:{repo}:pull");
    let response = session.send(method, &url, auth, &scope, accept).await?;
    match response.status() {
        StatusCode::OK => Ok(Some((response, shown_url))),
        StatusCode::NOT_FOUND => Ok(None),
        _ => Err(requester.failure(response, &shown_url, auth).await),
    }
}

/// `GET` on a manifest, with every manifest type accepted: its media type and bytes.
pub(crate) async fn manifest(
    session: &Session,
    repo: &RepositoryName,
    reference: &str,
    auth: Auth<'_>,
) -> Result<Option<FetchedManifest>, UpstreamError> {
    if !is_reference(reference) {
        return Err(UpstreamError::InvalidReference {
            reference: reference.to_owned(),
        });
    }
    let rest = format!("manifests/{reference}");
    let Some((response, shown_url)) = pull(
        session,
        Method::GET,
        repo,
        &rest,
        Some(MANIFEST_ACCEPT),
        auth,
    )
    .await?
    else {
        return Ok(None);
    };
    let media_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = session
        .requester()
        .read_body(response, oci_manifest::MAX_MANIFEST_BYTES, &shown_url)
        .await?;
    Ok(Some(FetchedManifest { media_type, body }))
}

/// `HEAD` on a blob: its `Content-Length`.
pub(crate) async fn blob_size(
    session: &Session,
    repo: &RepositoryName,
    digest: &Digest,
    auth: Auth<'_>,
) -> Result<Option<u64>, UpstreamError> {
    let rest = format!("blobs/{digest}");
    let Some((response, shown_url)) = pull(session, Method::HEAD, repo, &rest, None, auth).await?
    else {
        return Ok(None);
    };
    header_value(
        &response,
        header::CONTENT_LENGTH.as_str(),
        &shown_url,
        ResponseProblem::MissingContentLength,
        |value| ResponseProblem::InvalidContentLength { value },
    )
    .map(Some)
}

/// `HEAD` on a manifest, with every manifest type accepted: its `Docker-Content-Digest`.
pub(crate) async fn manifest_digest(
    session: &Session,
    repo: &RepositoryName,
    reference: &str,
    auth: Auth<'_>,
) -> Result<Option<Digest>, UpstreamError> {
    let rest = format!("manifests/{reference}");
    let Some((response, shown_url)) = pull(
        session,
        Method::HEAD,
        repo,
        &rest,
        Some(MANIFEST_ACCEPT),
        auth,
    )
    .await?
    else {
        return Ok(None);
    };
    header_value(
        &response,
        "docker-content-digest",
        &shown_url,
        ResponseProblem::MissingDigest,
        |value| ResponseProblem::InvalidDigest { value },
    )
    .map(Some)
}
