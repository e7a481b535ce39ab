//! The playground's JSON API on 127.0.0.1: scores agree with the library, bad input gets a
//! 4xx with a message, and concurrent requests are all served (a bounded load test).

mod common;

use burn::tensor::Device;
use genmodels::data::{self, Split};
use genmodels::serve::{Playground, READ_TIMEOUT};
use std::path::Path;

fn png(pixels: &[u8], side: u32) -> Vec<u8> {
    let img = image::GrayImage::from_fn(side, side, |x, y| {
        image::Luma([pixels[(y * side + x) as usize] * 255])
    });
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .unwrap();
    bytes
}

/// A PNG signature, a header chunk claiming `side` x `side` grey pixels and no image data.
fn huge_png_header(side: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit grey, deflate, no filter, no interlace
    let mut crc = flate2::Crc::new();
    crc.update(&ihdr);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc.sum().to_be_bytes());
    // An empty first data chunk: where a decoder knows the header is complete.
    let mut crc = flate2::Crc::new();
    crc.update(b"IDAT");
    png.extend_from_slice(&0u32.to_be_bytes());
    png.extend_from_slice(b"IDAT");
    png.extend_from_slice(&crc.sum().to_be_bytes());
    png
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// The line a picture's answer carries on what it shows.
fn note_of(res: &ureq::http::Response<ureq::Body>) -> String {
    let note = res
        .headers()
        .get("X-Genmodels-Note")
        .expect("a note header");
    note.to_str().unwrap().to_string()
}

fn post(url: &str, body: &[u8]) -> (u16, String) {
    let mut res = agent().post(url).send(body).unwrap();
    (
        res.status().as_u16(),
        res.body_mut().read_to_string().unwrap_or_default(),
    )
}

#[test]
fn api_scores_samples_completes_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let plain = common::train_cli(
        dir.path(),
        "plain",
        "pixelcnn",
        &["--hidden-channels", "4", "--residual-blocks", "1"],
    );
    let cond = common::train_cli(
        dir.path(),
        "cond",
        "gated-pixelcnn",
        &["--conditional", "--hidden-channels", "4", "--layers", "2"],
    );
    let playground =
        Playground::load(&[plain.clone(), cond], Path::new("."), Device::flex()).unwrap();
    let base = format!(
        "http://{}",
        common::start_playground(playground, 4, READ_TIMEOUT)
    );

    let page = agent()
        .get(&format!("{base}/"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(page.contains("<canvas") && page.contains("/api/score"));

    // A test digit, scored by the server and by the library: the same NLL.
    let test = data::load("synth-digits", Split::Test, Path::new("."))
        .unwrap()
        .truncate(1);
    let (status, body) = post(&format!("{base}/api/score"), &png(&test.pixels, 28));
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let plain_score = &json["models"][0];
    let log_p = common::library_log_prob(&plain, &test);
    let served = plain_score["nll_nats"].as_f64().unwrap();
    assert!(
        (served + log_p[0]).abs() < 1e-3,
        "server {served} vs library {}",
        -log_p[0]
    );
    assert_eq!(plain_score["pixel_nll"].as_array().unwrap().len(), 784);
    assert!(plain_score["ood"]["verdict"].is_string());
    // The class-conditional model gets a verdict too, by its marginal NLL, with the
    // validation range it is read against (low <= mean <= high).
    let cond_score = &json["models"][1];
    assert!(cond_score["ood"]["verdict"].is_string(), "{cond_score}");
    assert!(
        cond_score["nll_estimator"]
            .as_str()
            .unwrap()
            .contains("Σ_y")
    );
    // Its heat map is of one class, named: the most probable one.
    let class = cond_score["pixel_nll_class"].as_u64().unwrap() as usize;
    let posterior: Vec<f64> = cond_score["class_posterior"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_f64().unwrap())
        .collect();
    assert!(
        posterior.iter().all(|&p| p <= posterior[class]),
        "{class} {posterior:?}"
    );
    let range = cond_score["ood"]["typical_range_nats"].as_array().unwrap();
    let (low, high) = (range[0].as_f64().unwrap(), range[1].as_f64().unwrap());
    let mean = cond_score["ood"]["valid_mean_nats"].as_f64().unwrap();
    assert!(low <= mean && mean <= high, "{low} {mean} {high}");
    // The NLL's reading follows the two-sided range: a blank image (more likely than most
    // digits under a tiny model, the likelihood paradox) is called atypical, not "in
    // distribution". (The unconditional model's verdict is the combined score's, beside it.)
    let (_, blank) = post(&format!("{base}/api/score"), &png(&[0; 784], 28));
    let blank: serde_json::Value = serde_json::from_str(&blank).unwrap();
    let blank = &blank["models"][0];
    let nll = blank["nll_nats"].as_f64().unwrap();
    let range = blank["typicality"]["typical_range_nats"]
        .as_array()
        .unwrap();
    let (low, high) = (range[0].as_f64().unwrap(), range[1].as_f64().unwrap());
    let verdict = blank["typicality"]["verdict"].as_str().unwrap();
    let expected = if nll < low {
        "atypical"
    } else if nll > high {
        "less likely"
    } else {
        "in distribution"
    };
    assert!(
        verdict.contains(expected),
        "{nll} in [{low}, {high}]: {verdict}"
    );
    let posterior: f64 = json["models"][1]["class_posterior"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_f64().unwrap())
        .sum();
    assert!(
        (posterior - 1.0).abs() < 1e-9,
        "posterior sums to {posterior}"
    );

    let mut res = agent()
        .get(&format!("{base}/api/sample?model=plain&n=4&seed=3"))
        .call()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    image::load_from_memory(&res.body_mut().read_to_vec().unwrap()).expect("a PNG");
    let mut res = agent()
        .post(&format!("{base}/api/complete?model=cond&k=2"))
        .send(&png(&test.pixels, 28)[..])
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    // The grid says what it shows: the masked input first, and the class used, chosen from
    // the visible half.
    let note = note_of(&res);
    assert!(
        note.contains("blanked") && note.contains("given the visible half"),
        "{note}"
    );
    image::load_from_memory(&res.body_mut().read_to_vec().unwrap()).expect("a PNG");
    // Samples of a class-conditional model: one labelled row per class (10 rows of 2).
    let mut res = agent()
        .get(&format!("{base}/api/sample?model=cond&n=20&seed=3"))
        .call()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let note = note_of(&res);
    assert!(note.contains("one row per class"), "{note}");
    let grid = image::load_from_memory(&res.body_mut().read_to_vec().unwrap()).unwrap();
    assert!(
        grid.height() > 4 * grid.width(),
        "10 rows of 2: {}x{}",
        grid.width(),
        grid.height()
    );

    // Bad input: clear 4xx messages.
    for (body, status, words) in [
        (Vec::new(), 400, "empty body"),
        (
            b"definitely not a png".to_vec(),
            400,
            "not a readable image",
        ),
        (png(&[0; 64], 8), 400, "8x8"),
        (vec![0u8; 2 << 20], 413, "exceeds"),
    ] {
        let (got, text) = post(&format!("{base}/api/score"), &body);
        assert_eq!(got, status, "{text}");
        assert!(text.contains(words), "{text}");
    }
    let mut res = agent()
        .get(&format!("{base}/api/sample?model=nope"))
        .call()
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
    assert!(
        res.body_mut()
            .read_to_string()
            .unwrap()
            .contains("unknown model")
    );
    assert_eq!(
        agent()
            .get(&format!("{base}/api/score"))
            .call()
            .unwrap()
            .status()
            .as_u16(),
        405
    );
    assert_eq!(
        agent()
            .get(&format!("{base}/nowhere"))
            .call()
            .unwrap()
            .status()
            .as_u16(),
        404
    );

    // Query values out of range or not numbers: a 400 that names them, never a silent clamp.
    for query in [
        "sample?model=plain&n=abc",
        "sample?model=plain&n=-5",
        "sample?model=plain&n=0",
        "sample?seed=x",
    ] {
        let mut res = agent().get(&format!("{base}/api/{query}")).call().unwrap();
        assert_eq!(res.status().as_u16(), 400, "{query}");
        let text = res.body_mut().read_to_string().unwrap();
        assert!(text.contains("whole number"), "{query}: {text}");
    }
    let (got, text) = post(
        &format!("{base}/api/complete?model=plain&k=100"),
        &png(&test.pixels, 28),
    );
    assert!(
        got == 400 && text.contains("k must be a whole number from 1 to 8"),
        "{text}"
    );
    // HEAD is GET without a body.
    let res = agent().head(&format!("{base}/")).call().unwrap();
    assert_eq!(res.status().as_u16(), 200);
    // An image whose header claims 10000 x 10000 is refused by its size, before decoding.
    let (got, text) = post(&format!("{base}/api/score"), &huge_png_header(10_000));
    assert!(got == 400 && text.contains("10000x10000"), "{text}");

    // Clients that send their headers and hold back their bodies, one more than the workers,
    // stall nobody: a normal request is still answered at once.
    let slow: Vec<std::net::TcpStream> = (0..5)
        .map(|_| {
            let mut stream =
                std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
            std::io::Write::write_all(
                &mut stream,
                b"POST /api/score HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n",
            )
            .unwrap();
            stream
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let started = std::time::Instant::now();
    let (got, _) = post(&format!("{base}/api/score"), &png(&test.pixels, 28));
    assert_eq!(got, 200);
    assert!(
        started.elapsed().as_secs_f64() < 1.0,
        "a normal request waited {:?} behind slow clients",
        started.elapsed()
    );
    drop(slow);

    // Bounded load: 6 clients x 4 requests at once, every one answered 200 within the time.
    let started = std::time::Instant::now();
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let (base, image) = (base.clone(), png(&test.pixels, 28));
            std::thread::spawn(move || {
                (0..4)
                    .map(|_| post(&format!("{base}/api/score"), &image).0)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for client in clients {
        assert!(client.join().unwrap().iter().all(|&s| s == 200));
    }
    assert!(
        started.elapsed().as_secs() < 120,
        "load test took {:?}",
        started.elapsed()
    );
}

/// A colour model is served in colour: an RGB PNG is read as R, G, B planes (not its grey
/// level), scored as the library scores the same image, and samples come back as colour PNGs.
#[test]
fn a_colour_model_scores_rgb_pngs_as_the_library_does() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("shapes");
    let args = [
        "train",
        "gated-pixelcnn",
        "--data",
        "synth-shapes",
        "--epochs",
        "1",
        "--train-limit",
        "32",
        "--valid-limit",
        "16",
        "--hidden-channels",
        "6",
        "--layers",
        "1",
        "--out",
        run.to_str().unwrap(),
    ];
    common::genmodels_ok(&args);
    let playground =
        Playground::load(std::slice::from_ref(&run), Path::new("."), Device::flex()).unwrap();
    let base = format!(
        "http://{}",
        common::start_playground(playground, 2, READ_TIMEOUT)
    );

    let test = data::load("synth-shapes", Split::Test, Path::new("."))
        .unwrap()
        .truncate(1);
    let plane = 32 * 32;
    let rgb = image::RgbImage::from_fn(32, 32, |x, y| {
        let p = (y * 32 + x) as usize;
        image::Rgb([0, 1, 2].map(|c| test.pixels[c * plane + p]))
    });
    let mut bytes = Vec::new();
    rgb.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .unwrap();
    let (status, body) = post(&format!("{base}/api/score"), &bytes);
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let served = json["models"][0]["nll_nats"].as_f64().unwrap();
    let log_p = common::library_log_prob(&run, &test);
    // f32 sums of ~3,000 terms near 17,000 nats: equal to 1e-5 relative.
    assert!(
        (served + log_p[0]).abs() < 1e-5 * log_p[0].abs(),
        "server {served} vs library {}",
        -log_p[0]
    );
    assert_eq!(
        json["models"][0]["pixel_nll"].as_array().unwrap().len(),
        3 * plane
    );
    // A PNG of another size is refused with the shape the model takes.
    let (status, body) = post(&format!("{base}/api/score"), &png(&[1; 784], 28));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("32x32 RGB"), "{body}");
    let mut res = agent()
        .get(&format!("{base}/api/sample?n=2"))
        .call()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let sample = res.body_mut().read_to_vec().unwrap();
    let grid = image::load_from_memory(&sample).unwrap();
    assert!(
        matches!(
            grid.color(),
            image::ColorType::Rgb8 | image::ColorType::Rgba8
        ),
        "{:?}",
        grid.color()
    );
}

/// Every model's score is read against its own validation images: the server sends their NLL
/// histogram and the share of them less likely than the image, and both equal what the
/// library computes for the same 500 validation images. An unconditional exact-likelihood
/// model's verdict rests on the combined score, whose stirred and likelihood-ratio components
/// equal the library's for the image. A VAE gets a verdict too, by the IWAE-100 bound it is
/// scored with.
#[test]
fn scores_come_with_the_validation_distribution_of_each_model() {
    let dir = tempfile::tempdir().unwrap();
    let plain = common::train_cli(
        dir.path(),
        "plain",
        "pixelcnn",
        &["--hidden-channels", "4", "--residual-blocks", "1"],
    );
    let vae = common::train_cli(dir.path(), "vae", "vae-mlp", &["--latent-dim", "2"]);
    // A background model for the likelihood ratio (Ren et al. 2019): trained on perturbed
    // images.
    let background = common::train_cli(
        dir.path(),
        "bg",
        "pixelcnn",
        &[
            "--hidden-channels",
            "4",
            "--residual-blocks",
            "1",
            "--perturb-rate",
            "0.2",
        ],
    );
    let loaded = || {
        Playground::load(
            &[plain.clone(), vae.clone()],
            Path::new("."),
            Device::flex(),
        )
        .unwrap()
    };
    // A background must be an unconditional exact-likelihood model: a VAE is refused by name.
    let refused = loaded().with_background(&vae).err().unwrap();
    assert!(refused.to_string().contains("vae"), "{refused}");
    let playground = loaded().with_background(&background).unwrap();
    let base = format!(
        "http://{}",
        common::start_playground(playground, 2, READ_TIMEOUT)
    );

    let valid = data::load("synth-digits", Split::Valid, Path::new("."))
        .unwrap()
        .truncate(500);
    let mut nll: Vec<f64> = common::library_log_prob(&plain, &valid)
        .iter()
        .map(|l| -l)
        .collect();
    nll.sort_by(f64::total_cmp);
    let test = data::load("synth-digits", Split::Test, Path::new("."))
        .unwrap()
        .truncate(1);
    for pixels in [test.pixels.clone(), vec![0; 784]] {
        let (status, body) = post(&format!("{base}/api/score"), &png(&pixels, 28));
        assert_eq!(status, 200, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        let ood = &json["models"][0]["typicality"];
        let image_nll = json["models"][0]["nll_nats"].as_f64().unwrap();
        // The verdict rests on the combined score; its stirred component and its likelihood
        // ratio against the background are the library's for this image.
        let combined = &json["models"][0]["ood"];
        let components = combined["components"].as_array().unwrap();
        assert_eq!(components.len(), 4, "{combined}");
        let one = genmodels::data::ImageSet {
            pixels: pixels.clone(),
            ..test.clone()
        };
        let upside_down = genmodels::eval::ood::Stir::Vflip.apply(&one).unwrap();
        let log_p = common::library_log_prob(&plain, &one)[0];
        for (component, expected) in [
            (
                &components[2],
                common::library_log_prob(&plain, &upside_down)[0] - log_p,
            ),
            (
                &components[3],
                common::library_log_prob(&background, &one)[0] - log_p,
            ),
        ] {
            let served = component["value"].as_f64().unwrap();
            assert!(
                (served - expected).abs() < 1e-3,
                "{component}: served {served} vs library {expected}"
            );
        }
        assert!(
            components[3]["score"]
                .as_str()
                .unwrap()
                .contains("likelihood ratio"),
            "{combined}"
        );
        // Out of distribution exactly when the combined score is above its validation 99th
        // percentile.
        let value = combined["value"].as_f64().unwrap();
        assert_eq!(
            combined["verdict"] != "in distribution",
            value > combined["typical_range"][1].as_f64().unwrap(),
            "{combined}"
        );
        let combined_counts: u64 = combined["valid_histogram"]["counts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap())
            .sum();
        assert_eq!(combined_counts as usize, nll.len());
        let hist = &ood["valid_histogram_nats"];
        let counts: Vec<usize> = hist["counts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(counts.iter().sum::<usize>(), nll.len(), "{hist}");
        let (from, to) = (hist["from"].as_f64().unwrap(), hist["to"].as_f64().unwrap());
        assert!(
            (from - nll[0]).abs() < 1e-3 && (to - nll[nll.len() - 1]).abs() < 1e-3,
            "histogram [{from}, {to}], library [{}, {}]",
            nll[0],
            nll[nll.len() - 1]
        );
        // The histogram's bins, recounted from the library's NLLs (a value within 1e-3 of
        // a bin edge may fall either side).
        let width = (to - from) / counts.len() as f64;
        for (bin, &count) in counts.iter().enumerate() {
            let edge = |k: usize| from + width * k as f64;
            let inside = |v: f64| v >= edge(bin) - 1e-3 && (v <= edge(bin + 1) + 1e-3);
            let surely = |v: f64| v > edge(bin) + 1e-3 && v < edge(bin + 1) - 1e-3;
            let (most, least) = (
                nll.iter().filter(|&&v| inside(v)).count(),
                nll.iter().filter(|&&v| surely(v)).count(),
            );
            assert!(
                least <= count && count <= most,
                "bin {bin}: {count} not in {least}..={most}"
            );
        }
        let share = ood["valid_share_less_likely"].as_f64().unwrap();
        let expected = nll.iter().filter(|&&v| v > image_nll).count() as f64 / nll.len() as f64;
        assert!(
            (share - expected).abs() <= 2.0 / nll.len() as f64,
            "share {share} vs library {expected}"
        );

        let vae = &json["models"][1];
        assert!(vae["ood"]["verdict"].is_string(), "{vae}");
        assert!(
            vae["nll_estimator"].as_str().unwrap().contains("IWAE-100"),
            "{vae}"
        );
        let vae_share = vae["ood"]["valid_share_less_likely"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&vae_share), "{vae_share}");
    }
}

/// A client that sends its headers and part of its body, then falls silent, is cut off once
/// the read timeout passes (tiny_http closes a connection whose body read failed, so the 400
/// may not reach it), which frees its reader: a silent connection cannot hold one.
#[test]
fn a_stalled_upload_is_cut_off_after_the_read_timeout() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let run = common::train_cli(
        dir.path(),
        "plain",
        "pixelcnn",
        &["--hidden-channels", "4", "--residual-blocks", "1"],
    );
    let playground =
        Playground::load(std::slice::from_ref(&run), Path::new("."), Device::flex()).unwrap();
    let addr = common::start_playground(playground, 2, std::time::Duration::from_secs(1));
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"POST /api/score HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")
        .unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut answer = [0u8; 256];
    let got = stream
        .read(&mut answer)
        .expect("an answer or the connection closed, before 20 s");
    let head = String::from_utf8_lossy(&answer[..got]).to_string();
    assert!(
        got == 0 || head.starts_with("HTTP/1.1 400"),
        "neither closed nor refused: {head}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(900)
            && waited < std::time::Duration::from_secs(10),
        "answered after {waited:?}, with a 1 s timeout"
    );
}
