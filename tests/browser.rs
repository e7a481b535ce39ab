//! End to end in headless Chromium (Debian's chromium + chromium-driver, which .ci/run
//! installs): draw a digit on the playground page with pointer events, click Score, and check
//! that the number on screen is the model's NLL of the drawn image, computed by the library;
//! that a fast stroke is joined, that Score is busy while it works, and that drawing again
//! greys out the old scores.
//! Without chromedriver the test is skipped with a message, except under CI, where it fails.

mod common;

use burn::tensor::Device;
use genmodels::serve::{Playground, READ_TIMEOUT};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

struct Driver {
    child: Child,
    base: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn call(method: &str, url: &str, body: Option<Value>) -> Value {
    let agent = agent();
    let mut res = match (method, body) {
        ("GET", _) => agent.get(url).call(),
        ("DELETE", _) => agent.delete(url).call(),
        (_, body) => agent
            .post(url)
            .header("Content-Type", "application/json")
            .send(serde_json::to_vec(&body.unwrap_or(json!({}))).unwrap()),
    }
    .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let text = res.body_mut().read_to_string().unwrap_or_default();
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn draw_score_in_headless_chromium() {
    if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install chromium and chromium-driver (see .ci/run)"
        );
        eprintln!(
            "SKIPPED: {CHROMEDRIVER} or {CHROMIUM} missing (apt-get install chromium chromium-driver)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = common::train_cli(
        dir.path(),
        "pcnn",
        "pixelcnn",
        &["--hidden-channels", "4", "--residual-blocks", "1"],
    );
    let playground =
        Playground::load(std::slice::from_ref(&run), Path::new("."), Device::flex()).unwrap();
    let site = format!(
        "http://{}/",
        common::start_playground(playground, 2, READ_TIMEOUT)
    );

    let port = free_port();
    let driver = Driver {
        child: Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        base: format!("http://127.0.0.1:{port}"),
    };
    let started = Instant::now();
    let ready = || {
        agent()
            .get(&format!("{}/status", driver.base))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .is_some_and(|v| v["value"]["ready"] == json!(true))
    };
    while !ready() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let profile = dir.path().join("profile");
    let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
        "binary": CHROMIUM,
        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-quic", "--disable-component-update", "--disable-sync", "--window-size=1100,1000",
                 format!("--user-data-dir={}", profile.display())]}}}});
    let session = call("POST", &format!("{}/session", driver.base), Some(caps));
    let id = session["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {session}"))
        .to_string();
    let s = format!("{}/session/{id}", driver.base);
    call("POST", &format!("{s}/url"), Some(json!({"url": site})));
    let script = |js: &str| -> Value {
        call(
            "POST",
            &format!("{s}/execute/sync"),
            Some(json!({"script": js, "args": []})),
        )["value"]
            .clone()
    };
    // The page learns the models' shape first.
    let started = Instant::now();
    while script("return W") != json!(28) || script("return grid.length") != json!(784) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the page never read /api/models"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Draw a vertical stroke with pointer events (mouse, touch and pen alike), from y = 50 to
    // y = 230 in two movements only: the stroke must still be joined, with no gaps between
    // the points. (Dispatched in the page: chromedriver's pointer actions never reached the
    // canvas in headless Chromium 156.)
    script(
        "const pad = document.querySelector('#pad'); const r = pad.getBoundingClientRect();
        const at = (type, y) => pad.dispatchEvent(new PointerEvent(type, {bubbles: true, pointerId: 1, clientX: r.left + 140, clientY: r.top + y}));
        at('pointerdown', 50); at('pointermove', 140); at('pointermove', 230);
        window.dispatchEvent(new PointerEvent('pointerup', {pointerId: 1})); return 1",
    );
    let pixels: Vec<u8> = script("return Array.from(grid)")
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v.as_u64().unwrap() >= 128) as u8)
        .collect();
    // Column 14, rows 5..=23: every row of the stroke is drawn.
    let gaps: Vec<usize> = (5..=23).filter(|&r| pixels[r * 28 + 14] == 0).collect();
    assert!(gaps.is_empty(), "the stroke has gaps at rows {gaps:?}");
    // Score: the button is busy (disabled, relabelled) while the request runs.
    let busy = script(
        "const b = document.querySelector('#score'); b.click(); return [b.disabled, b.textContent]",
    );
    assert_eq!(busy, json!([true, "Scoring..."]), "no busy state");
    let started = Instant::now();
    let shown = loop {
        let v = call(
            "POST",
            &format!("{s}/elements"),
            Some(json!({"using": "css selector", "value": "td.nll"})),
        );
        if let Some(first) = v["value"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(|o| o.as_object())
            .and_then(|o| o.values().next())
            .and_then(|v| v.as_str())
        {
            break call("GET", &format!("{s}/element/{first}/text"), None)["value"]
                .as_str()
                .unwrap()
                .to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no score appeared"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let score_button_back = Instant::now();
    while script("return document.querySelector('#score').disabled") != json!(false) {
        assert!(
            score_button_back.elapsed() < Duration::from_secs(10),
            "Score stays busy"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        script("return document.querySelector('#scored').classList.contains('stale')"),
        json!(false),
        "fresh scores are not greyed out"
    );
    // The same image through the library.
    let set = genmodels::data::ImageSet {
        dataset: "drawn".into(),
        split: genmodels::data::Split::Test,
        shape: genmodels::data::ImageShape {
            channels: 1,
            height: 28,
            width: 28,
        },
        levels: genmodels::data::Levels::Binary,
        binarization: genmodels::data::Binarization::Static,
        pixels,
        labels: None,
        dynamic_seed: None,
    };
    let log_p = common::library_log_prob(&run, &set);
    assert_eq!(
        shown,
        format!("{:.2}", -log_p[0]),
        "page shows {shown}, library says {}",
        -log_p[0]
    );
    // The score is drawn against the model's validation NLL histogram, with a marker.
    assert_eq!(
        script("return document.querySelectorAll('svg.hist .marker').length"),
        json!(1),
        "no validation histogram with a marker"
    );
    assert_eq!(
        script("return Array.from(document.querySelectorAll('#model option')).map(o => o.value)"),
        json!(["pcnn"]),
        "the model picker does not list the served model"
    );
    // The heat map tells the value under the cursor: the pixel's NLL the server sent.
    let hover = script(
        "const heat = document.querySelector('#heat'); const r = heat.getBoundingClientRect();
        heat.dispatchEvent(new PointerEvent('pointermove', {bubbles: true, pointerId: 2, clientX: r.left + 14 * S + 1, clientY: r.top + 10 * S + 1}));
        return [document.querySelector('#heatvalue').textContent, lastScores.models[0].pixel_nll[10 * 28 + 14]]",
    );
    let expected = format!("{:.3} nats", hover[1].as_f64().unwrap());
    let text = hover[0].as_str().unwrap();
    assert!(
        text.contains("row 10, column 14") && text.contains(&expected),
        "{text} (expected {expected})"
    );
    // Drawing again makes the scores stale: greyed out until scored again.
    script(
        "const pad = document.querySelector('#pad'); const r = pad.getBoundingClientRect();
        pad.dispatchEvent(new PointerEvent('pointerdown', {bubbles: true, pointerId: 1, clientX: r.left + 40, clientY: r.top + 40}));
        window.dispatchEvent(new PointerEvent('pointerup', {pointerId: 1})); return 1",
    );
    assert_eq!(
        script("return document.querySelector('#scored').classList.contains('stale')"),
        json!(true),
        "scores of an older drawing are not marked stale"
    );
    if let Some(path) = std::env::var_os("GENMODELS_SCREENSHOT") {
        use base64::Engine;
        let shot = call("GET", &format!("{s}/screenshot"), None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(shot["value"].as_str().unwrap())
            .unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    call("DELETE", &s, None);
}
