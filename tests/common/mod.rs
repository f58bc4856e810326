//! Shared helpers for the integration tests: where the fixtures are, tensor comparisons, and
//! scratch directories that clean up after themselves.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::path::{Path, PathBuf};
use std::process::Command;

use burn::tensor::Tensor;

/// A fresh directory under the system temp dir (`stylescope-<tag>-<pid>`), removed when dropped,
/// except after a failed assertion, so what the test wrote can be inspected.
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("stylescope-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }
}

impl std::ops::Deref for ScratchDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// `../shared/fixtures` beside the checkout (CI), overridable with STYLESCOPE_FIXTURES.
pub fn fixtures() -> PathBuf {
    if let Ok(p) = std::env::var("STYLESCOPE_FIXTURES") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures")
}

pub type Expected = BTreeMap<String, (Vec<usize>, Vec<f64>)>;

pub fn expected(name: &str) -> Expected {
    let path = fixtures().join(format!("{name}.expected.safetensors"));
    stylescope::weights::safetensors::read_all_f64(&path).unwrap_or_else(|e| panic!("{e}"))
}

pub fn fixture_json(name: &str) -> serde_json::Value {
    let path = fixtures().join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

pub fn get<'a>(exp: &'a Expected, key: &str) -> &'a (Vec<usize>, Vec<f64>) {
    exp.get(key).unwrap_or_else(|| panic!("fixture lacks key {key}"))
}

pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec().unwrap()
}

/// Max |a − b| over equal-length slices (panics on length mismatch).
pub fn max_abs(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (*x as f64 - y).abs()).fold(0.0, f64::max)
}

/// Asserts `t` matches the fixture `key` in shape (as a flat count) and values within `tol`.
pub fn assert_close<const D: usize>(t: Tensor<D>, exp: &Expected, key: &str, tol: f64) {
    let (shape, want) = get(exp, key);
    let dims = t.dims();
    let got = to_vec(t);
    assert_eq!(got.len(), want.len(), "{key}: got {dims:?}, fixture {shape:?}");
    let err = max_abs(&got, want);
    assert!(err <= tol, "{key}: max abs error {err:e} > {tol:e}");
}

/// The fixture networks: every entry of the fixtures' `manifest.json` that has expected outputs
/// (so a different or held-out fixture set is tested whole), else the four shipped ones.
pub fn networks() -> Vec<String> {
    let shipped = || ["sg3t_64", "sg3r_64", "sg2_64", "sg3t_64_cond4"].map(String::from).to_vec();
    let Ok(text) = std::fs::read_to_string(fixtures().join("manifest.json")) else { return shipped() };
    let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(&text) else { return shipped() };
    let found: Vec<String> = m
        .iter()
        .filter(|(name, v)| v.get("expected_keys").is_some() && fixtures().join(format!("{name}.pkl")).is_file())
        .map(|(name, _)| name.clone())
        .collect();
    if found.is_empty() {
        shipped()
    } else {
        found
    }
}

/// The `stylescope` binary of this build.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stylescope"))
}

/// Runs and expects success → (stdout, stderr).
pub fn run_out(cmd: &mut Command) -> (String, String) {
    let out = cmd.output().unwrap();
    let (o, e) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "failed:\n{o}\n{e}");
    (o, e)
}

/// Runs and expects failure with a clear message naming `needle`; never a panic.
pub fn run_err(cmd: &mut Command, needle: &str) -> String {
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "expected failure, got success: {err}");
    assert!(!err.contains("panicked"), "panicked: {err}");
    assert!(err.contains(needle), "error should mention {needle:?}: {err}");
    err
}

/// A folder of `n` smooth random `res`² RGB PNGs.
pub fn make_images(dir: &Path, n: usize, res: u32) {
    std::fs::create_dir_all(dir).unwrap();
    let mut rng = stylescope::rng::RandomState::new(5);
    for i in 0..n {
        let (a, b, c) = (rng.next_f64() * 6.0, rng.next_f64() * 6.0, rng.next_f64());
        let img = image::RgbImage::from_fn(res, res, |x, y| {
            let (u, v) = (x as f64 / res as f64, y as f64 / res as f64);
            let r = ((a * u).sin() * 0.5 + 0.5) * 255.0;
            let g = ((b * v).cos() * 0.5 + 0.5) * 255.0;
            image::Rgb([r as u8, g as u8, (c * 255.0) as u8])
        });
        img.save(dir.join(format!("img{i:03}.png"))).unwrap();
    }
}

/// A file or folder dropped on the window (GUI tests).
#[derive(Debug)]
pub struct DroppedPath(pub PathBuf);

impl egui::DroppedFile for DroppedPath {
    fn path(&self) -> &Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

// ------------------------------------------------------------------------------------------------
// A tiny HTTP server on 127.0.0.1 for the URL tests.

/// What the server saw: (path, Range header).
pub type Log = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// Serves `body` at `/net.pkl` (with ranges), at `/cut.pkl` (the first answer stops half-way),
/// 404 elsewhere; stops after `max_requests`.
pub fn serve(body: Vec<u8>, max_requests: usize) -> (u16, Log, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let log: Log = Arc::default();
    let seen = log.clone();
    let handle = std::thread::spawn(move || {
        let mut cut_once = true;
        for stream in listener.incoming().take(max_requests) {
            let Ok(stream) = stream else { continue };
            let (path, range) = read_request(&stream);
            seen.lock().unwrap().push((path.clone(), range.clone()));
            let mut out = stream;
            let start = range.as_deref().and_then(|r| r.strip_prefix("bytes=")).and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
            match path.as_str() {
                "/net.pkl" | "/cut.pkl" => {
                    let truncate = path == "/cut.pkl" && std::mem::take(&mut cut_once);
                    let (status, from) = match start {
                        Some(s) if s < body.len() => ("206 Partial Content", s),
                        Some(_) => ("416 Range Not Satisfiable", body.len()),
                        None => ("200 OK", 0),
                    };
                    let rest = &body[from..];
                    let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Range: bytes {from}-{}/{}\r\nConnection: close\r\n\r\n", rest.len(), body.len().saturating_sub(1), body.len());
                    let _ = out.write_all(head.as_bytes());
                    let send = if truncate { &rest[..rest.len() / 2] } else { rest };
                    let _ = out.write_all(send);
                }
                _ => {
                    let _ = out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found");
                }
            }
            let _ = out.flush();
        }
    });
    (port, log, handle)
}

fn read_request(stream: &TcpStream) -> (String, Option<String>) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let _ = reader.read_line(&mut line);
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    (path, range)
}

