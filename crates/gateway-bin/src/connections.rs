//! The connections of one listener: which are open, which carry a request, and shedding idle
//! ones when the listener is full.
//!
//! A listener serves at most `max` connections. A connection that sends nothing still holds
//! one of them, so a few thousand silent sockets would make every honest client wait in the
//! kernel's accept queue. The listener therefore accepts a new connection first, then makes
//! room for it: when it is full, the connection that has been idle longest (no request in
//! flight: it has not sent a complete head yet, or it waits between requests) is **shed**,
//! closed at once. A connection with a request in flight is never shed; when every
//! connection has one, the new connection waits until one ends or turns idle, and further
//! ones wait in the kernel's queue as before.
//!
//! With a per-source cap, a source (an IP address) at its cap sheds its own longest-idle
//! connection for a new one, and a new connection of a source whose connections are all busy
//! is refused (closed). Behind a load balancer every client shares the balancer's address, so
//! the cap is off by default.
//!
//! Whether a request is in flight is told by the connection itself: the read relay while it
//! relays a request, the hyper service wrapper ([`crate::tracked`]) from the request's head
//! until its response body is finished or dropped. Starting a request and shedding are one
//! atomic step on the same counter, so a request never starts on a connection being shed.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::metrics::Metrics;

/// The value of [`Connection::busy`] once a connection is shed.
const SHED: usize = usize::MAX;

/// How many connections one listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Most connections open at once.
    pub max: usize,
    /// Most connections open at once from one IP address; 0 for no cap.
    pub per_source: usize,
}

/// Why a connection was shed, as the metric's `reason` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShedReason {
    /// The listener was full.
    Capacity,
    /// The connection's source was at its cap.
    PerSource,
}

impl ShedReason {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            ShedReason::Capacity => "capacity",
            ShedReason::PerSource => "per_source",
        }
    }
}

/// The open connections of one listener.
#[derive(Debug)]
pub struct Connections {
    listener: &'static str,
    caps: Caps,
    table: Mutex<Table>,
    /// Notified when a connection closes or a request ends: room may have been made.
    changed: Arc<Notify>,
    /// Times are kept as milliseconds since this instant.
    epoch: Instant,
    metrics: Arc<Metrics>,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    open: HashMap<u64, Arc<Connection>>,
    per_source: HashMap<IpAddr, usize>,
}

/// One open connection, as the table and the connection's own task see it.
#[derive(Debug)]
pub struct Connection {
    id: u64,
    remote: SocketAddr,
    /// Requests in flight, or [`SHED`].
    busy: AtomicUsize,
    /// When the connection last turned idle (opened, or its last request ended), in
    /// milliseconds since the table's epoch.
    idle_since: AtomicU64,
    /// Woken once when the connection is shed.
    shed: Notify,
    changed: Arc<Notify>,
    epoch: Instant,
}

/// What an admission came to.
enum Admission {
    Admitted(Slot),
    /// Every connection has a request in flight: wait.
    Full,
    /// The source is at its cap and none of its connections is idle.
    Refused,
}

impl Connections {
    /// The table of the listener called `listener` (a metric label: `proxy`, `admin`).
    pub fn new(listener: &'static str, caps: Caps, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            listener,
            caps: Caps {
                max: caps.max.max(1),
                per_source: caps.per_source,
            },
            table: Mutex::new(Table::default()),
            changed: Arc::new(Notify::new()),
            epoch: Instant::now(),
            metrics,
        })
    }

    /// Makes room for a connection from `remote`, shedding idle connections as needed, and
    /// waits while every connection has a request in flight. `None`: refused, the source is
    /// at its cap with every connection busy.
    pub async fn admit(self: &Arc<Self>, remote: SocketAddr) -> Option<Slot> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match self.try_admit(remote) {
                Admission::Admitted(slot) => return Some(slot),
                Admission::Refused => {
                    self.metrics.connection_refused(self.listener, "per_source");
                    tracing::debug!(listener = self.listener, %remote, "connection refused: its source has every connection it may open busy");
                    return None;
                }
                Admission::Full => changed.await,
            }
        }
    }

    /// Resolves once every connection has closed.
    pub async fn closed(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.lock().open.is_empty() {
                return;
            }
            changed.await;
        }
    }

    /// Connections open now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().open.len()
    }

    fn try_admit(self: &Arc<Self>, remote: SocketAddr) -> Admission {
        let source = remote.ip();
        let mut table = self.lock();
        if self.caps.per_source > 0
            && table.per_source.get(&source).copied().unwrap_or(0) >= self.caps.per_source
            && !self.shed_one(&mut table, Some(source), ShedReason::PerSource)
        {
            return Admission::Refused;
        }
        if table.open.len() >= self.caps.max
            && !self.shed_one(&mut table, None, ShedReason::Capacity)
        {
            return Admission::Full;
        }
        let id = table.next_id;
        table.next_id += 1;
        let connection = Arc::new(Connection {
            id,
            remote,
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(self.now()),
            shed: Notify::new(),
            changed: Arc::clone(&self.changed),
            epoch: self.epoch,
        });
        table.open.insert(id, Arc::clone(&connection));
        *table.per_source.entry(source).or_insert(0) += 1;
        Admission::Admitted(Slot {
            connections: Arc::clone(self),
            connection,
        })
    }

    /// Sheds the connection idle longest (of `source` only, when given); false when every
    /// such connection has a request in flight.
    fn shed_one(&self, table: &mut Table, source: Option<IpAddr>, reason: ShedReason) -> bool {
        loop {
            let oldest = table
                .open
                .values()
                .filter(|c| source.is_none_or(|s| c.remote.ip() == s))
                .filter(|c| c.busy.load(Ordering::Acquire) == 0)
                .min_by_key(|c| c.idle_since.load(Ordering::Relaxed))
                .map(Arc::clone);
            let Some(victim) = oldest else {
                return false;
            };
            // A request may have started since the scan: then look again.
            if victim
                .busy
                .compare_exchange(0, SHED, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            remove(table, &victim);
            victim.shed.notify_one();
            let idle = self
                .now()
                .saturating_sub(victim.idle_since.load(Ordering::Relaxed));
            tracing::debug!(
                listener = self.listener,
                remote = %victim.remote,
                idle_ms = idle,
                reason = reason.label(),
                "idle connection shed to make room"
            );
            self.metrics.connection_shed(self.listener, reason.label());
            return true;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

fn remove(table: &mut Table, connection: &Connection) {
    if table.open.remove(&connection.id).is_none() {
        return;
    }
    let source = connection.remote.ip();
    if let Some(count) = table.per_source.get_mut(&source) {
        *count -= 1;
        if *count == 0 {
            table.per_source.remove(&source);
        }
    }
}

impl Connection {
    /// Marks a request in flight until the guard is dropped; `None` when the connection was
    /// shed (it is closing, and must not start anything).
    pub fn begin(self: &Arc<Self>) -> Option<Busy> {
        self.busy
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n != SHED).then(|| n + 1)
            })
            .ok()?;
        Some(Busy(Arc::clone(self)))
    }

    /// Resolves once the connection has been shed.
    pub async fn shed(&self) {
        self.shed.notified().await;
    }
}

/// A request in flight on a connection.
#[derive(Debug)]
pub struct Busy(Arc<Connection>);

impl Drop for Busy {
    fn drop(&mut self) {
        let connection = &self.0;
        let now = u64::try_from(connection.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        connection.idle_since.store(now, Ordering::Relaxed);
        if connection.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
            connection.changed.notify_waiters();
        }
    }
}

/// A connection's place in the table, given back when dropped.
#[derive(Debug)]
pub struct Slot {
    connections: Arc<Connections>,
    connection: Arc<Connection>,
}

impl Slot {
    /// The connection, for its task and its service.
    pub fn connection(&self) -> &Arc<Connection> {
        &self.connection
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        remove(&mut self.connections.lock(), &self.connection);
        self.connections.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn table(max: usize, per_source: usize) -> Arc<Connections> {
        Connections::new("test", Caps { max, per_source }, Arc::new(Metrics::new()))
    }

    fn addr(host: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, host], port))
    }

    async fn admit(connections: &Arc<Connections>, remote: SocketAddr) -> Option<Slot> {
        tokio::time::timeout(Duration::from_millis(100), connections.admit(remote))
            .await
            .ok()
            .flatten()
    }

    #[tokio::test(start_paused = true)]
    async fn the_longest_idle_connection_is_shed_first() {
        let connections = table(3, 0);
        let a = admit(&connections, addr(1, 1)).await.expect("a");
        tokio::time::advance(Duration::from_millis(10)).await;
        let b = admit(&connections, addr(1, 2)).await.expect("b");
        tokio::time::advance(Duration::from_millis(10)).await;
        let c = admit(&connections, addr(1, 3)).await.expect("c");
        tokio::time::advance(Duration::from_millis(10)).await;
        // `a` carries a request and finishes it later than `b` opened: `b` is idle longest.
        let request = a.connection().begin().expect("a is open");
        tokio::time::advance(Duration::from_millis(10)).await;
        drop(request);
        let d = admit(&connections, addr(1, 4)).await.expect("d");
        assert!(b.connection().busy.load(Ordering::Relaxed) == SHED);
        assert!(
            b.connection().begin().is_none(),
            "a shed connection starts nothing"
        );
        let e = admit(&connections, addr(1, 5)).await.expect("e");
        assert_eq!(c.connection().busy.load(Ordering::Relaxed), SHED);
        assert_eq!(connections.len(), 3);
        drop((a, b, c, d, e));
        assert_eq!(connections.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn busy_connections_are_never_shed_and_a_newcomer_waits_for_one() {
        let connections = table(2, 0);
        let a = admit(&connections, addr(1, 1)).await.expect("a");
        let b = admit(&connections, addr(1, 2)).await.expect("b");
        let busy_a = a.connection().begin().expect("a");
        let busy_b = b.connection().begin().expect("b");
        assert!(
            admit(&connections, addr(1, 3)).await.is_none(),
            "full of busy connections"
        );
        let waiting = tokio::spawn({
            let connections = Arc::clone(&connections);
            async move { connections.admit(addr(1, 3)).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiting.is_finished());
        // The request on `b` ends: `b` turns idle and is shed for the newcomer.
        drop(busy_b);
        let c = waiting.await.expect("task").expect("admitted");
        assert_eq!(b.connection().busy.load(Ordering::Relaxed), SHED);
        assert_eq!(a.connection().busy.load(Ordering::Relaxed), 1);
        drop((busy_a, a, b, c));
    }

    #[tokio::test(start_paused = true)]
    async fn a_source_at_its_cap_sheds_its_own_idle_connections_or_is_refused() {
        let connections = table(10, 2);
        let other = admit(&connections, addr(2, 1)).await.expect("other source");
        tokio::time::advance(Duration::from_millis(10)).await;
        let a1 = admit(&connections, addr(1, 1)).await.expect("a1");
        tokio::time::advance(Duration::from_millis(10)).await;
        let a2 = admit(&connections, addr(1, 2)).await.expect("a2");
        // The other source's connection is idle longest, but only `a1` may make room.
        let a3 = admit(&connections, addr(1, 3)).await.expect("a3");
        assert_eq!(a1.connection().busy.load(Ordering::Relaxed), SHED);
        assert_eq!(other.connection().busy.load(Ordering::Relaxed), 0);
        let _busy2 = a2.connection().begin().expect("a2");
        let _busy3 = a3.connection().begin().expect("a3");
        assert!(
            tokio::time::timeout(Duration::from_millis(100), connections.admit(addr(1, 4)))
                .await
                .expect("refused at once, not waiting")
                .is_none()
        );
        assert!(
            admit(&connections, addr(2, 2)).await.is_some(),
            "other sources are served"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn closed_resolves_when_the_last_connection_goes() {
        let connections = table(4, 0);
        let a = admit(&connections, addr(1, 1)).await.expect("a");
        let waiting = tokio::spawn({
            let connections = Arc::clone(&connections);
            async move { connections.closed().await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiting.is_finished());
        drop(a);
        waiting.await.expect("closed");
    }
}
