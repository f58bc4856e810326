//! Network URLs (`--network https://…/stylegan2-ffhq-1024x1024.pkl`, as every official example
//! uses): each is downloaded once into the cache folder (`$XDG_CACHE_HOME/stylescope`, else
//! `~/.cache/stylescope`) and then opened like a file. A download goes to `<name>.partial` first
//! and continues from there with an HTTP range request when interrupted; it is renamed into place
//! only when complete (and matching its checksum, when the URL carries one as `#sha256=<hex>`).
//! Offline, a cached copy is used without asking the server.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// Why a URL could not be fetched. Every message is one line naming the URL.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("{url}: the server answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: download failed: {detail}")]
    Transfer { url: String, detail: String },
    #[error("{url}: the download's SHA-256 is {found}, the URL says {expected}; the file was removed")]
    Checksum { url: String, expected: String, found: String },
    #[error("{url}: {detail}")]
    Invalid { url: String, detail: String },
    #[error("{}: cannot write the download: {error}", path.display())]
    Io { path: PathBuf, error: std::io::Error },
}

/// Whether `network` names a URL rather than a file.
pub fn is_url(network: &str) -> bool {
    let lower = network.get(..8).unwrap_or(network).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// The cache folder: `$XDG_CACHE_HOME/stylescope`, else `$HOME/.cache/stylescope`.
pub fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("stylescope")
}

/// A URL split into what is fetched and the checksum its fragment gives (`#sha256=<hex>`).
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkUrl {
    pub url: String,
    pub sha256: Option<String>,
}

impl NetworkUrl {
    pub fn parse(text: &str) -> Result<Self, DownloadError> {
        let invalid = |detail: &str| DownloadError::Invalid { url: text.to_string(), detail: detail.to_string() };
        let (url, fragment) = match text.split_once('#') {
            Some((u, f)) => (u, Some(f)),
            None => (text, None),
        };
        let sha256 = match fragment {
            None | Some("") => None,
            Some(f) => {
                let hex = f.strip_prefix("sha256=").ok_or_else(|| invalid("the only URL fragment understood is #sha256=<64 hex digits>"))?;
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(invalid("#sha256= needs 64 hex digits"));
                }
                Some(hex.to_ascii_lowercase())
            }
        };
        if !is_url(url) {
            return Err(invalid("not an http(s) URL"));
        }
        Ok(Self { url: url.to_string(), sha256 })
    }

    /// Where the download lives in `cache`: `<first 16 hex of sha256(url)>-<file name>`, so two
    /// URLs with the same file name never collide.
    pub fn cache_path(&self, cache: &Path) -> PathBuf {
        let digest = hex(&Sha256::digest(self.url.as_bytes()));
        let path = self.url.split(['?', '#']).next().unwrap_or_default();
        let name: String = path
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' })
            .collect();
        let name = if name.is_empty() || name.starts_with('.') { "network.pkl".to_string() } else { name };
        cache.join("downloads").join(format!("{}-{name}", &digest[..16]))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of a file, as lowercase hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Progress of a download: bytes on disk so far and the total when the server said it.
pub type Progress<'a> = &'a mut dyn FnMut(u64, Option<u64>);

/// A progress reporter drawing a bar on stderr (only when it is a terminal; created on the first
/// report, so nothing appears for cached files).
pub fn terminal_progress() -> impl FnMut(u64, Option<u64>) {
    let mut bar: Option<indicatif::ProgressBar> = None;
    move |done, total| {
        let b = bar.get_or_insert_with(|| {
            let b = indicatif::ProgressBar::with_draw_target(total, indicatif::ProgressDrawTarget::stderr());
            let style = indicatif::ProgressStyle::with_template("downloading {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            b.set_style(style);
            b
        });
        if let Some(t) = total {
            b.set_length(t);
        }
        b.set_position(done);
        if total.is_some_and(|t| done >= t) {
            b.finish_and_clear();
        }
    }
}

/// The local file for `text` (a URL, optionally with `#sha256=`): the cached copy, or a fresh
/// (or continued) download into `cache`.
pub fn fetch(text: &str, cache: &Path, progress: Progress) -> Result<PathBuf, DownloadError> {
    let url = NetworkUrl::parse(text)?;
    let path = url.cache_path(cache);
    if path.is_file() {
        // A cached copy; with a checksum it must match it (else it is fetched again).
        match &url.sha256 {
            None => return Ok(path),
            Some(expected) => {
                if sha256_file(&path).map_err(|error| DownloadError::Io { path: path.clone(), error })? == *expected {
                    return Ok(path);
                }
                std::fs::remove_file(&path).map_err(|error| DownloadError::Io { path: path.clone(), error })?;
            }
        }
    }
    let dir = path.parent().unwrap_or(cache);
    std::fs::create_dir_all(dir).map_err(|error| DownloadError::Io { path: dir.into(), error })?;
    let partial = path.with_file_name(format!("{}.partial", path.file_name().and_then(|n| n.to_str()).unwrap_or("download")));
    download(&url.url, &partial, progress)?;
    if let Some(expected) = &url.sha256 {
        let found = sha256_file(&partial).map_err(|error| DownloadError::Io { path: partial.clone(), error })?;
        if &found != expected {
            let _ = std::fs::remove_file(&partial);
            return Err(DownloadError::Checksum { url: url.url, expected: expected.clone(), found });
        }
    }
    std::fs::rename(&partial, &path).map_err(|error| DownloadError::Io { path: path.clone(), error })?;
    Ok(path)
}

/// Downloads `url` into `partial`, continuing what is there with a range request.
fn download(url: &str, partial: &Path, progress: Progress) -> Result<(), DownloadError> {
    let io_err = |error| DownloadError::Io { path: partial.into(), error };
    let transfer = |detail: String| DownloadError::Transfer { url: url.to_string(), detail };
    let have = std::fs::metadata(partial).map(|m| m.len()).unwrap_or(0);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .user_agent(concat!("stylescope/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut request = agent.get(url);
    if have > 0 {
        request = request.header("Range", format!("bytes={have}-"));
    }
    let response = request.call().map_err(|e| transfer(e.to_string()))?;
    let status = response.status().as_u16();
    let length = response.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let (mut done, total, append) = match status {
        206 if have > 0 => (have, length.map(|l| l + have), true),
        // The server ignored the range (or this is a fresh start): begin again.
        200 => (0, length, false),
        // Asked for bytes beyond the end: what is there is the whole file.
        416 if have > 0 => return Ok(()),
        s => return Err(DownloadError::Status { url: url.to_string(), status: s }),
    };
    let mut file = std::fs::OpenOptions::new().create(true).write(true).append(append).truncate(!append).open(partial).map_err(io_err)?;
    let mut reader = response.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 16];
    progress(done, total);
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = file.flush();
                return Err(transfer(format!("{e} after {done} bytes (run the same command again to continue the download)")));
            }
        };
        file.write_all(&buf[..n]).map_err(io_err)?;
        done += n as u64;
        progress(done, total);
    }
    file.sync_all().map_err(io_err)?;
    if let Some(t) = total {
        if done < t {
            return Err(transfer(format!("the connection closed after {done} of {t} bytes (run the same command again to continue the download)")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_their_checksums() {
        assert!(is_url("https://example.org/a.pkl"));
        assert!(is_url("HTTP://x/y"));
        assert!(!is_url("models/a.pkl"));
        let u = NetworkUrl::parse(&format!("https://x.org/n/stylegan2-ffhq.pkl#sha256={}", "AB".repeat(32))).unwrap();
        assert_eq!(u.url, "https://x.org/n/stylegan2-ffhq.pkl");
        assert_eq!(u.sha256.as_deref(), Some("ab".repeat(32).as_str()));
        let p = u.cache_path(Path::new("/c"));
        assert!(p.starts_with("/c/downloads"));
        assert!(p.to_str().unwrap().ends_with("-stylegan2-ffhq.pkl"));
        assert_ne!(p, NetworkUrl::parse("https://y.org/stylegan2-ffhq.pkl").unwrap().cache_path(Path::new("/c")));
        assert!(NetworkUrl::parse("https://x.org/a.pkl#md5=1").is_err());
        assert!(NetworkUrl::parse("https://x.org/a.pkl#sha256=12").is_err());
        assert!(NetworkUrl::parse("ftp://x.org/a.pkl").is_err());
    }
}
