//! Hunts a directory once and prints the compiled plans' sizes and the phase times.
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let (rules, evidence) = (
        args.next().expect("rules dir"),
        args.next().expect("evidence dir"),
    );
    let t = Instant::now();
    let mut r = towerwatch_sigma::LoadReport::default();
    r.add_path(std::path::Path::new(&rules));
    println!("load {:?} ({} rules)", t.elapsed(), r.rules.len());
    let engine = towerwatch_detect::Engine::new(r.rules);
    {
        let engine2 = towerwatch_detect::Engine::new(engine.rules().to_vec());
        for (ch, id) in [
            ("Security", 4688u32),
            ("Microsoft-Windows-Sysmon/Operational", 1),
            ("Microsoft-Windows-Sysmon/Operational", 13),
            ("Application", 1000),
        ] {
            let mut e = towerwatch_event::Event::new(towerwatch_event::Origin::line("x", 1));
            e.set_channel(ch);
            e.set_event_id(id);
            let t = Instant::now();
            engine2.matches(&e, &mut engine2.scratch());
            println!("compile {ch}/{id}: {:?}", t.elapsed());
        }
    }
    let (inputs, _) = towerwatch_sources::discover(&[evidence.into()]);
    let mut events = Vec::new();
    let t = Instant::now();
    for i in &inputs {
        towerwatch_sources::read_input(i, &Default::default(), &mut |e| {
            if let Ok(e) = e {
                events.push(e)
            }
        });
    }
    println!("parse {:?} ({} events)", t.elapsed(), events.len());
    let mut scratch = engine.scratch();
    let t = Instant::now();
    let mut n = 0;
    for e in &events {
        n += engine.matches(e, &mut scratch).len();
    }
    println!(
        "first pass (compiles plans) {:?}, {n} detections, {:?}",
        t.elapsed(),
        engine.stats()
    );
    for p in engine.plan_sizes() {
        println!("{p:?}");
    }
    let passes: u32 = std::env::var("PASSES")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(1);
    let t = Instant::now();
    for _ in 0..passes {
        for e in &events {
            engine.matches(e, &mut scratch);
        }
    }
    let el = t.elapsed() / passes;
    let mut by: std::collections::HashMap<(String, Option<u32>), (std::time::Duration, usize, usize)> = Default::default();
    for e in &events {
        let t = Instant::now();
        for _ in 0..3 {
            engine.matches(e, &mut scratch);
        }
        let bytes: usize = e.fields.iter().filter_map(|f| f.value.as_str()).map(str::len).sum();
        let entry = by.entry((e.channel.as_deref().unwrap_or("").to_string(), e.event_id)).or_default();
        entry.0 += t.elapsed() / 3;
        entry.1 += 1;
        entry.2 += bytes;
    }
    let mut v: Vec<_> = by.into_iter().collect();
    v.sort_by(|a, b| b.1 .0.cmp(&a.1 .0));
    for ((c, id), (d, n, b)) in v.iter().take(12) {
        println!("{d:>12?} {n:>6} events {:>8.1} µs/ev {:>7} B/ev  {c} {id:?}", d.as_secs_f64() * 1e6 / *n as f64, b / n);
    }
    println!(
        "steady pass {el:?} = {:.2} µs/event",
        el.as_secs_f64() * 1e6 / events.len() as f64
    );
}
