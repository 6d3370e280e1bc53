//! The body of a registry notification: the events envelope that distribution (and Harbor's
//! registry) posts to its `notifications.endpoints`, read into the events an inventory of the
//! registry needs.
//!
//! distribution writes one JSON envelope, `{"events": [...]}`, each event with an `action`
//! (`push`, `pull`, `mount`, `delete`) and a `target` (`mediaType`, `digest`, `size`, `length`,
//! `repository`, `fromRepository`, `url`, `tag`, `references`); the `request`, `actor`, `source`
//! and `timestamp` fields are not read here. What each action carries:
//!
//! * a manifest push: the manifest's media type, digest and size, its URL
//!   (`.../manifests/<digest>`), and the tag when it was pushed by tag;
//! * a blob push or mount: the blob's descriptor and URL (`.../blobs/<digest>`), and for a
//!   mount the repository it came from;
//! * a delete by digest: the repository and digest only, the same for a manifest and a blob, so
//!   the two cannot be told apart ([`EventKind::DigestDeleted`]);
//! * a tag delete: the repository and the tag (distribution 2.8 sends one for each tag of a
//!   manifest deleted by digest, after the manifest's own event; distribution 3 also for a
//!   delete by tag);
//! * a repository delete (distribution 3): the repository.
//!
//! Pulls and unknown actions are counted in [`Notification::ignored`], not refused: the
//! registry retries a body the endpoint refuses, so only a body the inventory would misread is
//! an error.

use oci_manifest::Digest;

use crate::reference::is_tag;
use limits_core::{RepositoryName, RepositoryNameError};
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// The envelope's media type as distribution 2 sends it.
pub const EVENTS_MEDIA_TYPE_V1: &str = "application/vnd.docker.distribution.events.v1+json";
/// The envelope's media type as distribution 3 sends it (the same fields).
pub const EVENTS_MEDIA_TYPE_V2: &str = "application/vnd.docker.distribution.events.v2+json";

/// Manifest media types: a push event with one of these is a manifest push.
const MANIFEST_MEDIA_TYPES: [&str; 7] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/json",
];

/// Whether a `Content-Type` names a notification envelope: either version of the events media
/// type, or plain `application/json`; parameters and case are ignored.
///
/// ```
/// use registry_api::is_notification_content_type;
///
/// assert!(is_notification_content_type("application/vnd.docker.distribution.events.v1+json"));
/// assert!(is_notification_content_type("Application/JSON; charset=utf-8"));
/// assert!(!is_notification_content_type("text/plain"));
/// ```
pub fn is_notification_content_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    [
        EVENTS_MEDIA_TYPE_V1,
        EVENTS_MEDIA_TYPE_V2,
        "application/json",
    ]
    .contains(&essence.as_str())
}

/// The events of one notification body that change what a registry holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The events, in the order of the body.
    pub events: Vec<Event>,
    /// Events read and left out: pulls, and actions this parser does not know.
    pub ignored: usize,
}

/// One event that changes what a registry holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event's `id`, when it has one (for logs; distribution gives each event a UUID).
    pub id: Option<String>,
    /// What happened.
    pub kind: EventKind,
}

/// What happened to the registry's content.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// A manifest was stored, by tag or by digest.
    ManifestPushed {
        /// The repository.
        repository: RepositoryName,
        /// The manifest's digest.
        digest: Digest,
        /// The manifest's media type.
        media_type: String,
        /// The manifest's size in bytes, when given.
        size: Option<u64>,
        /// The tag it was pushed by; `None` for a push by digest.
        tag: Option<String>,
    },
    /// A blob was stored by an upload, or mounted from another repository.
    BlobStored {
        /// The repository.
        repository: RepositoryName,
        /// The blob's digest.
        digest: Digest,
        /// The blob's size in bytes, when given.
        size: Option<u64>,
        /// The repository it was mounted from; `None` for an upload.
        mounted_from: Option<RepositoryName>,
    },
    /// A manifest or a blob was deleted by digest (distribution's delete events do not say
    /// which).
    DigestDeleted {
        /// The repository.
        repository: RepositoryName,
        /// The digest.
        digest: Digest,
    },
    /// A tag was deleted (by tag, or with the manifest it pointed at).
    TagDeleted {
        /// The repository.
        repository: RepositoryName,
        /// The tag.
        tag: String,
    },
    /// A whole repository was deleted (distribution 3).
    RepositoryDeleted {
        /// The repository.
        repository: RepositoryName,
    },
}

/// The JSON parser's own error, kept out of the public API.
#[derive(Debug)]
pub struct JsonError(serde_json::Error);

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for JsonError {}

/// Why a notification body was refused. Events are numbered from 1 in the body's order.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotificationError {
    /// The body is not JSON, not an object with an `events` list, or holds an event whose
    /// fields have the wrong types (a `size` that is a string, a key given twice); the message
    /// names the event and the position.
    #[error("invalid notification body: {0}")]
    Envelope(#[source] JsonError),
    /// An event without a field its action needs.
    #[error("invalid event {index} of the notification: a {action} event without target.{field}")]
    Missing {
        /// 1-based position of the event.
        index: usize,
        /// The event's action.
        action: &'static str,
        /// The missing field, under `target`.
        field: &'static str,
    },
    /// A repository name outside the OCI grammar.
    #[error("invalid event {index} of the notification: {source}")]
    Repository {
        /// 1-based position of the event.
        index: usize,
        /// Why the name was refused.
        #[source]
        source: RepositoryNameError,
    },
    /// A digest that is not a valid one.
    #[error("invalid event {index} of the notification: invalid digest \"{digest}\"")]
    Digest {
        /// 1-based position of the event.
        index: usize,
        /// The refused digest, cut to 150 characters.
        digest: String,
    },
    /// A tag outside distribution's tag grammar.
    #[error("invalid event {index} of the notification: invalid tag \"{tag}\"")]
    Tag {
        /// 1-based position of the event.
        index: usize,
        /// The refused tag, cut to 150 characters.
        tag: String,
    },
    /// A negative `size` or `length`.
    #[error("invalid event {index} of the notification: negative size {size}")]
    Size {
        /// 1-based position of the event.
        index: usize,
        /// The refused size.
        size: i64,
    },
}

/// The envelope: an object whose `events` key holds the list (other keys are left out).
struct Envelope {
    events: Events,
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with an events list")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut events = None;
        while let Some(key) = map.next_key::<String>()? {
            if key != "events" {
                map.next_value::<de::IgnoredAny>()?;
            } else if events.is_some() {
                return Err(de::Error::duplicate_field("events"));
            } else {
                events = Some(map.next_value::<Events>()?);
            }
        }
        let events = events.ok_or_else(|| de::Error::missing_field("events"))?;
        Ok(Envelope { events })
    }
}

/// The `events` list, each read as an event whose errors name its position.
struct Events(Vec<RawEvent>);

impl<'de> Deserialize<'de> for Events {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(EventsVisitor)
    }
}

struct EventsVisitor;

impl<'de> Visitor<'de> for EventsVisitor {
    type Value = Events;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Events, A::Error> {
        let mut events = Vec::new();
        loop {
            let index = events.len() + 1;
            match seq.next_element::<RawEvent>() {
                Ok(Some(event)) => events.push(event),
                Ok(None) => return Ok(Events(events)),
                Err(e) => return Err(de::Error::custom(format_args!("event {index}: {e}"))),
            }
        }
    }
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    target: Option<RawTarget>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawTarget {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    size: Option<i64>,
    #[serde(default)]
    length: Option<i64>,
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    from_repository: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    tag: Option<String>,
}

impl Notification {
    /// Reads a notification body.
    ///
    /// ```
    /// use registry_api::{EventKind, Notification};
    ///
    /// let body = br#"{"events":[{
    ///   "id": "320678d8-ca14-430f-8bb6-4ca139cd83f7",
    ///   "timestamp": "2016-03-09T14:44:26.402973972-08:00",
    ///   "action": "push",
    ///   "target": {
    ///     "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    ///     "size": 708,
    ///     "digest": "sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf",
    ///     "length": 708,
    ///     "repository": "team-a/app",
    ///     "url": "http://registry:5000/v2/team-a/app/manifests/sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf",
    ///     "tag": "v1"
    ///   },
    ///   "request": {"id": "6df24a34", "addr": "192.168.64.11:42961", "host": "registry:5000", "method": "PUT", "useragent": "curl/7.38.0"},
    ///   "actor": {},
    ///   "source": {"addr": "registry-0:5000", "instanceID": "a53db899"}
    /// }]}"#;
    /// let notification = Notification::parse(body)?;
    /// let EventKind::ManifestPushed { repository, tag, size, .. } = &notification.events[0].kind else {
    ///     panic!("a manifest push");
    /// };
    /// assert_eq!((repository.as_str(), tag.as_deref(), *size), ("team-a/app", Some("v1"), Some(708)));
    /// assert!(Notification::parse(b"{\"events\": 3}").is_err());
    /// # Ok::<(), registry_api::NotificationError>(())
    /// ```
    pub fn parse(body: &[u8]) -> Result<Notification, NotificationError> {
        let invalid = |e| NotificationError::Envelope(JsonError(e));
        // The typed pass below skips the fields it does not read without checking them (an
        // escape that is no character, say): the body is first checked as JSON, whole.
        serde_json::from_slice::<serde_json::Value>(body).map_err(invalid)?;
        let envelope: Envelope = serde_json::from_slice(body).map_err(invalid)?;
        let mut notification = Notification {
            events: Vec::new(),
            ignored: 0,
        };
        for (position, raw) in envelope.events.0.into_iter().enumerate() {
            let index = position + 1;
            match read_event(index, raw)? {
                Some(event) => notification.events.push(event),
                None => notification.ignored += 1,
            }
        }
        Ok(notification)
    }
}

/// One event; `None` for one the inventory does not need.
fn read_event(index: usize, raw: RawEvent) -> Result<Option<Event>, NotificationError> {
    let action: &'static str = match raw.action.as_deref() {
        Some("push") => "push",
        Some("mount") => "mount",
        Some("delete") => "delete",
        _ => return Ok(None),
    };
    let target = raw.target.unwrap_or_default();
    let fields = Fields {
        index,
        action,
        target: &target,
    };
    let repository = fields.repository()?;
    let kind = match action {
        "delete" => match (&target.digest, &target.tag) {
            (Some(_), _) => EventKind::DigestDeleted {
                repository,
                digest: fields.digest()?,
            },
            (None, Some(_)) => EventKind::TagDeleted {
                repository,
                tag: fields.tag()?.unwrap_or_default(),
            },
            (None, None) => EventKind::RepositoryDeleted { repository },
        },
        _ if action == "push" && is_manifest(&target) => EventKind::ManifestPushed {
            repository,
            digest: fields.digest()?,
            media_type: target.media_type.clone().unwrap_or_default(),
            size: fields.size()?,
            tag: fields.tag()?,
        },
        _ => EventKind::BlobStored {
            repository,
            digest: fields.digest()?,
            size: fields.size()?,
            mounted_from: match &target.from_repository {
                Some(from) if action == "mount" && !from.is_empty() => Some(
                    from.parse()
                        .map_err(|source| NotificationError::Repository { index, source })?,
                ),
                _ => None,
            },
        },
    };
    Ok(Some(Event { id: raw.id, kind }))
}

/// A push event is a manifest's when its media type is a manifest type, or, without one, when
/// its URL names a manifest.
fn is_manifest(target: &RawTarget) -> bool {
    match target.media_type.as_deref().filter(|t| !t.is_empty()) {
        Some(media_type) => {
            let essence = media_type.split(';').next().unwrap_or("").trim();
            MANIFEST_MEDIA_TYPES.contains(&essence)
        }
        None => target
            .url
            .as_deref()
            .is_some_and(|url| url.contains("/manifests/")),
    }
}

/// Reads the fields of one event's target, with errors naming the event.
struct Fields<'a> {
    index: usize,
    action: &'static str,
    target: &'a RawTarget,
}

impl Fields<'_> {
    fn missing(&self, field: &'static str) -> NotificationError {
        NotificationError::Missing {
            index: self.index,
            action: self.action,
            field,
        }
    }

    fn repository(&self) -> Result<RepositoryName, NotificationError> {
        let name = self
            .target
            .repository
            .as_deref()
            .filter(|name| !name.is_empty())
            .ok_or_else(|| self.missing("repository"))?;
        name.parse()
            .map_err(|source| NotificationError::Repository {
                index: self.index,
                source,
            })
    }

    fn digest(&self) -> Result<Digest, NotificationError> {
        let digest = self
            .target
            .digest
            .as_deref()
            .filter(|digest| !digest.is_empty())
            .ok_or_else(|| self.missing("digest"))?;
        digest.parse().map_err(|_| NotificationError::Digest {
            index: self.index,
            digest: digest.chars().take(150).collect(),
        })
    }

    /// The tag, `None` when absent or empty (distribution leaves it out of a push by digest).
    fn tag(&self) -> Result<Option<String>, NotificationError> {
        match self.target.tag.as_deref() {
            None | Some("") => Ok(None),
            Some(tag) if is_tag(tag) => Ok(Some(tag.to_owned())),
            Some(tag) => Err(NotificationError::Tag {
                index: self.index,
                tag: tag.chars().take(150).collect(),
            }),
        }
    }

    /// `size`, else `length` (the same number, kept by distribution for older readers).
    fn size(&self) -> Result<Option<u64>, NotificationError> {
        match self.target.size.or(self.target.length) {
            None => Ok(None),
            Some(size) => u64::try_from(size)
                .map(Some)
                .map_err(|_| NotificationError::Size {
                    index: self.index,
                    size,
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf";
    const D2: &str = "sha256:3c3a4604a545cdc127456d94e421cd355bca5b528f4a9c1905b15da2eb4a4c6b";

    /// One event as distribution writes it, around a `target` and an action.
    fn event(action: &str, target: &str) -> String {
        format!(
            r#"{{"id":"320678d8-ca14-430f-8bb6-4ca139cd83f7","timestamp":"2024-03-09T14:44:26.402973972Z","action":"{action}","target":{target},"request":{{"id":"6df24a34-0959-4923-81ca-14f09767db19","addr":"10.0.0.7:42961","host":"registry:5000","method":"PUT","useragent":"containerd/1.7"}},"actor":{{"name":"ci"}},"source":{{"addr":"registry-0:5000","instanceID":"a53db899-3b4b-4a62-a067-8dd013beaca4"}}}}"#
        )
    }

    fn body(events: &[String]) -> Vec<u8> {
        format!("{{\"events\":[{}]}}", events.join(",")).into_bytes()
    }

    fn manifest_push(media_type: &str, tag: Option<&str>) -> String {
        let tag = tag.map_or(String::new(), |t| format!(r#","tag":"{t}""#));
        event(
            "push",
            &format!(
                r#"{{"mediaType":"{media_type}","digest":"{D1}","size":708,"length":708,"repository":"team-a/app","url":"http://registry:5000/v2/team-a/app/manifests/{D1}"{tag}}}"#
            ),
        )
    }

    fn name(text: &str) -> RepositoryName {
        text.parse().expect("valid name")
    }

    fn digest(text: &str) -> Digest {
        text.parse().expect("valid digest")
    }

    #[test]
    fn events_are_typed() {
        let oci = "application/vnd.oci.image.manifest.v1+json";
        #[rustfmt::skip]
        let cases: Vec<(String, Option<EventKind>)> = vec![
            (manifest_push(oci, Some("v1")), Some(EventKind::ManifestPushed {
                repository: name("team-a/app"), digest: digest(D1), media_type: oci.to_owned(),
                size: Some(708), tag: Some("v1".to_owned()),
            })),
            (manifest_push("application/vnd.docker.distribution.manifest.list.v2+json", None), Some(EventKind::ManifestPushed {
                repository: name("team-a/app"), digest: digest(D1),
                media_type: "application/vnd.docker.distribution.manifest.list.v2+json".to_owned(),
                size: Some(708), tag: None,
            })),
            (manifest_push(oci, Some("")), Some(EventKind::ManifestPushed {
                repository: name("team-a/app"), digest: digest(D1), media_type: oci.to_owned(),
                size: Some(708), tag: None,
            })),
            // A blob upload, and one whose media type is left out (the URL says blob).
            (event("push", &format!(r#"{{"mediaType":"application/octet-stream","digest":"{D2}","size":2803255,"length":2803255,"repository":"team-a/app","url":"http://registry:5000/v2/team-a/app/blobs/{D2}"}}"#)),
             Some(EventKind::BlobStored { repository: name("team-a/app"), digest: digest(D2), size: Some(2_803_255), mounted_from: None })),
            (event("push", &format!(r#"{{"digest":"{D2}","length":5,"repository":"team-a/app","url":"http://registry:5000/v2/team-a/app/blobs/{D2}"}}"#)),
             Some(EventKind::BlobStored { repository: name("team-a/app"), digest: digest(D2), size: Some(5), mounted_from: None })),
            (event("mount", &format!(r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{D2}","size":10,"repository":"team-b/app","fromRepository":"team-a/app"}}"#)),
             Some(EventKind::BlobStored { repository: name("team-b/app"), digest: digest(D2), size: Some(10), mounted_from: Some(name("team-a/app")) })),
            (event("delete", &format!(r#"{{"digest":"{D1}","repository":"team-a/app"}}"#)),
             Some(EventKind::DigestDeleted { repository: name("team-a/app"), digest: digest(D1) })),
            (event("delete", r#"{"repository":"team-a/app","tag":"v1"}"#),
             Some(EventKind::TagDeleted { repository: name("team-a/app"), tag: "v1".to_owned() })),
            (event("delete", r#"{"repository":"team-a/app"}"#),
             Some(EventKind::RepositoryDeleted { repository: name("team-a/app") })),
            // Pulls and actions this parser does not know are left out, not refused.
            (event("pull", &format!(r#"{{"mediaType":"{oci}","digest":"{D1}","size":708,"repository":"team-a/app","tag":"v1"}}"#)), None),
            (event("rename", r#"{"repository":"team-a/app"}"#), None),
            (r#"{"action":null}"#.to_owned(), None),
        ];
        for (text, want) in cases {
            let notification = Notification::parse(&body(std::slice::from_ref(&text)))
                .unwrap_or_else(|e| panic!("{e}\n{text}"));
            let got = notification.events.first().map(|e| e.kind.clone());
            assert_eq!(got, want, "{text}");
            assert_eq!(notification.ignored, usize::from(want.is_none()), "{text}");
        }
    }

    #[test]
    fn envelopes_hold_several_events() {
        let text = body(&[
            manifest_push("application/vnd.oci.image.index.v1+json", Some("v2")),
            event("pull", r#"{"repository":"team-a/app"}"#),
            event("delete", r#"{"repository":"team-a/app","tag":"old"}"#),
        ]);
        let notification = Notification::parse(&text).expect("parses");
        assert_eq!(notification.events.len(), 2);
        assert_eq!(notification.ignored, 1);
        assert_eq!(
            notification.events[0].id.as_deref(),
            Some("320678d8-ca14-430f-8bb6-4ca139cd83f7")
        );
        let empty = Notification::parse(br#"{"events":[]}"#).expect("parses");
        assert_eq!((empty.events.len(), empty.ignored), (0, 0));
    }

    #[test]
    fn malformed_bodies_are_refused_with_the_reason() {
        #[rustfmt::skip]
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"".to_vec(), "invalid notification body: EOF while parsing a value at line 1 column 0"),
            (b"not json".to_vec(), "invalid notification body: expected ident at line 1 column 2"),
            (b"[]".to_vec(), "invalid notification body: invalid type: sequence, expected an object with an events list at line 1 column 0"),
            (br#"{"events":[],"events":[]}"#.to_vec(), "invalid notification body: duplicate field `events` at line 1 column 21"),
            (br#"{"events":[{"action":"pull","request":{"useragent":"\uD800"}}]}"#.to_vec(),
             "invalid notification body: unexpected end of hex escape at line 1 column 59"),
            (b"{}".to_vec(), "invalid notification body: missing field `events` at line 1 column 2"),
            (br#"{"events":3}"#.to_vec(), "invalid notification body: invalid type: integer `3`, expected a list of events at line 1 column 11"),
            (br#"{"events":[{"action":"push","target":{"size":"5"}}]}"#.to_vec(),
             "invalid notification body: event 1: invalid type: string \"5\", expected i64 at line 1 column 48"),
            (body(&[manifest_push("application/json", None), r#"{"action":"push","action":"delete"}"#.to_owned()]),
             "invalid notification body: event 2: duplicate field `action` at line 1 column "),
            (body(&[event("push", r#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"team-a/app","size":1}"#)]),
             "invalid event 1 of the notification: a push event without target.digest"),
            (body(&[event("delete", &format!(r#"{{"digest":"{D1}"}}"#))]),
             "invalid event 1 of the notification: a delete event without target.repository"),
            (body(&[event("delete", &format!(r#"{{"digest":"{D1}","repository":"Team-A/app"}}"#))]),
             "invalid event 1 of the notification: invalid repository name \"Team-A/app\": unexpected 'T' at byte 0"),
            (body(&[event("delete", r#"{"digest":"sha256:abc","repository":"team-a/app"}"#)]),
             "invalid event 1 of the notification: invalid digest \"sha256:abc\""),
            (body(&[event("delete", r#"{"tag":"a/b","repository":"team-a/app"}"#)]),
             "invalid event 1 of the notification: invalid tag \"a/b\""),
            (body(&[event("push", &format!(r#"{{"digest":"{D2}","size":-1,"repository":"team-a/app"}}"#))]),
             "invalid event 1 of the notification: negative size -1"),
        ];
        for (text, message) in cases {
            let err = Notification::parse(&text).expect_err(message);
            assert!(
                err.to_string().starts_with(message),
                "{err}\nwanted {message}\n{}",
                String::from_utf8_lossy(&text)
            );
        }
    }

    #[test]
    fn content_types() {
        let cases: &[(&str, bool)] = &[
            (EVENTS_MEDIA_TYPE_V1, true),
            (EVENTS_MEDIA_TYPE_V2, true),
            (
                "application/vnd.docker.distribution.events.v1+json; charset=utf-8",
                true,
            ),
            ("application/json", true),
            ("APPLICATION/JSON", true),
            ("", false),
            ("text/json", false),
            ("application/vnd.docker.distribution.events.v3+json", false),
        ];
        for (content_type, want) in cases {
            assert_eq!(
                is_notification_content_type(content_type),
                *want,
                "{content_type}"
            );
        }
    }
}
