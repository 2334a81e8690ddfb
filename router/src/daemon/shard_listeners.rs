//! One shard's listeners across reloads: sockets bound at prepare (in the shard's own descriptor
//! table, so that closing one really closes it), put to work at commit, closed when a reload
//! removes or moves them, all drained at shutdown.
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use monoio::task::JoinHandle;

use super::plan::{ListenerAction, ListenerStep};
use crate::ingress::listener::{self, bind_reuseport, ListenerCtx};
use crate::ingress::slot::ListenerSlot;
use crate::mailbox::ShardError;
use crate::shard::Shard;

/// A listener in force on this shard.
struct Running {
    slot: Rc<ListenerSlot>,
    /// The accept loop; `None` until the shard starts serving (start-up replays the log first).
    task: Option<JoinHandle<()>>,
    /// The socket, until the accept loop takes it.
    socket: Option<std::net::TcpListener>,
}

pub struct ShardListeners {
    shard: usize,
    running: HashMap<Arc<str>, Running>,
    /// Sockets bound by the prepare in progress, by listener name.
    prepared: HashMap<Arc<str>, std::net::TcpListener>,
    /// Accept loops of closed listeners, still waiting for their connections to finish.
    closing: Vec<JoinHandle<()>>,
    serving: bool,
}

impl ShardListeners {
    pub fn new(shard: usize) -> ShardListeners {
        ShardListeners {
            shard,
            running: HashMap::new(),
            prepared: HashMap::new(),
            closing: Vec::new(),
            serving: false,
        }
    }

    /// Binds the sockets the plan needs. On failure the ones bound so far are closed again
    /// and nothing is kept.
    pub fn prepare(&mut self, steps: &[ListenerStep]) -> Result<(), ShardError> {
        self.prepared.clear();
        for step in steps {
            let (ListenerAction::Open { addr, .. } | ListenerAction::Move { addr, .. }) =
                &step.action
            else {
                continue;
            };
            let bound = bind_reuseport(*addr, 1).and_then(|mut sockets| {
                sockets
                    .pop()
                    .ok_or_else(|| std::io::Error::other("no socket was made"))
            });
            match bound {
                Ok(socket) => {
                    self.prepared.insert(Arc::clone(&step.name), socket);
                }
                Err(source) => {
                    self.prepared.clear();
                    return Err(ShardError::Bind {
                        listener: Arc::clone(&step.name),
                        addr: *addr,
                        source,
                    });
                }
            }
        }
        Ok(())
    }

    /// Drops what the prepare bound.
    pub fn abort(&mut self) {
        self.prepared.clear();
    }

    /// Puts the prepared steps in force.
    pub fn commit(&mut self, shard: &Rc<Shard>, steps: &[ListenerStep]) {
        for step in steps {
            match &step.action {
                ListenerAction::Open { ctx, .. } => self.open(shard, &step.name, ctx),
                ListenerAction::Move { ctx, .. } => {
                    self.close(&step.name);
                    self.open(shard, &step.name, ctx);
                }
                ListenerAction::Update { ctx } => {
                    if let Some(running) = self.running.get(&step.name) {
                        running.slot.replace(local(ctx));
                    }
                }
                ListenerAction::Close => self.close(&step.name),
            }
        }
        self.prepared.clear();
    }

    /// Starts accepting on every listener (at start-up, once the log has been replayed).
    pub fn serve(&mut self, shard: &Rc<Shard>) {
        self.serving = true;
        for running in self.running.values_mut() {
            start(shard, running);
        }
    }

    /// Closes every listener and waits until each has answered its connections and closed.
    pub async fn shut_down(&mut self) {
        for (_, running) in self.running.drain() {
            running.slot.close();
            if let Some(task) = running.task {
                self.closing.push(task);
            }
        }
        for task in self.closing.drain(..) {
            task.await;
        }
    }

    fn open(&mut self, shard: &Rc<Shard>, name: &Arc<str>, ctx: &Arc<ListenerCtx>) {
        let Some(socket) = self.prepared.remove(name) else {
            // Commit follows a successful prepare, which bound a socket for every step that
            // opens one; without it there is nothing to serve.
            tracing::error!(
                "shard {}: listener {name} has no socket to commit",
                self.shard
            );
            return;
        };
        let mut running = Running {
            slot: ListenerSlot::new(local(ctx)),
            task: None,
            socket: Some(socket),
        };
        if self.serving {
            start(shard, &mut running);
        }
        self.running.insert(Arc::clone(name), running);
    }

    fn close(&mut self, name: &str) {
        if let Some(running) = self.running.remove(name) {
            running.slot.close();
            if let Some(task) = running.task {
                self.closing.push(task);
            }
        }
    }
}

fn start(shard: &Rc<Shard>, running: &mut Running) {
    if let Some(socket) = running.socket.take() {
        let task = listener::run(Rc::clone(shard), Rc::clone(&running.slot), socket);
        running.task = Some(monoio::spawn(task));
    }
}

/// This shard's copy of a listener's settings (its connections share it through an `Rc`).
fn local(ctx: &ListenerCtx) -> Rc<ListenerCtx> {
    Rc::new(ListenerCtx {
        name: Arc::clone(&ctx.name),
        config: ctx.config.clone(),
        tls: ctx.tls.clone(),
        open: Arc::clone(&ctx.open),
        budget: Arc::clone(&ctx.budget),
        peers: Arc::clone(&ctx.peers),
        stats: Arc::clone(&ctx.stats),
    })
}
