//! `[cluster]` as the daemon applies it, and the two functions every node must compute alike:
//! which partition an endpoint falls in, and the id JetStream de-duplicates a publish by.
use std::fmt::Write as _;
use std::time::Duration;

use super::ClusterError;

/// `[cluster]` as the daemon applies it (the config parser fills it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSettings {
    /// NATS servers, e.g. "nats://127.0.0.1:4222"; the client tries each.
    pub servers: Vec<String>,
    /// This node's name, unique in the cluster (`[A-Za-z0-9_-]+`).
    pub node: String,
    pub partitions: u16,
    /// Stream name; its subjects are "<stream>.p.<n>".
    pub stream: String,
    /// 1 is allowed for a single NATS server.
    pub replicas: usize,
    /// A lease lapses this long after its last renewal.
    pub lease: Duration,
    pub publish_timeout: Duration,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            servers: vec!["nats://127.0.0.1:4222".into()],
            node: "ganglion".into(),
            partitions: 64,
            stream: "GANGLION".into(),
            replicas: 3,
            lease: Duration::from_secs(5),
            publish_timeout: Duration::from_secs(5),
        }
    }
}

impl ClusterSettings {
    /// Rejects what would make a subject, key or bucket name invalid, or a lease unworkable
    /// (`Cluster::start` checks it too; the config parser may call it to report early).
    pub fn validate(&self) -> Result<(), ClusterError> {
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        let problem = if self.servers.is_empty() {
            Some("no servers".to_string())
        } else if !name_ok(&self.node) {
            Some(format!("node name {:?} is not [A-Za-z0-9_-]+", self.node))
        } else if !name_ok(&self.stream) {
            Some(format!(
                "stream name {:?} is not [A-Za-z0-9_-]+",
                self.stream
            ))
        } else if self.partitions == 0 {
            Some("partitions must be at least 1".into())
        } else if self.replicas == 0 || self.replicas > 5 {
            Some("replicas must be 1 to 5".into())
        } else if self.lease < Duration::from_millis(600) {
            // Renewals come every lease/3; below this a busy server would let leases lapse.
            Some("lease must be at least 600 ms".into())
        } else if self.publish_timeout.is_zero() {
            Some("publish_timeout must not be zero".into())
        } else {
            None
        };
        problem.map_or(Ok(()), |p| Err(ClusterError::Invalid(p)))
    }

    pub(crate) fn subject(&self, partition: u16) -> String {
        format!("{}.p.{partition}", self.stream)
    }
}

/// Stable partition of an endpoint (by its name): FNV-1a 64 of the UTF-8 name, mod partitions.
/// Every node must agree on it, whatever its build: never change it while a cluster runs.
pub fn partition_of(endpoint: &str, partitions: u16) -> u16 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    if partitions == 0 {
        return 0;
    }
    let hash = endpoint
        .bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    // The remainder is below `partitions`, a u16.
    (hash % u64::from(partitions)) as u16
}

/// The id JetStream de-duplicates a publish by (`Nats-Msg-Id`): the same bytes sent again after a
/// lost ACK, to any node, make no second copy. Hex SHA-256 of the bytes, then "-p<partition>".
pub fn message_id(message: &[u8], partition: u16) -> String {
    partition_id(&message_digest(message), partition)
}

/// The hex SHA-256 of a message, computed once however many partitions it goes to.
pub fn message_digest(message: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, message);
    let mut hex = String::with_capacity(64);
    for byte in digest.as_ref() {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// [`message_id`] of the message whose [`message_digest`] is `digest`, for `partition`.
pub fn partition_id(digest: &str, partition: u16) -> String {
    format!("{digest}-p{partition}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_of_is_fnv1a_64_mod_partitions() {
        // FNV-1a 64 of "" is the offset basis, of "a" the published test vector af63dc4c8601ec8c.
        assert_eq!(partition_of("", 64), (0xcbf2_9ce4_8422_2325u64 % 64) as u16);
        assert_eq!(
            partition_of("a", 1000),
            (0xaf63_dc4c_8601_ec8cu64 % 1000) as u16
        );
        assert_eq!(
            partition_of("lab-results", 64),
            partition_of("lab-results", 64)
        );
        assert_eq!(partition_of("anything", 1), 0);
        assert_eq!(partition_of("anything", 0), 0);
        let spread: std::collections::HashSet<u16> = (0..200)
            .map(|i| partition_of(&format!("endpoint-{i}"), 16))
            .collect();
        assert_eq!(
            spread.len(),
            16,
            "200 names should fall in all 16 partitions"
        );
    }

    #[test]
    fn message_id_is_sha256_hex_and_partition() {
        assert_eq!(
            message_id(b"abc", 7),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad-p7"
        );
        assert_ne!(message_id(b"abc", 7), message_id(b"abc", 8));
        assert_ne!(message_id(b"abc", 7), message_id(b"abd", 7));
    }

    #[test]
    fn settings_are_checked() {
        assert!(ClusterSettings::default().validate().is_ok());
        let bad_node = ClusterSettings {
            node: "a.b".into(),
            ..ClusterSettings::default()
        };
        assert!(bad_node.validate().is_err());
        let no_partitions = ClusterSettings {
            partitions: 0,
            ..ClusterSettings::default()
        };
        assert!(no_partitions.validate().is_err());
    }
}
