#!/usr/bin/env python3
"""Writes crates/correlate/data/attack.json, the compact ATT&CK Enterprise data towerwatch
embeds: tactics in matrix order, live techniques with their tactics, and groups with the
techniques ATT&CK records them (or their attributed campaigns) using.

    python3 scripts/vendor-attack.py ../shared/data/attack/enterprise-attack-18.1.json.gz
"""
import gzip, json, sys, os

src = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/attack/enterprise-attack-18.1.json.gz"
bundle = json.load(gzip.open(src))
objs = [o for o in bundle["objects"] if not o.get("revoked") and not o.get("x_mitre_deprecated")]
by_id = {o["id"]: o for o in objs}

def ext(o):
    for r in o.get("external_references", []):
        if r.get("source_name") == "mitre-attack":
            return r.get("external_id")

matrix = next(o for o in objs if o["type"] == "x-mitre-matrix")
tactics = []
for ref in matrix["tactic_refs"]:
    t = by_id[ref]
    tactics.append({"id": ext(t), "short": t["x_mitre_shortname"], "name": t["name"]})

techniques = []
for o in objs:
    if o["type"] != "attack-pattern" or not ext(o):
        continue
    phases = [p["phase_name"] for p in o.get("kill_chain_phases", []) if p["kill_chain_name"] == "mitre-attack"]
    techniques.append({"id": ext(o), "name": o["name"], "tactics": phases})
techniques.sort(key=lambda t: t["id"])

uses = {}
attributed = {}
for r in objs:
    if r["type"] != "relationship":
        continue
    s, t = r["source_ref"], r["target_ref"]
    if r["relationship_type"] == "uses" and t.startswith("attack-pattern--") and t in by_id:
        uses.setdefault(s, set()).add(ext(by_id[t]))
    if r["relationship_type"] == "attributed-to" and s.startswith("campaign--"):
        attributed.setdefault(t, []).append(s)

groups = []
for o in objs:
    if o["type"] != "intrusion-set" or not ext(o):
        continue
    tech = set(uses.get(o["id"], set()))
    for c in attributed.get(o["id"], []):
        tech |= uses.get(c, set())
    if not tech:
        continue
    groups.append({
        "id": ext(o),
        "name": o["name"],
        "aliases": [a for a in o.get("aliases", []) if a != o["name"]],
        "techniques": sorted(t for t in tech if t),
    })
groups.sort(key=lambda g: g["id"])

out = {
    "source": os.path.basename(src),
    "attack_version": os.path.basename(src).split("-")[-1].replace(".json.gz", ""),
    "licence": "ATT&CK (c) The MITRE Corporation, reproduced under its terms of use; see ATTACK-LICENSE.txt beside this file",
    "tactics": tactics,
    "techniques": techniques,
    "groups": groups,
}
path = os.path.join(os.path.dirname(__file__), "..", "crates", "correlate", "data", "attack.json")
with open(path, "w") as f:
    json.dump(out, f, separators=(",", ":"), sort_keys=False)
    f.write("\n")
print(f"{path}: {len(tactics)} tactics, {len(techniques)} techniques, {len(groups)} groups")
