//! The address clients are given is a small TCP relay in front of the HTTP
//! server. It exists for one reason: to drop a connection the way a crashed
//! node or a broken network does — before the request is processed, or after
//! it was processed but before the answer arrives — which an HTTP handler
//! cannot do.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::state::App;

pub async fn run(listener: TcpListener, inner: SocketAddr, app: Arc<App>) {
    while let Ok((client, _)) = listener.accept().await {
        tokio::spawn(pipe(client, inner, app.clone()));
    }
}

/// Copies bytes both ways until either side closes or a drop switch fires.
async fn pipe(mut client: TcpStream, inner: SocketAddr, app: Arc<App>) {
    let Ok(mut server) = TcpStream::connect(inner).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = server.split();
    let mut upstream = vec![0u8; 16 * 1024];
    let mut downstream = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            read = client_read.read(&mut upstream) => {
                let n = match read { Ok(0) | Err(_) => return, Ok(n) => n };
                if app.faults.take_drop_request() || server_write.write_all(&upstream[..n]).await.is_err() {
                    return;
                }
            }
            read = server_read.read(&mut downstream) => {
                let n = match read { Ok(0) | Err(_) => return, Ok(n) => n };
                if app.faults.take_drop_response() || client_write.write_all(&downstream[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}
