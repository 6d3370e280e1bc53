//! Which registry API call a request is, read once into a typed value.

use std::fmt;

use limits_core::{RepositoryName, RepositoryNameError};

use crate::path::{PathError, decode_path, is_clean};
use crate::query::go_query_value;
use crate::reference::{Reference, ReferenceError};

/// The methods of the distribution API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `OPTIONS`
    Options,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
}

impl Method {
    /// The method named exactly (methods are case-sensitive), or `None`.
    pub fn from_name(name: &str) -> Option<Method> {
        Some(match name {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "OPTIONS" => Method::Options,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => return None,
        })
    }

    /// Whether the method can change what the registry stores.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Method::Post | Method::Put | Method::Patch | Method::Delete
        )
    }

    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A cross-repository blob mount: `POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<repo>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The blob to mount.
    pub digest: oci_manifest::Digest,
    /// The repository it is mounted from.
    pub from: RepositoryName,
}

/// What a request is, for the checks the gateway makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `PUT /v2/<name>/manifests/<reference>`.
    ManifestPut {
        /// The repository.
        name: RepositoryName,
        /// Tag or digest, as the registry reads it.
        reference: Reference,
    },
    /// `DELETE /v2/<name>/manifests/<reference>`: deletes the manifest a digest names (and
    /// with it every tag that points to it), or a tag on registries that delete by tag.
    ManifestDelete {
        /// The repository.
        name: RepositoryName,
        /// Tag or digest, as the registry reads it.
        reference: Reference,
    },
    /// `POST /v2/<name>/blobs/uploads/`, possibly a cross-repository mount.
    UploadStart {
        /// The repository.
        name: RepositoryName,
        /// The mount it asks for, when it names a valid digest and repository.
        mount: Option<Mount>,
    },
    /// `PATCH` or `PUT` of `/v2/<name>/blobs/uploads/<id>`: a chunk, or the end of an upload.
    UploadChunk {
        /// The repository.
        name: RepositoryName,
        /// The upload's id, decoded.
        id: String,
    },
    /// Any other write under `/v2/`: deletes of blobs and upload sessions, unknown paths, and
    /// manifest deletes whose name is outside the OCI grammar or whose reference the
    /// registry's router does not take (no manifest the gateway let in has such a name).
    OtherWrite,
    /// A read under `/v2/`.
    Read,
    /// A path outside `/v2/`: not part of the registry API.
    Outside,
}

/// Why a request was refused before any check ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// A method the distribution API does not have.
    #[error("method {0} is not part of the registry API")]
    Method(String),
    /// The path does not decode.
    #[error("invalid request path: {0}")]
    Path(#[from] PathError),
    /// A write whose decoded path is not clean, or holds characters no name, reference or
    /// upload id has: the registry would redirect it or read it differently.
    #[error(
        "path \"{path}\" is not in canonical form (decoded, without empty, \".\" or \"..\" segments, \
         made of the characters of names, references and upload ids)"
    )]
    NotCanonical {
        /// The decoded path, cut to 150 characters.
        path: String,
    },
    /// A checked route whose repository name is not in the OCI grammar.
    #[error("{0}")]
    Name(#[from] RepositoryNameError),
    /// A manifest reference that is neither a tag nor a digest.
    #[error("{0}")]
    Reference(#[from] ReferenceError),
    /// A mount from a repository whose name is not in the OCI grammar.
    #[error("mount from {0}")]
    MountFrom(RepositoryNameError),
}

/// One request, read once: its method, route, and the path to send to the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRequest {
    /// The method.
    pub method: Method,
    /// The route, with names and references validated where the gateway checks them.
    pub route: Route,
    /// The canonical path to forward instead of the one received (writes), or `None` to
    /// forward the received path unchanged (reads).
    pub forward_path: Option<String>,
}

/// Characters a decoded write path may hold: those of names, tags, digests and upload ids.
fn canonical_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | ':' | '=' | '+' | '~' | '@')
}

impl ApiRequest {
    /// Reads a request from its method, path and raw query, as the registry would.
    pub fn parse(method: &str, path: &str, query: Option<&str>) -> Result<Self, RequestError> {
        let method = Method::from_name(method).ok_or_else(|| RequestError::Method(cut(method)))?;
        let decoded = decode_path(path)?;
        let Some(rest) = decoded
            .strip_prefix("/v2/")
            .or_else(|| (decoded == "/v2").then_some(""))
        else {
            return Ok(Self {
                method,
                route: Route::Outside,
                forward_path: None,
            });
        };
        if !method.is_write() {
            return Ok(Self {
                method,
                route: Route::Read,
                forward_path: None,
            });
        }
        if !is_clean(&decoded) || !decoded.chars().all(canonical_char) {
            return Err(RequestError::NotCanonical {
                path: cut(&decoded),
            });
        }
        let route = write_route(method, rest, query)?;
        Ok(Self {
            method,
            route,
            forward_path: Some(decoded.into_owned()),
        })
    }

    /// The repository a checked route names.
    pub fn repository(&self) -> Option<&RepositoryName> {
        match &self.route {
            Route::ManifestPut { name, .. }
            | Route::ManifestDelete { name, .. }
            | Route::UploadStart { name, .. }
            | Route::UploadChunk { name, .. } => Some(name),
            Route::OtherWrite | Route::Read | Route::Outside => None,
        }
    }

    /// The repository a write acts on, as distribution's routes read it: the name of a checked
    /// route, and for other writes the name before `/manifests/<reference>`,
    /// `/blobs/uploads/[<id>]`, `/blobs/<digest>`, `/tags/list` or `/referrers/<digest>`.
    /// `None` for reads, for paths outside `/v2/`, and for writes that match none of those
    /// routes or whose name is outside the OCI grammar (the registry stores nothing for them).
    pub fn write_repository(&self) -> Option<RepositoryName> {
        if let Some(name) = self.repository() {
            return Some(name.clone());
        }
        if self.route != Route::OtherWrite {
            return None;
        }
        let rest = self.forward_path.as_deref()?.strip_prefix("/v2/")?;
        other_write_name(rest)?.parse().ok()
    }
}

/// The name part of a write path (after `/v2/`) that is none of the checked routes.
fn other_write_name(rest: &str) -> Option<&str> {
    let last = |separator: &str| {
        rest.rsplit_once(separator)
            .filter(|(_, tail)| !tail.contains('/'))
            .map(|(name, _)| name)
    };
    last("/blobs/uploads/")
        .or_else(|| last("/manifests/"))
        .or_else(|| last("/blobs/"))
        .or_else(|| last("/referrers/"))
        .or_else(|| rest.strip_suffix("/tags/list"))
}

/// The route of a write, trying distribution's routes in its order: manifests, tags, blobs,
/// upload start, upload chunk. `rest` is the clean, decoded path after `/v2/`.
fn write_route(method: Method, rest: &str, query: Option<&str>) -> Result<Route, RequestError> {
    // /v2/<name>/manifests/<reference>: a reference never holds a '/', so the split is at the
    // last "/manifests/".
    if let Some((name, reference)) = rest.rsplit_once("/manifests/") {
        if !reference.is_empty() && !reference.contains('/') {
            match method {
                Method::Put => {
                    return Ok(Route::ManifestPut {
                        name: name.parse()?,
                        reference: Reference::parse(reference)?,
                    });
                }
                // A delete is read the same way; one whose name or reference cannot be read
                // removes nothing the gateway let in, and stays another write, forwarded as
                // before (the registry answers 404 where its router does not take it).
                Method::Delete => {
                    if let (Ok(name), Ok(reference)) = (name.parse(), Reference::parse(reference)) {
                        return Ok(Route::ManifestDelete { name, reference });
                    }
                }
                _ => {}
            }
        }
    }
    if method == Method::Post {
        if let Some(name) = rest.strip_suffix("/blobs/uploads/") {
            return Ok(Route::UploadStart {
                name: name.parse()?,
                mount: mount(query)?,
            });
        }
    }
    if matches!(method, Method::Patch | Method::Put) {
        if let Some((name, id)) = rest.rsplit_once("/blobs/uploads/") {
            let id_ok = !id.is_empty()
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='));
            if id_ok {
                return Ok(Route::UploadChunk {
                    name: name.parse()?,
                    id: id.to_owned(),
                });
            }
        }
    }
    Ok(Route::OtherWrite)
}

/// The mount an upload start asks for. As for distribution, both `mount` and `from` must be
/// given and `mount` must be a valid digest; otherwise the request starts a plain upload. A
/// `from` outside the OCI grammar is refused rather than passed to a registry whose own
/// grammar is wider.
fn mount(query: Option<&str>) -> Result<Option<Mount>, RequestError> {
    let digest = go_query_value(query, "mount").filter(|d| !d.is_empty());
    let from = go_query_value(query, "from").filter(|f| !f.is_empty());
    let (Some(digest), Some(from)) = (digest, from) else {
        return Ok(None);
    };
    let Ok(digest) = digest.parse::<oci_manifest::Digest>() else {
        return Ok(None);
    };
    let from = from.parse().map_err(RequestError::MountFrom)?;
    Ok(Some(Mount { digest, from }))
}

fn cut(text: &str) -> String {
    text.chars().take(150).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> RepositoryName {
        text.parse().expect("valid name")
    }

    fn tag(text: &str) -> Reference {
        Reference::Tag(text.to_owned())
    }

    #[test]
    fn routes() {
        let d = format!("sha256:{}", "a".repeat(64));
        // (method, path, query, route, canonical path forwarded)
        type Case = (
            &'static str,
            String,
            Option<String>,
            Route,
            Option<&'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                "PUT",
                "/v2/a/b/manifests/v1".into(),
                None,
                Route::ManifestPut {
                    name: name("a/b"),
                    reference: tag("v1"),
                },
                Some("/v2/a/b/manifests/v1"),
            ),
            (
                "PUT",
                "/v2/a%2Fb/manifests/v%31".into(),
                None,
                Route::ManifestPut {
                    name: name("a/b"),
                    reference: tag("v1"),
                },
                Some("/v2/a/b/manifests/v1"),
            ),
            (
                "PUT",
                "/v2/%70roject-1/enc/manifests/latest".into(),
                None,
                Route::ManifestPut {
                    name: name("project-1/enc"),
                    reference: tag("latest"),
                },
                Some("/v2/project-1/enc/manifests/latest"),
            ),
            (
                "PUT",
                format!("/v2/a/manifests/{d}"),
                None,
                Route::ManifestPut {
                    name: name("a"),
                    reference: Reference::Digest(d.parse().expect("digest")),
                },
                None,
            ),
            (
                "PUT",
                "/v2/a/manifests/sha256:abc".into(),
                None,
                Route::ManifestPut {
                    name: name("a"),
                    reference: tag("sha256:abc"),
                },
                None,
            ),
            (
                "PUT",
                "/v2/manifests/x/manifests/v1".into(),
                None,
                Route::ManifestPut {
                    name: name("manifests/x"),
                    reference: tag("v1"),
                },
                None,
            ),
            (
                "PUT",
                "/v2/a/blobs/uploads/manifests/v1".into(),
                None,
                Route::ManifestPut {
                    name: name("a/blobs/uploads"),
                    reference: tag("v1"),
                },
                None,
            ),
            (
                "DELETE",
                "/v2/a/manifests/v1".into(),
                None,
                Route::ManifestDelete {
                    name: name("a"),
                    reference: tag("v1"),
                },
                Some("/v2/a/manifests/v1"),
            ),
            (
                "DELETE",
                format!("/v2/a%2Fb/manifests/{}", d.replace(':', "%3A")),
                None,
                Route::ManifestDelete {
                    name: name("a/b"),
                    reference: Reference::Digest(d.parse().expect("digest")),
                },
                None,
            ),
            (
                "DELETE",
                "/v2/%70roject-1/app/manifests/sha256:abc".into(),
                None,
                Route::ManifestDelete {
                    name: name("project-1/app"),
                    reference: tag("sha256:abc"),
                },
                Some("/v2/project-1/app/manifests/sha256:abc"),
            ),
            (
                "DELETE",
                "/v2/x/manifests/y/manifests/v1".into(),
                None,
                Route::ManifestDelete {
                    name: name("x/manifests/y"),
                    reference: tag("v1"),
                },
                None,
            ),
            // Outside the OCI grammar, or no reference the router takes: another write.
            (
                "DELETE",
                "/v2/Project-1/app/manifests/v1".into(),
                None,
                Route::OtherWrite,
                Some("/v2/Project-1/app/manifests/v1"),
            ),
            (
                "DELETE",
                "/v2/a/manifests/.x".into(),
                None,
                Route::OtherWrite,
                None,
            ),
            (
                "DELETE",
                "/v2/a/manifests/v1/".into(),
                None,
                Route::OtherWrite,
                None,
            ),
            (
                "DELETE",
                format!("/v2/a/blobs/{d}"),
                None,
                Route::OtherWrite,
                None,
            ),
            (
                "PUT",
                "/v2/a/manifests/v1/".into(),
                None,
                Route::OtherWrite,
                None,
            ),
            (
                "POST",
                "/v2/a/b/blobs/uploads/".into(),
                None,
                Route::UploadStart {
                    name: name("a/b"),
                    mount: None,
                },
                None,
            ),
            (
                "POST",
                "/v2/a/blobs/uploads/".into(),
                Some(format!("mount={d}&from=c%2Fd")),
                Route::UploadStart {
                    name: name("a"),
                    mount: Some(Mount {
                        digest: d.parse().expect("digest"),
                        from: name("c/d"),
                    }),
                },
                None,
            ),
            (
                "POST",
                "/v2/a/blobs/uploads/".into(),
                Some(format!("mount={d}")),
                Route::UploadStart {
                    name: name("a"),
                    mount: None,
                },
                None,
            ),
            (
                "POST",
                "/v2/a/blobs/uploads/".into(),
                Some("mount=sha256:abc&from=c".to_owned()),
                Route::UploadStart {
                    name: name("a"),
                    mount: None,
                },
                None,
            ),
            (
                "POST",
                "/v2/a/blobs/uploads".into(),
                None,
                Route::OtherWrite,
                None,
            ),
            (
                "PATCH",
                "/v2/a/blobs/uploads/123-abc".into(),
                Some("_state=x".to_owned()),
                Route::UploadChunk {
                    name: name("a"),
                    id: "123-abc".into(),
                },
                None,
            ),
            (
                "PUT",
                "/v2/a/blobs/uploads/%31%32%33".into(),
                None,
                Route::UploadChunk {
                    name: name("a"),
                    id: "123".into(),
                },
                Some("/v2/a/blobs/uploads/123"),
            ),
            (
                "PATCH",
                "/v2/x/manifests/y/blobs/uploads/id".into(),
                None,
                Route::UploadChunk {
                    name: name("x/manifests/y"),
                    id: "id".into(),
                },
                None,
            ),
            (
                "DELETE",
                "/v2/a/blobs/uploads/123".into(),
                None,
                Route::OtherWrite,
                None,
            ),
            ("GET", "/v2/a/manifests/v1".into(), None, Route::Read, None),
            ("HEAD", "/v2/Anything/..//x".into(), None, Route::Read, None),
            ("GET", "/v2/".into(), None, Route::Read, None),
            ("GET", "/v2".into(), None, Route::Read, None),
            ("GET", "/%762/".into(), None, Route::Read, None),
            ("GET", "/".into(), None, Route::Outside, None),
            ("PUT", "/v2x".into(), None, Route::Outside, None),
            ("GET", "/metrics".into(), None, Route::Outside, None),
        ];
        for (method, path, query, route, forward) in cases {
            let request = ApiRequest::parse(method, &path, query.as_deref())
                .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
            assert_eq!(request.route, route, "{method} {path}");
            if let Some(forward) = forward {
                assert_eq!(
                    request.forward_path.as_deref(),
                    Some(forward),
                    "{method} {path}"
                );
            }
            assert_eq!(
                request.forward_path.is_some(),
                request.method.is_write() && route != Route::Outside,
                "{method} {path}"
            );
        }
    }

    #[test]
    fn write_repositories() {
        let d = format!("sha256:{}", "a".repeat(64));
        let cases: Vec<(&str, String, Option<&str>)> = vec![
            ("DELETE", format!("/v2/a/b/manifests/{d}"), Some("a/b")),
            ("DELETE", "/v2/a/b/manifests/v1".into(), Some("a/b")),
            ("DELETE", format!("/v2/a/blobs/{d}"), Some("a")),
            ("DELETE", "/v2/a/b/blobs/uploads/123".into(), Some("a/b")),
            ("PUT", "/v2/a/b/manifests/v1".into(), Some("a/b")),
            ("POST", "/v2/a/b/blobs/uploads/".into(), Some("a/b")),
            ("PATCH", "/v2/a/blobs/uploads/1".into(), Some("a")),
            (
                "DELETE",
                "/v2/x/manifests/y/tags/list".into(),
                Some("x/manifests/y"),
            ),
            ("DELETE", format!("/v2/a/referrers/{d}"), Some("a")),
            ("POST", "/v2/a/blobs/uploads".into(), Some("a")),
            ("DELETE", "/v2/".into(), None),
            ("DELETE", "/v2/a/b".into(), None),
            ("DELETE", "/v2/A/manifests/v1".into(), None),
            ("GET", "/v2/a/manifests/v1".into(), None),
            ("DELETE", "/other/a/manifests/v1".into(), None),
        ];
        for (method, path, expected) in cases {
            let request = ApiRequest::parse(method, &path, None)
                .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
            assert_eq!(
                request
                    .write_repository()
                    .as_ref()
                    .map(RepositoryName::as_str),
                expected,
                "{method} {path}"
            );
        }
    }

    #[test]
    fn refusals() {
        let cases: &[(&str, &str, Option<&str>, &str)] = &[
            (
                "put",
                "/v2/a/manifests/v1",
                None,
                "method put is not part of the registry API",
            ),
            (
                "TRACE",
                "/v2/",
                None,
                "method TRACE is not part of the registry API",
            ),
            (
                "GET",
                "/v2/a%zz",
                None,
                "invalid request path: invalid percent-escape at byte 5 of the path",
            ),
            (
                "PUT",
                "/v2/a/./b/manifests/v1",
                None,
                "not in canonical form",
            ),
            (
                "PUT",
                "/v2/a//b/manifests/v1",
                None,
                "not in canonical form",
            ),
            (
                "PUT",
                "/v2/a/x/../b/manifests/v1",
                None,
                "not in canonical form",
            ),
            (
                "PUT",
                "/v2/a%2F%2Fb/manifests/v1",
                None,
                "not in canonical form",
            ),
            (
                "PUT",
                "/v2/a/manifests/v%201",
                None,
                "not in canonical form",
            ),
            (
                "PUT",
                "/v2/a/manifests/v1%3F",
                None,
                "not in canonical form",
            ),
            ("DELETE", "/v2/a/%2E%2E/b", None, "not in canonical form"),
            (
                "DELETE",
                "/v2/a/./b/manifests/v1",
                None,
                "not in canonical form",
            ),
            (
                "DELETE",
                "/v2/a//b/manifests/sha256:abc",
                None,
                "not in canonical form",
            ),
            (
                "DELETE",
                "/v2/a/manifests/v%201",
                None,
                "not in canonical form",
            ),
            (
                "PUT",
                "/v2/Project-1/app/manifests/v1",
                None,
                "invalid repository name \"Project-1/app\"",
            ),
            (
                "PUT",
                "/v2/a:5000/app/manifests/v1",
                None,
                "invalid repository name",
            ),
            (
                "PUT",
                "/v2/a/manifests/.x",
                None,
                "invalid reference \".x\"",
            ),
            (
                "POST",
                "/v2/A/blobs/uploads/",
                None,
                "invalid repository name \"A\"",
            ),
            (
                "PATCH",
                "/v2/a__-b/blobs/uploads/1",
                None,
                "invalid repository name",
            ),
            (
                "POST",
                "/v2/a/blobs/uploads/",
                Some(
                    "mount=sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&from=Up/x",
                ),
                "mount from invalid repository name \"Up/x\"",
            ),
        ];
        for (method, path, query, want) in cases {
            let error = ApiRequest::parse(method, path, *query)
                .expect_err(path)
                .to_string();
            assert!(error.contains(want), "{method} {path}: {error}");
        }
    }
}
