//! A real nginx on loopback running docs/GATEWAYS.md's nginx configuration verbatim (only the addresses and the
//! key file's path substituted), and a small upstream that records what it receives: used by `keyledger demo`,
//! the forward-auth test and the gateway benchmark, so that the documented configuration is the one exercised.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const GATEWAYS_DOC: &str = include_str!("../../../docs/GATEWAYS.md");

/// Where Debian installs nginx, or the first `nginx` on PATH.
pub fn find_binary() -> Option<PathBuf> {
    let debian = PathBuf::from("/usr/sbin/nginx");
    if debian.exists() {
        return Some(debian);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("nginx"))
            .find(|candidate| candidate.exists())
    })
}

/// The first ```nginx block of docs/GATEWAYS.md: the configuration users copy.
pub fn documented_config() -> &'static str {
    let start = GATEWAYS_DOC
        .find("```nginx\n")
        .map_or(GATEWAYS_DOC.len(), |at| at + 9);
    let rest = &GATEWAYS_DOC[start..];
    &rest[..rest.find("```").unwrap_or(rest.len())]
}

/// A running nginx, stopped when dropped.
pub struct Nginx {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    /// Starts `binary` with the documented configuration pointing at `keyledger` and `upstream`, sending
    /// `gateway_key` as the gateway's key (from a private include file, as the docs advise); `extra` goes inside
    /// `http { }`. Returns once nginx accepts connections.
    pub fn start(
        binary: &Path,
        keyledger: SocketAddr,
        upstream: SocketAddr,
        gateway_key: &str,
        extra: &str,
    ) -> std::io::Result<Nginx> {
        let dir = tempfile::Builder::new()
            .prefix("keyledger-nginx-")
            .tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let key_file = dir.path().join("keyledger-gateway-key.conf");
        crate::datadir::write_private_file(
            &key_file,
            format!("proxy_set_header X-Keyledger-Gateway-Key \"{gateway_key}\";\n").as_bytes(),
        )
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        let server = documented_config()
            .replace("127.0.0.1:8080", &keyledger.to_string())
            .replace("127.0.0.1:9000", &upstream.to_string())
            .replace("listen 80;", &format!("listen 127.0.0.1:{port};"))
            .replace(
                "/etc/nginx/keyledger-gateway-key.conf",
                &key_file.display().to_string(),
            );
        let prefix = dir.path().display();
        // One process (no workers to switch users to), everything under the temporary prefix.
        let conf = format!(
            "daemon off;\nmaster_process off;\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {prefix}/body;\n  proxy_temp_path {prefix}/proxy;\n  \
             fastcgi_temp_path {prefix}/fastcgi;\n  uwsgi_temp_path {prefix}/uwsgi;\n  scgi_temp_path {prefix}/scgi;\n\
             {server}\n{extra}\n}}\n"
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf)?;
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut nginx = Nginx { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || nginx.child.try_wait()?.is_some() {
                return Err(std::io::Error::other(format!(
                    "nginx did not start: {}",
                    nginx.error_log()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(nginx)
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// nginx's error log so far (for a failing test's message).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

/// The headers of every request the upstream received.
pub type Seen = Arc<Mutex<Vec<axum::http::HeaderMap>>>;

/// A tiny upstream on loopback (run on the current tokio runtime): answers 200 `upstream ok` and records each
/// request's headers.
pub async fn echo_upstream() -> std::io::Result<(SocketAddr, Seen)> {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let record = record.clone();
        async move {
            if let Ok(mut seen) = record.lock() {
                seen.push(headers);
            }
            "upstream ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((address, seen))
}
