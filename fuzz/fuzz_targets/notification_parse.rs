//! Feeds arbitrary bytes to `registry_api::Notification::parse`, as the admin listener reads
//! the bodies the registry posts to `/v1/registry-notifications`.
//!
//! Asserts, beyond "no panic": a body that parses is a JSON object whose `events` list has
//! exactly as many entries as the events read plus those ignored; and the events read, written
//! back as the registry would write them, read back as the same events with none ignored (the
//! parser keeps every fact it returns, and reads nothing from fields it does not return).

#![no_main]

use libfuzzer_sys::fuzz_target;
use registry_api::{EventKind, Notification};
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let Ok(notification) = Notification::parse(data) else {
        return;
    };
    let value: Value = serde_json::from_slice(data).expect("a parsed body is JSON");
    let listed = value
        .get("events")
        .and_then(Value::as_array)
        .expect("a parsed body has an events list")
        .len();
    assert_eq!(notification.events.len() + notification.ignored, listed);
    let events: Vec<Value> = notification
        .events
        .iter()
        .map(|event| {
            let mut written = write(&event.kind);
            if let Some(id) = &event.id {
                written["id"] = json!(id);
            }
            written
        })
        .collect();
    let again = serde_json::to_vec(&json!({ "events": events })).expect("serialisable");
    let reread = Notification::parse(&again).expect("written events read back");
    assert_eq!(reread.events, notification.events);
    assert_eq!(reread.ignored, 0);
});

/// An event as distribution writes it.
fn write(kind: &EventKind) -> Value {
    match kind {
        EventKind::ManifestPushed {
            repository,
            digest,
            media_type,
            size,
            tag,
        } => {
            let mut target = json!({
                "mediaType": media_type,
                "digest": digest.as_str(),
                "repository": repository.as_str(),
                "url": format!("http://registry:5000/v2/{repository}/manifests/{}", digest.as_str()),
            });
            if let Some(size) = size {
                target["size"] = json!(size);
            }
            if let Some(tag) = tag {
                target["tag"] = json!(tag);
            }
            json!({ "action": "push", "target": target })
        }
        EventKind::BlobStored {
            repository,
            digest,
            size,
            mounted_from,
        } => {
            let mut target = json!({
                "mediaType": "application/octet-stream",
                "digest": digest.as_str(),
                "repository": repository.as_str(),
            });
            if let Some(size) = size {
                target["length"] = json!(size);
            }
            let action = match mounted_from {
                Some(from) => {
                    target["fromRepository"] = json!(from.as_str());
                    "mount"
                }
                None => "push",
            };
            json!({ "action": action, "target": target })
        }
        EventKind::DigestDeleted { repository, digest } => json!({
            "action": "delete",
            "target": { "digest": digest.as_str(), "repository": repository.as_str() },
        }),
        EventKind::TagDeleted { repository, tag } => json!({
            "action": "delete",
            "target": { "tag": tag, "repository": repository.as_str() },
        }),
        EventKind::RepositoryDeleted { repository } => json!({
            "action": "delete",
            "target": { "repository": repository.as_str() },
        }),
        _ => panic!("an event kind this target does not write: {kind:?}"),
    }
}
