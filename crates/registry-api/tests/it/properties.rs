//! Request reading against a model of distribution 2.8's router: gorilla/mux matching its route
//! patterns (built from the registry's own regular expressions) against the percent-decoded path,
//! after redirecting unclean paths. Generated paths mix name characters, route keywords,
//! separators and percent-escapes of any of them.

use proptest::prelude::*;
use regex::Regex;
use registry_api::{ApiRequest, Reference, Route};

/// distribution's `reference.NameRegexp` (with its optional domain component).
const NAME: &str = r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*)*";
/// `reference.TagRegexp`.
const TAG: &str = r"[\w][\w.-]{0,127}";
/// go-digest's `DigestRegexp`.
const DIGEST: &str = r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+";

/// What the model router makes of a write.
#[derive(Debug, PartialEq, Eq)]
enum Model {
    Manifest { name: String, reference: String },
    ManifestDelete { name: String, reference: String },
    UploadStart { name: String },
    UploadChunk { name: String, id: String },
    Other,
    Redirect,
}

/// Compiled once: the name pattern is large.
static ROUTER: std::sync::LazyLock<Router> = std::sync::LazyLock::new(Router::new);

struct Router {
    manifest: Regex,
    blob: Regex,
    upload_start: Regex,
    upload_chunk: Regex,
}

impl Router {
    fn new() -> Self {
        let re = |pattern: String| Regex::new(&format!("^{pattern}$")).expect("regex");
        Self {
            manifest: re(format!(
                "/v2/(?P<name>{NAME})/manifests/(?P<reference>{TAG}|{DIGEST})"
            )),
            blob: re(format!("/v2/(?P<name>{NAME})/blobs/(?P<digest>{DIGEST})")),
            upload_start: re(format!("/v2/(?P<name>{NAME})/blobs/uploads/")),
            upload_chunk: re(format!(
                "/v2/(?P<name>{NAME})/blobs/uploads/(?P<id>[a-zA-Z0-9-_.=]+)"
            )),
        }
    }

    /// Routes a decoded path for `method`, as mux does: redirect when unclean, else the first
    /// route whose pattern matches, whatever the method (the handler answers 405 later).
    fn route(&self, method: &str, path: &str) -> Model {
        if !registry_api::is_clean(path) {
            return Model::Redirect;
        }
        if let Some(c) = self.manifest.captures(path) {
            let (name, reference) = (c["name"].to_owned(), c["reference"].to_owned());
            return match method {
                "PUT" => Model::Manifest { name, reference },
                "DELETE" => Model::ManifestDelete { name, reference },
                _ => Model::Other,
            };
        }
        if self.blob.is_match(path) {
            return Model::Other;
        }
        if let Some(c) = self.upload_start.captures(path) {
            return if method == "POST" {
                Model::UploadStart {
                    name: c["name"].to_owned(),
                }
            } else {
                Model::Other
            };
        }
        if let Some(c) = self.upload_chunk.captures(path) {
            return if method == "PATCH" || method == "PUT" {
                Model::UploadChunk {
                    name: c["name"].to_owned(),
                    id: c["id"].to_owned(),
                }
            } else {
                Model::Other
            };
        }
        Model::Other
    }
}

/// Path pieces: name components (valid and not), keywords, tags, digests, odd characters.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9]{1,6}",
        1 => "[a-z0-9]{1,3}[._-]{1,2}[a-z0-9]{1,3}",
        1 => "[A-Z][a-z]{0,3}",
        1 => "[a-z]{1,3}:[0-9]{1,4}",
        2 => Just("manifests".to_owned()),
        2 => Just("blobs".to_owned()),
        2 => Just("uploads".to_owned()),
        1 => Just("tags".to_owned()),
        1 => Just(format!("sha256:{}", "a".repeat(64))),
        1 => Just("sha256:abc".to_owned()),
        1 => Just(".".to_owned()),
        1 => Just("..".to_owned()),
        1 => Just(String::new()),
        1 => "[ ?#%+=@~]{1,2}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    (prop::collection::vec(piece(), 1..7), any::<bool>()).prop_map(|(pieces, slash)| {
        let mut path = format!("/v2/{}", pieces.join("/"));
        if slash {
            path.push('/');
        }
        path
    })
}

/// Percent-encodes the characters `mask` selects (cycling through it).
fn encode(path: &str, mask: &[bool]) -> String {
    path.chars()
        .enumerate()
        .map(|(i, c)| {
            let encode = c == '%' || (i > 0 && mask.get(i % mask.len().max(1)) == Some(&true));
            if encode {
                let mut bytes = [0u8; 4];
                c.encode_utf8(&mut bytes)
                    .bytes()
                    .map(|b| format!("%{b:02X}"))
                    .collect()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn method() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("PUT"), Just("POST"), Just("PATCH"), Just("DELETE")]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Whatever is percent-encoded, the request reads as the decoded path does, and the path
    /// forwarded is the decoded one.
    #[test]
    fn encoding_never_changes_the_route(
        path in path(),
        mask in prop::collection::vec(prop::bool::weighted(0.3), 1..8),
        method in method(),
    ) {
        let plain = ApiRequest::parse(method, &path.replace('%', "%25"), None);
        let encoded = ApiRequest::parse(method, &encode(&path, &mask), None);
        prop_assert_eq!(plain, encoded);
    }

    /// A canonical path reads back as itself.
    #[test]
    fn canonical_paths_are_fixed_points(path in path(), method in method()) {
        if let Ok(request) = ApiRequest::parse(method, &path, None) {
            let forward = request.forward_path.clone().expect("writes are forwarded canonical");
            let again = ApiRequest::parse(method, &forward, None).expect("canonical path parses");
            prop_assert_eq!(again, request);
        }
    }

    /// Every push or manifest delete the registry's router would route is routed the same way,
    /// with the same name, reference and upload id, or refused; nothing the router takes for a
    /// push is waved through as another kind of request, and a manifest delete is another
    /// write only when its name is outside the OCI grammar (no manifest the gateway let in
    /// lives there).
    #[test]
    fn pushes_agree_with_the_registrys_router(path in path(), method in method()) {
        let model = ROUTER.route(method, &path);
        let ours = ApiRequest::parse(method, &path, None).map(|r| r.route);
        // The registry treats a digest-shaped reference that is not a valid digest as a tag.
        let same_reference = |reference: &str, r: &Reference| {
            let valid_digest = reference.parse::<oci_manifest::Digest>().is_ok();
            reference == r.to_string() && matches!(r, Reference::Digest(_)) == valid_digest
        };
        match (&model, &ours) {
            (Model::Manifest { name, reference }, Ok(Route::ManifestPut { name: n, reference: r })) => {
                prop_assert_eq!(name.as_str(), n.as_str());
                prop_assert!(same_reference(reference, r), "{} read as {:?}", reference, r);
            }
            (Model::ManifestDelete { name, reference }, Ok(Route::ManifestDelete { name: n, reference: r })) => {
                prop_assert_eq!(name.as_str(), n.as_str());
                prop_assert!(same_reference(reference, r), "{} read as {:?}", reference, r);
            }
            (Model::ManifestDelete { name, .. }, Ok(Route::OtherWrite)) => {
                prop_assert!(
                    name.parse::<limits_core::RepositoryName>().is_err(),
                    "DELETE {} of the OCI name {} read as another write", path, name
                );
            }
            (Model::UploadStart { name }, Ok(Route::UploadStart { name: n, .. })) => {
                prop_assert_eq!(name.as_str(), n.as_str());
            }
            (Model::UploadChunk { name, id }, Ok(Route::UploadChunk { name: n, id: i })) => {
                prop_assert_eq!(name.as_str(), n.as_str());
                prop_assert_eq!(id, i);
            }
            // A push whose name or path the gateway does not take is refused, never forwarded.
            (Model::Manifest { .. } | Model::UploadStart { .. } | Model::UploadChunk { .. }, Err(_)) => {}
            (Model::Redirect, Err(_)) => {}
            (Model::Other, Ok(Route::OtherWrite) | Err(_)) => {}
            _ => prop_assert!(false, "{} {}: registry {:?}, gateway {:?}", method, path, model, ours),
        }
    }
}
