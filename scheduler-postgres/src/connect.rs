//! The first connection of an eager connect, opened on its own so that a
//! server that cannot be reached is reported at once, with its cause.
//!
//! sqlx's pool treats a refused connection as transient and retries it
//! until its acquire timeout (10 s by default), then reports only "pool
//! timed out while waiting for an open connection". A caller of
//! [`PgLeaseStore::connect_with`](crate::PgLeaseStore::connect_with) wants
//! to know now, and why: nothing listening, a host name that does not
//! resolve, a refused password, a missing database.

use std::io::ErrorKind;
use std::time::Duration;

use scheduler_core::StoreError;
use sqlx_core::connection::Connection;
use sqlx_postgres::{PgConnectOptions, PgConnection};

use crate::rows::{describe, sqlstate};

/// Opens one connection to the server `connect` names, within `timeout`,
/// and closes it.
///
/// # Errors
/// [`StoreError::Backend`] naming the server's address (never the
/// password), what went wrong, and what to check.
pub(crate) async fn check(connect: &PgConnectOptions, timeout: Duration) -> Result<(), StoreError> {
    match sqlx_core::rt::timeout(timeout, PgConnection::connect_with(connect)).await {
        Ok(Ok(conn)) => {
            // The server was there; how the goodbye goes does not matter.
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(StoreError::Backend {
            message: format!("postgres connect: {}", failure(connect, &e)),
            source: Some(Box::new(e)),
        }),
        Err(_) => Err(StoreError::backend_msg(format!(
            "postgres connect: no answer from the server at {} within {timeout:?}; check the \
             host and port, and any firewall between",
            address(connect)
        ))),
    }
}

/// Where the options point: `host:port`, or the socket directory and port.
/// The URL's other parts (user, password, parameters) are left out.
fn address(connect: &PgConnectOptions) -> String {
    let port = connect.get_port();
    match connect.get_socket() {
        Some(socket) => format!("{} (port {port})", socket.display()),
        // An IPv6 address needs brackets before a port.
        None if connect.get_host().contains(':') => format!("[{}]:{port}", connect.get_host()),
        None => format!("{}:{port}", connect.get_host()),
    }
}

/// What went wrong reaching the server `connect` names, and what to check.
fn failure(connect: &PgConnectOptions, e: &sqlx_core::Error) -> String {
    let at = address(connect);
    match e {
        sqlx_core::Error::Io(io) if io.kind() == ErrorKind::ConnectionRefused => format!(
            "the server is not reachable at {at}: connection refused; is PostgreSQL running, \
             and listening on that address and port?"
        ),
        // rustls reports a failed handshake (an unknown issuer, a name the
        // certificate does not cover) as invalid data on the socket, which
        // is not how a plain socket fails.
        sqlx_core::Error::Io(io) if io.kind() == ErrorKind::InvalidData => format!(
            "TLS with the server at {at} failed: {io}; check sslmode and sslrootcert (the CA \
             that signed the server's certificate), and that the URL's host is a name the \
             certificate covers"
        ),
        // Over TCP, the only files a connection opens are the ones the URL
        // names (a missing Unix socket is the server not being there).
        sqlx_core::Error::Io(io)
            if matches!(io.kind(), ErrorKind::NotFound | ErrorKind::PermissionDenied)
                && connect.get_socket().is_none() =>
        {
            format!(
                "cannot read a file the URL names (sslrootcert, sslcert or sslkey) to connect \
                 to {at}: {io}"
            )
        }
        sqlx_core::Error::Io(io) => {
            format!("the server is not reachable at {at}: {io}; check the host name and port")
        }
        sqlx_core::Error::Tls(_) if cfg!(not(feature = "tls")) => format!(
            "the URL asks for TLS with the server at {at}, and this build has none: turn on \
             scheduler-postgres's tls feature, or use sslmode=prefer or disable"
        ),
        sqlx_core::Error::Tls(_) => format!(
            "TLS with the server at {at} failed: {}; check sslmode and sslrootcert",
            describe(e)
        ),
        _ => match sqlstate(e) {
            Some(code) => {
                let advice = match code.as_str() {
                    // invalid_catalog_name
                    "3D000" => "; create the database, or fix its name in the URL",
                    // invalid_authorization_specification, invalid_password
                    _ if code.starts_with("28") => {
                        "; check the user name and password, and the server's pg_hba.conf"
                    }
                    _ => "",
                };
                format!(
                    "the server at {at} refused the connection: {}{advice}",
                    describe(e)
                )
            }
            None => format!("cannot connect to the server at {at}: {}", describe(e)),
        },
    }
}
