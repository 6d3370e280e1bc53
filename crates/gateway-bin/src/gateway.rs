//! The proxy: reads every request once into a typed [`ApiRequest`], hands the checked routes to
//! their handlers (a manifest push to [`ManifestPush`], a blob upload to [`BlobUpload`], a
//! manifest delete to [`ManifestDelete`]) with only what each uses, forwards the rest, and
//! answers every refusal in one place ([`refusal::answer`]).

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Method, Request, Response};
use hyper::body::Incoming;
use limits_core::{Policy, ReadOnly};
use registry_api::{ApiRequest, RequestHead, Route};
use tokio::sync::{Semaphore, watch};
use upstream_client::Upstream;

use crate::blob_sizes::BlobSizes;
use crate::body::ProxyBody;
use crate::coordination::{Coordination, RedisNamespaces};
use crate::decision_log::DecisionLog;
use crate::delete::ManifestDelete;
use crate::facts::{Facts, TagSource};
use crate::inventory::Inventory;
use crate::inventory::tags::TagSets;
use crate::manifest::ManifestPush;
use crate::metrics::Metrics;
use crate::options::Options;
use crate::quota::{QuotaGate, QuotaStep};
use crate::refusal::{self, Refusal, Seen, refused};
use crate::subjects::Subjects;
use crate::upload::BlobUpload;
use crate::upload_sessions::UploadSessions;
use crate::upstream::forward::{Forwarder, HttpClient, Onward};
use crate::upstream::target::Target;
use crate::webhook::Webhook;

/// What a [`Gateway`] is built from.
#[derive(Debug)]
pub struct GatewayParts<U> {
    /// Carries proxied requests.
    pub client: HttpClient,
    /// Where proxied requests go.
    pub target: Target,
    /// Asks the upstream about blobs (and tags, unless `tag_source` says otherwise).
    pub registry: U,
    /// Where tag counts are read.
    pub tag_source: TagSource<U>,
    /// The limits in force.
    pub policy: watch::Receiver<Arc<Policy>>,
    /// Per-repository leases and recently created tags, in process or shared.
    pub coordination: Coordination,
    /// Each counted repository's tags, kept by the inventory.
    pub tag_sets: Arc<TagSets>,
    /// Real blob sizes by digest.
    pub blob_sizes: BlobSizes,
    /// What the digests signature tags name hold, by repository.
    pub subjects: Subjects,
    /// Bytes held by upload sessions, from the upstream's answers.
    pub uploads: UploadSessions,
    /// Bytes of manifest bodies that may be buffered at once, as permits.
    pub manifest_buffers: Arc<Semaphore>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Behaviour options.
    pub options: Options,
    /// Where decisions are notified, if anywhere.
    pub webhook: Option<Webhook>,
    /// The inventory image counts and namespace quotas are counted from (shared through the
    /// coordination store when it is Redis).
    pub inventory: Option<Arc<Inventory>>,
}

/// The proxy and everything it keeps between requests.
#[derive(Debug)]
pub struct Gateway<U> {
    forwarder: Arc<Forwarder>,
    facts: Facts<U>,
    policy: watch::Receiver<Arc<Policy>>,
    coordination: Coordination,
    tag_sets: Arc<TagSets>,
    uploads: UploadSessions,
    manifest_buffers: Arc<Semaphore>,
    decisions: DecisionLog,
    metrics: Arc<Metrics>,
    options: Options,
    quotas: Option<QuotaGate>,
}

impl<U: Upstream + 'static> Gateway<U> {
    /// The gateway built from its parts.
    pub fn new(parts: GatewayParts<U>) -> Self {
        let GatewayParts {
            client,
            target,
            registry,
            tag_source,
            policy,
            coordination,
            tag_sets,
            blob_sizes,
            subjects,
            uploads,
            manifest_buffers,
            metrics,
            options,
            webhook,
            inventory,
        } = parts;
        let shared = match &coordination {
            Coordination::Redis(redis) => Some(RedisNamespaces::new(redis)),
            Coordination::Local(_) => None,
        };
        Self {
            forwarder: Arc::new(Forwarder::new(client, target, Arc::clone(&metrics))),
            facts: Facts::new(
                registry,
                tag_source,
                (blob_sizes, subjects),
                Arc::clone(&metrics),
                options.clone(),
            ),
            policy,
            coordination,
            tag_sets,
            uploads,
            manifest_buffers,
            decisions: DecisionLog::new(Arc::clone(&metrics), webhook),
            metrics,
            options,
            quotas: inventory.map(|inventory| QuotaGate::new(inventory, shared)),
        }
    }

    /// Where decisions are notified, if anywhere.
    pub fn webhook(&self) -> Option<&Webhook> {
        self.decisions.webhook()
    }

    /// Answers one request.
    pub async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        remote: SocketAddr,
    ) -> Response<ProxyBody> {
        let _in_flight = self.metrics.in_flight();
        let method = request.method().clone();
        let uri = request.uri().clone();
        let head = RequestHead::parse(method.as_str(), uri.path(), uri.query(), request.headers());
        let response = match head {
            Err(err) => {
                let seen = Seen {
                    method: &method,
                    path: uri.path(),
                    repository: None,
                    reference: None,
                };
                let refusal = refused(request, Refusal::Request(err));
                refusal::answer(refusal, &seen, &self.metrics)
            }
            Ok(head) => {
                let repository = head.request.repository().cloned();
                let reference = match head.route() {
                    Route::ManifestPut { reference, .. }
                    | Route::ManifestDelete { reference, .. } => Some(reference.to_string()),
                    _ => None,
                };
                match self.dispatch(request, head, remote).await {
                    Ok(response) => response,
                    Err(refusal) => {
                        let seen = Seen {
                            method: &method,
                            path: uri.path(),
                            repository: repository.as_ref(),
                            reference: reference.as_deref(),
                        };
                        refusal::answer(refusal, &seen, &self.metrics)
                    }
                }
            }
        };
        self.metrics.request(&method, response.status());
        response
    }

    /// Hands a request, read once into `head`, to its handler.
    async fn dispatch(
        &self,
        request: Request<Incoming>,
        head: RequestHead,
        remote: SocketAddr,
    ) -> Result<Response<ProxyBody>, Refusal> {
        let requested = head.requested_tags();
        let RequestHead {
            request: api,
            content_type,
            content_length,
            content_range,
            form,
            connection_names,
            ..
        } = head;
        // hyper refuses a request whose lengths disagree before it gets here; a range that
        // does not read as one counts as not announced.
        let content_length = content_length.ok().flatten();
        let announced = (content_length, content_range.ok().flatten());
        if api.method.is_write() {
            // A proxy removes the headers `Connection` names, so the registry would not see
            // what was checked.
            if let Some(name) = connection_names {
                let name = name.to_owned();
                return Err(refused(
                    request,
                    Refusal::ConnectionNamesCheckedHeader { name },
                ));
            }
        }
        if api.method.is_write() && api.route != Route::Outside {
            if let Some(read_only) = self.read_only(&api) {
                return Err(refused(request, Refusal::ReadOnly(read_only)));
            }
        }
        let onward = Onward::new(Arc::clone(&self.forwarder), api.forward_path, remote);
        match api.route {
            Route::Outside => {
                let path = request.uri().path().to_owned();
                Err(refused(request, Refusal::NotRegistryApi { path }))
            }
            Route::ManifestPut { name, reference } => {
                let (applied, quota) = {
                    let policy = self.policy.borrow();
                    (policy.limits_for(&name), policy.quota_for(&name))
                };
                let push = ManifestPush {
                    facts: &self.facts,
                    coordination: &self.coordination,
                    tag_sets: &self.tag_sets,
                    decisions: &self.decisions,
                    options: &self.options,
                    buffers: &self.manifest_buffers,
                    quotas: self.quotas.as_ref().map(|gate| QuotaStep { gate, quota }),
                };
                let body = (content_type, content_length);
                push.handle(request, applied, (reference, requested), body, onward)
                    .await
            }
            Route::UploadStart { name, mount } => {
                let upload = self.upload(&name, form, announced);
                upload.start(request, name, mount, onward).await
            }
            Route::UploadChunk { name, id } => {
                let upload = self.upload(&name, form, announced);
                upload.chunk(request, name, id, onward).await
            }
            Route::ManifestDelete { name, reference } => {
                let applied = self.policy.borrow().limits_for(&name);
                let delete = ManifestDelete {
                    facts: &self.facts,
                    coordination: &self.coordination,
                    tag_sets: &self.tag_sets,
                    options: &self.options,
                };
                delete.handle(request, applied, reference, onward).await
            }
            Route::Read | Route::OtherWrite => {
                let method = request.method();
                let timeout = (method == Method::GET
                    || method == Method::HEAD
                    || method == Method::OPTIONS
                    || method == Method::DELETE)
                    .then_some(self.options.upstream_timeout);
                onward.request(request, timeout).await
            }
        }
    }

    /// The handler of a blob upload to `repository` (`form`: the request has a form body;
    /// `announced`: its declared length and range), with the repository's limits read once:
    /// the mount check and the body guard use the same ones.
    fn upload(
        &self,
        repository: &limits_core::RepositoryName,
        form: bool,
        announced: (Option<u64>, Option<(u64, u64)>),
    ) -> BlobUpload<'_, U> {
        let applied = self.policy.borrow().limits_for(repository);
        BlobUpload {
            facts: &self.facts,
            decisions: &self.decisions,
            sessions: &self.uploads,
            options: &self.options,
            form,
            announced,
            guard: limits_core::admission::upload_guard(&applied).map(|limit| (applied, limit)),
        }
    }

    /// Why a write is refused while its repository is read-only; a write whose repository
    /// cannot be read is refused while any repository is.
    fn read_only(&self, api: &ApiRequest) -> Option<ReadOnly> {
        let policy = self.policy.borrow();
        match api.write_repository() {
            Some(repository) => policy.limits_for(&repository).check_write().err(),
            None => policy.any_read_only(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_naming_checked_headers() {
        let cases: &[(&str, Option<&str>)] = &[
            ("keep-alive", None),
            ("close", None),
            ("keep-alive, Content-Type", Some("content-type")),
            ("AUTHORIZATION", Some("authorization")),
            ("x-private, content-range", Some("content-range")),
        ];
        for (value, want) in cases {
            let head =
                RequestHead::parse("PUT", "/v2/a/manifests/v1", None, [("Connection", value)])
                    .expect("a manifest push");
            assert_eq!(head.connection_names, *want, "{value}");
        }
    }
}
