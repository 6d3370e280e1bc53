//! Signature, attestation and SBOM tags (`exempt_signature_tags`, on by default) escape the tag
//! limit only when they are what their name says: the digest in `sha256-<hex>.sig` names an
//! image the repository holds, and the manifest pushed under it is the cosign artifact its
//! suffix names. Made-up digests, ordinary images under a signature's name, the wrong kind of
//! artifact and signatures of signatures all count like any tag.

use http::StatusCode;
use testkit::{ManifestFormat, RawPusher, RawResponse, Registry, TestImage};

use crate::support::{Gateway, upstream_tags};

const KB: u64 = 1024;
const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const DSSE: &str = "application/vnd.dsse.envelope.v1+json";
const SPDX: &str = "text/spdx+json";

/// The tag cosign stores `suffix` under for the manifest `digest` (`sha256:<hex>`).
fn attached_tag(digest: &str, suffix: &str) -> String {
    format!("{}.{suffix}", digest.replacen(':', "-", 1))
}

async fn push(gateway: &Gateway, image: &TestImage, repository: &str, tag: &str) -> RawResponse {
    RawPusher::new(gateway.base_url())
        .push_image(image, repository, tag, ManifestFormat::Oci, None)
        .await
}

fn assert_tag_limit(answer: &RawResponse, holds: u64) {
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.text());
    assert!(
        answer.text().contains(&format!(
            "the repository holds {holds} tags and this push adds 1"
        )),
        "{}",
        answer.text()
    );
}

/// The way around the limit as it was found: ordinary images under made-up signature names
/// were all accepted, so a repository limited to 2 tags ended with dozens.
#[tokio::test]
async fn made_up_signature_tags_count_like_any_tag() {
    let registry = Registry::anonymous();
    let gateway = Gateway::builder(registry.base_url())
        .config("tag_count_limit: \"2\"\n")
        .start();
    let repository = "team/forged";
    for (i, tag) in ["v1", "v2"].into_iter().enumerate() {
        let answer = push(
            &gateway,
            &TestImage::new(&[2 * KB], 100 + i as u64),
            repository,
            tag,
        )
        .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    }
    for (i, suffix) in ["sig", "att", "sbom", "sig", "att", "sbom"]
        .into_iter()
        .enumerate()
    {
        let made_up = format!("sha256:{:064x}", 0xfeed_0000 + i);
        let image = TestImage::new(&[2 * KB], 200 + i as u64);
        let answer = push(
            &gateway,
            &image,
            repository,
            &attached_tag(&made_up, suffix),
        )
        .await;
        assert_tag_limit(&answer, 2);
    }
    assert_eq!(upstream_tags(&registry, repository).await.len(), 2);
}

/// What cosign attaches to an image of the repository is exempt, three tags per image at
/// most; anything else under those names is counted.
#[tokio::test]
async fn only_what_is_attached_to_an_image_of_the_repository_is_exempt() {
    let registry = Registry::anonymous();
    let gateway = Gateway::builder(registry.base_url())
        .config("tag_count_limit: \"2\"\n")
        .start();
    let repository = "team/signed";
    let image = TestImage::new(&[4 * KB], 301);
    let other = TestImage::new(&[4 * KB], 302);
    for (tag, pushed) in [("v1", &image), ("v2", &other)] {
        let answer = push(&gateway, pushed, repository, tag).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    }
    let subject = image.manifest().digest.clone();
    // At its limit, the repository takes the image's signature, attestation and SBOM.
    let signature = TestImage::attached(SIMPLE_SIGNING, &subject, 1, 1);
    for (suffix, artifact) in [
        ("sig", signature.clone()),
        ("att", TestImage::attached(DSSE, &subject, 2, 2)),
        ("sbom", TestImage::attached(SPDX, &subject, 1, 3)),
    ] {
        let answer = push(
            &gateway,
            &artifact,
            repository,
            &attached_tag(&subject, suffix),
        )
        .await;
        assert_eq!(
            answer.status,
            StatusCode::CREATED,
            "{suffix}: {}",
            answer.text()
        );
    }
    // An ordinary image under the other image's signature name, an attestation under a
    // signature's name, and a signature of the signature are counted, so refused.
    let other_subject = other.manifest().digest.clone();
    let ordinary = TestImage::new(&[4 * KB], 303);
    let answer = push(
        &gateway,
        &ordinary,
        repository,
        &attached_tag(&other_subject, "sig"),
    )
    .await;
    assert_tag_limit(&answer, 2);
    let attestation = TestImage::attached(DSSE, &other_subject, 1, 4);
    let answer = push(
        &gateway,
        &attestation,
        repository,
        &attached_tag(&other_subject, "sig"),
    )
    .await;
    assert_tag_limit(&answer, 2);
    let chained_subject = signature.manifest().digest.clone();
    let chained = TestImage::attached(SIMPLE_SIGNING, &chained_subject, 1, 5);
    let answer = push(
        &gateway,
        &chained,
        repository,
        &attached_tag(&chained_subject, "sig"),
    )
    .await;
    assert_tag_limit(&answer, 2);
    // The exempt tags the registry lists do not count against the next push either.
    let answer = push(&gateway, &ordinary, repository, "v3").await;
    assert_tag_limit(&answer, 2);
    assert_eq!(upstream_tags(&registry, repository).await.len(), 5);
}

/// A signature-named tag the registry already holds, put there without the gateway (before it
/// was deployed, say), is exempt only when its digest names an image of the repository.
#[tokio::test]
async fn listed_signature_tags_count_unless_their_digest_names_an_image() {
    let registry = Registry::anonymous();
    let gateway = Gateway::builder(registry.base_url())
        .config("tag_count_limit: \"2\"\n")
        .start();
    let direct = |repository: &str| RawPusher::for_registry(&registry, repository);
    let repository = "team/listed";
    let image = TestImage::new(&[2 * KB], 401);
    let answer = push(&gateway, &image, repository, "v1").await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    // Straight into the registry: a real signature of v1, and an image under a made-up name.
    let subject = image.manifest().digest.clone();
    let signature = TestImage::attached(SIMPLE_SIGNING, &subject, 1, 6);
    let stored = direct(repository)
        .push_image(
            &signature,
            repository,
            &attached_tag(&subject, "sig"),
            ManifestFormat::Oci,
            None,
        )
        .await;
    assert_eq!(stored.status, StatusCode::CREATED, "{}", stored.text());
    let made_up = format!("sha256:{:064x}", 0xdead_beef_u64);
    let forged = TestImage::new(&[2 * KB], 402);
    let stored = direct(repository)
        .push_image(
            &forged,
            repository,
            &attached_tag(&made_up, "sbom"),
            ManifestFormat::Oci,
            None,
        )
        .await;
    assert_eq!(stored.status, StatusCode::CREATED, "{}", stored.text());
    // v1 and the forged tag count; the signature does not: a second tag is one too many.
    let answer = push(&gateway, &TestImage::new(&[2 * KB], 403), repository, "v2").await;
    assert_tag_limit(&answer, 2);
}
