//! TLS to the server, with `sslmode` and `sslrootcert` in the URL as libpq
//! reads them (the crate's `tls` feature, on by default).
//!
//! The server's own certificate cannot be chosen by a test, so most tests
//! talk to a TLS-terminating proxy in front of it, with a CA and a server
//! certificate for `localhost` the test makes. PostgreSQL's TLS begins with
//! an SSLRequest, which the proxy answers `S`; after the handshake the
//! client sends its StartupMessage, which the proxy forwards to the real
//! server over plain TCP as the first message of an ordinary connection.
//! One test connects to the real server itself with `sslmode=require`.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use scheduler_core::{ClaimOutcome, ClaimRequest, LeaseStore, PlanKey, Scope, StoreError};
use scheduler_postgres::PgLeaseStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use common::{test_db, TestDb};

/// The SSLRequest: length 8, then the code 80877103 (1234 << 16 | 5679).
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// A CA the test made: its certificate in a PEM file, and what signs with
/// its key.
struct Ca {
    pem: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(dir: &tempfile::TempDir, name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, format!("scheduler test CA {name}"));
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let pem = dir.path().join(format!("{name}.pem"));
    std::fs::write(&pem, cert.pem()).unwrap();
    Ca {
        pem,
        issuer: Issuer::new(params, key),
    }
}

/// A server certificate for `localhost` (and no other name), signed by `ca`.
fn localhost_cert(ca: &Ca) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca.issuer)
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    (cert.der().clone(), key)
}

/// The proxy's port on 127.0.0.1, and how many TLS handshakes it completed.
struct Proxy {
    port: u16,
    sessions: Arc<AtomicUsize>,
}

/// A TLS-terminating proxy in front of the server at `real`, presenting
/// `cert`. It lives as long as the test's runtime.
async fn tls_proxy(
    real: SocketAddr,
    (cert, key): (CertificateDer<'static>, PrivateKeyDer<'static>),
) -> Proxy {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let sessions = Arc::new(AtomicUsize::new(0));
    let counted = sessions.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (acceptor, counted) = (acceptor.clone(), counted.clone());
            tokio::spawn(async move {
                let _ = forward(client, real, &acceptor, &counted).await;
            });
        }
    });
    Proxy { port, sessions }
}

/// One client of the proxy: SSLRequest, `S`, the handshake, then bytes
/// both ways. A client that refuses the certificate ends it at the
/// handshake.
async fn forward(
    mut client: TcpStream,
    real: SocketAddr,
    acceptor: &TlsAcceptor,
    sessions: &AtomicUsize,
) -> std::io::Result<()> {
    let mut request = [0u8; 8];
    client.read_exact(&mut request).await?;
    if request != SSL_REQUEST {
        // Only a client that asks for TLS is served.
        return Ok(());
    }
    client.write_all(b"S").await?;
    let mut tls = acceptor.accept(client).await?;
    sessions.fetch_add(1, Ordering::SeqCst);
    let mut server = TcpStream::connect(real).await?;
    tokio::io::copy_bidirectional(&mut tls, &mut server).await?;
    Ok(())
}

/// The test's CA, another CA, and a proxy presenting a `localhost`
/// certificate the first signed.
struct Setup {
    db: TestDb,
    _dir: tempfile::TempDir,
    signing: Ca,
    other: Ca,
    proxy: Proxy,
}

async fn setup() -> Option<Setup> {
    let db = test_db().await?;
    let dir = tempfile::tempdir().unwrap();
    let (signing, other) = (ca(&dir, "signing"), ca(&dir, "other"));
    let proxy = tls_proxy(db.server_addr(), localhost_cert(&signing)).await;
    Some(Setup {
        db,
        _dir: dir,
        signing,
        other,
        proxy,
    })
}

impl Setup {
    /// The test server's URL through the proxy, as `host`, with `params`.
    fn url(&self, host: &str, params: &[(&str, &str)]) -> String {
        let mut url = url::Url::parse(&self.db.url).unwrap();
        url.set_host(Some(host)).unwrap();
        url.set_port(Some(self.proxy.port)).unwrap();
        url.query_pairs_mut().extend_pairs(params);
        url.to_string()
    }

    /// The URL through the proxy as `host`, with `sslmode` and, when
    /// given, `root`'s certificate as `sslrootcert`.
    fn tls_url(&self, host: &str, sslmode: &str, root: Option<&Ca>) -> String {
        let mut params = vec![("sslmode", sslmode)];
        params.extend(root.map(|ca| ("sslrootcert", ca.pem.to_str().unwrap())));
        self.url(host, &params)
    }

    fn sessions(&self) -> usize {
        self.proxy.sessions.load(Ordering::SeqCst)
    }

    async fn connect(&self, url: &str) -> Result<PgLeaseStore, StoreError> {
        PgLeaseStore::connect_with(url, &self.db.options("tls", 2)).await
    }

    /// Connects with `url` and claims a plan of `job`, through TLS.
    async fn claims_over_tls(&self, url: &str, job: &str) {
        let before = self.sessions();
        let store = self.connect(url).await.unwrap();
        claims(&store, job).await;
        assert!(self.sessions() > before, "the connections went through TLS");
    }
}

/// A claim on `store`: the store works, not only its connect.
async fn claims(store: &PgLeaseStore, job: &str) {
    let key = [PlanKey {
        scope: Scope::global(),
        plan_time: scheduler_core::plan::floor(store.now().await.unwrap(), Duration::from_secs(60)),
    }];
    let outcomes = store
        .claim(&ClaimRequest {
            finishing: &[],
            steering: scheduler_core::model::Steering::NONE,
            job_name: job,
            runner_id: "tls",
            max_attempts: 1,
            stale_timeout: Duration::from_secs(60),
            allow_stale_reentry: false,
            keys: &key,
        })
        .await
        .unwrap();
    assert!(
        matches!(outcomes[..], [ClaimOutcome::Won(_)]),
        "{outcomes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_with_the_signing_ca_connects_and_claims() {
    let Some(t) = setup().await else { return };
    let url = t.tls_url("localhost", "verify-full", Some(&t.signing));
    t.claims_over_tls(&url, "verify_full").await;
    t.db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_with_another_ca_is_refused_with_a_clear_error() {
    let Some(t) = setup().await else { return };
    let url = t.tls_url("localhost", "verify-full", Some(&t.other));
    let err = t.connect(&url).await.unwrap_err();
    assert!(matches!(err, StoreError::Backend { .. }), "{err:?}");
    let shown = err.to_string();
    let at = format!("localhost:{}", t.proxy.port);
    for expected in [
        format!("TLS with the server at {at} failed"),
        "invalid peer certificate".to_owned(),
        "UnknownIssuer".to_owned(),
        "sslrootcert".to_owned(),
    ] {
        assert!(shown.contains(&expected), "{expected:?} in {shown}");
    }
    assert_eq!(t.sessions(), 0, "no handshake completed");
    t.db.drop_schema().await;
}

/// verify-full checks the name the URL connects to against the
/// certificate; verify-ca checks only who signed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_checks_the_host_name_and_verify_ca_does_not() {
    let Some(t) = setup().await else { return };
    let by_address = |mode| t.tls_url("127.0.0.1", mode, Some(&t.signing));
    let err = t.connect(&by_address("verify-full")).await.unwrap_err();
    assert!(
        err.to_string().contains("not valid for name"),
        "the certificate names localhost, not 127.0.0.1: {err}"
    );
    t.claims_over_tls(&by_address("verify-ca"), "verify_ca")
        .await;
    t.db.drop_schema().await;
}

/// `require` checks who signed the certificate when a root certificate is
/// named, as libpq does (as `verify-ca`: not the name), and not otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_checks_the_certificate_only_when_a_root_certificate_is_named() {
    let Some(t) = setup().await else { return };
    let require = |root| t.tls_url("127.0.0.1", "require", root);
    let err = t.connect(&require(Some(&t.other))).await.unwrap_err();
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    for root in [None, Some(&t.signing)] {
        let job = format!("require_{}", root.is_some());
        t.claims_over_tls(&require(root), &job).await;
    }
    t.db.drop_schema().await;
}

/// sslmode=prefer, the default, uses TLS when the server offers it,
/// whatever its certificate, as libpq does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefer_uses_tls_when_offered_without_checking_the_certificate() {
    let Some(t) = setup().await else { return };
    t.claims_over_tls(&t.url("127.0.0.1", &[]), "prefer").await;
    t.db.drop_schema().await;
}

/// The real server, with the certificate it has (Debian's snakeoil on the
/// machines this project runs on), which sslmode=require does not check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_require_to_the_real_server_connects_over_tls() {
    let Some(db) = test_db().await else { return };
    let ssl: String = sqlx_core::query_scalar::query_scalar("SHOW ssl")
        .fetch_one(&db.admin)
        .await
        .unwrap();
    if ssl != "on" {
        common::skip("the server has ssl = off (Debian's package turns it on)");
        return db.drop_schema().await;
    }
    let mut url = url::Url::parse(&db.url).unwrap();
    url.query_pairs_mut().append_pair("sslmode", "require");
    let store = PgLeaseStore::connect_with(url.as_str(), &db.options("require", 1))
        .await
        .unwrap();
    let encrypted: bool = sqlx_core::query_scalar::query_scalar(
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(encrypted, "the store's connection is encrypted");
    claims(&store, "require").await;
    drop(store);
    db.drop_schema().await;
}
