//! Feeds arbitrary bytes, parsed as an HTTP/1.1 request head by `httparse` (the parser hyper
//! uses), to `registry_api::ApiRequest::parse`, as the gateway routes every request.
//!
//! Asserts, beyond "no panic": a write is forwarded under a canonical path that is clean, made
//! of name, reference and id characters only, and reads back as exactly the same request; the
//! repository a checked route names appears in that path, and a manifest push's or delete's
//! reference ends it; a `DELETE` of `/v2/<OCI name>/manifests/<tag or digest>` is always read as
//! a manifest delete, never waved through as another write; percent-encoding every character
//! of a path never changes how it reads.
//!
//! Then builds a `registry_api::RequestHead` from the same head, with its headers, and asserts
//! that its route is exactly what `ApiRequest::parse` read (or that both refuse the request),
//! and that its header facts agree with a plain reading of the headers: a checked header named
//! by `Connection` is reported if and only if one is named; `Content-Type` is absent, one or
//! ambiguous by the number of headers; `Authorization` is reported if and only if present; a
//! `Content-Length` read as a number is what every value says; `?tag=` values are non-empty,
//! distinct, from the query, and only for a manifest push.

#![no_main]

use libfuzzer_sys::fuzz_target;
use registry_api::{
    ApiRequest, CHECKED_HEADERS, ContentType, Method, Reference, RequestHead, Route,
    go_query_values, is_clean,
};

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
    check_head(method, path, query, request.headers, &parsed);
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

/// The `RequestHead` of the request agrees with `ApiRequest::parse` and with a plain reading of
/// its headers.
fn check_head(
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &[httparse::Header<'_>],
    parsed: &Result<ApiRequest, registry_api::RequestError>,
) {
    let pairs = headers.iter().map(|h| (h.name, h.value));
    let head = RequestHead::parse(method, path, query, pairs);
    assert_eq!(
        head.as_ref().map(|h| &h.request),
        parsed.as_ref(),
        "the head's route differs from ApiRequest::parse"
    );
    let Ok(head) = head else { return };
    let named = |name: &'static str| {
        headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
    };

    // Every checked header a Connection header names, by a plain split of its text values.
    let connection_named: Vec<String> = named("connection")
        .filter_map(|h| text(h.value))
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| CHECKED_HEADERS.contains(&t.as_str()))
        .collect();
    assert_eq!(
        head.connection_names.is_some(),
        !connection_named.is_empty(),
        "Connection names {connection_named:?}, reported {:?}",
        head.connection_names
    );
    if let Some(name) = head.connection_names {
        assert_eq!(connection_named.first().map(String::as_str), Some(name));
    }

    let content_types = named("content-type").count();
    match (&head.content_type, content_types) {
        (ContentType::Absent, 0) | (ContentType::One(_), 1) => {}
        (ContentType::Ambiguous, n) if n > 1 => {}
        (reported, n) => panic!("{n} Content-Type headers reported as {reported:?}"),
    }
    assert!(
        !head.form || content_types > 0,
        "a form without Content-Type"
    );
    assert_eq!(head.authorization, named("authorization").next().is_some());

    let lengths: Vec<&[u8]> = named("content-length").map(|h| h.value).collect();
    match head.content_length {
        Ok(None) => assert!(lengths.is_empty(), "Content-Length {lengths:?} not read"),
        Ok(Some(length)) => {
            for value in &lengths {
                for token in value.split(|b| *b == b',') {
                    let token = std::str::from_utf8(token).expect("a length is text").trim();
                    assert_eq!(token.parse::<u64>().ok(), Some(length), "{lengths:?}");
                }
            }
        }
        Err(_) => assert!(
            !lengths.is_empty(),
            "a Content-Length error without the header"
        ),
    }
    if named("content-range").next().is_none() {
        assert_eq!(head.content_range, Ok(None));
    }

    let from_query = go_query_values(query, "tag");
    if !matches!(head.request.route, Route::ManifestPut { .. }) {
        assert!(
            head.tags.is_empty(),
            "tags {:?} outside a manifest push",
            head.tags
        );
    }
    for (i, tag) in head.tags.iter().enumerate() {
        assert!(!tag.is_empty(), "an empty tag");
        assert!(!head.tags[..i].contains(tag), "tag {tag:?} twice");
        assert!(from_query.contains(tag), "tag {tag:?} not in the query");
    }
    let requested = head.requested_tags();
    for (i, tag) in requested.iter().enumerate() {
        assert!(!requested[..i].contains(tag), "requested tag {tag:?} twice");
    }
    assert!(head.tags.iter().all(|t| requested.contains(t)));
}

/// A header value as text: visible ASCII, spaces and tabs only.
fn text(value: &[u8]) -> Option<&str> {
    value
        .iter()
        .all(|b| (0x20..0x7f).contains(b) || *b == b'\t')
        .then(|| std::str::from_utf8(value).ok())
        .flatten()
}
