//! The listening socket, bound with SO_REUSEPORT: a new server version starts listening on the same port beside
//! the running one, the kernel spreads new connections over both, and the old one, told to stop (SIGTERM),
//! closes its socket and finishes the requests it has. So an upgrade never turns a till away. Linux lets only
//! processes of the same user share a port this way.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// Connections the kernel queues for the server before it takes them.
const BACKLOG: u32 = 1024;

pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // A restarted server need not wait for its predecessor's connections to leave TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}
