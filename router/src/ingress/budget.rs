//! Memory for senders' unfinished input, bounded for the whole process
//! (`[server] max_buffered_input`) and per sender address (`[[listener]] max_buffered_per_peer`).
//!
//! A connection's input buffer holds what has arrived of the message it is reading. Its first
//! [`FIRST_BUFFER`] bytes are its own (`max_connections` bounds how many there are); growth past
//! that is taken from the peer's share and from the process budget, in [`CHUNK`] steps. So an
//! established connection reading ordinary messages never touches either (a comparison of two
//! lengths per read), and one reading a 16 MiB message touches them sixteen times.
//!
//! When the process budget is spent, a connection that holds none of it waits for room: it stops
//! reading, its sender's bytes stay in the kernel and TCP slows the sender down. Waiters on one
//! shard queue in order and only the first polls, so a thousand paused connections cost one
//! timer; the caller bounds the wait (the idle timeout). A connection that already holds part of
//! the budget and needs more is refused instead, and gives its part back: if holders waited,
//! a hundred senders each half-way through a large message would wait on each other until their
//! idle timeouts and then all fail together. So waiters hold nothing, holders never wait, and
//! the budget always goes to messages that can move. When a peer's share is spent the
//! connection is refused too: that peer is the one holding the memory.
//!
//! Memory: the budget counts buffer capacity, and the process's resident memory follows it only
//! if a freed buffer's pages go back to the system. glibc serves large allocations as mappings
//! of their own (unmapped when freed) unless they are below its mmap threshold, and freeing a
//! mapping raises that threshold to the mapping's size; after that, buffers of up to that size
//! come from its heaps, whose freed pages stay resident and are reused only by what fits them.
//! So a buffer growing past its first size is made a mapping whatever the threshold is
//! ([`mapped`]), and is shrunk, not freed ([`shrink`]). Measured with 100 senders each sending
//! 15 MiB of a message under a 256 MiB budget, refused and reconnecting for 16 s: resident
//! memory grew by 330 MiB with buffers simply freed, by 400 MiB once one large message had
//! passed through (raising the threshold), and by 250 MiB in both cases with both measures.
use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustc_hash::FxHashMap;

use crate::metrics::Metrics;
use crate::semaphore::LocalSemaphore;

/// Bytes of a connection's input buffer not counted against any budget: room for ordinary
/// messages, and what an idle connection may keep between messages.
pub const FIRST_BUFFER: usize = 64 * 1024;
/// Step in which growth past the first buffer is reserved.
pub const CHUNK: usize = 1 << 20;
/// Room made in the buffer before each read.
pub const READ_ROOM: usize = 16 * 1024;
/// The process budget when `max_buffered_input` is not given: this, or a quarter of the memory
/// the process may use when that is less.
pub const DEFAULT_LIMIT: u64 = 1 << 30;
/// Longest pause between two looks at a spent budget by the first waiter of a shard.
const MAX_POLL: Duration = Duration::from_millis(100);

/// The process-wide budget, shared by every shard. Its count is the `/metrics` gauge itself.
pub struct InputBudget {
    limit: u64,
    metrics: Arc<Metrics>,
}

/// Which limit refused to make room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Short {
    /// The sender's address holds its whole `max_buffered_per_peer`.
    Peer,
    /// The process holds its whole `max_buffered_input`.
    Budget,
}

impl InputBudget {
    /// The counters the budget reports into (and the listeners' counts hang from).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn new(limit: u64, metrics: Arc<Metrics>) -> Arc<InputBudget> {
        metrics.input.limit.store(limit, Ordering::Relaxed);
        Arc::new(InputBudget { limit, metrics })
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    fn held(&self) -> &AtomicU64 {
        &self.metrics.input.held
    }

    fn try_take(&self, n: u64) -> bool {
        self.held()
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(n).filter(|&after| after <= self.limit)
            })
            .is_ok()
    }

    fn force(&self, n: u64) {
        self.held().fetch_add(n, Ordering::AcqRel);
    }

    fn give(&self, n: u64) {
        self.held().fetch_sub(n, Ordering::AcqRel);
    }
}

/// The budget when `[server] max_buffered_input` is not given: [`DEFAULT_LIMIT`], or a quarter
/// of the memory this process may use when that is less, and never less than `largest_message`
/// (a listener's largest message must be able to fit).
pub fn default_limit(largest_message: u64) -> u64 {
    let quarter = memory_limit().map_or(DEFAULT_LIMIT, |m| m / 4);
    DEFAULT_LIMIT.min(quarter).max(largest_message)
}

/// Physical memory, or the cgroup's limit when lower (a container's `memory.max`).
fn memory_limit() -> Option<u64> {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let kb = l.strip_prefix("MemTotal:")?.trim().strip_suffix("kB")?;
                kb.trim().parse::<u64>().ok().map(|kb| kb * 1024)
            })
        });
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok());
    match (total, cgroup) {
        (Some(t), Some(c)) => Some(t.min(c)),
        (t, c) => t.or(c),
    }
}

/// One listener's shares per sender address, across its connections on every shard. Locked
/// only when a connection grows or gives back a [`CHUNK`], never per message.
pub struct PeerShares {
    cap: u64,
    held: Mutex<FxHashMap<IpAddr, u64>>,
}

impl PeerShares {
    pub fn new(cap: u64) -> Arc<PeerShares> {
        Arc::new(PeerShares {
            cap,
            held: Mutex::new(FxHashMap::default()),
        })
    }

    fn map(&self) -> std::sync::MutexGuard<'_, FxHashMap<IpAddr, u64>> {
        // A panic while holding the lock left a count, not a broken map: carry on with it.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn try_take(&self, peer: IpAddr, n: u64) -> bool {
        let mut map = self.map();
        let held = map.entry(peer).or_insert(0);
        match held.checked_add(n).filter(|&after| after <= self.cap) {
            Some(after) => {
                *held = after;
                true
            }
            None => {
                if *held == 0 {
                    map.remove(&peer);
                }
                false
            }
        }
    }

    fn force(&self, peer: IpAddr, n: u64) {
        *self.map().entry(peer).or_insert(0) += n;
    }

    fn give(&self, peer: IpAddr, n: u64) {
        if let Entry::Occupied(mut held) = self.map().entry(peer) {
            *held.get_mut() = held.get().saturating_sub(n);
            if *held.get() == 0 {
                held.remove();
            }
        }
    }

    /// What `peer` holds now.
    pub fn held(&self, peer: IpAddr) -> u64 {
        self.map().get(&peer).copied().unwrap_or(0)
    }
}

thread_local! {
    /// Connections of this shard waiting for room in the budget, first come first served.
    static WAITERS: Rc<LocalSemaphore> = LocalSemaphore::new(1);
}

/// One connection's part of both budgets: what its input buffer holds past [`FIRST_BUFFER`].
/// Given back when dropped.
pub struct Grant {
    budget: Arc<InputBudget>,
    peers: Arc<PeerShares>,
    peer: IpAddr,
    /// Bytes taken from both budgets.
    held: u64,
    /// The buffer never needs more than this: the largest message plus the first buffer.
    ceiling: usize,
}

/// The part of a buffer of `capacity` bytes that budgets count.
fn counted(capacity: usize) -> u64 {
    capacity.saturating_sub(FIRST_BUFFER) as u64
}

impl Grant {
    /// A connection from `peer` whose messages are at most `max_message` bytes.
    pub fn new(
        budget: Arc<InputBudget>,
        peers: Arc<PeerShares>,
        peer: IpAddr,
        max_message: usize,
    ) -> Grant {
        Grant {
            budget,
            peers,
            peer: peer.to_canonical(),
            held: 0,
            ceiling: max_message.saturating_add(FIRST_BUFFER),
        }
    }

    /// Makes [`READ_ROOM`] free in `input` if both budgets allow, growing it past its first
    /// buffer in [`CHUNK`] steps.
    pub fn try_make_room(&mut self, input: &mut Vec<u8>) -> Result<(), Short> {
        let want = input.len() + READ_ROOM;
        if input.capacity() >= want {
            return Ok(());
        }
        let target = if want <= FIRST_BUFFER {
            want.max((input.capacity() * 2).min(FIRST_BUFFER))
        } else {
            want.next_multiple_of(CHUNK).min(want.max(self.ceiling))
        };
        let need = counted(target);
        if need > self.held {
            let more = need - self.held;
            if !self.peers.try_take(self.peer, more) {
                return Err(Short::Peer);
            }
            if !self.budget.try_take(more) {
                self.peers.give(self.peer, more);
                return Err(Short::Budget);
            }
            self.held = need;
        }
        if input.capacity() <= FIRST_BUFFER && target > FIRST_BUFFER {
            *input = mapped(input, target);
        } else {
            input.reserve_exact(target - input.len());
        }
        // The allocator may give more than asked: count what the buffer really holds.
        let real = counted(input.capacity());
        if real > self.held {
            self.budget.force(real - self.held);
            self.peers.force(self.peer, real - self.held);
            self.held = real;
        }
        Ok(())
    }

    /// As [`Grant::try_make_room`], waiting while the process budget is spent if this
    /// connection holds none of it (the caller bounds the wait). A connection holding part of
    /// the budget, or a full peer share, is not waited for (see the module note).
    pub async fn make_room(&mut self, input: &mut Vec<u8>) -> Result<(), Short> {
        match self.try_make_room(input) {
            Err(Short::Budget) if self.held == 0 => {}
            done => return done,
        }
        let budget = Arc::clone(&self.budget);
        let _waiting = Waiting::new(&budget.metrics);
        let queue = WAITERS.with(Rc::clone);
        let _turn = queue.acquire().await;
        let mut pause = Duration::from_millis(1);
        loop {
            match self.try_make_room(input) {
                Err(Short::Budget) => {}
                done => return done,
            }
            monoio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_POLL);
        }
    }

    /// After a batch: a buffer grown for a large message, now holding little, goes back to its
    /// first size and gives back what it held, so that one large message does not hold memory
    /// for the connection's life.
    pub fn settle(&mut self, input: &mut Vec<u8>) {
        if input.capacity() <= FIRST_BUFFER || input.len() + READ_ROOM > FIRST_BUFFER {
            return;
        }
        shrink(input);
        let keep = counted(input.capacity());
        if keep < self.held {
            self.budget.give(self.held - keep);
            self.peers.give(self.peer, self.held - keep);
            self.held = keep;
        }
    }

    /// Bytes this connection holds of the budgets.
    pub fn held(&self) -> u64 {
        self.held
    }
}

impl Drop for Grant {
    fn drop(&mut self) {
        if self.held > 0 {
            self.budget.give(self.held);
            self.peers.give(self.peer, self.held);
        }
    }
}

/// Above glibc's largest mmap threshold (32 MiB on 64-bit): an allocation this large is always
/// a mapping of its own.
const ALWAYS_MAPPED: usize = 33 << 20;

/// A buffer of `capacity` bytes holding `input`'s bytes, made a memory mapping of its own
/// whatever glibc's mmap threshold has become: allocated above the largest threshold, then
/// shrunk in place (an mremap, which keeps it a mapping, as growing it later does). See the
/// module note on memory; elsewhere than glibc this is one allocation and a shrink.
fn mapped(input: &[u8], capacity: usize) -> Vec<u8> {
    let mut large = Vec::with_capacity(ALWAYS_MAPPED.max(capacity));
    large.extend_from_slice(input);
    large.shrink_to(capacity);
    large
}

/// Shrinks a large buffer to [`FIRST_BUFFER`] in place rather than freeing it: freeing a
/// mapping raises glibc's mmap threshold to its size, and shrinking frees nothing (the small
/// block left is below the threshold when it goes). See the module note on memory.
fn shrink(input: &mut Vec<u8>) {
    input.shrink_to(FIRST_BUFFER);
}

/// A connection's input buffer: a `Vec` that, when the connection ends, is shrunk before it is
/// freed (see [`shrink`]).
#[derive(Default)]
pub struct InputBuffer(Vec<u8>);

impl std::ops::Deref for InputBuffer {
    type Target = Vec<u8>;

    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl std::ops::DerefMut for InputBuffer {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Drop for InputBuffer {
    fn drop(&mut self) {
        if self.0.capacity() > FIRST_BUFFER {
            self.0.clear();
            shrink(&mut self.0);
        }
    }
}

/// Counts a connection in `ganglion_ingress_waiting_for_budget` for as long as it waits.
struct Waiting<'a>(&'a Metrics);

impl<'a> Waiting<'a> {
    fn new(metrics: &'a Metrics) -> Waiting<'a> {
        metrics.input.waiting.fetch_add(1, Ordering::Relaxed);
        Waiting(metrics)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.input.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const MIB: usize = 1 << 20;

    fn parts(limit: u64, cap: u64) -> (Arc<Metrics>, Arc<InputBudget>, Arc<PeerShares>) {
        let metrics = Metrics::new(1);
        let budget = InputBudget::new(limit, Arc::clone(&metrics));
        (metrics, budget, PeerShares::new(cap))
    }

    fn peer(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
    }

    /// Fills `input` as a sender would, `READ_ROOM` at a time, until `len` bytes or a refusal.
    fn fill(grant: &mut Grant, input: &mut Vec<u8>, len: usize) -> Result<(), Short> {
        while input.len() < len {
            grant.try_make_room(input)?;
            let n = (input.capacity() - input.len()).min(len - input.len());
            input.resize(input.len() + n, b'x');
        }
        Ok(())
    }

    #[test]
    fn ordinary_messages_take_nothing_from_the_budgets() {
        let (metrics, budget, peers) = parts(0, 0);
        let mut grant = Grant::new(budget, peers, peer(1), 16 * MIB);
        let mut input = Vec::new();
        fill(&mut grant, &mut input, FIRST_BUFFER - READ_ROOM).unwrap();
        assert!(input.capacity() <= FIRST_BUFFER);
        assert_eq!(metrics.input.held.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn growth_is_reserved_in_chunks_and_given_back() {
        let (metrics, budget, peers) = parts(64 * MIB as u64, 64 * MIB as u64);
        let mut grant = Grant::new(budget, Arc::clone(&peers), peer(1), 16 * MIB);
        let mut input = Vec::new();
        fill(&mut grant, &mut input, 3 * MIB).unwrap();
        let held = metrics.input.held.load(Ordering::Relaxed);
        assert_eq!(held, grant.held());
        assert_eq!(held, counted(input.capacity()));
        assert!(held >= 3 * MIB as u64 - FIRST_BUFFER as u64 && held <= 4 * MIB as u64);
        assert_eq!(peers.held(peer(1)), held);
        // The message is taken: the buffer shrinks and the budgets get it back.
        input.clear();
        grant.settle(&mut input);
        assert_eq!(metrics.input.held.load(Ordering::Relaxed), 0);
        assert_eq!(peers.held(peer(1)), 0);
        fill(&mut grant, &mut input, 2 * MIB).unwrap();
        drop(grant);
        assert_eq!(metrics.input.held.load(Ordering::Relaxed), 0);
        assert_eq!(peers.held(peer(1)), 0);
    }

    #[test]
    fn the_largest_message_fits_a_budget_of_exactly_its_size() {
        let max = 5 * MIB + 123;
        let (_, budget, peers) = parts(max as u64, max as u64);
        let mut grant = Grant::new(budget, peers, peer(1), max);
        let mut input = Vec::new();
        // An MLLP frame of the largest size, its framing, and the read room after it.
        fill(&mut grant, &mut input, max + 3).unwrap();
    }

    #[test]
    fn a_full_peer_share_refuses_that_peer_only() {
        let (_, budget, peers) = parts(64 * MIB as u64, 3 * MIB as u64);
        let mut first = Grant::new(Arc::clone(&budget), Arc::clone(&peers), peer(1), 2 * MIB);
        let mut second = Grant::new(Arc::clone(&budget), Arc::clone(&peers), peer(1), 2 * MIB);
        let other = Grant::new(Arc::clone(&budget), Arc::clone(&peers), peer(2), 2 * MIB);
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        fill(&mut first, &mut a, 2 * MIB).unwrap();
        assert_eq!(fill(&mut second, &mut b, 2 * MIB), Err(Short::Peer));
        let mut other = other;
        fill(&mut other, &mut c, 2 * MIB).unwrap();
        // What was refused was not kept.
        assert_eq!(peers.held(peer(1)), first.held() + second.held());
    }

    #[test]
    fn a_spent_budget_is_short_and_gives_the_peer_share_back() {
        let (metrics, budget, peers) = parts(2 * MIB as u64, 64 * MIB as u64);
        let mut first = Grant::new(Arc::clone(&budget), Arc::clone(&peers), peer(1), 8 * MIB);
        let mut second = Grant::new(Arc::clone(&budget), Arc::clone(&peers), peer(2), 8 * MIB);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        assert_eq!(fill(&mut first, &mut a, 8 * MIB), Err(Short::Budget));
        assert!(metrics.input.held.load(Ordering::Relaxed) <= 2 * MIB as u64);
        assert_eq!(fill(&mut second, &mut b, MIB), Err(Short::Budget));
        assert_eq!(peers.held(peer(2)), second.held());
        drop(first);
        fill(&mut second, &mut b, MIB).unwrap();
    }

    #[test]
    fn a_holder_is_refused_at_once_and_a_waiter_gets_room_when_it_is_given_back() {
        use crate::runtime::driver::{build_runtime, Driver};
        let (metrics, budget, peers) = parts(2 * MIB as u64, 64 * MIB as u64);
        let mut rt = build_runtime(Driver::Epoll).unwrap();
        rt.block_on(async move {
            let mut holder = Grant::new(Arc::clone(&budget), Arc::clone(&peers), peer(1), 8 * MIB);
            let mut a = Vec::new();
            assert_eq!(fill(&mut holder, &mut a, 8 * MIB), Err(Short::Budget));
            // Holding part of the budget, it is not made to wait for more.
            assert_eq!(holder.make_room(&mut a).await, Err(Short::Budget));
            let mut waiter = Grant::new(budget, peers, peer(2), 8 * MIB);
            let mut b = vec![0u8; FIRST_BUFFER];
            let gone = async {
                while metrics.input.waiting.load(Ordering::Relaxed) == 0 {
                    monoio::time::sleep(Duration::from_millis(1)).await;
                }
                drop(holder);
            };
            let (room, ()) = monoio::join!(waiter.make_room(&mut b), gone);
            assert_eq!(room, Ok(()));
            assert!(b.capacity() >= FIRST_BUFFER + READ_ROOM);
            assert_eq!(metrics.input.waiting.load(Ordering::Relaxed), 0);
        });
    }

    #[test]
    fn the_default_is_at_most_a_gibibyte_and_holds_the_largest_message() {
        assert!(default_limit(0) <= DEFAULT_LIMIT);
        assert!(default_limit(0) > 0);
        assert_eq!(default_limit(2 << 30), 2 << 30);
    }
}
