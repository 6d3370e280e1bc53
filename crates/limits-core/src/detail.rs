//! The facts of a decision as numbers: the `detail` of an error answer, and log fields.

use serde::Serialize;

/// The facts of a decision as numbers, for the `detail` of an error answer and for logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detail {
    /// The repository.
    pub repository: String,
    /// `image_size`, `tag_count`, `image_count` or `blob_size`.
    pub check: &'static str,
    /// Bytes for sizes; the total the repository would hold for tag and image counts.
    pub measured: u64,
    /// The limit, or `None` when unlimited.
    pub limit: Option<u64>,
    /// Tags the repository holds (tag counts only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_tags: Option<u64>,
    /// Tags the push would create (tag counts only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_tags: Option<u64>,
    /// Images the repository holds (image counts only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_images: Option<u64>,
    /// Images the push adds, 0 or 1 (image counts only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_images: Option<u64>,
    /// How a blob's size is known: `stored`, `announced`, or `streamed` (the bytes sent when
    /// the upload was stopped; blob sizes only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_known: Option<&'static str>,
    /// 1-based position of the rule that set the limit; `None` for the global limit.
    pub rule: Option<usize>,
    /// The rule's pattern; `None` for the global limit.
    pub rule_path: Option<String>,
}
