//! The namespace's inventory shared between replicas (`--coordination redis://`): each push a
//! replica admits is appended to the namespace's log in Redis before the namespace's lease is
//! released ([`record`]), and the next holder of the lease, on any replica, applies the entries
//! it has not applied before deciding ([`catch_up`]). A replica that cannot catch up from the
//! log (it just started, or fell more than [`LOG_KEEP`](crate::coordination::namespace::LOG_KEEP) entries
//! behind) reads the namespace from the registry instead, with the manifests pushed by digest
//! without a tag that Redis keeps because the registry cannot list them.

use std::collections::BTreeMap;

use oci_manifest::Digest;
use serde::{Deserialize, Serialize};
use upstream_client::Inventory as Catalog;

use crate::coordination::{CoordinationError, Since};
use crate::inventory::{Inventory, InventoryError, ManifestFacts};

use super::lease::SharedLease;

/// One admitted push, as the inventory records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// The repository.
    pub repository: String,
    /// The manifest's digest.
    pub digest: Digest,
    /// The tags it was pushed by (none: by digest).
    pub tags: Vec<String>,
    /// The facts of the manifest and of its children.
    pub facts: Vec<(Digest, ManifestFacts)>,
}

/// A [`Push`] as the log keeps it (JSON).
#[derive(Debug, Serialize, Deserialize)]
struct Logged {
    repository: String,
    digest: String,
    tags: Vec<String>,
    manifests: Vec<LoggedManifest>,
}

#[derive(Debug, Serialize, Deserialize)]
struct LoggedManifest {
    digest: String,
    blobs: BTreeMap<String, u64>,
    children: Vec<String>,
    attached: bool,
}

impl Push {
    /// The log's text of the push.
    fn encode(&self) -> String {
        let logged = Logged {
            repository: self.repository.clone(),
            digest: self.digest.to_string(),
            tags: self.tags.clone(),
            manifests: self
                .facts
                .iter()
                .map(|(digest, facts)| LoggedManifest {
                    digest: digest.to_string(),
                    blobs: facts
                        .blobs
                        .iter()
                        .map(|(blob, size)| (blob.to_string(), *size))
                        .collect(),
                    children: facts.children.iter().map(Digest::to_string).collect(),
                    attached: facts.attached,
                })
                .collect(),
        };
        serde_json::to_string(&logged).unwrap_or_default()
    }

    /// The push in a log's text; why not, when it is not one.
    fn decode(text: &str) -> Result<Push, String> {
        let logged: Logged = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let digest = |text: &str| text.parse::<Digest>().map_err(|e| e.to_string());
        let facts = logged
            .manifests
            .iter()
            .map(|manifest| {
                let blobs = manifest
                    .blobs
                    .iter()
                    .map(|(blob, size)| Ok((digest(blob)?, *size)))
                    .collect::<Result<_, String>>()?;
                let children = manifest
                    .children
                    .iter()
                    .map(|child| digest(child))
                    .collect::<Result<_, String>>()?;
                let facts = ManifestFacts {
                    blobs,
                    children,
                    attached: manifest.attached,
                };
                Ok((digest(&manifest.digest)?, facts))
            })
            .collect::<Result<_, String>>()?;
        Ok(Push {
            repository: logged.repository,
            digest: digest(&logged.digest)?,
            tags: logged.tags,
            facts,
        })
    }

    /// The field of a push by digest in the untagged manifests kept in Redis.
    fn untagged_field(&self) -> Option<String> {
        self.tags
            .is_empty()
            .then(|| format!("{}@{}", self.repository, self.digest))
    }
}

/// Why a replica could not catch up with a namespace.
#[derive(Debug)]
pub enum CatchUpError {
    /// Redis did not answer.
    Store(CoordinationError),
    /// The registry could not be read.
    Registry(InventoryError),
}

/// Applies to `inventory` the pushes other replicas admitted in the lease's namespace since
/// this process last held it, or reads the namespace from the registry again when the log no
/// longer reaches back that far.
pub async fn catch_up<C: Catalog>(
    inventory: &Inventory<C>,
    lease: &mut SharedLease,
) -> Result<(), CatchUpError> {
    let entries = match lease.redis.take_since() {
        Since::Entries(entries) => entries,
        Since::Behind => return reread(inventory, lease).await,
    };
    for text in entries {
        match Push::decode(&text) {
            Ok(push) => apply(inventory, push),
            Err(err) => {
                tracing::warn!(namespace = lease.namespace(), error = %err, "unreadable entry in the namespace's log in Redis; reading the namespace from the registry");
                return reread(inventory, lease).await;
            }
        }
    }
    lease.caught_up();
    Ok(())
}

fn apply<C: Catalog>(inventory: &Inventory<C>, push: Push) {
    inventory.record_push(&push.repository, &push.digest, &push.tags, push.facts);
}

/// Catches up from the registry and the untagged manifests kept in Redis; forgets those the
/// registry no longer holds.
async fn reread<C: Catalog>(
    inventory: &Inventory<C>,
    lease: &mut SharedLease,
) -> Result<(), CatchUpError> {
    let namespace = lease.namespace().to_owned();
    let kept = lease.redis.untagged().await.map_err(CatchUpError::Store)?;
    let mut untagged = Vec::new();
    let mut gone = Vec::new();
    for (field, text) in kept {
        match Push::decode(&text) {
            Ok(push) => {
                untagged.push((field, push.repository.clone(), push.digest.clone()));
                apply(inventory, push);
            }
            Err(_) => gone.push(field),
        }
    }
    // A namespace not read yet is read, with these, at its first use.
    if inventory.is_built(&namespace) {
        inventory
            .reconcile_now(&namespace)
            .await
            .map_err(CatchUpError::Registry)?;
        gone.extend(
            untagged
                .into_iter()
                .filter(|(_, repository, digest)| !inventory.holds(repository, digest))
                .map(|(field, _, _)| field),
        );
    }
    if let Err(err) = lease.redis.forget_untagged(&gone).await {
        tracing::warn!(namespace, error = %err, "untagged manifests the registry no longer holds not forgotten in Redis; the next reread does");
    }
    lease.caught_up();
    Ok(())
}

/// Appends `push` to the namespace's log (it is already in this process's inventory).
pub async fn record(lease: &SharedLease, push: &Push) {
    let field = push.untagged_field();
    match lease.redis.append(&push.encode(), field.as_deref()).await {
        Ok((seq, held)) => {
            lease.appended(seq);
            if !held {
                tracing::warn!(
                    namespace = lease.namespace(),
                    repository = push.repository,
                    "the namespace's lease expired before the push was logged; logged all the same"
                );
            }
        }
        Err(err) => tracing::error!(
            namespace = lease.namespace(),
            repository = push.repository,
            digest = %push.digest,
            error = %err,
            "push not logged for the other replicas: they count it from their next reconciliation with the registry"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> Digest {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
            .parse()
            .expect("digest")
    }

    #[test]
    fn pushes_round_trip_through_the_log() {
        let image = ManifestFacts {
            blobs: [(digest(2), 10), (digest(3), 2_000_000_000_000)].into(),
            children: Vec::new(),
            attached: false,
        };
        let index = ManifestFacts {
            blobs: BTreeMap::new(),
            children: vec![digest(1)],
            attached: true,
        };
        let push = Push {
            repository: "team/app".into(),
            digest: digest(4),
            tags: vec!["v1".into(), "latest".into()],
            facts: vec![(digest(1), image), (digest(4), index)],
        };
        assert_eq!(Push::decode(&push.encode()), Ok(push.clone()));
        assert_eq!(push.untagged_field(), None);
        let by_digest = Push {
            tags: Vec::new(),
            ..push
        };
        assert_eq!(
            by_digest.untagged_field().as_deref(),
            Some(format!("team/app@{}", digest(4)).as_str())
        );
    }

    #[test]
    fn bad_entries_are_refused() {
        let good = r#"{"repository":"t/a","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","tags":[],"manifests":[]}"#;
        assert!(Push::decode(good).is_ok());
        for bad in [
            "",
            "{",
            r#"{"repository":"t/a","digest":"md5:00","tags":[],"manifests":[]}"#,
            r#"{"repository":"t/a","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","tags":[],"manifests":[{"digest":"x","blobs":{},"children":[],"attached":false}]}"#,
        ] {
            assert!(Push::decode(bad).is_err(), "{bad}");
        }
    }
}
