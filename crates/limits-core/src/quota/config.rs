//! Reading `namespace_quotas`: a YAML list, or a string holding one (`namespace_quotas: |`).

use serde_yaml::Value;

use super::{NamespaceQuota, QuotaHard};
use crate::error::{ConfigError, Location};
use crate::yaml::{
    count_limit, enforcement, key_str, list_or_string, missing, size_limit, unknown, warn_at,
    wrong_type,
};

/// The keys of one quota.
const QUOTA_KEYS: &str = "namespace, hard, enforcement, warn_at";
/// The keys of a quota's `hard`.
const HARD_KEYS: &str = "repositories, images, tags, storage";
/// What `namespace_quotas` takes.
const LIST: &str = "a list of namespace quotas";

/// `namespace_quotas` as a YAML list, or as a string holding one.
pub(crate) fn namespace_quotas(value: Value) -> Result<Vec<NamespaceQuota>, ConfigError> {
    list_or_string(value, "namespace_quotas", LIST, |quota| {
        Location::NamespaceQuotas { quota }
    })?
    .into_iter()
    .enumerate()
    .map(|(index, item)| quota(index + 1, item))
    .collect()
}

fn quota(position: usize, item: Value) -> Result<NamespaceQuota, ConfigError> {
    let bare = Location::NamespaceQuota {
        position,
        namespace: None,
    };
    let Value::Mapping(mapping) = item else {
        return Err(wrong_type(
            "namespace quota",
            bare,
            "a mapping with namespace and hard",
            &item,
        ));
    };
    let namespace = match mapping.get("namespace") {
        None => return Err(missing("namespace", bare, "")),
        Some(Value::String(namespace)) => namespace.clone(),
        Some(other) => {
            return Err(wrong_type(
                "namespace",
                bare,
                "a regular expression string",
                other,
            ));
        }
    };
    let location = Location::NamespaceQuota {
        position,
        namespace: Some(namespace.as_str().into()),
    };
    let (mut hard, mut enforced, mut warned) = (None, None, None);
    for (key, value) in &mapping {
        match key_str(key, location.clone())? {
            "namespace" => {}
            "hard" => hard = Some(limits(value, &location)?),
            "enforcement" => enforced = Some(enforcement(value, &location)?),
            "warn_at" => warned = Some(warn_at(value, &location)?),
            other => return Err(unknown(other, location, QUOTA_KEYS)),
        }
    }
    let hard = hard.ok_or_else(|| {
        missing(
            "hard",
            location,
            ": a quota gives its limits under hard (each of them optional)",
        )
    })?;
    Ok(NamespaceQuota {
        namespace,
        hard,
        enforcement: enforced,
        warn_at: warned,
    })
}

fn limits(value: &Value, location: &Location) -> Result<QuotaHard, ConfigError> {
    let mapping = match value {
        Value::Null => return Ok(QuotaHard::UNLIMITED),
        Value::Mapping(mapping) => mapping,
        other => return Err(wrong_type("hard", location.clone(), "a mapping", other)),
    };
    let mut hard = QuotaHard::UNLIMITED;
    for (key, value) in mapping {
        match key_str(key, location.clone())? {
            "repositories" => {
                hard.repositories = count_limit("repositories", value, location.clone())?;
            }
            "images" => hard.images = count_limit("images", value, location.clone())?,
            "tags" => hard.tags = count_limit("tags", value, location.clone())?,
            "storage" => hard.storage = size_limit("storage", value, location.clone())?,
            other => return Err(unknown(other, location.clone(), HARD_KEYS)),
        }
    }
    Ok(hard)
}
