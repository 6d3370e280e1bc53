//! Decoding of one kind of manifest, once [`parse`](crate::parse) has told which kind it is.

use crate::json::{At, Json, Number, Object};
use crate::{
    Descriptor, ImageManifest, IndexManifest, Layer, ManifestError, ManifestKind, media_types,
};

/// Decodes an image manifest (OCI or Docker schema 2) and sums its blobs' declared sizes.
pub(crate) fn image(object: &Object, kind: ManifestKind) -> Result<ImageManifest, ManifestError> {
    let root = At::Root;
    if object.has("manifests", &root)? {
        return Err(ManifestError::UnexpectedField {
            kind,
            field: "manifests",
        });
    }
    let config = descriptor(object.required("config", &root)?, &root.key("config"))?;
    let mut total_size = config.size;

    let layers_at = root.key("layers");
    let items = object.required("layers", &root)?.as_array(&layers_at)?;
    let mut layers = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let at = layers_at.index(index);
        let layer = layer(item, &at, kind)?;
        total_size =
            total_size
                .checked_add(layer.size)
                .ok_or_else(|| ManifestError::SizeOverflow {
                    field: at.key("size").to_string(),
                    sum: total_size,
                    size: layer.size,
                })?;
        layers.push(layer);
    }

    let (artifact_type, subject) = oci_extras(object, kind)?;
    Ok(ImageManifest {
        kind,
        artifact_type,
        config,
        layers,
        total_size,
        subject,
    })
}

/// Decodes an index (OCI image index or Docker manifest list).
pub(crate) fn index(object: &Object, kind: ManifestKind) -> Result<IndexManifest, ManifestError> {
    let root = At::Root;
    for field in ["layers", "config"] {
        if object.has(field, &root)? {
            return Err(ManifestError::UnexpectedField { kind, field });
        }
    }
    let manifests_at = root.key("manifests");
    let manifests = object
        .required("manifests", &root)?
        .as_array(&manifests_at)?
        .iter()
        .enumerate()
        .map(|(index, item)| descriptor(item, &manifests_at.index(index)))
        .collect::<Result<Vec<_>, _>>()?;
    let (artifact_type, subject) = oci_extras(object, kind)?;
    Ok(IndexManifest {
        kind,
        artifact_type,
        manifests,
        subject,
    })
}

/// `artifactType` and `subject`, which only OCI manifests define (Docker ones: both `None`).
fn oci_extras(
    object: &Object,
    kind: ManifestKind,
) -> Result<(Option<String>, Option<Descriptor>), ManifestError> {
    if !kind.is_oci() {
        return Ok((None, None));
    }
    let root = At::Root;
    let artifact_type = object
        .optional("artifactType", &root)?
        .map(|value| value.as_str(&root.key("artifactType")).map(str::to_owned))
        .transpose()?;
    let subject = object
        .optional("subject", &root)?
        .map(|value| descriptor(value, &root.key("subject")))
        .transpose()?;
    Ok((artifact_type, subject))
}

/// A descriptor: `mediaType`, `digest`, `size` required, `artifactType` optional.
fn descriptor(value: &Json, at: &At<'_>) -> Result<Descriptor, ManifestError> {
    let object = value.as_object(at)?;
    let media_type = object
        .required("mediaType", at)?
        .as_str(&at.key("mediaType"))?;
    let digest = digest(object.required("digest", at)?, &at.key("digest"))?;
    let size = size(object.required("size", at)?, &at.key("size"))?;
    let artifact_type = object
        .optional("artifactType", at)?
        .map(|value| value.as_str(&at.key("artifactType")).map(str::to_owned))
        .transpose()?;
    let urls = urls(object, at)?;
    Ok(Descriptor {
        media_type: media_type.to_owned(),
        digest,
        size,
        artifact_type,
        urls,
    })
}

/// A layer descriptor: `mediaType`, `digest`, `size` required, `urls` optional.
fn layer(value: &Json, at: &At<'_>, kind: ManifestKind) -> Result<Layer, ManifestError> {
    let object = value.as_object(at)?;
    let media_type = object
        .required("mediaType", at)?
        .as_str(&at.key("mediaType"))?;
    let digest = digest(object.required("digest", at)?, &at.key("digest"))?;
    let size = size(object.required("size", at)?, &at.key("size"))?;
    let urls = urls(object, at)?;
    let foreign = !urls.is_empty() && media_types::is_foreign_layer(kind, media_type);
    Ok(Layer {
        media_type: media_type.to_owned(),
        digest,
        size,
        urls,
        foreign,
    })
}

/// A descriptor's optional `urls`: an array of strings.
fn urls(object: &Object, at: &At<'_>) -> Result<Vec<String>, ManifestError> {
    let Some(value) = object.optional("urls", at)? else {
        return Ok(Vec::new());
    };
    let urls_at = at.key("urls");
    value
        .as_array(&urls_at)?
        .iter()
        .enumerate()
        .map(|(index, url)| url.as_str(&urls_at.index(index)).map(str::to_owned))
        .collect()
}

fn digest(value: &Json, at: &At<'_>) -> Result<crate::Digest, ManifestError> {
    value
        .as_str(at)?
        .parse()
        .map_err(|reason| ManifestError::InvalidDigest {
            field: at.to_string(),
            reason,
        })
}

fn size(value: &Json, at: &At<'_>) -> Result<u64, ManifestError> {
    match value {
        Json::Number(Number::Unsigned(size)) => Ok(*size),
        Json::Number(other) => Err(ManifestError::InvalidSize {
            field: at.to_string(),
            found: other.to_string(),
        }),
        other => Err(other.wrong_type(at, "a non-negative integer")),
    }
}
