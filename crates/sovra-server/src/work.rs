//! A bounded pool of threads for the CPU-heavy work of requests that anyone may send:
//! evidence verification (signatures, certificate chains) and policy compilation and
//! evaluation.
//!
//! That work runs here, not on the async runtime's workers, so a slow attestation cannot stall
//! the key-management API. The queue is bounded: when it is full the request is refused at once
//! with `OVERLOADED` (503, `Retry-After`) instead of waiting in an ever longer line. The threads
//! are plain threads, so they never hold up shutdown; every job is itself bounded (policy work
//! budgets, certificate caps, the Rego timer), so none runs for long.

use crate::error::{Error, Result};
use sovra_proto::ErrorCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// The pool.
#[derive(Debug)]
pub struct WorkPool {
    tx: SyncSender<Job>,
    threads: usize,
    queue: usize,
    busy: Arc<AtomicUsize>,
    /// What its jobs are, for the refusal message.
    what: &'static str,
    /// The code a full queue answers with.
    full: ErrorCode,
}

impl WorkPool {
    /// `threads` workers (0: one per core) taking jobs from a queue of `queue` places.
    pub fn new(threads: usize, queue: usize) -> Self {
        Self::named(
            threads,
            queue,
            "work",
            "verifications",
            ErrorCode::Overloaded,
        )
    }

    /// A pool whose threads are called `sovra-{name}-N`, whose jobs are `what`, and whose full
    /// queue answers `full`.
    pub fn named(
        threads: usize,
        queue: usize,
        name: &str,
        what: &'static str,
        full: ErrorCode,
    ) -> Self {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(2, usize::from)
        } else {
            threads
        };
        let queue = queue.max(1);
        let (tx, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        let busy = Arc::new(AtomicUsize::new(0));
        for i in 0..threads {
            let rx = rx.clone();
            let busy = busy.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("sovra-{name}-{i}"))
                .spawn(move || worker(&rx, &busy));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a work thread");
            }
        }
        Self {
            tx,
            threads,
            queue,
            busy,
            what,
            full,
        }
    }

    /// Jobs running or waiting now.
    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::Relaxed)
    }

    /// Runs `f` on the pool and waits for its result; refuses at once when the queue is full.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (done, wait) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = done.send(r);
        });
        self.busy.fetch_add(1, Ordering::Relaxed);
        match self.tx.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.busy.fetch_sub(1, Ordering::Relaxed);
                let mut e = Error::new(
                    self.full,
                    format!(
                        "the server is at capacity ({} {} running or queued on {} threads); retry shortly",
                        self.queue + self.threads,
                        self.what,
                        self.threads
                    ),
                );
                e.retry_after = Some(1);
                return Err(e);
            }
            Err(TrySendError::Disconnected(_)) => {
                self.busy.fetch_sub(1, Ordering::Relaxed);
                return Err(Error::internal("the work pool has stopped"));
            }
        }
        match wait.await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err(Error::internal("a work job panicked")),
            Err(_) => Err(Error::internal("the work pool dropped a job")),
        }
    }
}

/// Takes jobs until the pool is dropped. After a job, a worker looks for the next one a few
/// times (yielding the CPU in between) before it sleeps: under load the next job is almost
/// always there, and taking it without a sleep and a wake-up halves the cost of a short job.
fn worker(rx: &Mutex<Receiver<Job>>, busy: &AtomicUsize) {
    const TRIES: usize = 8;
    loop {
        let mut job = None;
        for _ in 0..TRIES {
            match rx.lock().map(|r| r.try_recv()) {
                Ok(Ok(j)) => {
                    job = Some(j);
                    break;
                }
                Ok(Err(std::sync::mpsc::TryRecvError::Empty)) => std::thread::yield_now(),
                Ok(Err(std::sync::mpsc::TryRecvError::Disconnected)) | Err(_) => return,
            }
        }
        let job = match job {
            Some(j) => j,
            None => match rx.lock() {
                Ok(r) => match r.recv() {
                    Ok(j) => j,
                    Err(_) => return,
                },
                Err(_) => return,
            },
        };
        job();
        busy.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn holder(
        pool: &Arc<WorkPool>,
        hold: &Arc<Mutex<std::sync::mpsc::Receiver<()>>>,
    ) -> tokio::task::JoinHandle<bool> {
        let (pool, hold) = (pool.clone(), hold.clone());
        tokio::spawn(async move {
            pool.run(move || {
                let _ = hold.lock().unwrap().recv();
            })
            .await
            .is_ok()
        })
    }

    #[tokio::test]
    async fn runs_jobs_and_refuses_past_the_queue() {
        let pool = Arc::new(WorkPool::new(1, 1));
        assert_eq!(pool.run(|| 2 + 2).await.unwrap(), 4);
        // One job holds the thread, one waits in the queue; the third is refused at once.
        let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
        let hold = Arc::new(Mutex::new(hold_rx));
        let a = holder(&pool, &hold);
        while pool.busy() < 1 {
            tokio::task::yield_now().await;
        }
        // Let the thread take the first job out of the queue.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let b = holder(&pool, &hold);
        while pool.busy() < 2 {
            tokio::task::yield_now().await;
        }
        let e = pool.run(|| ()).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Overloaded);
        assert_eq!(e.retry_after, Some(1));
        hold_tx.send(()).unwrap();
        hold_tx.send(()).unwrap();
        assert!(a.await.unwrap() && b.await.unwrap());
        // A panicking job is an error for its caller, and the thread lives on.
        let e = pool
            .run(|| -> u8 { std::panic::panic_any("boom") })
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Internal);
        assert_eq!(pool.run(|| 7).await.unwrap(), 7);
    }
}
