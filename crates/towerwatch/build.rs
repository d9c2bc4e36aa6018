//! Embeds every rule under the repository's `rules/` directory into the binary.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

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

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest
        .join("../../rules")
        .canonicalize()
        .expect("rules/ directory exists");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &mut files);
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("embedded_rules.rs");
    let mut f = fs::File::create(out).expect("OUT_DIR is writable");
    writeln!(
        f,
        "/// Rule files embedded at build time: (path under rules/, YAML text)."
    )
    .unwrap();
    writeln!(f, "pub static EMBEDDED_RULES: &[(&str, &str)] = &[").unwrap();
    for p in &files {
        let rel = p
            .strip_prefix(&root)
            .expect("under root")
            .to_string_lossy()
            .replace('\\', "/");
        writeln!(
            f,
            "    ({rel:?}, include_str!({:?})),",
            p.display().to_string()
        )
        .unwrap();
        println!("cargo:rerun-if-changed={}", p.display());
    }
    writeln!(f, "];").unwrap();
}
