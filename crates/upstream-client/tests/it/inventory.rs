//! The catalog and manifests of Debian's `docker-registry` (distribution 2.8), in its three
//! auth set-ups.

use testkit::{ManifestFormat, RawPusher, Registry, TestImage};
use upstream_client::{Auth, Credentials, Inventory, ReqwestUpstream, Upstream, UpstreamError};

use crate::repo;

const REPOS: [&str; 3] = ["project-1/app", "project-1/db", "tools/ci"];

/// Pushes one small image per repository with raw requests; returns them in `REPOS` order.
async fn populate(registry: &Registry) -> Vec<TestImage> {
    let mut images = Vec::new();
    for (seed, name) in REPOS.iter().enumerate() {
        let image = TestImage::new(&[100 + seed as u64], seed as u64);
        let answer = RawPusher::for_registry(registry, name)
            .push_image(&image, name, "v1", ManifestFormat::Oci, None)
            .await;
        assert_eq!(answer.status.as_u16(), 201, "{}", answer.text());
        images.push(image);
    }
    images
}

/// Reads the catalog two entries a page, and each repository's manifest by tag and digest.
async fn check(registry: &Registry) {
    let images = populate(registry).await;
    let mut builder = ReqwestUpstream::builder(registry.base_url()).page_size(2);
    if let Some(user) = registry.user() {
        builder = builder.credentials(Credentials::new(&user.username, &user.password));
    }
    let upstream = builder.build().expect("client builds");

    let mut catalog = upstream.catalog(Auth::Configured).await.expect("catalog");
    catalog.sort();
    assert_eq!(catalog, REPOS);

    for (name, image) in REPOS.iter().zip(&images) {
        let by_tag = upstream
            .manifest(&repo(name), "v1", Auth::Configured)
            .await
            .expect("manifest by tag")
            .expect("the tag exists");
        assert_eq!(by_tag.body, image.manifest_as(ManifestFormat::Oci, None));
        assert_eq!(
            by_tag.media_type.as_deref(),
            Some(ManifestFormat::Oci.media_type())
        );
        let digest = testkit::sha256_digest(&by_tag.body);
        let by_digest = upstream
            .manifest(&repo(name), &digest, Auth::Configured)
            .await
            .expect("manifest by digest");
        assert_eq!(by_digest, Some(by_tag));
        let missing = upstream
            .manifest(&repo(name), "never-pushed", Auth::Configured)
            .await
            .expect("a missing tag is no error");
        assert_eq!(missing, None);
    }
    let invalid = upstream
        .manifest(&repo(REPOS[0]), "../../_catalog", Auth::Configured)
        .await
        .expect_err("not a reference");
    assert!(
        matches!(invalid, UpstreamError::InvalidReference { .. }),
        "{invalid}"
    );
}

#[tokio::test]
async fn anonymous_registry() {
    check(&Registry::anonymous()).await;
}

#[tokio::test]
async fn basic_registry() {
    let registry = Registry::basic();
    check(&registry).await;
    let wrong = ReqwestUpstream::builder(registry.base_url())
        .credentials(Credentials::new("testuser", "wrong-password"))
        .build()
        .expect("client builds");
    let error = wrong
        .catalog(Auth::Configured)
        .await
        .expect_err("wrong password");
    assert!(error.to_string().contains("refused"), "{error}");
}

#[tokio::test]
async fn token_registry() {
    check(&Registry::token()).await;
}
