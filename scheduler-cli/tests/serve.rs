//! `scheduler serve`: the dashboard over HTTP from the real binary.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use common::{scheduler, stderr};

/// An HTTP/1.1 GET of `path` on `address`; the whole answer as text.
fn http_get(address: &str, path: &str, headers: &str) -> String {
    let mut stream = TcpStream::connect(address).expect("the dashboard listens");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn serve_refuses_a_public_address_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("jobs.db").display());
    assert!(scheduler(&url, &["migrate"]).status.success());
    for listen in ["0.0.0.0:0", "[::]:0", "192.0.2.1:8080"] {
        let out = assert_cmd::Command::cargo_bin("scheduler")
            .unwrap()
            .env_remove("SCHEDULER_WEB_TOKEN")
            .args(["--database", &url, "serve", "--listen", listen])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{listen}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("refusing to listen") && stderr(&out).contains("--token-file"),
            "{}",
            stderr(&out)
        );
    }
    let empty = dir.path().join("empty-token");
    std::fs::write(&empty, "\n").unwrap();
    let out = scheduler(
        &url,
        &[
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--token-file",
            empty.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("is empty"), "{}", stderr(&out));
}

#[test]
fn serve_answers_until_sigterm_and_never_prints_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("jobs.db").display());
    assert!(scheduler(&url, &["migrate"]).status.success());
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "tok-5ecret\n").unwrap();
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("scheduler"))
        .env_remove("SCHEDULER_WEB_TOKEN")
        .args(["--database", &url, "serve", "--listen", "127.0.0.1:0"])
        .arg("--token-file")
        .arg(&token_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let address = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("the URL is printed: {line:?}"))
        .to_owned();
    assert!(line.contains("actions enabled"), "{line}");

    let health = http_get(&address, "/healthz", "");
    assert!(
        health.starts_with("HTTP/1.1 200") && health.ends_with("ok\n"),
        "{health}"
    );
    let anonymous = http_get(&address, "/", "");
    assert!(anonymous.starts_with("HTTP/1.1 303"), "{anonymous}");
    let page = http_get(&address, "/metrics", "Authorization: Bearer tok-5ecret\r\n");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");

    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert!(status.success(), "stops cleanly on SIGTERM: {status}");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut errors = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut errors)
        .unwrap();
    for text in [&line, &rest, &errors] {
        assert!(
            !text.contains("tok-5ecret"),
            "the token is never printed: {text}"
        );
    }
}
