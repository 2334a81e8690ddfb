//! Connecting to NATS, ensuring the stream and the two buckets, and checking that this node
//! routes by the same routes.toml as the cluster.
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use tokio::time::{sleep, Instant};

use super::{ClusterError, ClusterSettings};

/// How long start-up waits for the first NATS server.
const FIRST_CONTACT: Duration = Duration::from_secs(10);
/// How long it then waits for JetStream to create or find the stream and buckets: a cluster
/// just started elects its leaders for a while, replicated streams take a moment to create.
const SETUP: Duration = Duration::from_secs(20);
const RETRY: Duration = Duration::from_millis(250);
/// A re-send of the same bytes after a lost ACK is de-duplicated within this window.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
const ROUTES_KEY: &str = "routes";

pub(crate) struct Linked {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub stream: stream::Stream,
    pub leases: kv::Store,
    pub config: kv::Store,
}

pub(crate) fn leases_bucket(settings: &ClusterSettings) -> String {
    format!("{}-leases", settings.stream)
}

pub(crate) async fn link(
    settings: &ClusterSettings,
    routes_version: &str,
) -> Result<Linked, ClusterError> {
    let deadline = Instant::now() + FIRST_CONTACT;
    let client = connect(settings, deadline).await?;
    let deadline = Instant::now() + SETUP;
    let js = jetstream::new(client.clone());

    let stream_config = stream::Config {
        name: settings.stream.clone(),
        subjects: vec![format!("{}.p.*", settings.stream)],
        // The stream holds exactly what no owner has acked yet: a new owner re-reads it all.
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        num_replicas: settings.replicas,
        duplicate_window: DUPLICATE_WINDOW,
        // Never discard what a sender was told is safe.
        max_bytes: -1,
        max_messages: -1,
        max_messages_per_subject: -1,
        ..Default::default()
    };
    let stream = retry(deadline, "stream", || {
        js.get_or_create_stream(stream_config.clone())
    })
    .await?;

    let leases = bucket(
        &js,
        deadline,
        kv::Config {
            bucket: leases_bucket(settings),
            history: 1,
            // A lease nobody renews disappears by itself: the server ages it out.
            max_age: settings.lease,
            storage: stream::StorageType::File,
            num_replicas: settings.replicas,
            ..Default::default()
        },
    )
    .await?;
    let config = bucket(
        &js,
        deadline,
        kv::Config {
            bucket: format!("{}-config", settings.stream),
            history: 1,
            storage: stream::StorageType::File,
            num_replicas: settings.replicas,
            ..Default::default()
        },
    )
    .await?;

    check_routes(&config, routes_version, deadline).await?;
    Ok(Linked {
        client,
        js,
        stream,
        leases,
        config,
    })
}

async fn connect(
    settings: &ClusterSettings,
    deadline: Instant,
) -> Result<async_nats::Client, ClusterError> {
    loop {
        let attempt = async_nats::ConnectOptions::new()
            .name(format!("ganglion-{}", settings.node))
            .connection_timeout(Duration::from_secs(2))
            // Once connected, reconnect for ever: publishes fail meanwhile, and say so.
            .max_reconnects(None)
            .connect(settings.servers.as_slice())
            .await;
        match attempt {
            Ok(client) => return Ok(client),
            Err(e) if Instant::now() + RETRY >= deadline => {
                return Err(ClusterError::Unreachable(format!(
                    "{}: {e}",
                    settings.servers.join(", ")
                )))
            }
            Err(_) => sleep(RETRY).await,
        }
    }
}

/// Retries a JetStream call until the deadline: a cluster just started has no meta leader for
/// a moment, and answers "unavailable" meanwhile.
async fn retry<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    deadline: Instant,
    what: &str,
    mut call: impl FnMut() -> F,
) -> Result<T, ClusterError> {
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(e) if Instant::now() + RETRY >= deadline => {
                return Err(ClusterError::Stream(format!("{what}: {e}")))
            }
            Err(_) => sleep(RETRY).await,
        }
    }
}

/// Ensures a key-value bucket. Its stream is created here, as the client's `create_key_value`
/// would, because that first reads the account info, which async-nats 0.52 cannot parse from a
/// 2.9 server (no `reserved_memory`); `get_key_value` reads only the stream.
async fn bucket(
    js: &jetstream::Context,
    deadline: Instant,
    config: kv::Config,
) -> Result<kv::Store, ClusterError> {
    let name = config.bucket.clone();
    let stream_config = stream::Config {
        name: format!("KV_{}", config.bucket),
        subjects: vec![format!("$KV.{}.>", config.bucket)],
        max_messages_per_subject: config.history,
        max_bytes: -1,
        max_messages: -1,
        max_age: config.max_age,
        max_message_size: -1,
        // As the client sets it: a re-sent update within the window is not applied twice.
        duplicate_window: if config.max_age.is_zero() {
            DUPLICATE_WINDOW
        } else {
            config.max_age.min(DUPLICATE_WINDOW)
        },
        storage: config.storage,
        num_replicas: config.num_replicas,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    };
    retry(deadline, &name, || async {
        match js.get_key_value(config.bucket.clone()).await {
            Ok(store) => Ok(store),
            Err(_) => {
                js.get_or_create_stream(stream_config.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                js.get_key_value(config.bucket.clone())
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    })
    .await
}

async fn check_routes(
    config: &kv::Store,
    ours: &str,
    deadline: Instant,
) -> Result<(), ClusterError> {
    loop {
        match config.get(ROUTES_KEY).await {
            Ok(Some(theirs)) => {
                return if theirs.as_ref() == ours.as_bytes() {
                    Ok(())
                } else {
                    Err(ClusterError::RoutesDiffer {
                        ours: ours.to_owned(),
                        cluster: String::from_utf8_lossy(&theirs).into_owned(),
                    })
                };
            }
            // The first node of a cluster sets it; `create` fails if another node just did,
            // and the next turn reads theirs.
            Ok(None) => {
                if config
                    .create(ROUTES_KEY, ours.to_owned().into())
                    .await
                    .is_ok()
                {
                    return Ok(());
                }
            }
            Err(e) if Instant::now() + RETRY >= deadline => {
                return Err(ClusterError::Stream(format!("routes version: {e}")))
            }
            Err(_) => {}
        }
        if Instant::now() + RETRY >= deadline {
            return Err(ClusterError::Stream(
                "routes version: could not be read or set".into(),
            ));
        }
        sleep(RETRY).await;
    }
}

pub(crate) async fn set_routes(config: &kv::Store, version: &str) -> Result<(), String> {
    config
        .put(ROUTES_KEY, version.to_owned().into())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}
