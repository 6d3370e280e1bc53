//! Paginated listings (a repository's tags, the catalog): every page, following `Link` headers
//! that stay on the upstream's origin.

use http::{Method, StatusCode, header};
use limits_core::RepositoryName;
use url::Url;

use crate::auth::Auth;
use crate::error::{BoxError, ResponseProblem, UpstreamError, excerpt, shown};
use crate::link::parse_link_next;
use crate::session::Session;

/// Largest tag list or catalog page read (a page of 1000 long tags is about 130 KiB).
const MAX_PAGE_BYTES: usize = 32 << 20;

/// One tag list page.
#[derive(Debug, serde::Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// One catalog page.
#[derive(Debug, serde::Deserialize)]
struct CatalogPage {
    #[serde(default)]
    repositories: Option<Vec<String>>,
}

/// A paginated listing.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Listing<'a> {
    /// `GET /v2/<name>/tags/list`
    Tags(&'a RepositoryName),
    /// `GET /v2/_catalog`
    Catalog,
    /// `GET /v2/_catalog?last=<namespace>`: the repositories under `<namespace>/`.
    CatalogNamespace(&'a str),
}

/// How many entries to ask for per page, and how many pages to follow at most.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pages {
    /// The `n` asked for per page.
    pub(crate) size: usize,
    /// The most pages followed.
    pub(crate) max: usize,
}

impl Listing<'_> {
    fn path(self) -> String {
        match self {
            Listing::Tags(repo) => format!("v2/{repo}/tags/list"),
            Listing::Catalog | Listing::CatalogNamespace(_) => "v2/_catalog".to_owned(),
        }
    }

    fn scope(self) -> String {
        match self {
            Listing::Tags(repo) => format!("repository:{repo}:pull"),
            Listing::Catalog | Listing::CatalogNamespace(_) => "registry:catalog:*".to_owned(),
        }
    }

    /// The entries of one page's body.
    fn entries(self, body: &[u8]) -> Result<Vec<String>, ResponseProblem> {
        match self {
            Listing::Tags(_) => serde_json::from_slice::<TagList>(body)
                .map(|page| page.tags.unwrap_or_default())
                .map_err(|e| ResponseProblem::TagList {
                    excerpt: excerpt(body),
                    source: Box::new(e),
                }),
            Listing::Catalog | Listing::CatalogNamespace(_) => {
                serde_json::from_slice::<CatalogPage>(body)
                    .map(|page| page.repositories.unwrap_or_default())
                    .map_err(|e| ResponseProblem::Catalog {
                        excerpt: excerpt(body),
                        source: Box::new(e),
                    })
            }
        }
    }
}

/// Whether a catalog entry sorts after every repository of `namespace` both in plain string
/// order and in distribution's path order (component by component): its first component sorts
/// after the namespace, and the whole name after `<namespace>/`. Once a page holds such an entry,
/// the pages after it cannot hold the namespace's repositories.
pub(crate) fn past_namespace(namespace: &str, entry: &str) -> bool {
    let first = entry.split('/').next().unwrap_or(entry);
    first > namespace && entry > format!("{namespace}/").as_str()
}

/// Resolves a page's `Link` next target against the page's URL, refusing other origins than
/// the upstream's (`base`).
fn next_page(base: &Url, page: &Url, link: &str) -> Result<Option<Url>, UpstreamError> {
    let malformed = |source: BoxError| UpstreamError::MalformedLink {
        url: shown(page),
        value: link.to_owned(),
        source,
    };
    let Some(target) = parse_link_next(link).map_err(|e| malformed(Box::new(e)))? else {
        return Ok(None);
    };
    let next = page.join(&target).map_err(|e| malformed(Box::new(e)))?;
    if next.origin() != base.origin() {
        return Err(UpstreamError::LinkOutsideUpstream {
            target: shown(&next),
        });
    }
    Ok(Some(next))
}

/// Every entry of a paginated listing (a tag list or the catalog), following `Link`.
pub(crate) async fn list(
    session: &Session,
    listing: Listing<'_>,
    pages: Pages,
    auth: Auth<'_>,
) -> Result<Vec<String>, UpstreamError> {
    let requester = session.requester();
    let mut url = requester.url(&listing.path())?;
    url.query_pairs_mut()
        .append_pair("n", &pages.size.to_string());
    if let Listing::CatalogNamespace(namespace) = listing {
        // Both orders distribution may list in put `<namespace>` before `<namespace>/...`.
        url.query_pairs_mut().append_pair("last", namespace);
    }
    let first = shown(&url);
    let scope = listing.scope();
    let mut entries = Vec::new();
    for page in 1..=pages.max {
        let shown_url = shown(&url);
        let response = session.send(Method::GET, &url, auth, &scope, None).await?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND if page == 1 && matches!(listing, Listing::Tags(_)) => {
                let error = requester.failure(response, &shown_url, auth).await;
                return match &error {
                    UpstreamError::Status {
                        code: Some(code), ..
                    } if code == "NAME_UNKNOWN" => Ok(Vec::new()),
                    _ => Err(error),
                };
            }
            _ => return Err(requester.failure(response, &shown_url, auth).await),
        }
        let links: Vec<&str> = response
            .headers()
            .get_all(header::LINK)
            .iter()
            .map(|v| v.to_str().unwrap_or("\u{fffd}"))
            .collect();
        let next = if links.is_empty() {
            None
        } else {
            next_page(requester.base(), &url, &links.join(", "))?
        };
        let body = requester
            .read_body(response, MAX_PAGE_BYTES, &shown_url)
            .await?;
        let page_entries =
            listing
                .entries(&body)
                .map_err(|problem| UpstreamError::InvalidResponse {
                    url: shown_url.clone(),
                    problem,
                })?;
        let next = match listing {
            Listing::CatalogNamespace(namespace) => {
                let past = page_entries
                    .iter()
                    .any(|entry| past_namespace(namespace, entry));
                let prefix = format!("{namespace}/");
                entries.extend(
                    page_entries
                        .into_iter()
                        .filter(|entry| entry.starts_with(&prefix)),
                );
                if past { None } else { next }
            }
            _ => {
                entries.extend(page_entries);
                next
            }
        };
        match next {
            Some(next) => url = next,
            None => {
                match listing {
                    Listing::Tags(repo) => {
                        tracing::debug!(repository = %repo, tags = entries.len(), pages = page, "listed upstream tags");
                    }
                    Listing::Catalog | Listing::CatalogNamespace(_) => {
                        tracing::debug!(
                            repositories = entries.len(),
                            pages = page,
                            "listed upstream catalog"
                        );
                    }
                }
                return Ok(entries);
            }
        }
    }
    Err(UpstreamError::TooManyPages {
        limit: pages.max,
        url: first,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_a_namespace() {
        #[rustfmt::skip]
        let cases = [
            ("team-a", "team-a/app", false),
            ("team-a", "team-a/tools/app", false),
            // Before `team-a/` in string order, after it in path order: not past in both.
            ("team-a", "team-a-x/app", false),
            ("team-a", "team-a.x/app", false),
            ("team-a", "team-b/app", true),
            ("team-a", "zeta", true),
            ("team-a", "team", false),
            ("team-a", "alpha/app", false),
        ];
        for (namespace, entry, want) in cases {
            assert_eq!(
                past_namespace(namespace, entry),
                want,
                "{namespace} {entry}"
            );
        }
    }
}
