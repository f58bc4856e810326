//! Network URLs against a small HTTP server on 127.0.0.1 started by the test: a download is
//! cached and opened like the file, an interrupted one continues with a range request, a wrong
//! `#sha256=` removes the file, a 404 names the URL, and a cached network opens offline.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;

use common::{bin, run_err, run_out, serve, ScratchDir};
use stylescope::download::{fetch, sha256_file, DownloadError, NetworkUrl};

/// The network served: the TF StyleGAN2 fixture (any file would do).
fn network() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures-tf/tf_sg2_32.pkl")
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
    // The server is gone: the cached copy, checked against the checksum, is used.
    assert_eq!(fetch(&format!("{url}#sha256={digest}"), &tmp, &mut |_, _| {}).unwrap(), target);
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
