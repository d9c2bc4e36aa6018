#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use towerwatch_sim::{simulate, Config, Summary};

/// A week of a small operator: quick, and every stage of every wave still happens.
pub fn small(seed: u64) -> Config {
    Config {
        seed,
        scale: 0.3,
        days: 9,
        waves: 2,
        ..Default::default()
    }
}

pub fn run(cfg: &Config, dir: &Path) -> Summary {
    simulate(cfg, dir).expect("simulation runs")
}

/// Every file under `dir`, relative path → bytes.
pub fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

pub fn labels(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("truth/labels.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
