//! Profiles the engine apart from the CLI: plan compile time, steady-state matching cost per
//! event, and the (channel, event id) routes that cost most.
//!
//! `cargo run --release -p towerwatch-detect --example engine_profile -- RULES_DIR EVIDENCE_DIR`
//! (`PASSES=N` repeats the steady-state pass.)

use std::collections::HashMap;
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(rules), Some(evidence)) = (args.next(), args.next()) else {
        eprintln!("usage: engine_profile RULES_DIR EVIDENCE_DIR");
        std::process::exit(2);
    };
    let t = Instant::now();
    let mut loaded = towerwatch_sigma::LoadReport::default();
    loaded.add_path(std::path::Path::new(&rules));
    println!(
        "load rules        {:>10.1?} ({} rules)",
        t.elapsed(),
        loaded.rules.len()
    );
    let engine = towerwatch_detect::Engine::new(loaded.rules);

    let (inputs, _) = towerwatch_sources::discover(&[evidence.into()]);
    let mut events = Vec::new();
    let t = Instant::now();
    for input in &inputs {
        towerwatch_sources::read_input(input, &Default::default(), &mut |e| events.extend(e.ok()));
    }
    println!(
        "parse             {:>10.1?} ({} events)",
        t.elapsed(),
        events.len()
    );

    let mut scratch = engine.scratch();
    let t = Instant::now();
    let detections: usize = events
        .iter()
        .map(|e| engine.matches(e, &mut scratch).len())
        .sum();
    println!(
        "first pass        {:>10.1?} (compiles plans; {detections} detections)",
        t.elapsed()
    );
    println!("                  {:?}", engine.stats());

    let passes: u32 = std::env::var("PASSES")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3);
    let t = Instant::now();
    for _ in 0..passes {
        for e in &events {
            engine.matches(e, &mut scratch);
        }
    }
    let per_pass = t.elapsed() / passes.max(1);
    println!(
        "steady pass       {per_pass:>10.1?} ({:.2} µs/event)",
        per_pass.as_secs_f64() * 1e6 / events.len().max(1) as f64
    );

    let mut by_route: HashMap<(String, Option<u32>), (Duration, usize)> = HashMap::new();
    for e in &events {
        let t = Instant::now();
        engine.matches(e, &mut scratch);
        let entry = by_route
            .entry((e.channel.as_deref().unwrap_or("").to_string(), e.event_id))
            .or_default();
        entry.0 += t.elapsed();
        entry.1 += 1;
    }
    let mut routes: Vec<_> = by_route.into_iter().collect();
    routes.sort_by_key(|r| std::cmp::Reverse(r.1 .0));
    println!("costliest routes:");
    for ((channel, id), (time, n)) in routes.iter().take(10) {
        println!(
            "  {time:>10.1?} {n:>7} events {:>7.1} µs/event  {channel} {id:?}",
            time.as_secs_f64() * 1e6 / *n as f64
        );
    }
}
