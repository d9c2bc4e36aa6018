"""The client side of scripts/bench-serve.sh: sends a corpus of JSON Lines files to a
towerwatch serve in batches (again as the same sources' later lines until enough went), samples
the server's RSS, and measures, for every 10th batch, the time from sending it until
GET /api/v1/detections/live shows detections beyond those readable before it."""
import argparse, glob, http.client, json, os, threading, time, urllib.parse

a = argparse.ArgumentParser()
for k in ("url", "token", "corpus", "out", "data"):
    a.add_argument("--" + k, required=True)
for k in ("events", "batch", "pid", "senders"):
    a.add_argument("--" + k, type=int, required=True)
args = a.parse_args()

u = urllib.parse.urlparse(args.url)
auth = {"Authorization": "Bearer " + args.token}

# Every file's batches, built once: (name, first line, body, lines). A copy is sent as the
# same source's later lines (its identity is new; its times are the first copy's, so
# they come late to the live hunt), as a host's log would keep growing.
batches = []
length = {}
for path in sorted(glob.glob(os.path.join(args.corpus, "*.jsonl"))):
    lines = open(path, "rb").read().splitlines(keepends=True)
    name = os.path.basename(path)
    length[name] = len(lines)
    for i in range(0, len(lines), args.batch):
        batches.append((name, i + 1, b"".join(lines[i:i + args.batch]), len(lines[i:i + args.batch])))

local = threading.local()

def request(method, path, body=None):
    if not hasattr(local, "conn"):
        local.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    local.conn.request(method, path, body=body, headers=auth)
    r = local.conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise SystemExit(f"{method} {path}: HTTP {r.status} {data[:300]!r}")
    return r, data

rss = []
done = threading.Event()
def sample():
    while not done.is_set():
        try:
            for line in open(f"/proc/{args.pid}/status"):
                if line.startswith("VmRSS:"):
                    rss.append((time.time(), int(line.split()[1])))
        except FileNotFoundError:
            return
        time.sleep(0.5)
threading.Thread(target=sample, daemon=True).start()

def readable():
    """Detections readable now, and events the live hunt has not taken yet."""
    r, _ = request("GET", "/api/v1/detections/live?from=999999999999")
    return int(r.getheader("X-Next")), int(r.getheader("X-Pending"))

def work():
    """Every batch to send: the corpus, then again as its sources' later lines."""
    sent, copy = 0, 0
    while True:
        for name, first, body, n in batches:
            if sent >= args.events:
                return
            yield name, copy * length[name] + first, body, n
            sent += n
        copy += 1

todo = work()
todo_lock = threading.Lock()
latencies, sent = [], [0]

def sender(probing):
    k = 0
    while True:
        with todo_lock:
            item = next(todo, None)
        if item is None:
            return
        name, first, body, n = item
        probe = probing and k % 10 == 0
        before = readable()[0] if probe else None
        t0 = time.time()
        q = urllib.parse.urlencode({"source": name, "first_line": first})
        _, reply = request("POST", "/api/v1/events?" + q, body)
        if json.loads(reply)["accepted"] != n:
            raise SystemExit(f"{name}:{first}: {reply[:300]!r}")
        if probe:
            # Readable once the live hunt shows detections beyond those before the batch;
            # a batch whose events found nothing (or still wait behind the watermark) when
            # the live hunt caught up is not a sample.
            while True:
                after, pending = readable()
                if after > before:
                    latencies.append(time.time() - t0)
                    break
                if pending == 0:
                    break
                time.sleep(0.002)
        with todo_lock:
            sent[0] += n
        k += 1

start = time.time()
threads = [threading.Thread(target=sender, args=(i == 0,)) for i in range(args.senders)]
for t in threads:
    t.start()
for t in threads:
    t.join()
sent = sent[0]
seconds = time.time() - start
done.set()
latencies.sort()
pct = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else float("nan")
quarters = []
for q in (0.25, 0.5, 0.75, 1.0):
    t = start + q * seconds
    before = [r for (ts, r) in rss if ts <= t]
    quarters.append(before[-1] if before else 0)
r, _ = request("GET", "/api/v1/detections/live?from=999999999999")
json.dump({
    "events": sent, "seconds": seconds, "rate": sent / seconds,
    "p50": pct(0.5), "p99": pct(0.99), "samples": len(latencies),
    "rss_peak": max(r for _, r in rss), "rss_quarters": quarters,
    "detections": int(r.getheader("X-Next")),
    "store_mib": sum(os.path.getsize(f) for f in glob.glob(os.path.join(args.data, "*"))) / 2**20,
}, open(args.out, "w"))
