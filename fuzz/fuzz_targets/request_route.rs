//! Feeds arbitrary bytes, parsed as an HTTP/1.1 request head by `httparse` (the parser hyper
//! uses), to `registry_api::ApiRequest::parse`, as the gateway routes every request.
//!
//! Asserts, beyond "no panic": a write is forwarded under a canonical path that is clean, made
//! of name, reference and id characters only, and reads back as exactly the same request; the
//! repository a checked route names appears in that path, and a manifest push's or delete's
//! reference ends it; a `DELETE` of `/v2/<OCI name>/manifests/<tag or digest>` is always read as
//! a manifest delete, never waved through as another write; percent-encoding every character
//! of a path never changes how it reads.

#![no_main]

use libfuzzer_sys::fuzz_target;
use registry_api::{ApiRequest, Method, Reference, Route, is_clean};

fuzz_target!(|data: &[u8]| {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(_)) = request.parse(data) else {
        return;
    };
    let (Some(method), Some(target)) = (request.method, request.path) else {
        return;
    };
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let parsed = ApiRequest::parse(method, path, query);
    if let Ok(api) = &parsed {
        assert_eq!(
            api.forward_path.is_some(),
            api.method.is_write() && api.route != Route::Outside
        );
        if let Some(forward) = &api.forward_path {
            assert!(is_clean(forward), "unclean canonical path {forward:?}");
            assert!(
                forward.chars().all(|c| c.is_ascii_alphanumeric()
                    || matches!(c, '/' | '.' | '_' | '-' | ':' | '=' | '+' | '~' | '@')),
                "canonical path with other characters {forward:?}"
            );
            let again = ApiRequest::parse(method, forward, query).expect("canonical path parses");
            assert_eq!(&again, api, "canonical path reads differently");
            if let Some(name) = api.repository() {
                assert!(
                    forward.starts_with(&format!("/v2/{name}/")),
                    "{forward:?} does not hold {name}"
                );
            }
            if let Route::ManifestPut { reference, .. } | Route::ManifestDelete { reference, .. } =
                &api.route
            {
                assert!(
                    forward.ends_with(&format!("/manifests/{reference}")),
                    "{forward:?} does not end with {reference}"
                );
            }
            if api.method == Method::Delete && api.route == Route::OtherWrite {
                let manifest = forward
                    .strip_prefix("/v2/")
                    .and_then(|rest| rest.rsplit_once("/manifests/"))
                    .filter(|(name, reference)| {
                        name.parse::<limits_core::RepositoryName>().is_ok()
                            && !reference.contains('/')
                            && Reference::parse(reference).is_ok()
                    });
                assert!(
                    manifest.is_none(),
                    "manifest delete {forward:?} read as another write"
                );
            }
        }
    }
    if !path.contains('%') {
        let encoded: String = path.bytes().map(|b| format!("%{b:02X}")).collect();
        // The leading '/' must stay literal for a request target.
        let encoded = format!("/{}", encoded.strip_prefix("%2F").unwrap_or(&encoded));
        if path.starts_with('/') {
            assert_eq!(
                ApiRequest::parse(method, &encoded, query),
                parsed,
                "encoding changed how {path:?} reads"
            );
        }
    }
});
