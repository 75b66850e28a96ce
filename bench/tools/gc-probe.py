#!/usr/bin/env python3
"""gc-probe: one 1% collection on a copy of a populated registry, the same work every time.

    bench/tools/gc-probe.py REGISTRY SHIPSHAPE [--runs N] [--percent P] [--seed S]
                            [--perf-stat] [--pages]

REGISTRY is a Shipshape data directory, e.g. one kept by `bench-gc --reuse`
(`WORK/SIZE/shipshape`). Each run copies it, starts SHIPSHAPE on the copy, deletes the same P%
of its tags (chosen by the seed), waits out a 1 s grace period and collects. So two binaries
given the same REGISTRY and seed do exactly the same work, and their figures differ by the
binaries alone; `bench-gc --compare` gives each binary other tags, which makes up to 10-15% of
difference at 100 K blobs with three rounds.

--perf-stat  the server's context switches and CPU time during the run (Debian's linux-perf).
--pages      every page the run wrote to SQLite's log, attributed to the table or index that
             owns it (`dbstat`). A read transaction held open from before the deletions keeps
             any checkpoint from copying the log, so the log holds every page written. (While
             it is held, a background worker's pass may fail with SQLITE_BUSY_SNAPSHOT and say
             so in the log; the run is not affected.)
"""
import argparse, collections, json, os, random, shutil, signal, sqlite3, struct, subprocess
import tempfile, time, urllib.request

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("registry")
ap.add_argument("shipshape")
ap.add_argument("--runs", type=int, default=1)
ap.add_argument("--percent", type=float, default=1.0)
ap.add_argument("--seed", type=int, default=7)
ap.add_argument("--port", type=int, default=18555)
ap.add_argument("--perf-stat", action="store_true")
ap.add_argument("--pages", action="store_true")
args = ap.parse_args()
base = f"http://127.0.0.1:{args.port}"


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    r = urllib.request.Request(base + path, method=method, data=data,
                               headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(r) as resp:
        return json.loads(resp.read() or b"null")


def one_run(work):
    data = os.path.join(work, "data")
    subprocess.run(["cp", "-a", args.registry, data], check=True)
    db = os.path.join(data, "catalogue.db")
    c = sqlite3.connect(db)
    tags = c.execute("""SELECT r.name, t.name FROM tags t JOIN repositories r ON r.id = t.repository_id
                        WHERE t.name <> 'latest' AND r.deleted_at IS NULL ORDER BY 1, 2""").fetchall()
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    victims = random.Random(args.seed).sample(tags, int(len(tags) * args.percent / 100))
    server = subprocess.Popen([args.shipshape, "serve", "--listen", f"127.0.0.1:{args.port}",
                               "--data-dir", data, "--restore-window", "0s", "--log", "warn"])
    try:
        for _ in range(400):
            try:
                urllib.request.urlopen(base + "/v2/")
                break
            except OSError:
                time.sleep(0.025)
        holder = None
        if args.pages:
            holder = sqlite3.connect(db, isolation_level=None)
            holder.execute("BEGIN")
            holder.execute("SELECT count(*) FROM repositories").fetchall()
        for repo, tag in victims:
            call("DELETE", f"/v2/{repo}/manifests/{tag}")
        wal = db + "-wal"
        frames_before = (os.path.getsize(wal) - 32) // (24 + 4096) if args.pages else 0
        time.sleep(1.3)
        perf = None
        if args.perf_stat:
            perf = subprocess.Popen(["perf", "stat", "-x", ",", "-e", "context-switches,task-clock",
                                     "-p", str(server.pid), "-o", os.path.join(work, "perf")])
            time.sleep(0.3)
        started = time.time()
        run = call("POST", "/api/v1/gc/runs", {"include_untagged_manifests": True, "grace": "1s"})
        while (run := call("GET", f"/api/v1/gc/runs/{run['id']}"))["state"] == "running":
            time.sleep(0.002)
        wall = time.time() - started
        line = (f"{run['state']}: {run['figures']['blobs_deleted']} blobs freed, run {run['duration_ms']} ms, "
                f"wall {wall * 1000:.0f} ms")
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait()
            stats = {}
            for l in open(os.path.join(work, "perf")):
                f = l.split(",")
                if len(f) > 2 and f[0].replace(".", "").isdigit():
                    stats[f[2]] = float(f[0])
            line += f"; {stats.get('context-switches', 0):.0f} context switches, {stats.get('task-clock', 0):.0f} ms CPU"
        print(line, flush=True)
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
    if args.pages:
        pages(db, frames_before, run["figures"]["blobs_deleted"])


def pages(db, skip, blobs):
    log = open(db + "-wal", "rb").read()
    salt, frames, at = log[16:24], [], 32
    while at + 24 + 4096 <= len(log) and log[at + 8:at + 16] == salt:
        frames.append(struct.unpack(">I", log[at:at + 4])[0])
        at += 24 + 4096
    frames = frames[skip:]
    owner = dict(sqlite3.connect(db).execute("SELECT pageno, name FROM dbstat"))
    written = collections.Counter(owner.get(p, "(freed or new)") for p in frames)
    distinct = collections.Counter(owner.get(p, "(freed or new)") for p in set(frames))
    print(f"{len(frames)} pages written ({len(frames) / max(blobs, 1):.1f} per freed blob), "
          f"{len(set(frames))} distinct ({len(set(frames)) / max(blobs, 1):.1f} per freed blob)")
    print(f"{'table or index':44} {'written':>8} {'distinct':>8}")
    for name, n in written.most_common():
        print(f"{name:44} {n:8} {distinct[name]:8}")


for _ in range(args.runs):
    with tempfile.TemporaryDirectory(prefix="gc-probe-", dir=os.path.dirname(os.path.abspath(args.registry))) as work:
        one_run(work)
