//! Which registry API call a request is, from its method and path alone.

use http::Method;

/// The calls the gateway inspects; everything else is forwarded untouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    /// `PUT /v2/<name>/manifests/<reference>`.
    ManifestPut {
        /// Repository name as it appears in the path.
        name: &'a str,
        /// Tag or digest.
        reference: &'a str,
    },
    /// `POST`, `PATCH` or `PUT` under `/v2/<name>/blobs/uploads/`.
    BlobUpload {
        /// Repository name as it appears in the path.
        name: &'a str,
        /// The upload session's path (`/v2/<name>/blobs/uploads/<id>`), empty for `POST`.
        session: &'a str,
    },
    /// Any other request under `/v2/`.
    Other,
    /// A request outside `/v2/`.
    Outside,
}

/// Classifies a request by method and path.
pub fn route<'a>(method: &Method, path: &'a str) -> Route<'a> {
    let Some(rest) = path
        .strip_prefix("/v2/")
        .or_else(|| (path == "/v2").then_some(""))
    else {
        return Route::Outside;
    };
    if *method == Method::PUT {
        if let Some((name, reference)) = rest.rsplit_once("/manifests/") {
            if !name.is_empty() && !reference.is_empty() && !reference.contains('/') {
                return Route::ManifestPut { name, reference };
            }
        }
    }
    if matches!(*method, Method::POST | Method::PATCH | Method::PUT) {
        if let Some((name, tail)) = rest.rsplit_once("/blobs/uploads") {
            if !name.is_empty() {
                if tail.is_empty() || tail == "/" {
                    return Route::BlobUpload { name, session: "" };
                }
                if let Some(id) = tail.strip_prefix('/') {
                    if !id.contains('/') {
                        return Route::BlobUpload {
                            name,
                            session: path,
                        };
                    }
                }
            }
        }
    }
    Route::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(Method, &str, Route<'_>)] = &[
            (
                Method::PUT,
                "/v2/a/b/manifests/latest",
                Route::ManifestPut {
                    name: "a/b",
                    reference: "latest",
                },
            ),
            (
                Method::PUT,
                "/v2/a/manifests/sha256:abc",
                Route::ManifestPut {
                    name: "a",
                    reference: "sha256:abc",
                },
            ),
            (
                Method::PUT,
                "/v2/manifests/x/manifests/v1",
                Route::ManifestPut {
                    name: "manifests/x",
                    reference: "v1",
                },
            ),
            (Method::GET, "/v2/a/manifests/latest", Route::Other),
            (Method::PUT, "/v2//manifests/latest", Route::Other),
            (Method::PUT, "/v2/a/manifests/", Route::Other),
            (
                Method::POST,
                "/v2/a/b/blobs/uploads/",
                Route::BlobUpload {
                    name: "a/b",
                    session: "",
                },
            ),
            (
                Method::PATCH,
                "/v2/a/blobs/uploads/123-abc",
                Route::BlobUpload {
                    name: "a",
                    session: "/v2/a/blobs/uploads/123-abc",
                },
            ),
            (
                Method::PUT,
                "/v2/a/blobs/uploads/123",
                Route::BlobUpload {
                    name: "a",
                    session: "/v2/a/blobs/uploads/123",
                },
            ),
            (Method::GET, "/v2/a/blobs/uploads/123", Route::Other),
            (Method::GET, "/v2/", Route::Other),
            (Method::GET, "/v2", Route::Other),
            (Method::GET, "/", Route::Outside),
            (Method::GET, "/v2x", Route::Outside),
            (Method::GET, "/metrics", Route::Outside),
        ];
        for (method, path, expected) in cases {
            assert_eq!(route(method, path), *expected, "{method} {path}");
        }
    }
}
