//! The web console in a real browser (issue 16): Chromium driven over WebDriver (chromedriver) against a served demo
//! ledger — sign in, list keys, open the leaked key and see its suspension and anomaly, run an incident query and
//! page through it, download the export and verify it offline, check the health page, look at it phone-sized,
//! sign out — with no error in the browser's console. Screenshots of each page go to target/console-screenshots/.
//! Without Chromium and chromedriver (Debian: chromium, chromium-driver) the test says it was skipped.

mod common;
#[path = "common/process.rs"]
mod process;

use process::{free_port, wait_until, Served};
use reqwest::blocking::Client;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Browser {
    client: Client,
    url: String,
    driver: Child,
    shots: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.client.delete(&self.url).send();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn installed(path: &str) -> bool {
    Path::new(path).exists()
}

impl Browser {
    fn start(downloads: &Path) -> Browser {
        let port = free_port();
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let client = Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        wait_until("chromedriver answers", || {
            client.get(format!("{base}/status")).send().is_ok()
        });
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800"],
                "prefs": {"download.default_directory": downloads.to_str().unwrap(), "download.prompt_for_download": false}
            },
            "goog:loggingPrefs": {"browser": "ALL"}
        }}});
        let session: Value = client
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .unwrap()
            .json()
            .unwrap();
        let id = session["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("a session: {session}"));
        let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Browser {
            client,
            url: format!("{base}/session/{id}"),
            driver,
            shots,
        }
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let request = self.client.request(method, format!("{}{path}", self.url));
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        let answer: Value = request.send().unwrap().json().unwrap();
        answer["value"].clone()
    }

    fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})));
    }

    fn script(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// The first element matching `css`, waiting up to 15 s for it.
    fn find(&self, css: &str) -> String {
        let started = Instant::now();
        loop {
            let found = self.call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            );
            if let Some(id) = found[ELEMENT].as_str() {
                return id.to_string();
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "no element {css}: {}",
                self.text("body")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn click(&self, css: &str) {
        let element = self.find(css);
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        );
    }

    fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({"text": text})),
        );
    }

    fn text(&self, css: &str) -> String {
        self.script(&format!(
            "const e = document.querySelector({css:?}); return e ? e.innerText : '';"
        ))
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Waits until the text of `css` contains `wanted`.
    fn wait_text(&self, css: &str, wanted: &str) {
        let started = Instant::now();
        while !self.text(css).contains(wanted) {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{css} never showed {wanted:?}: {}",
                self.text("body")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn screenshot(&self, name: &str) {
        use base64::Engine as _;
        let png = self.call(reqwest::Method::GET, "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), bytes).unwrap();
    }

    fn resize(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        );
    }

    /// The browser console's entries at SEVERE level.
    fn console_errors(&self) -> Vec<Value> {
        let log = self
            .client
            .post(format!("{}/se/log", self.url))
            .json(&json!({"type": "browser"}))
            .send()
            .unwrap();
        let entries: Value = log.json().unwrap();
        entries["value"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["level"] == "SEVERE")
            .collect()
    }
}

#[test]
fn the_console_answers_an_investigation_in_a_real_browser() {
    if !(installed("/usr/bin/chromium") && installed("/usr/bin/chromedriver")) {
        common::skip(
            "Chromium",
            "Chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver; .ci/run does)",
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("demo");
    let summary = keyledger::cli::demo::run_demo(&root, 3_000, &mut Vec::new()).unwrap();
    let console_key = summary
        .console_key
        .clone()
        .expect("the demo issues a console key");
    let leaked = summary
        .leaked_key
        .expect("the demo's leaked key")
        .to_string();
    let served = Served::start(&root, &[]);
    let downloads = tmp.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let browser = Browser::start(&downloads);

    // Sign in.
    browser.go(&format!("{}/", served.base));
    browser.find("#sign-in");
    browser.screenshot("01-sign-in");
    browser.type_into("#key", &console_key);
    browser.click("#sign-in button[type=submit]");

    // Keys.
    browser.wait_text("main", "ci-deploy");
    browser.wait_text("main", "billing-api");
    browser.screenshot("02-keys");
    browser.go(&format!("{}/#/keys?environment=staging", served.base));
    browser.wait_text("main", "ci-deploy");
    assert!(
        !browser.text("main table").contains("billing-api"),
        "the environment filter applies"
    );

    // The leaked key: revoked after its automatic suspension, with its anomaly and a chart of its use.
    browser.click(&format!("a[href='#/keys/{leaked}']"));
    browser.wait_text("h1", "ci-deploy");
    browser.wait_text("main", "distinct_ips");
    let page = browser.text("main");
    for expected in [
        "revoked",
        "key.suspended",
        "key.revoked",
        "secret found in a public repository",
        "curl/8.5.0",
    ] {
        assert!(
            page.contains(expected),
            "{expected:?} on the key's page: {page}"
        );
    }
    browser.find("svg.chart rect.denied");
    browser.screenshot("03-leaked-key");

    // An incident query from the anomaly's evidence, paged.
    browser.go(&format!(
        "{}/#/incident?key_id={leaked}&from=-1h&to=now",
        served.base
    ));
    browser.wait_text("#events", "key.used");
    browser.find("svg.chart");
    let first_page = browser.text("#events table");
    browser.click("#next-page");
    let started = Instant::now();
    while browser.text("#events table") == first_page {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the next page never came"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    browser.screenshot("04-incident");

    // The window's export, downloaded and verified offline.
    browser.click("#export");
    browser.wait_text("#export-note", "keyledger audit verify-export");
    let mut export = None;
    wait_until("the export is downloaded", || {
        export = std::fs::read_dir(&downloads)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "jsonl"));
        export.is_some()
    });
    let export = export.unwrap();
    let verified = Command::new(env!("CARGO_BIN_EXE_keyledger"))
        .args(["audit", "verify-export"])
        .arg(&export)
        .arg("--public-key")
        .arg(root.join("signing.pub"))
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );

    // Ledger health, with a verification run from the console.
    browser.go(&format!("{}/#/health", served.base));
    browser.wait_text("main", "Head seq");
    browser.click("#verify");
    browser.wait_text("#last-verify", "OK at");
    browser.wait_text("#write-rate", "events/s");
    browser.screenshot("05-health");

    // Phone-sized: the page does not overflow sideways (tables scroll inside their box).
    browser.resize(390, 844);
    browser.go(&format!("{}/#/keys", served.base));
    browser.wait_text("main", "ci-deploy");
    let overflow =
        browser.script("return document.documentElement.scrollWidth - window.innerWidth;");
    assert!(
        overflow.as_i64().unwrap_or(999) <= 1,
        "horizontal overflow at phone size: {overflow}"
    );
    browser.screenshot("06-keys-phone");
    browser.resize(1280, 800);

    // Sign out forgets the key.
    browser.click("#sign-out");
    browser.find("#sign-in");
    assert_eq!(browser.script("return sessionStorage.length;"), json!(0));
    browser.screenshot("07-signed-out");

    let errors = browser.console_errors();
    assert!(
        errors.is_empty(),
        "the browser console shows errors: {errors:?}"
    );
    drop(served);
}
