//! `GET /v1/inventory/<namespace>` on the admin listener: what the inventory holds for one
//! namespace, as JSON, for operators and tests (reading it builds the namespace's inventory on
//! first use, as a push would).

use http::StatusCode;
use serde::Serialize;
use upstream_client::Inventory as Catalog;

use super::{Inventory, RepositoryCounts};

/// The path prefix of the view.
pub const PREFIX: &str = "/v1/inventory/";

#[derive(Serialize)]
struct Usage {
    repositories: u64,
    images: u64,
    tags: u64,
    storage_bytes: u64,
}

#[derive(Serialize)]
struct View {
    namespace: String,
    usage: Usage,
    repositories: std::collections::BTreeMap<String, RepositoryCounts>,
}

/// The answer for `path` (which starts with [`PREFIX`]): status and JSON or text body.
pub async fn answer<U: Catalog>(inventory: &Inventory<U>, path: &str) -> (StatusCode, String) {
    let namespace = path.strip_prefix(PREFIX).unwrap_or_default();
    if namespace.is_empty()
        || namespace.contains('/')
        || limits_core::namespace_of(&format!("{namespace}/x")) != Some(namespace)
    {
        return (
            StatusCode::NOT_FOUND,
            "expected /v1/inventory/<namespace>\n".to_owned(),
        );
    }
    match inventory.snapshot(namespace).await {
        Ok((usage, repositories)) => {
            let view = View {
                namespace: namespace.to_owned(),
                usage: Usage {
                    repositories: usage.repositories,
                    images: usage.images,
                    tags: usage.tags,
                    storage_bytes: usage.storage_bytes,
                },
                repositories: repositories.into_iter().collect(),
            };
            match serde_json::to_string_pretty(&view) {
                Ok(json) => (StatusCode::OK, json + "\n"),
                Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{err}\n")),
            }
        }
        Err(err) => (
            StatusCode::BAD_GATEWAY,
            format!("cannot read namespace {namespace} from the registry: {err}\n"),
        ),
    }
}
