//! Commands from the control thread to the shards: reload in two phases, start and serve,
//! replay a dead
//! letter, shut down; and what a shard answers.
//!
//! The control thread (signals, config-file watch, admin requests) never touches a shard's
//! state; it drops a command into the shard's mailbox and wakes it. The mailbox takes a lock,
//! but only on the control path (a reload or a shutdown), never per message.
//!
//! A reload (start-up is the first) is [`Command::Prepare`] on every shard, each doing the part
//! that can fail (binding new listeners' sockets) and answering; then [`Command::Commit`]
//! everywhere, each shard answering once the new table and listeners are in force, or
//! [`Command::Abort`] everywhere if any shard could not prepare.
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use atomic_waker::AtomicWaker;

use crate::daemon::plan::Plan;
use crate::deadletter::DeadLetter;

/// One instruction for a shard.
pub enum Command {
    /// Phase one of a reload: do what can fail (bind the sockets of new listeners), change
    /// nothing yet, and answer.
    Prepare {
        plan: Arc<Plan>,
        reply: Sender<PhaseAnswer>,
    },
    /// Phase two: put what was prepared in force, and answer once it is.
    Commit { reply: Sender<PhaseAnswer> },
    /// Phase two, when some shard could not prepare: drop what was prepared (its sockets
    /// close) and keep what you have.
    Abort,
    /// After the first commit at start-up, once every shard has the table: read the log,
    /// hold back new messages for every endpoint it still has messages for (handing each its
    /// first few), and answer. Nothing is accepted yet.
    Start { reply: Sender<PhaseAnswer> },
    /// Once every shard answered [`Command::Start`]: accept connections (answering once it
    /// does), and feed the endpoints the rest of the log's messages as they make room.
    Serve { reply: Sender<PhaseAnswer> },
    /// Stop accepting, answer what was read, deliver what is queued (within the grace
    /// period), then stop.
    Shutdown,
    /// Store this dead letter's message in the log again and deliver it to its endpoint.
    Replay {
        letter: Box<DeadLetter>,
        reply: Sender<Result<(), ReplayError>>,
    },
}

/// A shard's answer to one phase of a reload.
#[derive(Debug)]
pub struct PhaseAnswer {
    pub shard: usize,
    pub result: Result<(), ShardError>,
}

/// What a shard could not do in a reload. Nothing of the reload is in force when it is
/// answered to [`Command::Prepare`].
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// Another program holds the address, or it is not one of this host's: retrying helps
    /// only once that has changed.
    #[error("listener {listener}: cannot listen on {addr}: {source}")]
    Bind {
        listener: Arc<str>,
        addr: SocketAddr,
        source: io::Error,
    },
    /// A commit without a prepare (the prepare came after the control thread gave up on it).
    #[error("asked to commit a reload it had not prepared")]
    NothingPrepared,
}

/// Why a dead letter could not be put back on its way; the letter stays where it was.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The configuration no longer has the endpoint: add it back, or drop the letter.
    #[error("endpoint {0} is not in the configuration any more")]
    EndpointGone(String),
    /// The shard's log did not take the message (full, or failing); a retry may help.
    #[error("shard {shard}: the message could not be stored again: {reason}")]
    NotStored { shard: usize, reason: String },
}

struct Mailbox {
    waker: AtomicWaker,
    commands: Mutex<Vec<Command>>,
}

/// The mailboxes of every shard.
pub struct Control {
    mailboxes: Box<[Mailbox]>,
}

impl Control {
    pub fn new(shards: usize) -> Arc<Control> {
        Arc::new(Control {
            mailboxes: (0..shards.max(1))
                .map(|_| Mailbox {
                    waker: AtomicWaker::new(),
                    commands: Mutex::new(Vec::new()),
                })
                .collect(),
        })
    }

    pub fn shards(&self) -> usize {
        self.mailboxes.len()
    }

    /// Posts `command` to `shard` and wakes it.
    pub fn send(&self, shard: usize, command: Command) {
        if let Some(mailbox) = self.mailboxes.get(shard) {
            mailbox
                .commands
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(command);
            mailbox.waker.wake();
        }
    }

    /// Waits for commands for `shard` and takes them all, oldest first.
    pub async fn recv(&self, shard: usize) -> Vec<Command> {
        let Some(mailbox) = self.mailboxes.get(shard) else {
            return Vec::new();
        };
        poll_fn(|cx| {
            let take = || {
                std::mem::take(
                    &mut *mailbox
                        .commands
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()),
                )
            };
            let commands = take();
            if !commands.is_empty() {
                return Poll::Ready(commands);
            }
            mailbox.waker.register(cx.waker());
            let commands = take();
            if commands.is_empty() {
                Poll::Pending
            } else {
                Poll::Ready(commands)
            }
        })
        .await
    }
}
