//! Reading the registry: the catalog, each repository's tags, and each tag's manifest, with at
//! most `concurrency` requests at once.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::StreamExt as _;
use limits_core::{ByteSize, LimitSource, Policy, RepositoryName};
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
        let count = tags.len() as u64;
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
