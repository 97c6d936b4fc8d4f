//! What a connection may hold: how many connections there are at once (in total and per
//! source), how long one may sit without sending or receiving a byte, and the process's file
//! limit they all share.
//!
//! A connection that sends nothing after the TCP (or TLS) handshake, or trickles, would
//! otherwise hold a file descriptor for ever; with the common 1,024-file limit about a thousand
//! of them lock every new client out. So: the soft file limit is raised to the hard limit at
//! start, at most `limits.max_connections` (kept below the file limit) are served at once and
//! the accept loop waits for a free place instead of accepting and failing; each source gets at
//! most `limits.max_connections_per_ip`; and every connection is closed after
//! `limits.idle_timeout_secs` without traffic. Headers must arrive within
//! `limits.header_timeout_secs` and bodies within `limits.body_timeout_secs` (see
//! `http::extract::read_limited`).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// File descriptors kept back from connections: the store, the HSM, logs, outgoing fetches.
const RESERVED_FILES: u64 = 128;

/// Raises the soft limit on open files to the hard limit; returns the soft limit now in force.
pub fn raise_file_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let cur = getrlimit(Resource::Nofile);
    if let (Some(soft), Some(hard)) = (cur.current, cur.maximum)
        && soft < hard
    {
        let want = rustix::process::Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        };
        if let Err(e) = setrlimit(Resource::Nofile, want) {
            tracing::warn!(error = %e, soft, hard, "cannot raise the open-file limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

/// The connection limit that fits the file limit `files` (None: no file limit).
pub fn fit_connections(configured: usize, files: Option<u64>) -> usize {
    match files {
        Some(f) => {
            let room =
                usize::try_from(f.saturating_sub(RESERVED_FILES).max(16)).unwrap_or(usize::MAX);
            configured.min(room).max(1)
        }
        None => configured.max(1),
    }
}

/// Admission of connections: a total and a per-source limit.
#[derive(Debug)]
pub struct ConnLimiter {
    total: Arc<Semaphore>,
    per_ip: usize,
    by_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// A connection's place; freed when dropped.
#[derive(Debug)]
pub struct ConnPermit {
    _total: OwnedSemaphorePermit,
    ip: IpAddr,
    by_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        if let Ok(mut m) = self.by_ip.lock()
            && let Some(n) = m.get_mut(&self.ip)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

impl ConnLimiter {
    /// At most `total` connections, `per_ip` from one source (0: no per-source limit).
    pub fn new(total: usize, per_ip: usize) -> Self {
        Self {
            total: Arc::new(Semaphore::new(total.max(1))),
            per_ip,
            by_ip: Arc::default(),
        }
    }

    /// Waits until fewer than the total limit are open (the accept loop calls this before it
    /// accepts, so at the limit new clients wait in the kernel's backlog).
    pub async fn place(&self) -> Option<OwnedSemaphorePermit> {
        self.total.clone().acquire_owned().await.ok()
    }

    /// Admits a connection from `ip` into `place`, unless `ip` holds its share already
    /// (`exempt`: a trusted reverse proxy, which carries many clients).
    pub fn admit(
        &self,
        place: OwnedSemaphorePermit,
        ip: IpAddr,
        exempt: bool,
    ) -> Option<ConnPermit> {
        let ip = ip.to_canonical();
        let mut m = self.by_ip.lock().ok()?;
        let n = m.entry(ip).or_insert(0);
        if self.per_ip > 0 && *n >= self.per_ip && !exempt {
            return None;
        }
        *n += 1;
        Some(ConnPermit {
            _total: place,
            ip,
            by_ip: self.by_ip.clone(),
        })
    }

    /// Connections open now.
    pub fn open(&self, limit: usize) -> usize {
        limit.saturating_sub(self.total.available_permits())
    }
}

/// An I/O stream that fails with `TimedOut` once it has neither read nor written a byte for
/// its idle time. Traffic only notes the time (no timer work per read or write); the timer is
/// looked at, and moved on, when the stream waits.
#[derive(Debug)]
pub struct IdleIo<T> {
    inner: T,
    idle: Duration,
    last: Instant,
    timer: Pin<Box<Sleep>>,
}

impl<T> IdleIo<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, idle: Duration) -> Self {
        Self {
            inner,
            idle,
            last: Instant::now(),
            timer: Box::pin(tokio::time::sleep(idle)),
        }
    }

    fn touch(&mut self) {
        self.last = Instant::now();
    }

    /// Whether the stream has been idle too long; otherwise arms the timer for when it would
    /// be, so a waiting task is woken then.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            let due = self.last + self.idle;
            if Instant::now() >= due {
                return true;
            }
            self.timer.as_mut().reset(due);
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle for too long")
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.touch();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.touch();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.touch();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn connections_fit_the_file_limit() {
        assert_eq!(fit_connections(4096, Some(1024)), 896);
        assert_eq!(fit_connections(100, Some(1 << 20)), 100);
        assert_eq!(fit_connections(4096, None), 4096);
        assert_eq!(fit_connections(4096, Some(10)), 16);
    }

    #[tokio::test]
    async fn per_source_share_and_release() {
        let l = ConnLimiter::new(4, 2);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let _a = l.admit(l.place().await.unwrap(), ip, false).unwrap();
        let b = l.admit(l.place().await.unwrap(), mapped, false).unwrap();
        // A third from the same source (mapped or not) is refused; its place is freed.
        assert!(l.admit(l.place().await.unwrap(), ip, false).is_none());
        assert_eq!(l.open(4), 2);
        // A trusted proxy may exceed it; other sources are not affected.
        let proxy = l.admit(l.place().await.unwrap(), ip, true).unwrap();
        let _o = l.admit(l.place().await.unwrap(), other, false).unwrap();
        drop(proxy);
        drop(b);
        assert!(l.admit(l.place().await.unwrap(), ip, false).is_some());
    }

    #[tokio::test]
    async fn idle_streams_time_out() {
        let (a, _b) = tokio::io::duplex(64);
        let mut io = IdleIo::new(a, Duration::from_millis(50));
        let mut buf = [0u8; 8];
        let e = tokio::io::AsyncReadExt::read(&mut io, &mut buf)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }
}
