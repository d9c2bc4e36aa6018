#!/usr/bin/env python3
"""Writes seed corpora for the fuzz targets (scripts/fuzz.sh) into DIR/<target>/.

read_evidence: small regression EVTX files and their JSON, as JSON Lines too, gzipped, and
hand-written W3C and Zeek logs. rule_engine: each regression rule, a NUL, its JSON sample
as one line. db_logs, text_logs, sql_analysis: the committed seeds in fuzz/seeds/.
"""
import glob, gzip, json, os, re, sys

root = os.path.join(os.path.dirname(__file__), "..")
out = sys.argv[1]
reg = os.path.join(root, "tests/sigma-regression/regression_data")
rule_dirs = [os.path.join(root, "rules/sigmahq"), os.path.join(root, "tests/sigma-regression/extra-rules")]
LIMIT = 150

def put(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

rules_by_id = {}
for d in rule_dirs:
    for path in glob.glob(os.path.join(d, "**/*.yml"), recursive=True):
        text = open(path, encoding="utf-8").read()
        m = re.search(r"^id: *([0-9a-f-]{36})", text, re.M)
        if m:
            rules_by_id[m.group(1)] = text

cases = sorted(glob.glob(os.path.join(reg, "**/info.yml"), recursive=True))
n = 0
for info in cases:
    m = re.search(r"rule_metadata:\s*\n\s*- id: *([0-9a-f-]{36})", open(info).read())
    if not m or m.group(1) not in rules_by_id:
        continue
    d = os.path.dirname(info)
    for sample in glob.glob(os.path.join(d, "*.json")):
        try:
            doc = json.load(open(sample, encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            continue
        line = json.dumps(doc, separators=(",", ":")).encode()
        put("rule_engine", f"{n:04}", rules_by_id[m.group(1)].encode() + b"\0" + line + b"\n")
        if n % 3 == 0:
            put("read_evidence", f"jsonl-{n:04}", line + b"\n" + line[: len(line) // 2] + b"\n")
        if n % 10 == 0:
            put("read_evidence", f"gz-{n:04}", gzip.compress(line + b"\n"))
    for evtx in glob.glob(os.path.join(d, "*.evtx")):
        if os.path.getsize(evtx) <= 70 * 1024 and n % 5 == 0:
            put("read_evidence", f"evtx-{n:04}", open(evtx, "rb").read())
    n += 1
    if n >= LIMIT:
        break

put("read_evidence", "w3c", b"#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n"
    b"#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) sc-status\n"
    b"2026-03-02 10:01:02 10.0.0.5 POST /owa/auth/errorEE.aspx cmd=whoami 443 - 203.0.113.9 Mozilla/5.0 200\n")
put("read_evidence", "zeek", b"#separator \\x09\n#set_separator\t,\n#path\tconn\n"
    b"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n"
    b"#types\ttime\tstring\taddr\tport\taddr\tport\tenum\n"
    b"1772445662.000000\tCx1\t10.0.0.5\t49152\t10.0.0.9\t445\ttcp\n")
# The committed seeds (fuzz/seeds/<target>/): lines of the simulated operators' database,
# web and flow logs, statements and CDR extracts, each behind the byte that picks its format.
seeds = os.path.join(root, "fuzz/seeds")
for target in sorted(os.listdir(seeds)):
    for name in sorted(os.listdir(os.path.join(seeds, target))):
        put(target, name, open(os.path.join(seeds, target, name), "rb").read())
print(f"fuzz seeds: {n} regression cases and the committed seeds -> {out}")
