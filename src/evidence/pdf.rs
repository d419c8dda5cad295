//! `--pdf`: `report.html` printed by a headless Chromium.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::{EvidenceError, io_err};

/// How slaflow runs Chromium without a display, a profile of its own or
/// network chatter (also what the tests' screenshots use).
pub const HEADLESS_ARGS: [&str; 5] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
];

/// The Chromium binaries tried for `--pdf`, in order.
const CHROMIUMS: [&str; 4] = ["chromium", "chromium-browser", "google-chrome", "chrome"];

pub(super) fn find_chromium() -> Result<PathBuf, EvidenceError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    (std::env::split_paths(&path))
        .flat_map(|dir| CHROMIUMS.map(|c| dir.join(c)))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            EvidenceError::Args(format!(
                "--pdf needs a headless Chromium on PATH ({}); install one (Debian: apt install chromium) or leave out --pdf",
                CHROMIUMS.join(", ")
            ))
        })
}

/// Prints `dir/{page}` to `dir/{pdf}` and returns the PDF's bytes.
pub(super) fn print_pdf(
    chromium: &Path,
    dir: &Path,
    page: &str,
    pdf: &str,
) -> Result<Vec<u8>, EvidenceError> {
    let dir = std::fs::canonicalize(dir).map_err(io_err(dir))?;
    let (html, pdf) = (dir.join(page), dir.join(pdf));
    let profile = tempfile_dir(&dir)?;
    let status = Command::new(chromium)
        .args(HEADLESS_ARGS)
        .arg("--no-pdf-header-footer")
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", html.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(io_err(chromium));
    let _ = std::fs::remove_dir_all(&profile);
    let status = status?;
    let bytes = std::fs::read(&pdf).unwrap_or_default();
    if !status.success() || !bytes.starts_with(b"%PDF") {
        return Err(EvidenceError::Args(format!(
            "{} could not print {} ({status})",
            chromium.display(),
            html.display()
        )));
    }
    Ok(bytes)
}

/// A fresh Chromium profile folder, so printing never touches the user's.
fn tempfile_dir(dir: &Path) -> Result<PathBuf, EvidenceError> {
    let p = std::env::temp_dir().join(format!(
        "slaflow-chromium-{}-{}",
        std::process::id(),
        hex::encode(&Sha256::digest(dir.as_os_str().as_encoded_bytes())[..4])
    ));
    std::fs::create_dir_all(&p).map_err(io_err(&p))?;
    Ok(p)
}
