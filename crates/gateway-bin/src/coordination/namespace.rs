//! A namespace's lease and its log of admitted pushes, in Redis: how replicas share the
//! inventory that image counts and namespace quotas are decided on.
//!
//! Per namespace, three keys besides the lease: a sequence number (`…:nsseq:<ns>`), the log of
//! the last [`LOG_KEEP`] pushes admitted by any replica (`…:nslog:<ns>`, a sorted set scored by
//! sequence number), and the manifests pushed by digest without a tag (`…:nsuntagged:<ns>`, a
//! hash), which the registry cannot list and which a replica that starts, or has fallen behind
//! the log, must still count. The entries are opaque text to this module; the quota step
//! writes and reads them (`quota::shared`).
//!
//! A replica takes the lease and, in the same round trip, reads the entries after the last one
//! it applied; an entry is appended (under the lease) once the registry answered the push, and
//! only then is the lease released. So whoever holds the lease next has every admitted push,
//! or learns that it missed some ([`Since::Behind`]) and reads the namespace from the registry.

use std::sync::Arc;
use std::time::Instant;

use super::CoordinationError;
use super::redis::{RedisCoordination, RedisShared, millis, renew_while_held, token};

/// How many entries each namespace's log keeps: a replica further behind reads the namespace
/// from the registry instead.
pub const LOG_KEEP: u64 = 1000;

/// Takes the lease `KEYS[1]` for token `ARGV[1]` and `ARGV[2]` ms; nil when another holder has
/// it. Then, with the sequence number `KEYS[2]` (started at the server time in microseconds
/// when absent, so that a sequence lost with Redis's data never comes back through numbers a
/// replica has applied: that replica is then behind, never wrongly up to date; numbers stay
/// text or exact integers, below 2^53, in Lua) and the log `KEYS[3]`: `{seq}` when the caller
/// has applied everything (`ARGV[3]` = seq), `{seq, 'behind'}` when it cannot catch up from the
/// log (it applied nothing yet: `ARGV[3]` = -1; the store was emptied; entries trimmed), else
/// `{seq, 'entries', e1, e2, ...}` with the entries after `ARGV[3]`, in order.
const ACQUIRE: &str = r"
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return false
end
local text = redis.call('GET', KEYS[2])
if not text then
  local t = redis.call('TIME')
  text = t[1] .. string.format('%06d', tonumber(t[2]))
  redis.call('SET', KEYS[2], text)
end
local seq = tonumber(text)
local from = tonumber(ARGV[3])
if from == seq then
  return {text}
end
if from < 0 or from > seq then
  return {text, 'behind'}
end
local entries = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. ARGV[3], text)
if #entries ~= seq - from then
  return {text, 'behind'}
end
local out = {text, 'entries'}
for i = 1, #entries do
  out[#out + 1] = entries[i]
end
return out";

/// Appends entry `ARGV[2]` to the log `KEYS[3]` under the next sequence number (`KEYS[2]`,
/// started as in [`ACQUIRE`] when absent),
/// keeps the last `ARGV[3]` entries, and, when `ARGV[4]` is not empty, keeps the entry in the
/// hash of untagged manifests `KEYS[4]` under that field. Appended whether or not token
/// `ARGV[1]` still holds the lease `KEYS[1]` (the registry has the push either way). Returns
/// `{seq, held}`.
const APPEND: &str = r"
local held = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then
  held = 1
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  local t = redis.call('TIME')
  redis.call('SET', KEYS[2], t[1] .. string.format('%06d', tonumber(t[2])))
end
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[3], seq, string.format('%d', seq) .. ' ' .. ARGV[2])
local keep = tonumber(ARGV[3])
local n = redis.call('ZCARD', KEYS[3])
if n > keep then
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, n - keep - 1)
end
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[4], ARGV[4], ARGV[2])
end
return {seq, held}";

/// Deletes the lease `KEYS[1]` if token `ARGV[1]` still holds it.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// The namespaces' leases and logs in Redis.
#[derive(Debug, Clone)]
pub struct RedisNamespaces {
    shared: Arc<RedisShared>,
    scripts: Arc<Scripts>,
}

#[derive(Debug)]
struct Scripts {
    acquire: redis::Script,
    append: redis::Script,
    release: redis::Script,
}

/// What the log holds after what a replica applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Since {
    /// The entries after the last one applied, in order (none: up to date).
    Entries(Vec<String>),
    /// The replica cannot catch up from the log: it must read the namespace from the registry
    /// and the untagged manifests from [`RedisNamespaceLease::untagged`].
    Behind,
}

/// A namespace's lease in Redis, renewed until dropped, then released.
#[derive(Debug)]
pub struct RedisNamespaceLease {
    namespaces: RedisNamespaces,
    keys: Keys,
    token: String,
    /// The sequence number of the last entry in the log when the lease was taken.
    seq: u64,
    since: Option<Since>,
    acquired: Instant,
    renewal: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Clone)]
struct Keys {
    lease: String,
    seq: String,
    log: String,
    untagged: String,
}

impl RedisNamespaces {
    /// The namespaces of the store `coordination` uses.
    pub fn new(coordination: &RedisCoordination) -> Self {
        RedisNamespaces {
            shared: Arc::clone(coordination.shared()),
            scripts: Arc::new(Scripts {
                acquire: redis::Script::new(ACQUIRE),
                append: redis::Script::new(APPEND),
                release: redis::Script::new(RELEASE),
            }),
        }
    }

    /// Waits for `namespace`'s lease, and reads the log after entry `applied` (`None`: the
    /// replica applied nothing of it yet).
    pub async fn lease(
        &self,
        namespace: &str,
        applied: Option<u64>,
    ) -> Result<RedisNamespaceLease, CoordinationError> {
        let shared = &self.shared;
        let prefix = &shared.prefix;
        let keys = Keys {
            lease: format!("{prefix}:nslease:{namespace}"),
            seq: format!("{prefix}:nsseq:{namespace}"),
            log: format!("{prefix}:nslog:{namespace}"),
            untagged: format!("{prefix}:nsuntagged:{namespace}"),
        };
        let token = token();
        let from = applied.map_or(-1, |seq| i64::try_from(seq).unwrap_or(i64::MAX));
        let answer = shared
            .acquire(
                self.scripts
                    .acquire
                    .key(&keys.lease)
                    .key(&keys.seq)
                    .key(&keys.log)
                    .arg(&token)
                    .arg(millis(shared.ttl))
                    .arg(from),
            )
            .await?;
        let renewal = renew_while_held(
            Arc::clone(shared),
            keys.lease.clone(),
            token.clone(),
            format!("namespace {namespace}"),
        );
        let mut lease = RedisNamespaceLease {
            namespaces: self.clone(),
            keys,
            token,
            seq: 0,
            since: None,
            acquired: Instant::now(),
            renewal,
        };
        let (seq, since) = read_acquired(answer)?;
        lease.seq = seq;
        lease.since = Some(since);
        Ok(lease)
    }
}

/// The answer of [`ACQUIRE`]: the sequence number and what the caller must apply.
fn read_acquired(answer: Vec<String>) -> Result<(u64, Since), CoordinationError> {
    let malformed =
        || CoordinationError::Unreachable("malformed answer to the namespace lease".into());
    let mut items = answer.into_iter();
    let seq: u64 = items
        .next()
        .and_then(|seq| seq.parse().ok())
        .ok_or_else(malformed)?;
    let since = match items.next().as_deref() {
        None => Since::Entries(Vec::new()),
        Some("behind") => Since::Behind,
        Some("entries") => Since::Entries(
            items
                .map(|entry| match entry.split_once(' ') {
                    Some((_, text)) => Ok(text.to_owned()),
                    None => Err(malformed()),
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(_) => return Err(malformed()),
    };
    Ok((seq, since))
}

impl RedisNamespaceLease {
    /// The sequence number of the last entry the log held when the lease was taken: the
    /// replica has applied up to it once it applied [`RedisNamespaceLease::take_since`].
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// What to apply before deciding (once; afterwards, no entries).
    pub fn take_since(&mut self) -> Since {
        self.since
            .take()
            .unwrap_or_else(|| Since::Entries(Vec::new()))
    }

    /// The entries of the manifests pushed by digest without a tag, by field.
    pub async fn untagged(&self) -> Result<Vec<(String, String)>, CoordinationError> {
        let shared = &self.namespaces.shared;
        let mut connection = shared.manager.clone();
        shared
            .call(
                redis::cmd("HGETALL")
                    .arg(&self.keys.untagged)
                    .query_async(&mut connection),
            )
            .await
    }

    /// Forgets the untagged manifests under `fields` (the registry no longer has them).
    pub async fn forget_untagged(&self, fields: &[String]) -> Result<(), CoordinationError> {
        if fields.is_empty() {
            return Ok(());
        }
        let shared = &self.namespaces.shared;
        let mut connection = shared.manager.clone();
        let _: i64 = shared
            .call(
                redis::cmd("HDEL")
                    .arg(&self.keys.untagged)
                    .arg(fields)
                    .query_async(&mut connection),
            )
            .await?;
        Ok(())
    }

    /// Appends `entry` to the log (and, with `untagged`, to the untagged manifests under that
    /// field); its sequence number, and whether the lease was still held.
    pub async fn append(
        &self,
        entry: &str,
        untagged: Option<&str>,
    ) -> Result<(u64, bool), CoordinationError> {
        let shared = &self.namespaces.shared;
        let mut connection = shared.manager.clone();
        let (seq, held): (u64, i64) = shared
            .call(
                self.namespaces
                    .scripts
                    .append
                    .key(&self.keys.lease)
                    .key(&self.keys.seq)
                    .key(&self.keys.log)
                    .key(&self.keys.untagged)
                    .arg(&self.token)
                    .arg(entry)
                    .arg(LOG_KEEP)
                    .arg(untagged.unwrap_or(""))
                    .invoke_async(&mut connection),
            )
            .await?;
        Ok((seq, held == 1))
    }
}

impl Drop for RedisNamespaceLease {
    fn drop(&mut self) {
        self.renewal.abort();
        let shared = Arc::clone(&self.namespaces.shared);
        shared.metrics.lease_held(self.acquired.elapsed());
        let scripts = Arc::clone(&self.namespaces.scripts);
        let key = std::mem::take(&mut self.keys.lease);
        let token = std::mem::take(&mut self.token);
        // If this fails, the lease expires after its ttl.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let mut connection = shared.manager.clone();
            let released: Result<i64, _> = shared
                .call(
                    scripts
                        .release
                        .key(&key)
                        .arg(&token)
                        .invoke_async(&mut connection),
                )
                .await;
            if let Err(err) = released {
                tracing::warn!(error = %err, "namespace lease not released in Redis; it expires after its ttl");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn acquire_answers_are_read() {
        assert_eq!(
            read_acquired(strings(&["7"])).expect("read"),
            (7, Since::Entries(Vec::new()))
        );
        assert_eq!(
            read_acquired(strings(&["7", "behind"])).expect("read"),
            (7, Since::Behind)
        );
        assert_eq!(
            read_acquired(strings(&["7", "entries", "6 {\"a\":1}", "7 b c"])).expect("read"),
            (7, Since::Entries(strings(&["{\"a\":1}", "b c"])))
        );
        for bad in [
            &[][..],
            &["x"],
            &["7", "what"],
            &["7", "entries", "nospace"],
        ] {
            assert!(read_acquired(strings(bad)).is_err(), "{bad:?}");
        }
    }
}
