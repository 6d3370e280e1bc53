//! The entry point: probe `Content-Type`, `schemaVersion` and `mediaType`, then decode.

use crate::json::{At, Json, Number, Object};
use crate::media_types::{self, essence};
use crate::text::truncate;
use crate::{Manifest, ManifestError, ManifestKind, decode};

/// The largest manifest body [`parse`] accepts, 4 MiB, as the CNCF distribution registry.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// Parses a pushed manifest body, given the request's `Content-Type` (`None` when absent).
///
/// The `Content-Type` decides the kind, as it does for the CNCF distribution registry: it must
/// name one of the four manifest kinds (ASCII case and parameters ignored, as Go's
/// `mime.ParseMediaType` does), and the body's own `mediaType`, when present, must be exactly
/// that media type. A missing or generic type (`application/json`, `application/octet-stream`)
/// is refused: distribution decodes such bodies as signed Docker schema 1, so a body accepted
/// here could be stored as something that was never measured. Docker schema 1, in every form
/// (by `Content-Type`, `mediaType`, `schemaVersion: 1` or a top-level `signatures` key), is
/// refused with [`ManifestError::Schema1`].
///
/// ```
/// let body = br#"{"schemaVersion": 1, "name": "app", "tag": "v1", "fsLayers": []}"#;
/// let error = oci_manifest::parse(Some("application/json"), body).unwrap_err();
/// assert!(error.is_schema1());
/// let error = oci_manifest::parse(None, br#"{"schemaVersion": 2, "manifests": []}"#).unwrap_err();
/// assert!(error.to_string().starts_with("manifest content type is missing"));
/// ```
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Manifest, ManifestError> {
    if body.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge {
            size: body.len(),
            limit: MAX_MANIFEST_BYTES,
        });
    }
    let declared = declared(content_type);
    if declared == Declared::Schema1 {
        let signed = Json::from_slice(body).is_ok_and(|json| is_signed(&json));
        return Err(ManifestError::Schema1 { signed });
    }
    let json = Json::from_slice(body)?;
    let Json::Object(object) = &json else {
        return Err(ManifestError::NotAnObject {
            found: json.describe(),
        });
    };
    let media_type = probe(object, &json)?;
    let kind = resolve(declared, content_type, media_type)?;
    if kind.is_index() {
        decode::index(object, kind).map(Manifest::Index)
    } else {
        decode::image(object, kind).map(Manifest::Image)
    }
}

/// What the `Content-Type` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Declared {
    /// Absent or empty.
    Missing,
    /// A Docker schema 1 media type.
    Schema1,
    /// One of the four manifest kinds.
    Kind(ManifestKind),
    /// Anything else, generic JSON included.
    Other,
}

fn declared(content_type: Option<&str>) -> Declared {
    let essence = content_type.map(essence).unwrap_or_default();
    if essence.is_empty() {
        return Declared::Missing;
    }
    if media_types::is_schema1(essence) {
        return Declared::Schema1;
    }
    ManifestKind::from_media_type(essence).map_or(Declared::Other, Declared::Kind)
}

/// Checks `schemaVersion` and `signatures` (refusing schema 1) and returns the body's
/// `mediaType`, if any.
fn probe<'a>(object: &'a Object, json: &Json) -> Result<Option<&'a str>, ManifestError> {
    let root = At::Root;
    let version = object.optional("schemaVersion", &root)?;
    let media_type = object.optional("mediaType", &root)?;
    let schema1_version = matches!(version, Some(Json::Number(Number::Unsigned(1))));
    let schema1_type = matches!(media_type, Some(Json::String(m)) if media_types::is_schema1(m));
    // Distribution reads a body with `signatures` as a signed schema 1 manifest whatever else
    // it holds; such a body is never measured as an image here.
    let signed = object.has_key_like("signatures");
    if schema1_version || schema1_type || signed {
        return Err(ManifestError::Schema1 {
            signed: is_signed(json),
        });
    }
    match version {
        None => {
            return Err(ManifestError::MissingField {
                field: "schemaVersion".to_owned(),
            });
        }
        Some(Json::Number(Number::Unsigned(2))) => {}
        Some(Json::Number(other)) => {
            return Err(ManifestError::UnsupportedSchemaVersion {
                found: other.to_string(),
            });
        }
        Some(other) => return Err(other.wrong_type(&root.key("schemaVersion"), "an integer")),
    }
    // An empty mediaType is no mediaType, as for distribution.
    Ok(media_type
        .map(|value| value.as_str(&root.key("mediaType")))
        .transpose()?
        .filter(|media_type| !media_type.is_empty()))
}

/// Decides the kind from the `Content-Type`, checked against the body's `mediaType`.
fn resolve(
    declared: Declared,
    content_type: Option<&str>,
    media_type: Option<&str>,
) -> Result<ManifestKind, ManifestError> {
    let content_type = content_type.map(essence).unwrap_or_default();
    let declared = match declared {
        Declared::Kind(kind) => kind,
        Declared::Missing => return Err(ManifestError::MissingContentType),
        Declared::Schema1 | Declared::Other => {
            return Err(ManifestError::UnsupportedContentType {
                content_type: truncate(content_type),
            });
        }
    };
    match media_type {
        // Distribution compares the body's mediaType exactly: no case folding, no parameters.
        Some(media_type) if media_type == declared.media_type() => Ok(declared),
        Some(media_type) => Err(ManifestError::MediaTypeMismatch {
            content_type: truncate(content_type),
            media_type: truncate(media_type),
        }),
        // Docker schema 2 requires the mediaType; OCI only recommends it.
        None if !declared.is_oci() => Err(ManifestError::MissingField {
            field: "mediaType".to_owned(),
        }),
        None => Ok(declared),
    }
}

/// Whether a body carries JWS `signatures` (at the top level, in any letter case).
fn is_signed(json: &Json) -> bool {
    match json {
        Json::Object(object) => object.has_key_like("signatures"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OCI: &str = "application/vnd.oci.image.manifest.v1+json";
    const DOCKER: &str = "application/vnd.docker.distribution.manifest.v2+json";
    const INDEX: &str = "application/vnd.oci.image.index.v1+json";
    const LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    /// A descriptor with the given raw JSON `size`.
    fn desc(size: &str) -> String {
        format!(r#"{{"mediaType":"application/octet-stream","digest":"{A}","size":{size}}}"#)
    }

    /// An object of the given raw fields.
    fn obj(fields: &[&str]) -> String {
        format!("{{{}}}", fields.join(","))
    }

    /// An OCI image manifest with mediaType, a config and the given raw layers, plus `extra`
    /// raw fields.
    fn image(layers: &[String], extra: &[&str]) -> String {
        let media_type = format!(r#""mediaType":"{OCI}""#);
        let config = format!(r#""config":{}"#, desc("2"));
        let layers = format!(r#""layers":[{}]"#, layers.join(","));
        let mut fields = vec![r#""schemaVersion":2"#, &media_type, &config, &layers];
        fields.extend_from_slice(extra);
        obj(&fields)
    }

    const EXPECTED: &str = "expected one of application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";
    const MISSING: &str = "manifest content type is missing: send the manifest's media type as Content-Type (application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json)";
    const SCHEMA1: &str = "docker schema 1 manifests are not supported (deprecated by Docker since 2019); convert the image with a current client (pull and push it again) or with \"skopeo copy --format v2s2 SRC DST\"";

    /// The content type a table case means by `None`: the body's own kind, else an OCI image
    /// manifest (the refusal of a missing content type has its own test).
    fn content_type_for(body: &[u8]) -> &'static str {
        let text = String::from_utf8_lossy(body);
        [INDEX, LIST, DOCKER]
            .into_iter()
            .find(|kind| text.contains(&format!(r#""mediaType":"{kind}""#)))
            .unwrap_or(OCI)
    }

    fn err(content_type: Option<&str>, body: &[u8]) -> String {
        let content_type = content_type.unwrap_or_else(|| content_type_for(body));
        match parse(Some(content_type), body) {
            Ok(manifest) => format!("accepted {manifest:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn errors() {
        let long = "x".repeat(200);
        let long_digest = format!("sha256:{}", "0".repeat(200));
        let cut = |s: &str| format!("{}...", &s[..150]);
        let docker_with_charset = format!("{DOCKER}; charset=utf-8");
        let cases: Vec<(Option<&str>, String, String)> = vec![
            // TooLarge
            (None, " ".repeat(MAX_MANIFEST_BYTES + 1),
             "manifest is 4194305 bytes, more than the limit of 4194304 bytes".into()),
            // Schema1
            (None, r#"{"schemaVersion":1}"#.into(),
             "docker schema 1 manifests are not supported (deprecated by Docker since 2019); convert the image with a current client (pull and push it again) or with \"skopeo copy --format v2s2 SRC DST\"".into()),
            // UnsupportedContentType
            (Some("text/plain; charset=utf-8"), image(&[], &[]),
             format!(r#"unsupported manifest content type "text/plain": {EXPECTED}"#)),
            (Some(&long), image(&[], &[]),
             format!(r#"unsupported manifest content type "{}": {EXPECTED}"#, cut(&long))),
            (Some("application/json"), image(&[], &[]),
             format!(r#"unsupported manifest content type "application/json": {EXPECTED}"#)),
            (Some(""), image(&[], &[]), MISSING.into()),
            // InvalidJson
            (None, "".into(), "manifest is not valid json at line 1 column 0".into()),
            (None, r#"{"schemaVersion":2,"#.into(), "manifest is not valid json at line 1 column 19".into()),
            (None, "{}\n{}".into(), "manifest is not valid json at line 2 column 1".into()),
            (None, "{\"schemaVersion\":2,\n\"mediaType\":\"\\ud800\"}".into(),
             "manifest is not valid json at line 2 column 20".into()),
            (None, format!("{}{}", "[".repeat(200), "]".repeat(200)),
             "manifest is not valid json at line 1 column 128".into()),
            // NotAnObject
            (None, "[]".into(), "manifest must be a json object, found an array".into()),
            (None, "null".into(), "manifest must be a json object, found null".into()),
            (None, r#""x""#.into(), r#"manifest must be a json object, found string "x""#.into()),
            (None, " 2 ".into(), "manifest must be a json object, found number 2".into()),
            // DuplicateField
            (None, r#"{"schemaVersion":2,"schemaVersion":2}"#.into(),
             r#"duplicate field "schemaVersion""#.into()),
            (None, image(&[desc("1,\"size\":2")], &[]), r#"duplicate field "layers[0].size""#.into()),
            (None, image(&[], &[r#""layers":[]"#]), r#"duplicate field "layers""#.into()),
            // CaseVariantField
            (None, image(&[], &[r#""Layers":[]"#]),
             r#"field "Layers" differs from "layers" only in letter case (go clients would read it as "layers")"#.into()),
            (None, image(&[desc("1,\"SIZE\":2")], &[]),
             r#"field "SIZE" differs from "layers[0].size" only in letter case (go clients would read it as "layers[0].size")"#.into()),
            (None, image(&[], &["\"\u{017F}ubject\":{}"]),
             "field \"\u{017F}ubject\" differs from \"subject\" only in letter case (go clients would read it as \"subject\")".into()),
            // MissingField
            (None, r#"{"mediaType":"application/vnd.oci.image.index.v1+json"}"#.into(),
             r#"missing field "schemaVersion""#.into()),
            (Some(OCI), r#"{"schemaVersion":2,"layers":[]}"#.into(), r#"missing field "config""#.into()),
            (None, format!(r#"{{"schemaVersion":2,"config":{}}}"#, desc("1")), r#"missing field "layers""#.into()),
            (None, image(&[r#"{"mediaType":"a/b","size":1}"#.into()], &[]), r#"missing field "layers[0].digest""#.into()),
            (None, image(&[desc("1"), format!(r#"{{"mediaType":"a/b","digest":"{A}"}}"#)], &[]),
             r#"missing field "layers[1].size""#.into()),
            (None, image(&[format!(r#"{{"digest":"{A}","size":1}}"#)], &[]),
             r#"missing field "layers[0].mediaType""#.into()),
            (None, image(&[], &[r#""subject":{"mediaType":"a/b"}"#]), r#"missing field "subject.digest""#.into()),
            (Some(DOCKER), format!(r#"{{"schemaVersion":2,"config":{},"layers":[]}}"#, desc("1")),
             r#"missing field "mediaType""#.into()),
            (None, r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}"#.into(),
             r#"missing field "manifests""#.into()),
            // WrongType
            (None, r#"{"schemaVersion":"2"}"#.into(),
             r#"field "schemaVersion" must be an integer, found string "2""#.into()),
            (None, r#"{"schemaVersion":2,"mediaType":5}"#.into(),
             r#"field "mediaType" must be a string, found number 5"#.into()),
            (None, r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":[],"layers":[]}"#.into(),
             r#"field "config" must be an object, found an array"#.into()),
            (None, format!(r#"{{"schemaVersion":2,"config":{},"layers":{{}}}}"#, desc("1")),
             r#"field "layers" must be an array, found an object"#.into()),
            (None, image(&["true".into()], &[]), r#"field "layers[0]" must be an object, found boolean true"#.into()),
            (None, image(&[desc("\"12\"")], &[]),
             r#"field "layers[0].size" must be a non-negative integer, found string "12""#.into()),
            (None, image(&[desc("null")], &[]),
             r#"field "layers[0].size" must be a non-negative integer, found null"#.into()),
            (None, image(&[r#"{"mediaType":"a/b","digest":12,"size":1}"#.into()], &[]),
             r#"field "layers[0].digest" must be a string, found number 12"#.into()),
            (None, image(&[], &[r#""artifactType":true"#]),
             r#"field "artifactType" must be a string, found boolean true"#.into()),
            (None, image(&[], &[&format!(r#""subject":"{long}""#)]),
             format!(r#"field "subject" must be an object, found string "{}""#, cut(&long))),
            // UnsupportedSchemaVersion
            (None, r#"{"schemaVersion":3}"#.into(), "unsupported schemaVersion 3 (expected 2)".into()),
            (None, r#"{"schemaVersion":0}"#.into(), "unsupported schemaVersion 0 (expected 2)".into()),
            (None, r#"{"schemaVersion":-1}"#.into(), "unsupported schemaVersion -1 (expected 2)".into()),
            (None, r#"{"schemaVersion":2.0}"#.into(), "unsupported schemaVersion 2.0 (expected 2)".into()),
            // MediaTypeMismatch: the body's mediaType is compared exactly
            (None, format!(r#"{{"schemaVersion":2,"mediaType":"{OCI}; charset=utf-8"}}"#),
             r#"content type "application/vnd.oci.image.manifest.v1+json" does not match the manifest's mediaType "application/vnd.oci.image.manifest.v1+json; charset=utf-8""#.into()),
            (Some(OCI), image(&[], &[]).replace(OCI, &OCI.to_ascii_uppercase()),
             r#"content type "application/vnd.oci.image.manifest.v1+json" does not match the manifest's mediaType "APPLICATION/VND.OCI.IMAGE.MANIFEST.V1+JSON""#.into()),
            // MediaTypeMismatch
            (Some(&docker_with_charset), image(&[], &[]),
             r#"content type "application/vnd.docker.distribution.manifest.v2+json" does not match the manifest's mediaType "application/vnd.oci.image.manifest.v1+json""#.into()),
            (Some(OCI), r#"{"schemaVersion":2,"mediaType":"text/plain"}"#.into(),
             r#"content type "application/vnd.oci.image.manifest.v1+json" does not match the manifest's mediaType "text/plain""#.into()),
            // An empty mediaType is no mediaType.
            (None, r#"{"schemaVersion":2,"mediaType":""}"#.into(), r#"missing field "config""#.into()),
            // Schema 1 by a top-level signatures key
            (Some(OCI), image(&[], &[r#""signatures":[]"#]), SCHEMA1.into()),
            // UnexpectedField
            (None, image(&[], &[r#""manifests":[]"#]), r#"oci image manifest must not have field "manifests""#.into()),
            (None, format!(r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[],"config":{}}}"#, desc("1")),
             r#"docker manifest list must not have field "config""#.into()),
            // InvalidDigest
            (None, image(&[r#"{"mediaType":"a/b","digest":"sha256:abc","size":1}"#.into()], &[]),
             r#"field "layers[0].digest": invalid digest "sha256:abc": expected 64 lowercase hex digits"#.into()),
            (None, image(&[], &[&format!(r#""subject":{{"mediaType":"a/b","digest":"md5:{}","size":1}}"#, &A[7..])]),
             format!(r#"field "subject.digest": invalid digest "md5:{}": unsupported algorithm (expected sha256, sha384 or sha512)"#, &A[7..])),
            (None, image(&[r#"{"mediaType":"a/b","digest":"","size":1}"#.into()], &[]),
             r#"field "layers[0].digest": invalid digest "": missing algorithm prefix"#.into()),
            (None, image(&[format!(r#"{{"mediaType":"a/b","digest":"{long_digest}","size":1}}"#)], &[]),
             format!(r#"field "layers[0].digest": invalid digest "{}": expected 64 lowercase hex digits"#, cut(&long_digest))),
            // InvalidSize
            (None, image(&[desc("-1")], &[]),
             r#"invalid size -1 in field "layers[0].size": expected a non-negative integer"#.into()),
            (None, image(&[desc("1.5")], &[]),
             r#"invalid size 1.5 in field "layers[0].size": expected a non-negative integer"#.into()),
            (None, image(&[desc("1.0")], &[]),
             r#"invalid size 1.0 in field "layers[0].size": expected a non-negative integer"#.into()),
            (None, image(&[desc("1e3")], &[]),
             r#"invalid size 1000.0 in field "layers[0].size": expected a non-negative integer"#.into()),
            (None, image(&[desc("18446744073709551616")], &[]),
             r#"invalid size 1.8446744073709552e19 in field "layers[0].size": expected a non-negative integer"#.into()),
            (None, format!(r#"{{"schemaVersion":2,"config":{},"layers":[]}}"#, desc("-2")),
             r#"invalid size -2 in field "config.size": expected a non-negative integer"#.into()),
            // SizeOverflow
            (None, image(&[desc("18446744073709551613"), desc("0"), desc("1")], &[]),
             r#"sum of blob sizes overflows 64 bits at field "layers[2].size" (18446744073709551615 + 1)"#.into()),
        ];
        let failures: Vec<String> = cases
            .into_iter()
            .filter_map(|(content_type, body, want)| {
                let got = err(content_type, body.as_bytes());
                (got != want)
                    .then(|| format!("{content_type:?} {body:.300}\n  got:  {got}\n  want: {want}"))
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn invalid_utf8_is_invalid_json() {
        let body = b"{\"schemaVersion\":2,\"mediaType\":\"\xff\"}";
        assert_eq!(
            err(None, body),
            "manifest is not valid json at line 1 column 33"
        );
    }

    #[test]
    fn accepted() {
        let foreign = format!(
            r#"{{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{A}","size":9}}"#
        );
        let upper = OCI.to_ascii_uppercase();
        let null_subject = image(
            &[desc("3")],
            &[r#""subject":null"#, r#""artifactType":null"#],
        );
        let cases: Vec<(Option<&str>, String, ManifestKind, Option<u64>)> = vec![
            // The config (2 bytes here) counts.
            (None, image(&[], &[]), ManifestKind::OciImage, Some(2)),
            (
                None,
                image(&[desc("3"), desc("4")], &[]),
                ManifestKind::OciImage,
                Some(9),
            ),
            (
                None,
                image(&[desc("3"), foreign, desc("4")], &[]),
                ManifestKind::OciImage,
                Some(18),
            ),
            (None, null_subject, ManifestKind::OciImage, Some(5)),
            (
                None,
                image(&[desc("18446744073709551613"), desc("0")], &[]),
                ManifestKind::OciImage,
                Some(u64::MAX),
            ),
            // Unknown extra keys, and case variants of keys this crate does not read, are fine.
            (
                None,
                image(
                    &[],
                    &[
                        r#""annotations":{"a":"b","A":"c"}"#,
                        r#""Extra":1,"extra":2"#,
                    ],
                ),
                ManifestKind::OciImage,
                Some(2),
            ),
            (
                Some(&upper),
                image(&[], &[]),
                ManifestKind::OciImage,
                Some(2),
            ),
            (
                Some(INDEX),
                r#"{"schemaVersion":2,"manifests":[]}"#.into(),
                ManifestKind::OciIndex,
                None,
            ),
            (
                Some("application/vnd.oci.image.index.v1+json"),
                r#"{"schemaVersion":2,"manifests":[],"layers":null}"#.into(),
                ManifestKind::OciIndex,
                None,
            ),
        ];
        for (content_type, body, kind, total) in cases {
            let content_type = content_type.unwrap_or(OCI);
            let manifest = parse(Some(content_type), body.as_bytes())
                .unwrap_or_else(|e| panic!("{body}: {e}"));
            assert_eq!(manifest.kind(), kind, "{body}");
            assert_eq!(manifest.as_image().map(|i| i.total_size()), total, "{body}");
        }
    }

    #[test]
    fn docker_manifests_ignore_oci_only_fields() {
        let body = image(
            &[],
            &[
                r#""artifactType":"a/b""#,
                r#""subject":{"mediaType":"a/b"}"#,
            ],
        )
        .replace(OCI, DOCKER);
        let manifest = parse(Some(DOCKER), body.as_bytes()).expect("a docker manifest");
        assert_eq!(manifest.kind(), ManifestKind::DockerV2);
        assert_eq!(manifest.subject(), None);
        assert_eq!(manifest.artifact_type(), None);
    }
}
