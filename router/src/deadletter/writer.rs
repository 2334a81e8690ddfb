//! Dead letters written off the shard. Storing a letter takes two fsyncs (its file, then the
//! folder that names it): milliseconds on most disks, 8 ms on the test machine. A shard that
//! did that itself stalled every sender and endpoint it serves for as long, once per letter,
//! exactly when an endpoint refuses a run of messages or a sender floods unroutable ones.
//! Each shard has a thread that writes them instead, a batch at a time (each letter's file
//! synced, the folder once for the batch), while the shard awaits the answer and goes on
//! serving everyone else.
use std::future::Future;
use std::pin::Pin;
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll};

use atomic_waker::AtomicWaker;

use super::store::DeadLetterStore;
use super::{format, DeadLetterError, DeadLetterId, NewDeadLetter};

/// Letters written before the folder is synced once for all of them: enough to take a
/// flood in few folder syncs, few enough that the first letter's answer is not held long.
const MAX_BATCH: usize = 256;

/// Hands letters to the writer thread; dropping it ends the thread once the letters already
/// handed over are written.
pub struct LetterWriter {
    jobs: mpsc::Sender<Job>,
}

struct Job {
    bytes: Vec<u8>,
    time_unix_nanos: u64,
    answer: Arc<Answer>,
}

/// Filled by the writer thread, awaited on the shard.
#[derive(Default)]
struct Answer {
    result: Mutex<Option<Result<DeadLetterId, DeadLetterError>>>,
    waker: AtomicWaker,
}

impl Answer {
    fn fill(&self, result: Result<DeadLetterId, DeadLetterError>) {
        if let Ok(mut slot) = self.result.lock() {
            *slot = Some(result);
        }
        self.waker.wake();
    }

    fn take(&self) -> Option<Result<DeadLetterId, DeadLetterError>> {
        self.result.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// A letter handed to the writer: resolves once it is durable (`Ok` with its id), or could
/// not be stored.
#[must_use = "a letter is not stored until its answer says so"]
pub struct Written(Handed);

enum Handed {
    Waiting(Arc<Answer>),
    /// Refused before it reached the thread (too large, or the thread is gone).
    Failed(Option<DeadLetterError>),
}

impl Future for Written {
    type Output = Result<DeadLetterId, DeadLetterError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            Handed::Failed(error) => {
                Poll::Ready(Err(error.take().unwrap_or(DeadLetterError::WriterGone)))
            }
            Handed::Waiting(answer) => {
                if let Some(result) = answer.take() {
                    return Poll::Ready(result);
                }
                answer.waker.register(cx.waker());
                // Filled between the first look and the registration: its wake went to the
                // previous waker, so look again.
                match answer.take() {
                    Some(result) => Poll::Ready(result),
                    None => Poll::Pending,
                }
            }
        }
    }
}

impl LetterWriter {
    /// Starts the writer thread `name` for `store`.
    pub fn start(store: Arc<DeadLetterStore>, name: String) -> std::io::Result<LetterWriter> {
        let (jobs, receive) = mpsc::channel::<Job>();
        std::thread::Builder::new().name(name).spawn(move || {
            crate::runtime::shards::unpin_current_thread();
            while let Ok(first) = receive.recv() {
                let mut batch = vec![first];
                batch.extend(receive.try_iter().take(MAX_BATCH - 1));
                write_batch(&store, batch);
            }
        })?;
        Ok(LetterWriter { jobs })
    }

    /// Encodes `letter` here and hands it to the thread. Letters handed over before the first
    /// is awaited share the folder's sync.
    pub fn write(&self, letter: &NewDeadLetter<'_>) -> Written {
        let bytes = match format::encode(letter) {
            Ok(bytes) => bytes,
            Err(why) => return Written(Handed::Failed(Some(DeadLetterError::TooLarge(why)))),
        };
        let answer = Arc::new(Answer::default());
        let job = Job {
            bytes,
            time_unix_nanos: letter.time_unix_nanos,
            answer: Arc::clone(&answer),
        };
        match self.jobs.send(job) {
            Ok(()) => Written(Handed::Waiting(answer)),
            Err(_) => Written(Handed::Failed(None)),
        }
    }
}

/// Writes each letter's file (synced, linked under its id), then syncs the folder once; a
/// letter is answered `Ok` only when both its file and the folder's sync succeeded.
fn write_batch(store: &DeadLetterStore, batch: Vec<Job>) {
    let written: Vec<_> = batch
        .iter()
        .map(|job| store.write(&job.bytes, job.time_unix_nanos))
        .collect();
    let folder = if written.iter().any(Result::is_ok) {
        store.sync()
    } else {
        Ok(())
    };
    for (job, result) in batch.iter().zip(written) {
        let result = match (&folder, result) {
            (Ok(()), result) => result,
            // The file may be there after a crash, or not: not durable, so the message stays
            // in the log (a duplicate letter later is safe; a lost message is not).
            (Err(e), Ok(_)) => Err(folder_failed(store, e)),
            (Err(_), Err(e)) => Err(e),
        };
        job.answer.fill(result);
    }
}

/// The folder's failed sync, said for one letter of the batch (an `io::Error` is not `Clone`).
fn folder_failed(store: &DeadLetterStore, e: &DeadLetterError) -> DeadLetterError {
    let (kind, text) = match e {
        DeadLetterError::Io { source, .. } => (source.kind(), source.to_string()),
        other => (std::io::ErrorKind::Other, other.to_string()),
    };
    DeadLetterError::Io {
        op: "fsync",
        path: store.dir().to_path_buf(),
        source: std::io::Error::new(kind, text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deadletter::{Reason, State};
    use crate::wal::Origin;
    use std::os::unix::fs::PermissionsExt;

    fn letter<'a>(time: u64, message: &'a [u8]) -> NewDeadLetter<'a> {
        NewDeadLetter {
            time_unix_nanos: time,
            endpoint: "lab",
            reason: Reason::Rejected,
            detail: "AR: unknown patient",
            reply: Some(b"MSH|^~\\&|LAB||||||ACK|1|P|2.4\rMSA|AR|M1\r"),
            source: None,
            origin: Origin {
                listener: "mllp",
                peer: "127.0.0.1:5000",
                arrival_unix_nanos: time - 1,
                control_id: "M1",
            },
            message,
        }
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .map(|mut rt| rt.block_on(future))
            .unwrap_or_else(|e| panic!("runtime: {e}"))
    }

    #[test]
    fn letters_handed_over_together_are_all_stored_privately() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(DeadLetterStore::open(dir.path()).unwrap());
        let writer = LetterWriter::start(Arc::clone(&store), "letters-test".into()).unwrap();
        let messages: Vec<Vec<u8>> = (0..40)
            .map(|i| format!("MSH|^~\\&|A|B|C|D|2026||ADT^A01|M{i}|P|2.4\r").into_bytes())
            .collect();
        // Every letter handed over before any is awaited: the thread takes them in batches.
        let pending: Vec<Written> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| writer.write(&letter(1_000 + i as u64 / 4, m)))
            .collect();
        let ids: Vec<DeadLetterId> = block_on(async {
            let mut ids = Vec::new();
            for written in pending {
                ids.push(written.await.unwrap());
            }
            ids
        });
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            40,
            "four letters share each nanosecond: {ids:?}"
        );
        for (id, message) in ids.iter().zip(&messages) {
            let (stored, state) = store.show(id).unwrap();
            assert_eq!(state, State::Ready);
            assert_eq!(&stored.message, message);
            let mode = std::fs::metadata(store.dir().join(format!("{id}.dl")))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let leftovers: Vec<_> = std::fs::read_dir(store.dir())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }

    #[test]
    fn a_folder_that_is_gone_answers_every_letter_with_an_error_and_the_thread_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(DeadLetterStore::open(dir.path()).unwrap());
        let writer = LetterWriter::start(Arc::clone(&store), "letters-test".into()).unwrap();
        std::fs::remove_dir(store.dir()).unwrap();
        let failed = block_on(writer.write(&letter(7, b"MSH|x")));
        assert!(
            matches!(failed, Err(DeadLetterError::Io { op: "create", .. })),
            "{failed:?}"
        );
        crate::private_fs::create_dir_all(store.dir()).unwrap();
        let stored = block_on(writer.write(&letter(8, b"MSH|y"))).unwrap();
        assert_eq!(store.show(&stored).unwrap().0.message, b"MSH|y");
    }

    #[test]
    fn a_letter_too_large_to_encode_is_refused_before_the_thread() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(DeadLetterStore::open(dir.path()).unwrap());
        let writer = LetterWriter::start(store, "letters-test".into()).unwrap();
        let huge = "x".repeat(70_000);
        let mut too_large = letter(9, b"MSH|z");
        too_large.endpoint = &huge;
        let refused = block_on(writer.write(&too_large));
        assert!(
            matches!(refused, Err(DeadLetterError::TooLarge(_))),
            "{refused:?}"
        );
    }
}
