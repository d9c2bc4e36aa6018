#!/usr/bin/env python3
"""Writes crates/serve/api/openapi.json, the OpenAPI 3.1 description `towerwatch serve` serves
at /api/v1/openapi.json. Run from the repository root after changing a route; tests/serve_auth.rs
checks the description and the routes it tests name the same (path, method) pairs."""
import re
import json
ERR={"$ref":"#/components/responses/Error"}
def op(summary, role, ok, params=(), body=None, extra=None, desc=None):
    o={"summary":summary,"x-role":role,"responses":{}}
    if desc: o["description"]=desc
    if role!="none":
        o["security"]=[{"bearer":[]}]
        o["responses"]["401"]=ERR
        o["responses"]["403"]=ERR
    else:
        o["security"]=[]
    o["responses"]["429"]={"$ref":"#/components/responses/RateLimited"}
    o["responses"]={**ok, **o["responses"]}
    if params: o["parameters"]=list(params)
    if body: o["requestBody"]=body
    if extra: o["responses"].update(extra)
    return o
def q(name, desc, required=False, typ="string"):
    return {"name":name,"in":"query","required":required,"description":desc,"schema":{"type":typ}}
enc={"name":"Content-Encoding","in":"header","required":False,"description":"gzip or zstd; identity when absent","schema":{"type":"string","enum":["gzip","x-gzip","zstd","identity"]}}
batch=[q("source","The evidence the lines come from (a file path, a host's log); with the line, the event's identity",True),
       q("first_line","The batch's first line number in its source (1 when absent)",False,"integer"), enc]
def json_ok(desc, schema): return {"200":{"description":desc,"content":{"application/json":{"schema":schema}}}}
ingested=json_ok("Durable before this reply; what was new, already held, and not an event",{"$ref":"#/components/schemas/Ingested"})
ndjson_body=lambda d: {"required":True,"description":d,"content":{"application/x-ndjson":{"schema":{"type":"string"}}}}
es_ok={"200":{"description":"Elasticsearch's bulk reply (an item per action)","content":{"application/json":{"schema":{"type":"object"}}}}}
doc={
 "openapi":"3.1.0",
 "info":{"title":"towerwatch serve","version":"1","description":"The live service: evidence in (JSON Lines, text logs, Elasticsearch bulk), the hunt's detections, operations and exposure out. Every route but /healthz, this document and Elasticsearch's handshake needs a bearer token whose role allows it (x-role: viewer < analyst < admin for reads; ingest or analyst or admin to send). Every address is rate limited (429 with Retry-After)."},
 "components":{
  "securitySchemes":{"bearer":{"type":"http","scheme":"bearer","description":"A token from `towerwatch serve init` (the first admin) or POST /api/v1/tokens"}},
  "responses":{
   "Error":{"description":"Refused, with why","content":{"application/json":{"schema":{"$ref":"#/components/schemas/Error"}}}},
   "RateLimited":{"description":"Over this address's rate; Retry-After says when to come back","headers":{"Retry-After":{"schema":{"type":"integer"}}},"content":{"application/json":{"schema":{"$ref":"#/components/schemas/Error"}}}}},
  "schemas":{
   "Error":{"type":"object","required":["error"],"properties":{"error":{"type":"string"}}},
   "Ingested":{"type":"object","required":["accepted","duplicates","rejected"],"properties":{
      "accepted":{"type":"integer","description":"New events, now durable"},
      "duplicates":{"type":"integer","description":"Events already held (a redelivery)"},
      "rejected":{"type":"array","items":{"type":"object","properties":{"line":{"type":"integer"},"error":{"type":"string"}}}}}},
   "Detection":{"type":"object","description":"One line of `hunt -o x.jsonl`","required":["rule_id","rule_title","level","source"],"properties":{
      "timestamp":{"type":["string","null"],"format":"date-time"},"rule_id":{"type":"string"},"rule_title":{"type":"string"},
      "level":{"type":"string","enum":["informational","low","medium","high","critical"]},"tags":{"type":"array","items":{"type":"string"}},
      "computer":{"type":["string","null"]},"channel":{"type":["string","null"]},"event_id":{"type":["integer","null"]},
      "source":{"type":"string"},"record_id":{"type":["integer","null"]},"line":{"type":["integer","null"]},
      "event":{"type":"object","description":"The event's fields (a routine detection says why in `routine`)"}}},
   "Source":{"type":"object","properties":{"source":{"type":"string"},"kind":{"type":"string"},"count":{"type":"integer"},"newest":{"type":["string","null"]},"lag_seconds":{"type":["integer","null"]},"rejected":{"type":"integer"}}},
   "Retro":{"type":"object","properties":{"rules":{"type":"integer","description":"Rules and Sigma correlations run"},"refused":{"type":"array","items":{"type":"string"},"description":"Rules that could not be used, with where and why"},"events":{"type":"integer","description":"Events in the window"},"detections":{"type":"array","items":{"$ref":"#/components/schemas/Detection"}}}},
   "Revealed":{"type":"object","properties":{"subscriber":{"type":"string"},"identifier":{"type":"string"},"by":{"type":"string"}}},
   "AuditEntry":{"type":"object","properties":{"time":{"type":"string"},"token":{"type":["integer","null"]},"who":{"type":"string"},"action":{"type":"string"},"detail":{"type":"string"}}}}},
 "paths":{
  "/healthz":{"get":op("Up","none",{"200":{"description":"ok","content":{"text/plain":{"schema":{"type":"string"}}}}})},
  "/api/v1/openapi.json":{"get":op("This description","none",{"200":{"description":"OpenAPI 3.1","content":{"application/json":{"schema":{"type":"object"}}}}})},
  "/api/v1/events":{"post":op("Send events: one JSON object per line, in every shape `hunt` reads (evtx_dump, Winlogbeat/ECS, flat, towerwatch dump)","ingest",ingested,batch,ndjson_body("JSON Lines"),{"400":ERR,"409":ERR,"413":ERR,"503":ERR})},
  "/api/v1/lines":{"post":op("Send a text log's lines as written (W3C/IIS, PostgreSQL stderr/csvlog/jsonlog with pgaudit, access logs, Zeek, audit exports); read whole per source as `hunt` reads the file","ingest",ingested,batch,{"required":True,"content":{"text/plain":{"schema":{"type":"string"}}}},{"400":ERR,"409":ERR,"413":ERR,"503":ERR})},
  "/api/v1/detections":{"get":op("The detections over every stored event, as `hunt -o x.jsonl`","viewer",{"200":{"description":"JSON Lines of Detection","content":{"application/x-ndjson":{"schema":{"$ref":"#/components/schemas/Detection"}}}}})},
  "/api/v1/detections/live":{"get":op("The live hunt's detections from the N-th on (before the routine's verdict)","viewer",{"200":{"description":"JSON Lines of Detection","headers":{"X-Next":{"description":"Where the next call starts","schema":{"type":"integer"}},"X-Pending":{"description":"Acknowledged events the live hunt has not taken yet","schema":{"type":"integer"}}},"content":{"application/x-ndjson":{"schema":{"$ref":"#/components/schemas/Detection"}}}}},[q("from","The first detection wanted (0: from the start)",False,"integer")])},
  "/api/v1/operations":{"get":op("The operations (attack stories), waves, suspected actor and leads, as the report's operations.json","viewer",json_ok("operations.json",{"type":"object"}))},
  "/api/v1/exposure":{"get":op("Whose call and location histories the database audit shows read, pseudonymised, as the report's exposure.json (null without a database audit)","viewer",json_ok("exposure.json",{"type":["object","null"]}))},
  "/api/v1/sources":{"get":op("Ingest health per source: what came in, the newest event, lag, rejects","viewer",json_ok("Sources",{"type":"array","items":{"$ref":"#/components/schemas/Source"}}))},
  "/api/v1/reveal":{"post":op("Reveal an exposed subscriber's real identifier: needs the operator's key on the server and a reason; written to the audit log before the answer","analyst",json_ok("Revealed",{"$ref":"#/components/schemas/Revealed"}),(),{"required":True,"content":{"application/json":{"schema":{"type":"object","required":["subscriber","reason"],"properties":{"subscriber":{"type":"string","description":"A pseudonym (M-…) from the exposure"},"reason":{"type":"string","minLength":4}}}}}},{"400":ERR,"404":ERR,"409":ERR})},
  "/api/v1/retro":{"post":op("A retro-hunt: Sigma rules (YAML, one or more documents) run over the stored events in event time, optionally within [from, to); on the audit log","analyst",json_ok("What the rules found",{"$ref":"#/components/schemas/Retro"}),[q("from","Only events at or after this time (RFC 3339)"),q("to","Only events before this time (RFC 3339)")],{"required":True,"content":{"application/yaml":{"schema":{"type":"string"}}}},{"400":ERR,"409":ERR})},
  "/api/v1/tokens":{"post":op("Issue a token (shown once; only its argon2 hash is kept)","admin",json_ok("The token",{"type":"object","properties":{"token":{"type":"string"}}}),(),{"required":True,"content":{"application/json":{"schema":{"type":"object","required":["name","role"],"properties":{"name":{"type":"string"},"role":{"type":"string","enum":["viewer","ingest","analyst","admin"]}}}}}},{"400":ERR})},
  "/api/v1/audit":{"get":op("The append-only audit log (tokens issued, reveals and refused reveals)","admin",json_ok("Entries, oldest first",{"type":"array","items":{"$ref":"#/components/schemas/AuditEntry"}}))},
  "/metrics":{"get":op("Prometheus: events in, duplicates, rejected, refused and rate-limited requests, stored, live hunt gauges, ingest latency histogram","viewer",{"200":{"description":"Prometheus text format 0.0.4","content":{"text/plain":{"schema":{"type":"string"}}}}})},
  "/":{"get":op("Elasticsearch's handshake (Beats ask before sending)","none",json_ok("Cluster info",{"type":"object"})),"head":op("Elasticsearch's handshake","none",{"200":{"description":"Up"}})},
  "/_license":{"get":op("Elasticsearch's licence handshake","none",json_ok("Licence",{"type":"object"}))},
  "/_bulk":{"post":op("Elasticsearch's bulk API (create/index actions; Winlogbeat, Filebeat, Elastic Agent, Fluent Bit, Vector)","ingest",es_ok,[enc],ndjson_body("Action and document lines"),{"400":ERR,"409":ERR,"413":ERR}),
            "put":op("As POST","ingest",es_ok,[enc],ndjson_body("Action and document lines"),{"400":ERR,"409":ERR,"413":ERR})},
  "/{index}/_bulk":{"post":op("Elasticsearch's bulk API with a default index","ingest",es_ok,[{"name":"index","in":"path","required":True,"schema":{"type":"string"}},enc],ndjson_body("Action and document lines"),{"400":ERR,"409":ERR,"413":ERR}),
            "put":op("As POST","ingest",es_ok,[{"name":"index","in":"path","required":True,"schema":{"type":"string"}},enc],ndjson_body("Action and document lines"),{"400":ERR,"409":ERR,"413":ERR})},
 }}
doc["servers"]=[{"url":"http://127.0.0.1:8480","description":"serve's default address (--listen)"}]
doc["info"]["license"]={"name":"Apache-2.0","identifier":"Apache-2.0"}
for path,ops in doc["paths"].items():
    for m,o in ops.items():
        words=[w for w in re.split(r"[^A-Za-z0-9]+",path) if w and w not in ("api","v1")]
        o["operationId"]=m+"".join(w[:1].upper()+w[1:] for w in words) if words else m+"Root"
open("crates/serve/api/openapi.json","w").write(json.dumps(doc,indent=1)+"\n")
