"""The Python client's search latency against the C++ SDK's, on one mnemod
(scripts/bench python_client). Loads the SAP Fiori chunks with their real
all-MiniLM-L6-v2 vectors (384-d) through the Python client, then sends the
same vector queries one Search at a time from Python (mnemo.Client) and
from C++ (bench_sdk_latency, the SDK), with and without a metadata filter,
and prints per-call p50/p99 and the ratios. Then the same for agent
memory: the chunks' texts added as memories of 10 users, searched
(MemorySearch: the query embedded by the server's USE-lite encoder, hybrid
dense + BM25 in a user's scope) with each chunk's first 12 words. Ends with
the goal lines `goal python_vs_cpp_search_p50 <python p50 / C++ p50> 2`
and `goal python_vs_cpp_memory_search_p50 <ratio> 2`.

Usage: python3 bench/bench_python_client.py --build BUILD [--rounds N]
(run from the repository root, after scripts/fetch_assets and after the
client is installed, as scripts/bench python_client does)."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.realpath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(REPO, "client", "python", "tests"))
from conftest import Mnemod, have_use_lite  # noqa: E402  (the tests' mnemod launcher)

import mnemo  # noqa: E402


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))]


def python_latency(client, ns, vectors, rounds, warmup, flt):
    for v in vectors[:warmup]:
        client.search(ns, v, k=10, filter=flt)
    us = []
    for _ in range(rounds):
        for v in vectors:
            t0 = time.perf_counter()
            hits = client.search(ns, v, k=10, filter=flt)
            us.append((time.perf_counter() - t0) * 1e6)
            assert hits, "empty result"
    return {"calls": len(us), "p50_us": percentile(us, 0.5), "p99_us": percentile(us, 0.99)}


def python_memory_latency(client, ns, texts, users, rounds, warmup):
    def call(i):
        return client.memory_search(ns, texts[i % len(texts)], agent_id="bench",
                                    user_id=f"user{i % users}", top_k=10)
    for i in range(warmup):
        call(i)
    us = []
    for _ in range(rounds):
        for i in range(len(texts)):
            t0 = time.perf_counter()
            hits = call(i)
            us.append((time.perf_counter() - t0) * 1e6)
            assert hits, "empty result"
    return {"calls": len(us), "p50_us": percentile(us, 0.5), "p99_us": percentile(us, 0.99)}


def cpp_latency(build, address, ns, path, rounds, warmup, flt, memory_users=0):
    args = [os.path.join(build, "bin", "bench_sdk_latency"), "--server", address, "--ns", ns,
            "--queries", path, "--rounds", str(rounds), "--warmup", str(warmup)]
    if flt:
        args += ["--filter", json.dumps(flt)]
    if memory_users:
        args += ["--memory-agent", "bench", "--memory-users", str(memory_users)]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=100)
    a = ap.parse_args()
    path = os.path.join(REPO, ".assets", "fiori", "chunks.jsonl")
    rows = [json.loads(line) for line in open(path) if line.strip()]
    os.environ.setdefault("MNEMO_BIN_DIR", os.path.join(a.build, "bin"))
    with tempfile.TemporaryDirectory(prefix="mnemo-bench-py-") as work:
        server = Mnemod(work)
        try:
            with mnemo.Client(server.address) as db:
                db.ns_create("fiori", dim=len(rows[0]["vector"]), metric="cosine")
                chunks = [mnemo.Chunk(id=r["id"], text=r["text"], vector=r["vector"],
                                      metadata={"half": i % 2})
                          for i, r in enumerate(rows)]
                for i in range(0, len(chunks), 200):
                    db.upsert("fiori", chunks=chunks[i:i + 200])
                vectors = [r["vector"] for r in rows]
                print(f"{len(rows)} chunks of {len(vectors[0])}-d, {a.rounds} rounds, one "
                      f"query per call, k=10")
                print(f"{'query':<12}{'client':<8}{'p50 us':>10}{'p99 us':>10}")
                ratios = {}
                for name, flt in (("plain", None), ("filtered", {"half": 1})):
                    py = python_latency(db, "fiori", vectors, a.rounds, a.warmup, flt)
                    cc = cpp_latency(a.build, server.address, "fiori", path, a.rounds, a.warmup, flt)
                    for client, r in (("python", py), ("c++", cc)):
                        print(f"{name:<12}{client:<8}{r['p50_us']:>10.0f}{r['p99_us']:>10.0f}")
                    ratios[name] = (py["p50_us"] / cc["p50_us"], py["p99_us"] / cc["p99_us"])
                if have_use_lite():
                    users = 10
                    for u in range(users):
                        db.memory_add("memories", [r["text"] for r in rows[u::users]],
                                      agent_id="bench", user_id=f"user{u}",
                                      near_duplicate_threshold=2.0)
                    texts = [" ".join(r["text"].split()[:12]) for r in rows[:200]]
                    qpath = os.path.join(work, "memory_queries.jsonl")
                    with open(qpath, "w") as f:
                        for text in texts:
                            f.write(json.dumps({"text": text}) + "\n")
                    warm = min(a.warmup, 50)
                    py = python_memory_latency(db, "memories", texts, users, a.rounds, warm)
                    cc = cpp_latency(a.build, server.address, "memories", qpath, a.rounds, warm,
                                     None, memory_users=users)
                    print(f"memory search, {len(rows)} memories of {users} users, "
                          f"{len(texts)} queries of 12 words")
                    for client, r in (("python", py), ("c++", cc)):
                        print(f"{'memory':<12}{client:<8}{r['p50_us']:>10.0f}"
                              f"{r['p99_us']:>10.0f}")
                    ratios["memory"] = (py["p50_us"] / cc["p50_us"], py["p99_us"] / cc["p99_us"])
                else:
                    print("memory search skipped: the USE-lite assets are missing "
                          "(scripts/fetch_assets)")
                for name, (r50, r99) in ratios.items():
                    print(f"python / c++ {name}: p50 {r50:.2f}x, p99 {r99:.2f}x")
        finally:
            server.stop()
    print(f"goal python_vs_cpp_search_p50 {ratios['plain'][0]:.3f} 2")
    if "memory" in ratios:
        print(f"goal python_vs_cpp_memory_search_p50 {ratios['memory'][0]:.3f} 2")


if __name__ == "__main__":
    main()
