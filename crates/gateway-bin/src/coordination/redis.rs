//! Coordination through Redis, shared by every replica: the lease on a repository and the tags
//! reserved moments ago, kept in Redis and changed by Lua scripts.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use limits_core::RepositoryName;
use redis::aio::ConnectionManager;

use crate::metrics::Metrics;

use super::{CoordinationError, Coordinator, RepositoryLease};

/// Redis: `SET lease token NX PX ttl`, renewed while held, released by compare-and-delete;
/// reserved tags in a sorted set scored by expiry (Redis server time).
#[derive(Debug, Clone)]
pub struct RedisCoordination {
    inner: Arc<RedisShared>,
}

#[derive(Debug)]
pub(super) struct RedisShared {
    pub(super) manager: ConnectionManager,
    pub(super) prefix: String,
    pub(super) ttl: Duration,
    wait: Duration,
    timeout: Duration,
    pub(super) metrics: Arc<Metrics>,
    pub(super) renew: redis::Script,
    acquire: redis::Script,
    reserve: redis::Script,
    forget_and_release: redis::Script,
}

/// Extends the lease when it is still ours.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0";

/// Takes the lease (`KEYS[1]`) for token `ARGV[1]` and `ARGV[2]` ms, and returns the
/// repository's change counter (`KEYS[3]`, started at the server time in microseconds when
/// absent, so that a counter lost with Redis's data never comes back at a value seen before)
/// followed by the reserved tags (`KEYS[2]`) that have not expired (server time); nil when
/// another holder has it. One round trip.
const ACQUIRE: &str = r"
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return false
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local changes = redis.call('GET', KEYS[3])
if not changes then
  changes = t[1] .. string.format('%06d', tonumber(t[2]))
  redis.call('SET', KEYS[3], changes)
end
local reserved = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now, '+inf')
table.insert(reserved, 1, changes)
return reserved";

/// Reserves the tags `ARGV[3..]` in `KEYS[2]`, expiring `ARGV[2]` ms from now (server time),
/// and drops expired ones, if token `ARGV[1]` still holds the lease `KEYS[1]`: atomically, so
/// either the tags are reserved while the lease is held (and every later holder sees them) or
/// nothing is, and the push is not forwarded. Each reservation moves the repository's change
/// counter (`KEYS[3]`), so a replica whose tag set was exact at the counter it last saw knows
/// whether anyone else reserved tags since. Returns the counter when reserved, 0 when the lease
/// was lost.
const RESERVE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expires = now + tonumber(ARGV[2])
for i = 3, #ARGV do
  redis.call('ZADD', KEYS[2], expires, ARGV[i])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return redis.call('INCR', KEYS[3])";

/// Drops the reservations of the tags `ARGV[2..]` from `KEYS[2]` (their push was refused by
/// the registry, or never reached it), then deletes the lease `KEYS[1]` if token `ARGV[1]`
/// still holds it: atomically, so the next holder never sees the lease free with a stale
/// reservation, nor a reservation dropped before the lease is.
const FORGET_AND_RELEASE: &str = r"
for i = 2, #ARGV do
  redis.call('ZREM', KEYS[2], ARGV[i])
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

/// Settings of the Redis coordination.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `redis://` or `rediss://` URL, password included.
    pub url: String,
    /// Prefix of every key.
    pub prefix: String,
    /// Lease time to live; renewed every third of it while held.
    pub ttl: Duration,
    /// Longest wait for a lease held by another push.
    pub wait: Duration,
    /// Longest wait for one Redis answer.
    pub timeout: Duration,
}

impl RedisCoordination {
    /// Connects lazily (a Redis that is down at start-up is retried in the background).
    pub fn new(settings: RedisSettings, metrics: Arc<Metrics>) -> Result<Self, String> {
        let client = redis::Client::open(settings.url.as_str())
            .map_err(|e| format!("invalid --coordination URL: {e}"))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout))
            .set_response_timeout(Some(settings.timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("cannot set up the Redis connection: {e}"))?;
        Ok(Self {
            inner: Arc::new(RedisShared {
                manager,
                prefix: settings.prefix,
                ttl: settings.ttl,
                wait: settings.wait,
                timeout: settings.timeout,
                metrics,
                renew: redis::Script::new(RENEW),
                acquire: redis::Script::new(ACQUIRE),
                reserve: redis::Script::new(RESERVE),
                forget_and_release: redis::Script::new(FORGET_AND_RELEASE),
            }),
        })
    }

    /// What every lease and script of this store shares.
    pub(super) fn shared(&self) -> &Arc<RedisShared> {
        &self.inner
    }

    /// `PING`, for `/readyz/coordination` and [`RedisCoordination::watch`].
    pub async fn ping(&self) -> Result<(), CoordinationError> {
        let mut connection = self.inner.manager.clone();
        let pong: Result<String, _> = self
            .inner
            .call(redis::cmd("PING").query_async(&mut connection))
            .await;
        pong.map(|_| ())
    }

    /// Pings the store every `every`, until dropped: keeps `registry_gateway_coordination_up`
    /// current between pushes (readiness no longer asks the store), and logs when the store
    /// stops or starts answering.
    pub async fn watch(self, every: Duration) {
        let mut answering = None;
        loop {
            let result = self.ping().await;
            match (&result, answering) {
                (Err(err), None | Some(true)) => tracing::error!(
                    error = %err,
                    "coordination store unreachable: pushes that create tags cannot be coordinated until it answers; pulls, uploads and re-pushes are unaffected"
                ),
                (Ok(()), Some(false)) => tracing::info!("coordination store answers again"),
                _ => {}
            }
            answering = Some(result.is_ok());
            tokio::time::sleep(every).await;
        }
    }
}

/// How often [`RedisCoordination::watch`] pings the store.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(2);

impl Coordinator for RedisCoordination {
    type Lease = RedisLease;

    fn is_shared(&self) -> bool {
        true
    }

    async fn lease(
        &self,
        repository: &RepositoryName,
        _window: Duration,
    ) -> Result<RedisLease, CoordinationError> {
        let shared = &self.inner;
        let key = format!("{}:lease:{repository}", shared.prefix);
        let tags_key = format!("{}:tags:{repository}", shared.prefix);
        let changes_key = changes_key(&shared.prefix, repository);
        let token = token();
        let mut reserved = shared
            .acquire(
                shared
                    .acquire
                    .key(&key)
                    .key(&tags_key)
                    .key(&changes_key)
                    .arg(&token)
                    .arg(millis(shared.ttl)),
            )
            .await?;
        let changes = if reserved.is_empty() {
            None
        } else {
            reserved.remove(0).parse().ok()
        };
        let mut lease = RedisLease::start(
            Arc::clone(shared),
            repository,
            key,
            tags_key,
            token,
            reserved,
        );
        lease.changes_key = changes_key;
        lease.changes = changes;
        Ok(lease)
    }
}

impl RedisShared {
    /// Runs the lease script `invocation` (nil while another holder has the lease) until it
    /// takes the lease, backing off from 2 to 25 ms, for at most `--lease-wait`; its answer.
    pub(super) async fn acquire(
        &self,
        invocation: &mut redis::ScriptInvocation<'_>,
    ) -> Result<Vec<String>, CoordinationError> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            let mut connection = self.manager.clone();
            let acquired: Option<Vec<String>> =
                self.call(invocation.invoke_async(&mut connection)).await?;
            if let Some(answer) = acquired {
                self.metrics.lease_acquired(started.elapsed());
                return Ok(answer);
            }
            if started.elapsed() >= self.wait {
                self.metrics.lease_timed_out();
                return Err(CoordinationError::LeaseTimeout {
                    waited: humantime::format_duration(self.wait).to_string(),
                });
            }
            tokio::time::sleep(pause.min(self.wait.saturating_sub(started.elapsed()))).await;
            pause = (pause * 2).min(Duration::from_millis(25));
        }
    }

    /// One Redis call, bounded by the timeout, errors counted.
    pub(super) async fn call<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, CoordinationError> {
        let result = match tokio::time::timeout(self.timeout * 2, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(CoordinationError::Unreachable(err.to_string())),
            Err(_) => Err(CoordinationError::Unreachable(format!(
                "no answer within {}",
                humantime::format_duration(self.timeout * 2)
            ))),
        };
        self.metrics.coordination_call(result.is_ok());
        result
    }
}

/// A held Redis lease; renewed by a task of its own until dropped, then released together
/// with dropping the reservations of tags that were not created (one round trip, off the
/// client's path).
#[derive(Debug)]
pub struct RedisLease {
    shared: Arc<RedisShared>,
    tags_key: String,
    key: String,
    token: String,
    reserved: Vec<String>,
    forgotten: Vec<String>,
    /// The repository's change counter (`{prefix}:changes:<repository>`) and its value: as
    /// acquired, then as this lease's own reservation left it.
    changes_key: String,
    changes: Option<u64>,
    acquired: Instant,
    renewal: tokio::task::JoinHandle<()>,
}

impl RedisLease {
    fn start(
        shared: Arc<RedisShared>,
        repository: &RepositoryName,
        key: String,
        tags_key: String,
        token: String,
        reserved: Vec<String>,
    ) -> Self {
        let renewal = renew_while_held(
            Arc::clone(&shared),
            key.clone(),
            token.clone(),
            format!("repository {repository}"),
        );
        Self {
            shared,
            tags_key,
            key,
            token,
            reserved,
            forgotten: Vec::new(),
            changes_key: String::new(),
            changes: None,
            acquired: Instant::now(),
            renewal,
        }
    }
}

impl RepositoryLease for RedisLease {
    async fn reserved(&mut self, _window: Duration) -> Result<Vec<String>, CoordinationError> {
        // Read with the lease, in the same round trip, with the window they were reserved for.
        Ok(self.reserved.clone())
    }

    async fn reserve(
        &mut self,
        tags: &[String],
        window: Duration,
    ) -> Result<(), CoordinationError> {
        if tags.is_empty() {
            return Ok(());
        }
        let shared = &self.shared;
        let mut connection = shared.manager.clone();
        let mut invocation = shared.reserve.key(&self.key);
        invocation
            .key(&self.tags_key)
            .key(&self.changes_key)
            .arg(&self.token)
            .arg(millis(window));
        for tag in tags {
            invocation.arg(tag);
        }
        let reserved: i64 = shared
            .call(invocation.invoke_async(&mut connection))
            .await?;
        if reserved >= 1 {
            self.changes = u64::try_from(reserved).ok();
            Ok(())
        } else {
            shared.metrics.lease_lost();
            Err(CoordinationError::LeaseLost)
        }
    }

    fn forget(&mut self, tags: Vec<String>) {
        self.forgotten.extend(tags);
    }

    fn changes(&self) -> Option<u64> {
        self.changes
    }
}

/// The key of a repository's change counter.
fn changes_key(prefix: &str, repository: &RepositoryName) -> String {
    format!("{prefix}:changes:{repository}")
}

impl Drop for RedisLease {
    fn drop(&mut self) {
        self.renewal.abort();
        self.shared.metrics.lease_held(self.acquired.elapsed());
        let shared = Arc::clone(&self.shared);
        let key = std::mem::take(&mut self.key);
        let tags_key = std::mem::take(&mut self.tags_key);
        let token = std::mem::take(&mut self.token);
        let forgotten = std::mem::take(&mut self.forgotten);
        // Reservations of tags that were not created are dropped and the lease released
        // atomically, after the client has its answer. If this fails, the lease expires after
        // its ttl and the reservations after the window: tags are over-counted for a while,
        // never under-counted.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let mut connection = shared.manager.clone();
            let mut invocation = shared.forget_and_release.key(&key);
            invocation.key(&tags_key).arg(&token);
            for tag in &forgotten {
                invocation.arg(tag);
            }
            let released: Result<i64, _> =
                shared.call(invocation.invoke_async(&mut connection)).await;
            if let Err(err) = released {
                tracing::warn!(error = %err, unused = ?forgotten, "lease not released in Redis; it expires after its ttl, and unused reservations after the window");
            }
        });
    }
}

/// Renews the lease `key` held with `token` every third of its time to live, until aborted or
/// the lease is lost (expired, or the store unreachable), which is counted and logged naming
/// `holder`.
pub(super) fn renew_while_held(
    shared: Arc<RedisShared>,
    key: String,
    token: String,
    holder: String,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = shared.ttl / 3;
        loop {
            tokio::time::sleep(every).await;
            let mut connection = shared.manager.clone();
            let renewed: Result<i64, _> = shared
                .call(
                    shared
                        .renew
                        .key(&key)
                        .arg(&token)
                        .arg(millis(shared.ttl))
                        .invoke_async(&mut connection),
                )
                .await;
            if !matches!(renewed, Ok(1)) {
                // Expired or unreachable: another push may hold the lease now.
                shared.metrics.lease_lost();
                tracing::error!(lease = %holder, result = ?renewed, "lease lost while held; what it already reserved or recorded still counts, and a push not yet reserved or recorded is refused or recorded late");
                return;
            }
        }
    })
}

/// A token no other holder has: process id, time and a counter.
pub(super) fn token() -> String {
    use std::sync::atomic::AtomicU64;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{nanos:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub(super) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// The URL with its password, if any, replaced by `***`, for logs.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "(invalid URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        let cases = [
            ("redis://:secret@r:6379/0", "redis://:***@r:6379/0"),
            ("rediss://user:pw@r:6380/1", "rediss://user:***@r:6380/1"),
            ("redis://r:6379/0", "redis://r:6379/0"),
            ("not a url", "(invalid URL)"),
        ];
        for (url, want) in cases {
            assert_eq!(redacted(url), want, "{url}");
        }
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(token(), token());
    }
}
