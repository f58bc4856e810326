//! Network URLs against a small HTTP server on 127.0.0.1 started by the test: a download is
//! cached and opened like the file, an interrupted one continues with a range request, a wrong
//! `#sha256=` removes the file, a 404 names the URL, and a cached network opens offline.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use common::{bin, run_err, run_out, ScratchDir};
use stylescope::download::{fetch, sha256_file, DownloadError, NetworkUrl};

/// The network served: the TF StyleGAN2 fixture (any file would do).
fn network() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures-tf/tf_sg2_32.pkl")
}

/// What the server saw: (path, Range header).
type Log = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// Serves `body` at `/net.pkl` (with ranges), at `/cut.pkl` (the first answer stops half-way),
/// 404 elsewhere; stops after `max_requests`.
fn serve(body: Vec<u8>, max_requests: usize) -> (u16, Log, std::thread::JoinHandle<()>) {
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

#[test]
fn download_is_cached_and_opens_like_the_file() {
    let body = std::fs::read(network()).unwrap();
    let (port, log, server) = serve(body.clone(), 2);
    let tmp = ScratchDir::new("download-cli");
    let url = format!("http://127.0.0.1:{port}/net.pkl");
    let cache = tmp.join("cache");
    let gen = |network: &str, out: &str| {
        run_out(bin().env("XDG_CACHE_HOME", &cache).args(["gen", "--network", network, "--seeds", "0", "--raw", "--outdir", tmp.join(out).to_str().unwrap()]));
    };
    gen(&url, "from-url");
    gen(network().to_str().unwrap(), "from-file");
    for f in ["seed0000.png", "seed0000.npy"] {
        assert_eq!(std::fs::read(tmp.join("from-url").join(f)).unwrap(), std::fs::read(tmp.join("from-file").join(f)).unwrap(), "{f}");
    }
    let cached = NetworkUrl::parse(&url).unwrap().cache_path(&cache.join("stylescope"));
    assert_eq!(std::fs::read(&cached).unwrap(), body, "the cache holds the file");
    // Offline (the server answers one more request, then is gone): the cache is used, no request.
    let _ = TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| s.write_all(b"GET /bye HTTP/1.1\r\n\r\n"));
    server.join().unwrap();
    gen(&url, "offline");
    assert_eq!(std::fs::read(tmp.join("offline/seed0000.npy")).unwrap(), std::fs::read(tmp.join("from-file/seed0000.npy")).unwrap());
    assert_eq!(log.lock().unwrap().iter().filter(|(p, _)| p == "/net.pkl").count(), 1, "downloaded once");
}

#[test]
fn interrupted_download_continues_with_a_range_request() {
    let body = std::fs::read(network()).unwrap();
    let (port, log, server) = serve(body.clone(), 2);
    let tmp = ScratchDir::new("download-resume");
    let url = format!("http://127.0.0.1:{port}/cut.pkl");
    let mut reports = Vec::new();
    let err = fetch(&url, &tmp, &mut |done, total| reports.push((done, total))).unwrap_err();
    assert!(matches!(err, DownloadError::Transfer { .. }), "{err}");
    assert!(err.to_string().contains(&url) && err.to_string().contains("again"), "{err}");
    let target = NetworkUrl::parse(&url).unwrap().cache_path(&tmp);
    assert!(!target.exists(), "an incomplete download is never in place");
    let partial = target.with_file_name(format!("{}.partial", target.file_name().unwrap().to_str().unwrap()));
    let had = std::fs::metadata(&partial).unwrap().len();
    assert!(had > 0 && (had as usize) < body.len(), "partial holds {had} bytes");
    assert_eq!(reports.last().unwrap().1, Some(body.len() as u64));
    // Again, with the file's checksum: continues from `had`, verifies, renames.
    let digest = sha256_file(&network()).unwrap();
    let path = fetch(&format!("{url}#sha256={digest}"), &tmp, &mut |_, _| {}).unwrap();
    assert_eq!(path, target);
    assert_eq!(std::fs::read(&path).unwrap(), body);
    assert!(!partial.exists());
    server.join().unwrap();
    let log = log.lock().unwrap();
    assert_eq!(log[1].1.as_deref(), Some(format!("bytes={had}-").as_str()), "{log:?}");
}

#[test]
fn bad_checksum_and_404_are_one_line_errors_naming_the_url() {
    let body = std::fs::read(network()).unwrap();
    let (port, _log, server) = serve(body, 2);
    let tmp = ScratchDir::new("download-errors");
    let cache = tmp.join("cache");
    let url = format!("http://127.0.0.1:{port}/net.pkl");
    let bad = format!("{url}#sha256={}", "0".repeat(64));
    let run = |network: &str, needle: &str| {
        let err = run_err(bin().env("XDG_CACHE_HOME", &cache).args(["info", network]), needle);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(network.split('#').next().unwrap()), "{err}");
    };
    run(&bad, "SHA-256");
    let downloads = cache.join("stylescope/downloads");
    assert_eq!(std::fs::read_dir(&downloads).map(|d| d.count()).unwrap_or(0), 0, "nothing kept after a bad checksum");
    run(&format!("http://127.0.0.1:{port}/missing.pkl"), "HTTP 404");
    server.join().unwrap();
    // Nothing listens any more: a clear connection error, still naming the URL.
    run(&format!("http://127.0.0.1:{port}/other.pkl"), "download failed");
}
