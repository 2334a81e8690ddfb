//! Commands from the control thread to the shards: reload in two phases, and shut down.
//!
//! The control thread (signals, config-file watch, admin requests) never touches a shard's
//! state; it drops a command into the shard's mailbox and wakes it. The mailbox takes a lock,
//! but only on the control path (a reload or a shutdown), never per message.
use std::future::poll_fn;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use atomic_waker::AtomicWaker;

use crate::deadletter::DeadLetter;
use crate::shard::Routing;

/// One instruction for a shard.
pub enum Command {
    /// Phase one of a reload: get ready to use this routing and say whether you can.
    Prepare {
        routing: Arc<Routing>,
        reply: Sender<Result<(), String>>,
    },
    /// Phase two: use what you prepared.
    Commit,
    /// Phase two, when some shard could not prepare: forget it and keep what you have.
    Abort,
    /// Stop accepting, answer what was read, deliver what is queued (within the grace
    /// period), then stop.
    Shutdown,
    /// Store this dead letter's message in the log again and deliver it to its endpoint.
    Replay {
        letter: Box<DeadLetter>,
        reply: Sender<Result<(), String>>,
    },
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
