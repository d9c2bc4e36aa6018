"""The fleet benchmark (run by scripts/bench-fleet.sh): a real nats-server -js and a real
PostgreSQL on free ports in a temp dir, the default simulation's evidence COPIES times over,
shipped to JetStream, judged by W workers, concluded by one story builder."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

BIN, COPIES, RUNS = sys.argv[1], int(sys.argv[2]), [int(w) for w in sys.argv[3:]]
sys.stdout.reconfigure(line_buffering=True)
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """utime + stime of a live process and its reaped children."""
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in f[11:15]) / TICK
    except FileNotFoundError:
        return 0.0


def postgres_cpu():
    """CPU of every PostgreSQL process so far, with the backends that ended (counted in the
    postmaster's reaped children): a run's share is the difference across it."""
    total = 0.0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if "postgres" in open(f"/proc/{pid}/comm").read():
                    total += cpu_seconds(pid)
            except OSError:
                pass
    return total


def as_postgres():
    return os.geteuid() == 0


def pg_cmd(args):
    return (["runuser", "-u", "postgres", "--"] if as_postgres() else []) + args


def start_postgres(tmp):
    bindir = sorted(
        os.path.join("/usr/lib/postgresql", v, "bin") for v in os.listdir("/usr/lib/postgresql")
    )[-1]
    data = os.path.join(tmp, "pg")
    os.makedirs(data)
    if as_postgres():
        shutil.chown(tmp, "postgres")
        shutil.chown(data, "postgres")
    subprocess.run(pg_cmd([f"{bindir}/initdb", "-A", "trust", "-U", "postgres", "-D", data]),
                   check=True, capture_output=True)
    port = free_port()
    proc = subprocess.Popen(pg_cmd([f"{bindir}/postgres", "-D", data, "-p", str(port), "-k", tmp,
                                    "-c", "listen_addresses=127.0.0.1"]),
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "pg.log"), "w"))
    for _ in range(100):
        if subprocess.run([f"{bindir}/pg_isready", "-h", "127.0.0.1", "-p", str(port)],
                          capture_output=True).returncode == 0:
            break
        time.sleep(0.2)
    return proc, port, bindir


def psql(bindir, port, db, sql):
    out = subprocess.run([f"{bindir}/psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                          "-d", db, "-XAtc", sql], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def lag(mport):
    """Messages not yet acknowledged, per consumer group: workers (judge-*) and builder."""
    with urllib.request.urlopen(f"http://127.0.0.1:{mport}/jsz?consumers=true", timeout=5) as r:
        j = json.load(r)
    judge = builder = 0
    for acc in j.get("account_details", []):
        for s in acc.get("stream_detail", []):
            for c in s.get("consumer_detail", []) or []:
                n = c.get("num_pending", 0) + c.get("num_ack_pending", 0)
                if c["name"].startswith("judge-"):
                    judge += n
                else:
                    builder += n
    return judge, builder


def stream_bytes(mport):
    """Bytes each stream holds."""
    with urllib.request.urlopen(f"http://127.0.0.1:{mport}/jsz?streams=true", timeout=5) as r:
        j = json.load(r)
    return {s["name"]: s["state"]["bytes"] for acc in j.get("account_details", [])
            for s in acc.get("stream_detail", [])}


def main():
    tmp = tempfile.mkdtemp(prefix="bench-fleet-")
    try:
        run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp):
    os.chmod(tmp, 0o755)
    sim = os.path.join(tmp, "sim")
    subprocess.run([BIN, "simulate", "--out", sim, "-q"], check=True)
    corpus = os.path.join(tmp, "corpus")
    os.makedirs(corpus)
    # Hard links: each copy's files are files of their own to the shipper (a symlink would
    # name the same file, whose events JetStream keeps once).
    for i in range(COPIES):
        shutil.copytree(os.path.join(sim, "evidence"), os.path.join(corpus, str(i + 1)),
                        copy_function=os.link)
    key = os.path.join(tmp, "key")
    open(key, "w").write("a fixed key of sixteen bytes or more")
    ctx = ["--min-level", "informational", "--key-file", key,
           "--assets", f"{sim}/context/assets.csv", "--register", f"{sim}/context/rd_requests.csv",
           "--cdr", f"{sim}/cdr"]
    events = sum(1 for _ in subprocess.run([BIN, "dump", corpus], capture_output=True,
                                           text=True, check=True).stdout.splitlines())
    t0 = time.time()
    subprocess.run([BIN, "hunt", corpus, *ctx, "-o", os.path.join(tmp, "hunt.jsonl"), "-q"],
                   check=True)
    hunt_s = time.time() - t0
    hunt_rate = events / hunt_s
    print(f"corpus: the default simulation's evidence x{COPIES}: {events:,} events")
    print(f"baseline: hunt on the same files: {hunt_s:.1f} s, {hunt_rate:,.0f} events/s (2 cores)")
    pg, pport, bindir = start_postgres(tmp)
    try:
        rows = [bench(tmp, w, corpus, ctx, events, pport, bindir) for w in RUNS]
    finally:
        pg.terminate()
        pg.wait()
    print()
    print("| workers | end to end | events/s | x hunt | peak lag, messages (workers / builder) | CPU s: ship / workers / builder / nats / postgres | builder's share: of workers+builder / of all CPU | builder: keeping / concluding (conclusions) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| {w} | {secs:.1f} s | {rate:,.0f} | {x:.2f} | {lj:,} / {lb:,} | {cs:.1f} / {cw:.1f} / {cb:.1f} / {cn:.1f} / {cp:.1f} | {share:.0%} / {all:.0%} | {keep} / {concl} ms ({n}) |".format(
            x=r["rate"] / hunt_rate, **r))
    print()
    print("| workers | CPU per event: worker / builder / nats / postgres | bytes per event: events stream / facts stream / facts in PostgreSQL |")
    print("|---|---|---|")
    for r in rows:
        print("| {w} | {us:.1f} / {ub:.1f} / {un:.1f} / {up:.1f} µs | {be:.0f} / {bf:.0f} / {bp:.0f} B |".format(**r))


def bench(tmp, workers, corpus, ctx, events, pport, bindir):
    db = f"fleet{workers}"
    psql(bindir, pport, "postgres", f"CREATE DATABASE {db}")
    nport, mport = free_port(), free_port()
    store = os.path.join(tmp, f"js{workers}")
    nats = subprocess.Popen(["nats-server", "-js", "-a", "127.0.0.1", "-p", str(nport), "-m", str(mport),
                             "-sd", store], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    url = f"nats://127.0.0.1:{nport}"
    common = ["--nats", url, *ctx]
    log = lambda n: open(os.path.join(tmp, f"{n}-{workers}.log"), "w")
    builder = subprocess.Popen([BIN, "story-builder", "--database",
                                f"postgres://postgres@127.0.0.1:{pport}/{db}", *common],
                               stdout=log("builder"), stderr=subprocess.STDOUT)
    ws = [subprocess.Popen([BIN, "worker", "--index", str(i), "--workers", str(workers), *common],
                           stdout=log(f"worker{i}"), stderr=subprocess.STDOUT) for i in range(workers)]
    time.sleep(1)
    pg_before = postgres_cpu()
    t0 = time.time()
    ship = subprocess.Popen([BIN, "ship", "--nats", url, "--state", os.path.join(tmp, f"ship{workers}.json"), corpus],
                            stdout=log("ship"), stderr=subprocess.STDOUT)
    peak_judge = peak_builder = 0
    ship_cpu = 0.0
    seen, moved = None, time.time()
    while True:
        time.sleep(0.5)
        if ship.poll() is None:
            ship_cpu = cpu_seconds(ship.pid)
        j, b = lag(mport)
        peak_judge, peak_builder = max(peak_judge, j), max(peak_builder, b)
        if psql(bindir, pport, db, "SELECT facts FROM fleet_results") == str(events):
            break
        # Stalled (events lost, or never shipped): say so rather than wait for ever.
        now = (j, b, ship.poll(), psql(bindir, pport, db, "SELECT count(*) FROM fleet_facts"))
        if now != seen:
            seen, moved = now, time.time()
        elif time.time() - moved > 120:
            for p in [builder, *ws, ship]:
                p.kill()
            nats.kill()
            for name in sorted(os.listdir(tmp)):
                if name.endswith(f"-{workers}.log"):
                    print(f"== {name}:", *open(os.path.join(tmp, name)).readlines()[-3:], sep="\n")
            sys.exit(f"{workers} worker(s): no progress for 120 s: {now[3]} facts kept of "
                     f"{events} events, lag {j} / {b}")
    secs = time.time() - t0
    cpu_w = sum(cpu_seconds(w.pid) for w in ws)
    cpu_b = cpu_seconds(builder.pid)
    cpu_n = cpu_seconds(nats.pid)
    pg_cpu = postgres_cpu() - pg_before
    held = stream_bytes(mport)
    pg_bytes = int(psql(bindir, pport, db, "SELECT pg_total_relation_size('fleet_facts')") or 0)
    for p in [builder, *ws]:
        p.send_signal(2)
        p.wait()
    ship.wait()
    nats.terminate()
    nats.wait()
    tally = open(os.path.join(tmp, f"builder-{workers}.log")).read()
    conclusions = tally.split(" conclusions")[0].rsplit(" ", 1)[-1]
    keep = tally.split(" ms keeping")[0].rsplit(" ", 1)[-1]
    concl = tally.split(" ms concluding")[0].rsplit(" ", 1)[-1]
    return dict(w=workers, secs=secs, rate=events / secs, lj=peak_judge, lb=peak_builder, cs=ship_cpu,
                cw=cpu_w, cb=cpu_b, cn=cpu_n, cp=pg_cpu, share=cpu_b / (cpu_w + cpu_b), keep=keep, concl=concl, n=conclusions,
                all=cpu_b / (ship_cpu + cpu_w + cpu_b + cpu_n + pg_cpu),
                be=held.get("TOWERWATCH_EVENTS", 0) / events, bf=held.get("TOWERWATCH_FACTS", 0) / events,
                bp=pg_bytes / events, us=1e6 * cpu_w / events, un=1e6 * cpu_n / events,
                up=1e6 * pg_cpu / events, ub=1e6 * cpu_b / events)


main()
