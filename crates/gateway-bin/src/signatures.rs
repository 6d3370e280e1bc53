//! Which signature tags are exempt from the tag limit (`exempt_signature_tags`): the facts the
//! rule in `limits_core::AppliedProtections::is_exempt` needs, read from the registry.
//!
//! A tag named `sha256-<hex>.sig` (`.att`, `.sbom`) is exempt only when the digest names an
//! image the repository holds and, when it is pushed, the manifest is the cosign artifact its
//! suffix says. The subject is read from the registry (`GET` on the manifest by digest, through
//! the same address and credentials as the tag listing) and remembered by repository and digest:
//! what a digest holds never changes, so an image or attached manifest stays known; a digest
//! the registry does not hold is asked again after a short while.

use limits_core::Subject;
use upstream_client::FetchedManifest;

/// What a manifest fetched by the digest a signature tag names is, for the exemption: nothing
/// (404), attached to another manifest, or an image of its own. A body that does not parse is
/// no manifest the gateway can vouch for, so nothing to attach an exemption to.
pub fn subject_of(fetched: Option<&FetchedManifest>) -> Subject {
    let Some(fetched) = fetched else {
        return Subject::Absent;
    };
    match oci_manifest::parse(fetched.media_type.as_deref(), &fetched.body) {
        Ok(manifest) if manifest.is_attached() => Subject::Attached,
        Ok(_) => Subject::Image,
        Err(_) => Subject::Absent,
    }
}
