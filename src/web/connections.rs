//! What a client may hold on a listener: a slot among `max-connections`,
//! of which one client address (an IPv4 address, an IPv6 /64) may hold
//! `max-connections-per-ip`, taken when the connection is accepted and
//! refused (closed at once) when there is none, so excess connections cost
//! a file descriptor for an instant rather than forever, and one client
//! cannot take every slot; a deadline on the TLS handshake, on the
//! first request head, on a kept-alive connection with nothing in flight
//! and on each gap of a request body; and at most
//! `http2-max-concurrent-streams` requests on one HTTP/2 connection.
//!
//! A connection's slot is released when the connection has closed *and*
//! every request it carried has finished: each request carries a clone of
//! the slot, and the ACME routes move it into the task that finishes the
//! handler after a client hangs up (`acme::run_to_completion`). So
//! connections plus such detached handlers never exceed `max-connections`,
//! and their requests never exceed that times the HTTP/2 stream limit.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response};
use axum_server::accept::{Accept, DefaultAcceptor};
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use futures_util::future::BoxFuture;
use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tower_http::timeout::TimeoutBody;

use crate::config::connections::ConnectionLimits;

/// One of a listener's `max-connections` slots and of its client's
/// `max-connections-per-ip`, held by the connection and by every request on
/// it (see the module documentation).
#[derive(Clone)]
pub struct ConnectionSlot {
    _held: Arc<(OwnedSemaphorePermit, ClientHold)>,
}

/// Connections per client address on one listener.
#[derive(Default)]
struct PerClient(Mutex<HashMap<IpAddr, usize>>);

/// One connection counted for a client; dropping it uncounts it.
struct ClientHold {
    table: Arc<PerClient>,
    client: IpAddr,
}

impl PerClient {
    fn hold(self: &Arc<Self>, peer: IpAddr, max: usize) -> Option<ClientHold> {
        let client = client_of(peer);
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(client).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(ClientHold {
            table: self.clone(),
            client,
        })
    }
}

impl Drop for ClientHold {
    fn drop(&mut self) {
        let mut counts = self.table.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.client);
            }
        }
    }
}

/// The address a client is counted under: an IPv4 address (also when
/// mapped into IPv6), or the /64 of an IPv6 one, since one host usually
/// has a whole /64 to pick source addresses from.
fn client_of(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
}

/// A listener serving under [`ConnectionLimits`].
pub type LimitedServer<A> = axum_server::Server<Limited<A>>;

/// HTTPS on `listener`, with the handshake deadline and the limits.
pub fn https(
    listener: std::net::TcpListener,
    tls: RustlsConfig,
    limits: ConnectionLimits,
    name: &'static str,
) -> LimitedServer<RustlsAcceptor> {
    let tls = RustlsAcceptor::new(tls).handshake_timeout(limits.tls_handshake_timeout);
    limited(axum_server::from_tcp(listener), tls, limits, name)
}

/// Plain HTTP on `listener`, with the limits.
pub fn http(
    listener: std::net::TcpListener,
    limits: ConnectionLimits,
    name: &'static str,
) -> LimitedServer<DefaultAcceptor> {
    limited(
        axum_server::from_tcp(listener),
        DefaultAcceptor,
        limits,
        name,
    )
}

fn limited<A>(
    server: axum_server::Server,
    inner: A,
    limits: ConnectionLimits,
    name: &'static str,
) -> LimitedServer<A> {
    let mut server = server.acceptor(Limited {
        inner,
        slots: Arc::new(Semaphore::new(limits.max_connections)),
        per_client: Arc::default(),
        refused: Arc::default(),
        limits,
        name,
    });
    server
        .http_builder()
        .http2()
        .max_concurrent_streams(limits.http2_max_concurrent_streams);
    server
}

/// The acceptor of a listener under limits, around the TLS (or no-op) one.
#[derive(Clone)]
pub struct Limited<A> {
    inner: A,
    slots: Arc<Semaphore>,
    per_client: Arc<PerClient>,
    /// Connections refused since the start, for the log.
    refused: Arc<AtomicU64>,
    limits: ConnectionLimits,
    name: &'static str,
}

impl<A> Limited<A> {
    /// Counts a refusal and logs it at the 1st, 2nd, 4th, 8th… so that a
    /// flood is visible without the log becoming the next exhausted resource.
    fn note_refusal(&self, peer: Option<IpAddr>) {
        let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        if refused.is_power_of_two() {
            tracing::warn!(
                listener = self.name,
                client = ?peer,
                max_connections = self.limits.max_connections,
                max_connections_per_ip = self.limits.max_connections_per_ip,
                refused_so_far = refused,
                "connection refused: the listener or this client holds its maximum of connections"
            );
        }
    }

    /// A slot for a connection from `peer`, if the listener and the client
    /// both have one left.
    fn slot_for(&self, peer: Option<IpAddr>) -> Option<ConnectionSlot> {
        let hold = self
            .per_client
            .hold(peer?, self.limits.max_connections_per_ip)?;
        let permit = self.slots.clone().try_acquire_owned().ok()?;
        Some(ConnectionSlot {
            _held: Arc::new((permit, hold)),
        })
    }
}

impl<A, S> Accept<TcpStream, S> for Limited<A>
where
    A: Accept<TcpStream, S> + Clone + Send + Sync + 'static,
    A::Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    A::Service: Send + 'static,
    A::Future: Send + 'static,
    S: Send + 'static,
{
    type Stream = Guarded<A::Stream>;
    type Service = Tracked<A::Service>;
    type Future = BoxFuture<'static, io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let peer = stream.peer_addr().ok().map(|addr| addr.ip());
        let Some(slot) = self.slot_for(peer) else {
            self.note_refusal(peer);
            // Dropping the stream closes it before a byte is read.
            drop(stream);
            return Box::pin(std::future::ready(Err(io::Error::other(
                "max-connections reached",
            ))));
        };
        let handshake = self.inner.accept(stream, service);
        let limits = self.limits;
        Box::pin(async move {
            let (stream, service) = handshake.await?;
            let activity = Arc::new(Activity::default());
            let stream = Guarded {
                inner: stream,
                _slot: slot.clone(),
                activity: activity.clone(),
                deadline: Box::pin(tokio::time::sleep(limits.header_read_timeout)),
                seen_generation: 0,
                head_started: false,
                limits,
            };
            let service = Tracked {
                inner: service,
                slot,
                activity,
                body_timeout: limits.header_read_timeout,
            };
            Ok((stream, service))
        })
    }
}

/// Whether a connection is answering something, shared by its stream and
/// its service.
#[derive(Default)]
struct Activity {
    in_flight: AtomicUsize,
    /// Bumped when a request starts and when it ends.
    generation: AtomicU64,
    /// The connection's reader, woken when a request ends so that it sets
    /// the idle deadline then: hyper does not poll a read that is pending
    /// until something wakes it.
    reader: AtomicWaker,
}

impl Activity {
    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.generation.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }
}

/// A request being answered; dropping it marks the end.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.generation.fetch_add(1, Ordering::AcqRel);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.reader.wake();
    }
}

/// A connection's byte stream with its deadlines. While a request is in
/// flight the handler's own time applies (and the body timeout); otherwise
/// the connection must show progress by a deadline, or reading fails with
/// `TimedOut` and the server closes it:
/// - until the first request: `header-read-timeout` from the handshake;
/// - between requests: `idle-timeout` from the end of the last one, and
///   once bytes of a new head arrive, `header-read-timeout` from the first
///   of them (whichever comes first).
///
/// Bytes alone never extend a deadline, so a client cannot keep a
/// connection by trickling a header a byte at a time.
pub struct Guarded<S> {
    inner: S,
    _slot: ConnectionSlot,
    activity: Arc<Activity>,
    deadline: Pin<Box<Sleep>>,
    /// The [`Activity::generation`] the deadline was last set for.
    seen_generation: u64,
    /// Bytes of a new request head have arrived since the last request.
    head_started: bool,
    limits: ConnectionLimits,
}

impl<S> Guarded<S> {
    fn idle(&self) -> bool {
        self.activity.in_flight.load(Ordering::Acquire) == 0
    }

    fn shorten_deadline(&mut self, by: Duration) {
        let wanted = Instant::now() + by;
        if wanted < self.deadline.deadline() {
            self.deadline.as_mut().reset(wanted);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read_something = buf.filled().len() > before;
                let between_requests = this.seen_generation > 0 && this.idle();
                if read_something && between_requests && !this.head_started {
                    this.head_started = true;
                    this.shorten_deadline(this.limits.header_read_timeout);
                }
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
            Poll::Pending => this.activity.reader.register(cx.waker()),
        }
        if !this.idle() {
            return Poll::Pending;
        }
        let generation = this.activity.generation.load(Ordering::Acquire);
        if generation != this.seen_generation {
            // A request has started and ended since the deadline was set.
            this.seen_generation = generation;
            this.head_started = false;
            let idle_until = Instant::now() + this.limits.idle_timeout;
            this.deadline.as_mut().reset(idle_until);
        }
        match this.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection idle past its deadline",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A connection's service: marks each request in flight, gives it the
/// connection's [`ConnectionSlot`] (as a request extension) and a deadline
/// on each gap of its body.
#[derive(Clone)]
pub struct Tracked<S> {
    inner: S,
    slot: ConnectionSlot,
    activity: Arc<Activity>,
    body_timeout: Duration,
}

impl<S, B, ResBody> tower_service::Service<Request<B>> for Tracked<S>
where
    S: tower_service::Service<Request<Body>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let in_flight = self.activity.begin();
        let timeout = self.body_timeout;
        let mut request = request.map(|body| Body::new(TimeoutBody::new(timeout, body)));
        request.extensions_mut().insert(self.slot.clone());
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await;
            drop(in_flight);
            response
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_an_ipv4_address_or_an_ipv6_slash_64() {
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        assert_eq!(client_of(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(client_of(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(client_of(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            client_of(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            ip("2001:db8:1:2::")
        );
        assert_ne!(client_of(ip("2001:db8:1:3::1")), ip("2001:db8:1:2::"));
    }

    #[test]
    fn a_client_holds_at_most_its_share_until_it_lets_go() {
        let table = Arc::new(PerClient::default());
        let one: IpAddr = "2001:db8::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8::2".parse().unwrap();
        let other: IpAddr = "192.0.2.1".parse().unwrap();
        let first = table.hold(one, 2).unwrap();
        let second = table.hold(same_64, 2).unwrap();
        assert!(table.hold(one, 2).is_none());
        assert!(table.hold(other, 2).is_some());
        drop(first);
        assert!(table.hold(same_64, 2).is_some());
        drop(second);
        assert!(table.0.lock().unwrap().is_empty());
    }
}
