//! Image size and tag count policy for OCI registries.
//!
//! `limits-core` is the policy of registry-gateway, usable by any Rust registry: it parses the
//! size strings and the configuration operators already write (a Kubernetes ConfigMap with
//! `max_image_size`, `tag_count_limit` and ordered regex path `rules`), finds which limits apply
//! to a repository (the first matching rule, else the global limits), and takes decisions whose
//! messages say exactly why a push was refused.
//!
//! ```
//! use limits_core::{ByteSize, Policy};
//!
//! let policy = Policy::from_yaml(r#"
//! apiVersion: v1
//! kind: ConfigMap
//! metadata:
//!   name: registry-gateway-config
//! data:
//!   max_image_size: "100MB"
//!   tag_count_limit: "100"
//!   rules: |
//!     - path: ^project-1/.*
//!       limit:
//!         max_image_size: "20MB"
//!         tag_count_limit: "3"
//! "#)?;
//!
//! let applied = policy.limits_for(&"project-1/app".parse()?);
//! let decision = applied.check_image_size("25MB".parse::<ByteSize>()?);
//! assert_eq!(
//!     decision.to_string(),
//!     "image size 25.0 MiB (26214400 bytes) exceeds the limit of 20 MiB for repository project-1/app (rule 1: ^project-1/.*)"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Configuration
//!
//! * [`Config::from_yaml`] reads the ConfigMap's `data` keys or a whole ConfigMap manifest;
//!   [`Config::from_entries`] reads the files of a mounted ConfigMap directory. `rules` may be a
//!   YAML list or a string holding one (`rules: |`).
//! * Every rule must give both limits; either limit may be `unlimited`.
//! * Unknown keys, bad sizes, bad patterns and bad counts are errors ([`ConfigError`]) that name
//!   the key, the rule's position and path, and the value: a typo never weakens a limit silently.
//! * Sizes ([`ByteSize`]) take `B`, `K`/`KB`/`KiB`/`Ki` and so on up to `T`, case-insensitive,
//!   decimals allowed; every multiple is a power of 1024.
//!
//! # Matching
//!
//! A rule's `path` is matched against the repository name unanchored, as Go's
//! `regexp.MatchString` does. All patterns are compiled into one `RegexSet`, so finding the first
//! match stays fast with thousands of rules; compiled sizes are bounded ([`RULE_SIZE_LIMIT`],
//! [`RULES_SIZE_LIMIT`]) so a hostile pattern is refused instead of exhausting memory.
//!
//! # Protections
//!
//! Optional keys, globally and per rule (the first matching rule's value, else the global one):
//! `read_only` ([`AppliedLimits::check_write`]), `immutable_tags`
//! ([`AppliedLimits::check_tag_move`], and [`AppliedLimits::check_manifest_delete`] for deletes
//! by such a tag or by the digest it points to, unless `allow_deleting_immutable_tags: true`)
//! and `exempt_signature_tags` (cosign's `sha256-<hex>.sig`/`.att`/`.sbom` tags neither count
//! nor freeze by default, when the digest names an image of the repository and the manifest is
//! the artifact the suffix says; [`AppliedProtections::is_exempt`]). Absent keys change
//! nothing.
//!
//! # Image counts and namespace quotas
//!
//! `image_count_limit` (globally and in a rule's `limit`; absent, unlimited) bounds the images
//! a repository holds ([`AppliedLimits::check_images`]). `namespace_quotas`, an ordered list
//! whose first matching entry applies, bounds what a namespace (the first component of a
//! repository name, [`namespace_of`]) holds in repositories, images, tags and storage
//! ([`Policy::quota_for`], [`AppliedQuota::check`]). The counts themselves
//! ([`NamespaceUsage`], [`PushDelta`]) come from the caller's inventory of the registry.
//!
//! # Migration to Registry v2
//!
//! [`Policy::export_registry_v2`] writes one Kubernetes `LimitRange` per namespace for the
//! successor product, commenting every rule a namespace-wide limit cannot express;
//! [`import_registry_v2`] reads such objects back into a [`Config`].
//! [`quantity`] and [`parse_quantity`] write and read the Kubernetes quantities they hold.
//!
//! # No I/O
//!
//! This crate does no I/O: no files, network, environment, clock or async runtime. Facts such as
//! a repository's tag count or a layer's real size come in as arguments; decisions go out as
//! values. Reading files, watching them and asking the registry are the caller's job.

pub mod admission;
mod config;
mod decision;
mod deletion;
mod detail;
mod enforcement;
mod error;
mod limit;
mod matcher;
mod migration;
mod policy;
mod position;
mod protection;
mod quota;
mod repository;
mod signature;
mod size;
mod source;
mod tags;
mod usage;
mod yaml;

pub use config::{Config, Rule};
pub use decision::{BlobSizeKnown, Check, Decision};
pub use deletion::{DeleteTarget, ImmutableDelete, ImmutableDeleteDetail};
pub use detail::Detail;
pub use enforcement::{Enforcement, EnforcementError, WarnAt, WarnAtError};
pub use error::{ConfigError, Location, RegexError, YamlError};
pub use limit::{Limit, Limits};
pub use matcher::{RULE_SIZE_LIMIT, RULES_SIZE_LIMIT};
pub use migration::{
    ImportError, Imported, LIMIT_RANGE_NAME, NamespaceLimits, RESOURCE_QUOTA_NAME,
    import_registry_v2, parse_quantity, quantity,
};
pub use policy::{AppliedLimits, Policy};
pub use protection::{
    AppliedProtections, Protections, ReadOnly, Setting, TagMove, TagMoveDetail, TagPatterns,
};
pub use quota::{
    AppliedQuota, NamespaceQuota, NamespaceUsage, PushDelta, QuotaDecision, QuotaDetail, QuotaHard,
    QuotaKind, QuotaSource, QuotaUsage, namespace_of,
};
pub use repository::{MAX_REPOSITORY_NAME_LEN, RepositoryName, RepositoryNameError};
pub use signature::{Content, SignatureTag, Subject, is_signature_tag};
pub use size::{ByteSize, SizeError};
pub use source::LimitSource;
pub use tags::TagTally;
pub use usage::{Standing, Usage};
