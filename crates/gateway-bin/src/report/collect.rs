//! Reading the registry: the catalog, each repository's tags, and each tag's manifest, with at
//! most `concurrency` requests at once.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::StreamExt as _;
use limits_core::{ByteSize, Content, LimitSource, Policy, RepositoryName};
use oci_manifest::{Digest, Manifest};
use tokio::sync::{OnceCell, Semaphore};
use upstream_client::{Auth, FetchedManifest, Inventory, UpstreamError};

use super::progress::Progress;
use super::{Largest, Row, Status};

/// How deep indexes may nest (an index of indexes of images is 2).
const MAX_INDEX_DEPTH: usize = 4;

/// An image's size, `None` when the manifest is gone (deleted since it was listed); the error
/// is a message for the report.
type Measured = Result<Option<u64>, String>;

/// Reads the registry for a report.
#[derive(Debug)]
pub struct Reader<U> {
    upstream: U,
    policy: Policy,
    concurrency: usize,
    near: u8,
    permits: Semaphore,
    /// Sizes of manifests fetched by digest (the children of indexes), shared by every tag and
    /// repository: the same digest is fetched once.
    by_digest: Mutex<HashMap<Digest, Arc<OnceCell<Measured>>>>,
    progress: Progress,
}

impl<U: Inventory> Reader<U> {
    /// A reader sending at most `concurrency` requests at once.
    pub fn new(
        upstream: U,
        policy: Policy,
        concurrency: usize,
        near: u8,
        progress: Progress,
    ) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            upstream,
            policy,
            concurrency,
            near,
            permits: Semaphore::new(concurrency),
            by_digest: Mutex::new(HashMap::new()),
            progress,
        }
    }

    /// Every repository the registry lists.
    pub async fn catalog(&self) -> Result<Vec<String>, UpstreamError> {
        let _permit = self.permits.acquire().await;
        self.upstream.catalog(Auth::Configured).await
    }

    /// One row per repository, in no particular order.
    pub async fn rows(&self, names: Vec<String>) -> Vec<Row> {
        self.progress.start(names.len());
        let rows = futures_util::stream::iter(names)
            .map(|name| async move {
                let row = self.repository(name).await;
                self.progress.step();
                row
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        self.progress.finish();
        rows
    }

    async fn repository(&self, name: String) -> Row {
        let repo: RepositoryName = match name.parse() {
            Ok(repo) => repo,
            Err(e) => return error_row(name, None, None, e.to_string()),
        };
        let applied = self.policy.limits_for(&repo);
        let rule = match &applied.source {
            LimitSource::Global => "global".to_owned(),
            source @ LimitSource::Rule { .. } => source.to_string(),
        };
        let tags = {
            let _permit = self.permits.acquire().await;
            self.upstream.tags(&repo, Auth::Configured).await
        };
        let mut tags = match tags {
            Ok(tags) => tags,
            Err(e) => return error_row(name, Some((applied.limits, rule)), None, e.to_string()),
        };
        tags.sort();
        tags.dedup();
        // Counted as the gateway counts them: exempt signature tags left out.
        let count = match self.counted(&repo, &applied, &tags).await {
            Ok(count) => count,
            Err(e) => return error_row(name, Some((applied.limits, rule)), None, e),
        };
        let repo = &repo;
        let measured: Vec<(String, Measured)> = futures_util::stream::iter(tags)
            .map(|tag| async move {
                let size = self.tag(repo, &tag).await;
                (tag, size)
            })
            .buffered(self.concurrency)
            .collect()
            .await;
        let mut largest: Option<Largest> = None;
        for (tag, size) in measured {
            match size {
                Ok(Some(size)) => {
                    if largest.as_ref().is_none_or(|l| size > l.size.bytes()) {
                        largest = Some(Largest {
                            tag,
                            size: ByteSize::new(size),
                        });
                    }
                }
                Ok(None) => {}
                Err(message) => {
                    return error_row(
                        name,
                        Some((applied.limits, rule)),
                        Some(count),
                        format!("tag {tag}: {message}"),
                    );
                }
            }
        }
        Row::measured(name, applied.limits, rule, count, largest, self.near)
    }

    /// How many of `tags` count against the tag limit: all but the signature tags whose digest
    /// names an image the repository holds (`AppliedProtections::is_exempt`, for tags already
    /// stored).
    async fn counted(
        &self,
        repo: &RepositoryName,
        applied: &limits_core::AppliedLimits,
        tags: &[String],
    ) -> Result<u64, String> {
        let mut count = 0;
        for tag in tags {
            let Some(candidate) = applied.protections.signature_candidate(tag) else {
                count += 1;
                continue;
            };
            let fetched = {
                let _permit = self.permits.acquire().await;
                self.upstream
                    .manifest(repo, candidate.subject(), Auth::Configured)
                    .await
            };
            let fetched = fetched.map_err(|e| format!("tag {tag}: {e}"))?;
            let subject = crate::signatures::subject_of(fetched.as_ref());
            if !applied
                .protections
                .is_exempt(&candidate, subject, Content::Stored)
            {
                count += 1;
            }
        }
        Ok(count)
    }

    /// The size of the image `tag` points at: the largest child's for an index.
    async fn tag(&self, repo: &RepositoryName, tag: &str) -> Measured {
        let fetched = {
            let _permit = self.permits.acquire().await;
            self.upstream.manifest(repo, tag, Auth::Configured).await
        };
        match fetched.map_err(|e| e.to_string())? {
            Some(fetched) => self.measure(repo, fetched, 0).await,
            None => Ok(None),
        }
    }

    /// The size of a fetched manifest's image: config and layers as declared; for an index, the
    /// largest of its children.
    fn measure<'a>(
        &'a self,
        repo: &'a RepositoryName,
        fetched: FetchedManifest,
        depth: usize,
    ) -> Pin<Box<dyn Future<Output = Measured> + 'a>> {
        Box::pin(async move {
            let manifest = oci_manifest::parse(fetched.media_type.as_deref(), &fetched.body)
                .map_err(|e| e.to_string())?;
            match manifest {
                Manifest::Image(image) => Ok(Some(image.total_size())),
                Manifest::Index(index) => {
                    if depth >= MAX_INDEX_DEPTH {
                        return Err(format!("indexes nested deeper than {MAX_INDEX_DEPTH}"));
                    }
                    let mut largest = None;
                    for child in index.manifests() {
                        let size = self.child(repo, child.digest(), depth + 1).await?;
                        largest = largest.max(size);
                    }
                    Ok(largest)
                }
            }
        })
    }

    /// The size of the manifest `digest`, fetched once for every tag and repository.
    async fn child(&self, repo: &RepositoryName, digest: &Digest, depth: usize) -> Measured {
        let cell = {
            let mut cache = self
                .by_digest
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            Arc::clone(cache.entry(digest.clone()).or_default())
        };
        let measured = cell.get_or_init(|| async {
            let fetched = {
                let _permit = self.permits.acquire().await;
                self.upstream
                    .manifest(repo, digest.as_str(), Auth::Configured)
                    .await
            };
            match fetched.map_err(|e| e.to_string())? {
                Some(fetched) => self.measure(repo, fetched, depth).await,
                None => Ok(None),
            }
        });
        measured
            .await
            .clone()
            .map_err(|e| format!("manifest {digest}: {e}"))
    }
}

fn error_row(
    repository: String,
    applied: Option<(limits_core::Limits, String)>,
    tags: Option<u64>,
    message: String,
) -> Row {
    Row {
        repository,
        applied,
        tags,
        largest: None,
        status: Status::Error,
        note: message,
        fraction: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use limits_core::Standing;
    use oci_manifest::media_types::{OCI_IMAGE_INDEX, OCI_IMAGE_MANIFEST};

    const CONCURRENCY: usize = 2;

    /// Status, repository, tags, largest image (tag, bytes).
    type Summary<'a> = (&'a str, &'a str, Option<u64>, Option<(&'a str, u64)>);

    fn digest(n: u8) -> String {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
    }

    /// An OCI image manifest whose config and layers declare these sizes.
    fn image(config: u64, layers: &[u64]) -> FetchedManifest {
        let layers: Vec<serde_json::Value> = layers
            .iter()
            .enumerate()
            .map(|(i, size)| {
                serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": digest(100 + i as u8), "size": size})
            })
            .collect();
        let body = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_IMAGE_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(99), "size": config},
            "layers": layers});
        FetchedManifest {
            media_type: Some(OCI_IMAGE_MANIFEST.to_owned()),
            body: body.to_string().into_bytes(),
        }
    }

    fn index(children: &[u8]) -> FetchedManifest {
        let manifests: Vec<serde_json::Value> = children
            .iter()
            .map(|n| serde_json::json!({"mediaType": OCI_IMAGE_MANIFEST, "digest": digest(*n), "size": 100}))
            .collect();
        let body = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_IMAGE_INDEX, "manifests": manifests});
        FetchedManifest {
            media_type: Some(OCI_IMAGE_INDEX.to_owned()),
            body: body.to_string().into_bytes(),
        }
    }

    /// A registry in memory that counts requests in flight and manifest fetches.
    #[derive(Debug, Default)]
    struct Fake {
        catalog: Vec<String>,
        tags: HashMap<String, Option<Vec<String>>>,
        manifests: HashMap<String, FetchedManifest>,
        in_flight: AtomicUsize,
        most_in_flight: AtomicUsize,
        fetches: Mutex<HashMap<String, usize>>,
    }

    impl Fake {
        async fn request(&self) {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(2)).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }

    impl upstream_client::Upstream for Fake {
        async fn tags(
            &self,
            repo: &RepositoryName,
            _: Auth<'_>,
        ) -> Result<Vec<String>, UpstreamError> {
            self.request().await;
            self.tags
                .get(repo.as_str())
                .cloned()
                .flatten()
                .ok_or_else(|| UpstreamError::Status {
                    status: http::StatusCode::INTERNAL_SERVER_ERROR,
                    url: format!("http://fake/v2/{repo}/tags/list"),
                    code: None,
                    message: None,
                })
        }

        async fn blob_size(
            &self,
            _: &RepositoryName,
            _: &Digest,
            _: Auth<'_>,
        ) -> Result<Option<u64>, UpstreamError> {
            Ok(None)
        }

        async fn manifest_digest(
            &self,
            _: &RepositoryName,
            _: &str,
            _: Auth<'_>,
        ) -> Result<Option<Digest>, UpstreamError> {
            Ok(None)
        }

        async fn manifest(
            &self,
            _: &RepositoryName,
            reference: &str,
            _: Auth<'_>,
        ) -> Result<Option<FetchedManifest>, UpstreamError> {
            self.request().await;
            *self
                .fetches
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(reference.to_owned())
                .or_default() += 1;
            Ok(self.manifests.get(reference).cloned())
        }
    }

    impl Inventory for Fake {
        async fn catalog(&self, _: Auth<'_>) -> Result<Vec<String>, UpstreamError> {
            self.request().await;
            Ok(self.catalog.clone())
        }
    }

    #[tokio::test]
    async fn reads_every_repository_with_bounded_concurrency() {
        let mut fake = Fake {
            catalog: ["a/multi", "a/same", "b/gone", "c/broken", "d/many"]
                .map(str::to_owned)
                .to_vec(),
            ..Fake::default()
        };
        let tags = |names: &[&str]| Some(names.iter().map(|t| (*t).to_owned()).collect());
        fake.tags.insert("a/multi".into(), tags(&["v1", "v2"]));
        fake.tags.insert("a/same".into(), tags(&["latest"]));
        fake.tags.insert("b/gone".into(), tags(&["deleted"]));
        fake.tags.insert("c/broken".into(), None);
        let many: Vec<String> = (0..12).map(|i| format!("t{i:02}")).collect();
        fake.tags.insert("d/many".into(), Some(many.clone()));
        // v1, v2 and latest point at one index of two images; t05 is the largest of d/many.
        for tag in ["v1", "v2", "latest"] {
            fake.manifests.insert(tag.into(), index(&[1, 2]));
        }
        fake.manifests.insert(digest(1), image(10, &[100]));
        fake.manifests.insert(digest(2), image(10, &[500, 490]));
        for (i, tag) in many.iter().enumerate() {
            let layer = if i == 5 { 900 } else { 50 + i as u64 };
            fake.manifests.insert(tag.clone(), image(10, &[layer]));
        }

        let policy = Policy::from_yaml("max_image_size: 1000B\ntag_count_limit: 10\n")
            .expect("valid policy");
        let reader = Reader::new(&fake, policy, CONCURRENCY, 80, Progress::new(false));
        let names = reader.catalog().await.expect("catalog");
        let mut rows = reader.rows(names).await;
        crate::report::sort(&mut rows);

        let summary: Vec<Summary<'_>> = rows
            .iter()
            .map(|r| {
                (
                    r.status.as_str(),
                    r.repository.as_str(),
                    r.tags,
                    r.largest.as_ref().map(|l| (l.tag.as_str(), l.size.bytes())),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("over", "d/many", Some(12), Some(("t05", 910))),
                ("near", "a/multi", Some(2), Some(("v1", 1000))),
                ("near", "a/same", Some(1), Some(("latest", 1000))),
                ("error", "c/broken", None, None),
                ("ok", "b/gone", Some(1), None),
            ]
        );
        assert_eq!(rows[0].status, Status::Standing(Standing::Over));
        assert!(rows[3].note.contains("500"), "{}", rows[3].note);

        // Children of the shared index are fetched once; each tag once.
        let fetches = fake.fetches.lock().unwrap_or_else(PoisonError::into_inner);
        assert_eq!(fetches.get(&digest(1)), Some(&1));
        assert_eq!(fetches.get(&digest(2)), Some(&1));
        assert_eq!(fetches.get("v1"), Some(&1));
        let most = fake.most_in_flight.load(Ordering::SeqCst);
        assert_eq!(most, CONCURRENCY, "requests at once");
    }

    #[tokio::test]
    async fn signature_tags_count_as_the_gateway_counts_them() {
        // The signature names an image the repository holds; the forged one a digest nobody
        // pushed, so it counts like any tag.
        let signature = format!("sha256-{}.sig", "ab".repeat(32));
        let forged = format!("sha256-{}.sig", "cd".repeat(32));
        let mut fake = Fake {
            catalog: vec![
                "a/signed".to_owned(),
                "strict/signed".to_owned(),
                "b/forged".to_owned(),
            ],
            ..Fake::default()
        };
        for repository in ["a/signed", "strict/signed"] {
            fake.tags.insert(
                repository.into(),
                Some(vec!["v1".to_owned(), "v2".to_owned(), signature.clone()]),
            );
        }
        fake.tags.insert(
            "b/forged".into(),
            Some(vec!["v1".to_owned(), "v2".to_owned(), forged.clone()]),
        );
        for tag in ["v1", "v2", signature.as_str(), forged.as_str()] {
            fake.manifests.insert(tag.into(), image(10, &[100]));
        }
        fake.manifests
            .insert(format!("sha256:{}", "ab".repeat(32)), image(10, &[100]));
        let policy = Policy::from_yaml(
            "tag_count_limit: 2\nrules:\n- path: ^strict/\n  exempt_signature_tags: false\n  limit: {max_image_size: 1GB, tag_count_limit: 2}\n",
        )
        .expect("valid policy");
        let reader = Reader::new(&fake, policy, CONCURRENCY, 80, Progress::new(false));
        let mut rows = reader.rows(fake.catalog.clone()).await;
        crate::report::sort(&mut rows);
        let summary: Vec<(&str, &str, Option<u64>)> = rows
            .iter()
            .map(|r| (r.status.as_str(), r.repository.as_str(), r.tags))
            .collect();
        assert_eq!(
            summary,
            [
                ("over", "b/forged", Some(3)),
                ("over", "strict/signed", Some(3)),
                ("near", "a/signed", Some(2))
            ]
        );
    }
}
