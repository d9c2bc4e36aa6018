//! The analysis as a STIX 2.1 bundle: a `report` over everything, one `grouping` per
//! operation, an `attack-pattern` per technique, an `indicator` per outside address, and the
//! suspected actor as an `intrusion-set` with `uses` and `indicates` relationships.
//! Identifiers are name-based (UUID version 5 layout over SHA-256), so the same analysis
//! gives the same ids.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use towerwatch_correlate::{Analysis, Attack};

fn id(kind: &str, name: &str) -> String {
    let h = Sha256::digest(format!("towerwatch/{kind}/{name}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{kind}--{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn millis(iso: &str) -> String {
    iso.parse::<jiff::Timestamp>()
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|_| iso.to_string())
}

pub fn stix_bundle(a: &Analysis) -> Value {
    let attack = Attack::get();
    let now = millis(&jiff::Timestamp::now().to_string());
    let creator = id("identity", "towerwatch");
    let common = |kind: &str, name: &str| {
        json!({
            "type": kind,
            "spec_version": "2.1",
            "id": id(kind, name),
            "created": now,
            "modified": now,
            "created_by_ref": creator,
        })
    };
    let merge = |mut base: Value, extra: Value| {
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        base
    };
    let mut objects = vec![json!({
        "type": "identity",
        "spec_version": "2.1",
        "id": creator,
        "created": now,
        "modified": now,
        "name": "towerwatch",
        "identity_class": "system",
    })];
    let mut patterns: BTreeMap<String, String> = BTreeMap::new();
    let mut indicators: BTreeMap<String, String> = BTreeMap::new();
    let mut all_refs = Vec::new();
    for op in &a.operations {
        let mut refs = Vec::new();
        for t in &op.techniques {
            let pid = patterns.entry(t.clone()).or_insert_with(|| {
                let name = attack.technique(t).map(|x| x.name.clone()).unwrap_or_default();
                objects.push(merge(
                    common("attack-pattern", t),
                    json!({
                        "name": if name.is_empty() { t.clone() } else { name },
                        "external_references": [{
                            "source_name": "mitre-attack",
                            "external_id": t,
                            "url": format!("https://attack.mitre.org/techniques/{}", t.replace('.', "/")),
                        }],
                    }),
                ));
                id("attack-pattern", t)
            });
            refs.push(pid.clone());
        }
        for ip in &op.remote_addresses {
            let kind = if ip.contains(':') {
                "ipv6-addr"
            } else {
                "ipv4-addr"
            };
            let iid = indicators.entry(ip.clone()).or_insert_with(|| {
                objects.push(merge(
                    common("indicator", ip),
                    json!({
                        "name": format!("address used by {}", op.id),
                        "indicator_types": ["malicious-activity"],
                        "pattern": format!("[{kind}:value = '{ip}']"),
                        "pattern_type": "stix",
                        "valid_from": millis(&op.start),
                    }),
                ));
                id("indicator", ip)
            });
            refs.push(iid.clone());
        }
        let gid = id("grouping", &op.id);
        objects.push(merge(
            common("grouping", &op.id),
            json!({
                "name": format!("{} ({}): {} on {}", op.id, crate::wave_name(op.wave), op.root_cause.kind, op.root_cause.host),
                "description": format!(
                    "score {} ({}), {} → {}, hosts {}, tactics {}",
                    op.score,
                    op.severity,
                    op.start,
                    op.end,
                    op.hosts.iter().map(|h| h.host.as_str()).collect::<Vec<_>>().join(", "),
                    op.tactics.iter().map(|t| t.tactic.as_str()).collect::<Vec<_>>().join(" → ")
                ),
                "context": "suspicious-activity",
                "object_refs": if refs.is_empty() { vec![creator.clone()] } else { refs },
            }),
        ));
        all_refs.push(gid);
    }
    if let Some(actor) = a.actor.first() {
        let set = id("intrusion-set", &actor.id);
        objects.push(merge(
            common("intrusion-set", &actor.id),
            json!({
                "name": actor.group,
                "aliases": actor.aliases,
                "description": format!(
                    "Suspected by ATT&CK technique overlap (score {:.2}): {}",
                    actor.score,
                    actor.overlap.join(" ")
                ),
                "external_references": [{
                    "source_name": "mitre-attack",
                    "external_id": actor.id,
                    "url": format!("https://attack.mitre.org/groups/{}", actor.id),
                }],
            }),
        ));
        all_refs.push(set.clone());
        for t in &actor.overlap {
            if let Some(p) = patterns.get(t) {
                objects.push(merge(
                    common("relationship", &format!("{set} uses {p}")),
                    json!({
                        "relationship_type": "uses",
                        "source_ref": set,
                        "target_ref": p,
                        "confidence": (actor.score * 100.0).round() as u32,
                    }),
                ));
            }
        }
        for i in indicators.values() {
            objects.push(merge(
                common("relationship", &format!("{i} indicates {set}")),
                json!({
                    "relationship_type": "indicates",
                    "source_ref": i,
                    "target_ref": set,
                }),
            ));
        }
    }
    all_refs.extend(patterns.values().cloned());
    all_refs.extend(indicators.values().cloned());
    let published = a
        .operations
        .iter()
        .map(|o| o.end.clone())
        .max()
        .map(|t| millis(&t))
        .unwrap_or_else(|| now.clone());
    objects.push(merge(
        common("report", "analysis"),
        json!({
            "name": format!("towerwatch: {} operations in {} waves", a.operations.len(), a.waves.len()),
            "report_types": ["attack-pattern", "indicator", "threat-actor"],
            "published": published,
            "object_refs": if all_refs.is_empty() { vec![creator.clone()] } else { all_refs },
        }),
    ));
    json!({
        "type": "bundle",
        "id": id("bundle", &now),
        "objects": objects,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_uuid_shaped_and_stable() {
        let a = super::id("indicator", "203.0.113.9");
        assert_eq!(a, super::id("indicator", "203.0.113.9"));
        let uuid = a.strip_prefix("indicator--").unwrap();
        let parts: Vec<&str> = uuid.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('5'));
        assert!(matches!(
            parts[3].chars().next(),
            Some('8' | '9' | 'a' | 'b')
        ));
    }
}
