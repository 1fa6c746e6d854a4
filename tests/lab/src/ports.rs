//! The engine's ports on 127.0.0.1, held by the host daemon for its whole life.
//!
//! A port chosen by one process and bound later by another can be taken in between (by a
//! parallel test, say). So the daemon asks the kernel for ports (bind to port 0, which never
//! yields a port somebody holds) and keeps each bound but not listening until it exits: while
//! the engine is down a connection is refused, as on a host where nothing listens, and nothing
//! else is handed these ports. The engine binds the same port (both sockets allow address
//! reuse, which Linux grants while the holder does not listen) and listens while it runs.

use socket2::{Domain, Protocol, Socket, Type};
use std::net::{Ipv4Addr, SocketAddr};

/// A port on 127.0.0.1 bound by this process and not listening, held until dropped.
pub struct HeldPort {
    _socket: Socket,
    /// The port the kernel chose.
    pub port: u16,
}

impl HeldPort {
    /// Binds a port the kernel chooses among the free ones on 127.0.0.1.
    pub fn new() -> std::io::Result<HeldPort> {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())?;
        let port = socket
            .local_addr()?
            .as_socket()
            .map(|address| address.port())
            .ok_or_else(|| std::io::Error::other("bound socket has no IPv4 address"))?;
        Ok(HeldPort {
            _socket: socket,
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::ErrorKind;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn a_held_port_refuses_connections_and_lets_only_its_engine_listen() {
        let held = HeldPort::new().unwrap();
        let address = (Ipv4Addr::LOCALHOST, held.port);
        let refused = TcpStream::connect(address).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
        // The engine listens on it (std binds with SO_REUSEADDR, as the engine server does).
        let engine = TcpListener::bind(address).unwrap();
        TcpStream::connect(address).unwrap();
        // While the engine listens nobody else can bind it.
        assert!(TcpListener::bind(address).is_err());
        drop(engine);
        assert_eq!(
            TcpStream::connect(address).unwrap_err().kind(),
            ErrorKind::ConnectionRefused
        );
        // The kernel never hands a held port to anyone asking for a free one.
        let others: Vec<TcpListener> = (0..200)
            .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap())
            .collect();
        assert!(others
            .iter()
            .all(|other| other.local_addr().unwrap().port() != held.port));
    }
}
