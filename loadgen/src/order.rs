//! Order per key: whether each patient's messages reached the endpoint in the order they were
//! sent. The driver numbers every message it sends (the sequence number travels in the control
//! id and comes back in the fleet's arrival report), so all it needs besides is which patient
//! each number was drawn for; send order within a patient is then the order of the numbers,
//! as long as one patient's messages all leave on one connection (the driver sees to that).
//!
//! An arrival of a number seen before is a duplicate (delivery is at-least-once: a message
//! whose ACK was lost with its connection is sent again), never a failure, wherever it falls.
//! A first arrival of a number below one already arrived for the same patient is out of order.

/// The outcome of one arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    InOrder,
    Duplicate,
    OutOfOrder,
    /// A number that was never sent (another run's, or beyond this one's).
    Unknown,
}

/// What the arrivals so far add up to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OrderCounts {
    pub in_order: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
}

const NOT_SENT: u32 = u32::MAX;

/// The checker for one run: `messages` sequence numbers, `keys` patients.
pub struct PerKeyOrder {
    /// The patient each sequence number was sent for ([`NOT_SENT`] until it is).
    key_of: Vec<u32>,
    arrived: Vec<bool>,
    /// The highest sequence number arrived so far, per patient, plus one (0: none yet).
    highest: Vec<u64>,
    pub counts: OrderCounts,
}

impl PerKeyOrder {
    pub fn new(messages: usize, keys: u32) -> PerKeyOrder {
        PerKeyOrder {
            key_of: vec![NOT_SENT; messages],
            arrived: vec![false; messages],
            highest: vec![0; keys as usize],
            counts: OrderCounts::default(),
        }
    }

    pub fn keys(&self) -> u32 {
        self.highest.len() as u32
    }

    /// Message `seq` was sent for patient `key`.
    pub fn sent(&mut self, seq: u64, key: u32) {
        if let Some(k) = self.key_of.get_mut(seq as usize) {
            *k = key;
        }
    }

    /// Message `seq` arrived at the endpoint.
    pub fn arrived(&mut self, seq: u64) -> Arrival {
        let i = seq as usize;
        let Some(&key) = self.key_of.get(i).filter(|&&k| k != NOT_SENT) else {
            return Arrival::Unknown;
        };
        let (Some(seen), Some(highest)) =
            (self.arrived.get_mut(i), self.highest.get_mut(key as usize))
        else {
            return Arrival::Unknown;
        };
        let verdict = if *seen {
            self.counts.duplicates += 1;
            Arrival::Duplicate
        } else if seq + 1 < *highest {
            self.counts.out_of_order += 1;
            Arrival::OutOfOrder
        } else {
            self.counts.in_order += 1;
            Arrival::InOrder
        };
        *seen = true;
        *highest = (*highest).max(seq + 1);
        verdict
    }
}

/// The PID-3 value (an NHS number's shape) of patient `key`.
pub fn patient_id(key: u32) -> String {
    format!("9{key:09}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten messages over three patients, sent in number order.
    fn sent() -> PerKeyOrder {
        let mut order = PerKeyOrder::new(10, 3);
        for seq in 0..10 {
            order.sent(seq, (seq % 3) as u32);
        }
        order
    }

    #[test]
    fn arrivals_in_send_order_per_patient_pass_across_patients_interleaved() {
        let mut order = sent();
        // Patients' messages interleave differently from the send order, each in its own.
        for seq in [1, 0, 4, 2, 3, 7, 5, 6, 9, 8] {
            assert_eq!(order.arrived(seq), Arrival::InOrder, "{seq}");
        }
        assert_eq!(
            order.counts,
            OrderCounts {
                in_order: 10,
                duplicates: 0,
                out_of_order: 0
            }
        );
    }

    #[test]
    fn a_shuffled_arrival_list_is_caught() {
        let mut order = sent();
        // Patient 0 is 0, 3, 6, 9: 6 arrives before 3.
        for seq in [0, 1, 2, 6, 4, 5, 3, 7, 8, 9] {
            order.arrived(seq);
        }
        assert_eq!(order.counts.out_of_order, 1);
        assert_eq!(order.counts.in_order, 9);
    }

    #[test]
    fn a_message_sent_again_is_a_duplicate_wherever_it_lands() {
        let mut order = sent();
        for seq in [0, 3, 0, 6, 3, 9, 9] {
            assert_ne!(order.arrived(seq), Arrival::OutOfOrder, "{seq}");
        }
        assert_eq!(
            order.counts,
            OrderCounts {
                in_order: 4,
                duplicates: 3,
                out_of_order: 0
            }
        );
    }

    #[test]
    fn numbers_never_sent_are_not_counted() {
        let mut order = PerKeyOrder::new(4, 2);
        order.sent(0, 1);
        assert_eq!(order.arrived(1), Arrival::Unknown);
        assert_eq!(order.arrived(99), Arrival::Unknown);
        assert_eq!(order.arrived(0), Arrival::InOrder);
        assert_eq!(patient_id(42), "9000000042");
    }
}
