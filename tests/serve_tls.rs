//! `keyledger serve --tls-cert --tls-key` speaks HTTPS, reloads a renewed certificate on SIGHUP without
//! dropping the service, and names the file when a certificate cannot be loaded.
#![cfg(unix)]

mod common;
#[path = "common/process.rs"]
mod process;
use process::{free_port, wait_until};

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A fresh self-signed certificate for `localhost` and 127.0.0.1, written as cert.pem/key.pem; returns the PEM.
fn write_certificate(dir: &Path) -> String {
    let issued = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("a certificate");
    let pem = issued.cert.pem();
    std::fs::write(dir.join("cert.pem"), &pem).unwrap();
    std::fs::write(dir.join("key.pem"), issued.key_pair.serialize_pem()).unwrap();
    pem
}

/// A self-signed certificate marked as a CA (CA:TRUE), as `openssl req -x509 -newkey ed25519 -nodes -subj
/// /CN=localhost` makes one, for `names`; written as `name`.pem with `name`.key.pem beside it.
fn write_ca_certificate(dir: &Path, name: &str, names: &[&str]) {
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("certificate parameters");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("an Ed25519 key");
    let cert = params.self_signed(&key).expect("a certificate");
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key.pem")), key.serialize_pem()).unwrap();
}

/// A client that trusts only `pem`, with a new connection for every request.
fn client_trusting(pem: &str) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn healthy(client: &reqwest::blocking::Client, url: &str) -> bool {
    client
        .get(url)
        .send()
        .is_ok_and(|r| r.status().is_success())
}

fn serve_tls(data: &Path, certs: &Path, addr: &str) -> Child {
    serve_tls_with(data, &certs.join("cert.pem"), &certs.join("key.pem"), addr)
}

fn serve_tls_with(data: &Path, cert: &Path, key: &Path, addr: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .arg("--data")
        .arg(data)
        .args(["serve", "--addr", addr, "--tls-cert"])
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .env_remove("KEYLEDGER_SIGNING_KEY")
        .env_remove("KEYLEDGER_SIGNING_KEY_FILE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts")
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: sending a signal to our own child process by pid has no memory-safety preconditions.
    let sent = unsafe { libc::kill(child.id() as i32, signal) };
    assert_eq!(sent, 0, "the signal reaches the server");
}

#[test]
fn serve_speaks_https_and_reloads_a_renewed_certificate_on_sighup() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    assert_eq!(common::run_cli(&data, &["init"]).0, 0);
    let first = write_certificate(tmp.path());
    let port = free_port();
    let mut server = serve_tls(&data, tmp.path(), &format!("127.0.0.1:{port}"));
    let https = format!("https://localhost:{port}/healthz");
    wait_until("serve answers over HTTPS", || {
        healthy(&client_trusting(&first), &https)
    });
    let plain = reqwest::blocking::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send();
    assert!(
        !plain.is_ok_and(|r| r.status().is_success()),
        "plain HTTP is not served on the TLS port"
    );

    let renewed = write_certificate(tmp.path());
    signal(&server, libc::SIGHUP);
    wait_until("the renewed certificate is served after SIGHUP", || {
        healthy(&client_trusting(&renewed), &https)
    });
    assert!(
        !healthy(&client_trusting(&first), &https),
        "the old certificate is no longer presented"
    );

    // A broken renewal keeps the working certificate.
    std::fs::write(tmp.path().join("cert.pem"), "not a certificate").unwrap();
    signal(&server, libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    assert!(healthy(&client_trusting(&renewed), &https));

    signal(&server, libc::SIGTERM);
    let status = server.wait().unwrap();
    let mut log = String::new();
    std::io::Read::read_to_string(server.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert!(status.success(), "{log}");
    assert!(log.contains("reloaded the TLS certificate"), "{log}");
    assert!(log.contains("could not reload"), "{log}");
}

#[test]
fn a_missing_certificate_is_refused_with_its_path() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    assert_eq!(common::run_cli(&data, &["init"]).0, 0);
    let addr = format!("127.0.0.1:{}", free_port());
    let missing = tmp.path().join("nowhere.pem");
    let missing = missing.to_str().unwrap();
    let (code, text) = common::run_cli(
        &data,
        &[
            "serve",
            "--addr",
            &addr,
            "--tls-cert",
            missing,
            "--tls-key",
            missing,
        ],
    );
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("nowhere.pem"), "{text}");
}

#[test]
fn a_non_loopback_address_needs_tls_or_an_explicit_plain_http() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    assert_eq!(common::run_cli(&data, &["init"]).0, 0);
    let (code, text) = common::run_cli(&data, &["serve", "--addr", "0.0.0.0:0"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("--tls-cert"), "{text}");
}

/// `keyledger --server SERVER --ca-cert CA key list` in client mode; returns its exit code and output.
fn list_keys_through(server: &str, ca: &Path, token: &str) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .args(["--server", server, "--ca-cert"])
        .arg(ca)
        .args(["key", "list"])
        .env("KEYLEDGER_TOKEN", token)
        .env_remove("KEYLEDGER_ADDR")
        .env_remove("KEYLEDGER_CACERT")
        .output()
        .expect("run keyledger");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Issue 28, case 4: the CLI trusts a self-signed certificate marked CA:TRUE that `serve --tls-cert` presents and
/// `--ca-cert` names (as curl --cacert does), and still refuses another certificate and another host name.
#[test]
fn client_mode_accepts_a_self_signed_ca_certificate_given_with_ca_cert() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (code, init) = common::run_cli(&data, &["init"]);
    assert_eq!(code, 0, "{init}");
    let admin = process::admin_key_from(&init);
    write_ca_certificate(tmp.path(), "served", &["localhost"]);
    write_ca_certificate(tmp.path(), "other", &["localhost", "127.0.0.1"]);
    let port = free_port();
    let mut server = serve_tls_with(
        &data,
        &tmp.path().join("served.pem"),
        &tmp.path().join("served.key.pem"),
        &format!("127.0.0.1:{port}"),
    );
    let any_certificate = reqwest::blocking::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    wait_until("serve answers over HTTPS", || {
        healthy(
            &any_certificate,
            &format!("https://127.0.0.1:{port}/healthz"),
        )
    });

    let localhost = format!("https://localhost:{port}");
    let (code, text) = list_keys_through(&localhost, &tmp.path().join("served.pem"), &admin);
    assert_eq!(code, 0, "the served CA:TRUE certificate is trusted: {text}");
    assert!(
        text.contains("keyledger"),
        "the bootstrap admin key is listed: {text}"
    );

    let (code, text) = list_keys_through(&localhost, &tmp.path().join("other.pem"), &admin);
    assert_ne!(code, 0, "another certificate is refused: {text}");
    assert!(text.contains("invalid peer certificate"), "{text}");

    let by_address = format!("https://127.0.0.1:{port}");
    let (code, text) = list_keys_through(&by_address, &tmp.path().join("served.pem"), &admin);
    assert_ne!(
        code, 0,
        "a name the certificate does not carry is refused: {text}"
    );
    assert!(text.contains("not valid for name"), "{text}");

    signal(&server, libc::SIGTERM);
    assert!(server.wait().unwrap().success());
}
