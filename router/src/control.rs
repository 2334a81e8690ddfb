//! Commands from the control thread to the shards: reload in two phases, start, replay a dead
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
//!
//! [`Control::send`] returns a [`Ticket`], and [`Control::handled`] says whether the shard has
//! carried that command out. A shard takes more commands only once it has carried out all it
//! took before (its loop in `daemon/shard_main.rs` awaits each command, then asks again), so
//! the count of commands taken when it asks again is the count it has finished with. Start-up
//! uses it to say "serving" only once every shard has replayed its log and is accepting, for
//! which [`Command::Start`] has no reply of its own.
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// After the first commit at start-up, once every shard has the table: give the log's
    /// undelivered messages back to their endpoints, then accept connections.
    Start,
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
    inbox: Mutex<Inbox>,
    /// How many commands the shard has finished with: those it had taken when it last asked
    /// for more.
    handled: AtomicU64,
}

#[derive(Default)]
struct Inbox {
    commands: Vec<Command>,
    /// Commands ever posted, and ever taken by the shard; posting order is taking order.
    posted: u64,
    taken: u64,
}

/// One command posted to one shard, to ask later whether the shard has carried it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    shard: usize,
    /// The command's place in the shard's mailbox, counting from 1.
    seq: u64,
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
                    inbox: Mutex::new(Inbox::default()),
                    handled: AtomicU64::new(0),
                })
                .collect(),
        })
    }

    pub fn shards(&self) -> usize {
        self.mailboxes.len()
    }

    /// Posts `command` to `shard` and wakes it. The ticket says later whether the shard has
    /// carried the command out ([`Control::handled`]).
    pub fn send(&self, shard: usize, command: Command) -> Ticket {
        let Some(mailbox) = self.mailboxes.get(shard) else {
            // No such shard: nothing will ever carry it out.
            return Ticket {
                shard,
                seq: u64::MAX,
            };
        };
        let seq = {
            let mut inbox = mailbox
                .inbox
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            inbox.commands.push(command);
            inbox.posted += 1;
            inbox.posted
        };
        mailbox.waker.wake();
        Ticket { shard, seq }
    }

    /// Whether the shard has carried out the command `ticket` stands for (and every command
    /// posted to it before): it has asked for more commands since taking it.
    pub fn handled(&self, ticket: Ticket) -> bool {
        self.mailboxes
            .get(ticket.shard)
            .is_some_and(|mailbox| mailbox.handled.load(Ordering::Acquire) >= ticket.seq)
    }

    /// Waits for commands for `shard` and takes them all, oldest first.
    pub async fn recv(&self, shard: usize) -> Vec<Command> {
        let Some(mailbox) = self.mailboxes.get(shard) else {
            return Vec::new();
        };
        poll_fn(|cx| {
            let take = || {
                let mut inbox = mailbox
                    .inbox
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                // Asking again: everything taken before is done with.
                mailbox.handled.store(inbox.taken, Ordering::Release);
                let commands = std::mem::take(&mut inbox.commands);
                inbox.taken += commands.len() as u64;
                commands
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

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::*;

    /// One poll of a shard's `recv`, as its loop would make it.
    fn poll_recv(control: &Control, shard: usize) -> Option<Vec<Command>> {
        let mut recv = pin!(control.recv(shard));
        match recv.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(commands) => Some(commands),
            Poll::Pending => None,
        }
    }

    /// A command counts as handled only once the shard asks for more after taking it, and
    /// tickets of one shard say nothing about another's.
    #[test]
    fn a_command_is_handled_once_the_shard_asks_again() {
        let control = Control::new(2);
        let first = control.send(0, Command::Start);
        let second = control.send(0, Command::Abort);
        let other = control.send(1, Command::Start);
        assert!(!control.handled(first));

        let taken = poll_recv(&control, 0).expect("two commands waiting");
        assert_eq!(taken.len(), 2);
        // Taken, but still being carried out.
        assert!(!control.handled(first) && !control.handled(second));

        assert!(poll_recv(&control, 0).is_none(), "nothing more to take");
        assert!(control.handled(first) && control.handled(second));
        assert!(!control.handled(other), "shard 1 has taken nothing");

        let third = control.send(0, Command::Start);
        assert!(!control.handled(third));
        assert!(
            !control.handled(control.send(7, Command::Start)),
            "no shard 7"
        );
    }
}
