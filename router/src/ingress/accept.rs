//! Taking a message for delivery: route it, wait for room, hand it to its endpoints' owners.
//!
//! This is the one place where "accepted" is decided for both protocols. Until a message is
//! accepted here its sender has been told nothing; once it is, the sender may be acknowledged.
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use crate::pipeline::{Accepted, Delivery, Kind};
use crate::routes::{Decision, MessageView, Outcome, Unrouted};
use crate::shard::Shard;

/// What became of a message at ingress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// Queued for these many endpoints.
    Queued(usize),
    /// A rule said to drop it: accepted and forwarded nowhere.
    Dropped { rule: String },
    /// Refused: by a rule (with its reason) or because nothing routes it.
    Rejected { reason: String },
    /// Nothing routes it and the policy keeps such messages as dead letters.
    DeadLettered,
}

/// Where a message came from, for its record and for logs.
#[derive(Debug, Clone)]
pub struct Origin {
    pub listener: Arc<str>,
    pub peer: SocketAddr,
}

/// Routes `view` (parsed from `bytes`) and queues it for every endpoint chosen. Waits while
/// any of those endpoints' queues is full, which stops the caller reading from its sender.
#[allow(clippy::too_many_arguments)]
pub async fn accept(
    shard: &Shard,
    view: &impl MessageView,
    bytes: &[u8],
    kind: Kind,
    control_id: Range<usize>,
    soap_action: Option<&str>,
    origin: &Origin,
    decision: &mut Decision,
) -> Taken {
    let routing = shard.routing();
    routing.table.route(view, decision);
    let make = || {
        Arc::new(Accepted {
            seq: shard.next_seq(),
            kind,
            bytes: bytes.into(),
            control_id: control_id.clone(),
            soap_action: soap_action.map(Into::into),
            arrived: SystemTime::now(),
            listener: Arc::clone(&origin.listener),
            peer: origin.peer,
        })
    };
    match decision.outcome {
        Outcome::Deliver => {
            for &id in &decision.endpoints {
                if let Some(handle) = routing.handle(id) {
                    shard.wait_for_room(handle).await;
                }
            }
            let message = make();
            let mut queued = 0;
            for &id in &decision.endpoints {
                let Some(handle) = routing.handle(id) else {
                    continue;
                };
                let delivery = Delivery {
                    message: Arc::clone(&message),
                    endpoint: Arc::clone(&handle.name),
                    queued: Arc::clone(&handle.queued),
                };
                shard.dispatch(delivery, handle).await;
                queued += 1;
            }
            Taken::Queued(queued)
        }
        Outcome::Drop(rule) => Taken::Dropped {
            rule: routing
                .table
                .rule(rule)
                .map_or_else(|| "?".to_string(), |r| r.name().to_string()),
        },
        Outcome::Reject(rule) => Taken::Rejected {
            reason: routing
                .table
                .reject_reason(rule)
                .unwrap_or("rejected by routing rule")
                .to_string(),
        },
        Outcome::Unrouted(Unrouted::Reject) => Taken::Rejected {
            reason: "no route for this message".to_string(),
        },
        Outcome::Unrouted(Unrouted::DeadLetter) => {
            shard.dead_letter_unrouted(&make());
            Taken::DeadLettered
        }
    }
}
