//! Compiles the repository's `rules/` directory into the binary: every rule is parsed and
//! validated here, at build time, and stored in a compact binary form, so `towerwatch hunt`
//! starts without parsing YAML.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            println!("cargo:rerun-if-changed={}", p.display());
            collect(&p, out);
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")) {
            out.push(p);
        }
    }
}

/// Must match `EmbeddedRules` in src/rules.rs.
#[derive(serde::Serialize)]
struct EmbeddedRules {
    files: usize,
    digest: String,
    rules: Vec<towerwatch_sigma::Rule>,
    correlations: Vec<towerwatch_sigma::Correlation>,
    refused: Vec<towerwatch_sigma::RuleError>,
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest
        .join("../../rules")
        .canonicalize()
        .expect("rules/ directory exists");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &mut files);
    let mut report = towerwatch_sigma::LoadReport::default();
    let mut hasher = Sha256::new();
    for p in &files {
        println!("cargo:rerun-if-changed={}", p.display());
        let rel = format!(
            "embedded:{}",
            p.strip_prefix(&root)
                .expect("under root")
                .to_string_lossy()
                .replace('\\', "/")
        );
        let text = fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        hasher.update(rel.as_bytes());
        hasher.update([0]);
        hasher.update(text.as_bytes());
        report.add_text(&text, &rel);
    }
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let set = EmbeddedRules {
        files: report.files,
        digest,
        rules: report.rules,
        correlations: report.correlations,
        refused: report.refused,
    };
    let bytes = postcard::to_stdvec(&set).expect("rules serialize");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("embedded_rules.bin");
    fs::write(out, bytes).expect("OUT_DIR is writable");
}
