//! Waves: the campaign coming back, as the serious operations whose spans come close.

use std::collections::BTreeSet;

use super::build::iso;
use super::model::{Operation, Wave};
use crate::attack::Attack;

/// Operations scoring this much (severity high and above) make waves.
const WAVE_SCORE: u32 = 90;

/// Groups the operations (in time order) into waves: the serious ones (high and critical) whose
/// spans come within `gap_hours` of each other; a lesser operation joins the wave whose span
/// it falls in, else none. Also every wave's techniques together, for the actor.
pub(super) fn group(ops: &mut [Operation], gap_hours: i64) -> (Vec<Wave>, BTreeSet<String>) {
    let attack = Attack::get();
    // Waves: the serious operations (high and critical) whose spans come within the gap of
    // each other; a lesser operation joins the wave whose span it falls in, else none.
    let gap = gap_hours * 3_600_000_000;
    let mut spans: Vec<(i64, i64)> = Vec::new();
    for op in ops.iter().filter(|o| o.score >= WAVE_SCORE) {
        match spans.last_mut() {
            Some(last) if op.start_us <= last.1.saturating_add(gap) => {
                last.1 = last.1.max(op.end_us)
            }
            _ => spans.push((op.start_us, op.end_us)),
        }
    }
    let mut waves: Vec<Wave> = spans
        .iter()
        .enumerate()
        .map(|(k, (a, b))| Wave {
            wave: k + 1,
            start: iso(*a),
            end: iso(*b),
            operations: Vec::new(),
            hosts: Vec::new(),
            techniques: Vec::new(),
            actor: Vec::new(),
        })
        .collect();
    let mut wave_sets: Vec<BTreeSet<String>> = vec![BTreeSet::new(); waves.len()];
    for op in ops.iter_mut() {
        let Some(k) = spans
            .iter()
            .position(|(a, b)| op.start_us <= *b && op.end_us >= *a)
        else {
            continue;
        };
        let w = &mut waves[k];
        op.wave = Some(w.wave);
        w.operations.push(op.id.clone());
        for h in &op.hosts {
            if !w.hosts.contains(&h.host) {
                w.hosts.push(h.host.clone());
            }
        }
        if op.score >= WAVE_SCORE {
            wave_sets[k].extend(op.techniques.iter().cloned());
        }
    }
    let mut all = BTreeSet::new();
    for (w, set) in waves.iter_mut().zip(&wave_sets) {
        w.techniques = set.iter().cloned().collect();
        w.actor = attack.attribute(set, 5);
        all.extend(set.iter().cloned());
    }
    (waves, all)
}
