//! Same seed, same bytes; another seed, other bytes; `scale` grows the output.

mod common;

use common::{run, small, tree};

#[test]
fn same_seed_gives_identical_bytes() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run(&small(7), a.path());
    run(&small(7), b.path());
    let (ta, tb) = (tree(a.path()), tree(b.path()));
    assert!(ta.len() > 30, "only {} files", ta.len());
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    for (name, bytes) in &ta {
        assert!(
            bytes == &tb[name],
            "{name} differs between two runs with the same seed"
        );
    }
}

#[test]
fn another_seed_gives_other_bytes() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run(&small(7), a.path());
    run(&small(8), b.path());
    let (ta, tb) = (tree(a.path()), tree(b.path()));
    let name = "evidence/windows/WEB01.jsonl";
    assert_ne!(ta[name], tb[name]);
    assert_ne!(ta["truth/labels.jsonl"], tb["truth/labels.jsonl"]);
}

#[test]
fn scale_grows_hosts_subscribers_and_events() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let one = run(
        &towerwatch_sim::Config {
            scale: 0.5,
            ..small(7)
        },
        a.path(),
    );
    let two = run(
        &towerwatch_sim::Config {
            scale: 1.0,
            ..small(7)
        },
        b.path(),
    );
    assert!(
        two.hosts > one.hosts,
        "{} vs {} hosts",
        two.hosts,
        one.hosts
    );
    assert_eq!(two.subscribers, 2 * one.subscribers);
    let ratio = two.written["cdr"] as f64 / one.written["cdr"] as f64;
    assert!(
        (1.7..2.3).contains(&ratio),
        "CDRs grew {ratio}x for 2x scale"
    );
    let ratio = two.events() as f64 / one.events() as f64;
    assert!(
        (1.3..2.3).contains(&ratio),
        "events grew {ratio}x for 2x scale"
    );
}

#[test]
fn bad_configurations_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for cfg in [
        towerwatch_sim::Config {
            scale: 0.0,
            ..small(1)
        },
        towerwatch_sim::Config {
            waves: 0,
            ..small(1)
        },
        towerwatch_sim::Config {
            days: 3,
            ..small(1)
        },
        towerwatch_sim::Config {
            stealth: 1.5,
            ..small(1)
        },
    ] {
        let err = towerwatch_sim::simulate(&cfg, dir.path()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    }
}
