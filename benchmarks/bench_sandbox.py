"""Sandbox overhead and throughput, against GenPRM's in-process executor measured in the same run.

    PYTHONPATH=build/python .venv/bin/python benchmarks/bench_sandbox.py [--blocks 200]

Prints:
  * per-block latency of a trivial block in a warm worker (sandbox) vs in-process exec with
    redirect_stdout + SIGALRM (the reference CodeExecutor), and the ratio;
  * first-block latency of a new session (warm spare vs cold start);
  * blocks/s for many sessions submitted asynchronously (pool of W workers) vs one worker and
    vs the in-process reference running the same blocks sequentially.
"""
import argparse
import contextlib
import io
import os
import signal
import statistics
import time

from genprm import Sandbox

BLOCK = "acc = sum(k * k for k in range(200))\nprint(acc)"


def reference_exec(code, namespace):
    def on_alarm(signum, frame):
        raise TimeoutError("Code execution timed out")
    signal.signal(signal.SIGALRM, on_alarm)
    try:
        f = io.StringIO()
        with contextlib.redirect_stdout(f):
            signal.alarm(5)
            try:
                exec(code, namespace)
            finally:
                signal.alarm(0)
        return f.getvalue().strip()
    except TimeoutError as te:
        return f"Code execute time out: {te}"
    except Exception as e:  # noqa: BLE001
        return f"Code execute Error: {type(e).__name__}: {e}"


def per_block(n):
    with Sandbox(workers=1) as sb, sb.session() as s:
        s.run(BLOCK)  # attach the worker
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            out = s.run(BLOCK)
            times.append(time.perf_counter() - t0)
        assert out == "2646700"
    ns = {}
    ref = []
    for _ in range(n):
        t0 = time.perf_counter()
        out = reference_exec(BLOCK, ns)
        ref.append(time.perf_counter() - t0)
    assert out == "2646700"
    sb_us, ref_us = statistics.median(times) * 1e6, statistics.median(ref) * 1e6
    print(f"per-block latency (median of {n}): sandbox {sb_us:.0f} us, in-process reference "
          f"{ref_us:.0f} us, overhead {sb_us - ref_us:.0f} us per block "
          f"(ratio sandbox/reference {sb_us / ref_us:.1f}x)")


def first_block(n):
    def measure(warm):
        with Sandbox(workers=1, warm_workers=warm) as sb:
            lat = []
            for _ in range(n):
                time.sleep(0.3)  # let the spare (if any) start
                with sb.session() as s:
                    t0 = time.perf_counter()
                    s.run("print(1)")
                    lat.append(time.perf_counter() - t0)
            return statistics.median(lat) * 1e3
    warm_ms, cold_ms = measure(1), measure(0)
    print(f"first block of a new session (median of {n}): warm spare {warm_ms:.1f} ms, cold "
          f"start {cold_ms:.1f} ms (warm is {cold_ms / warm_ms:.1f}x faster)")


def throughput(sessions, blocks, workers):
    def run_pool(w):
        with Sandbox(workers=w, warm_workers=min(w, sessions)) as sb:
            ss = [sb.session() for _ in range(sessions)]
            for s in ss:
                s.run("pass")  # attach workers outside the timing
            done = []
            t0 = time.perf_counter()
            for _ in range(blocks):
                for s in ss:
                    s.submit(BLOCK, done.append)
            while not sb.idle():
                sb.wait_and_poll(1.0)
            dt = time.perf_counter() - t0
            assert len(done) == sessions * blocks and all(r.ok for r in done)
            for s in ss:
                s.close()
            return sessions * blocks / dt
    pool_bps, one_bps = run_pool(workers), run_pool(1)
    nss = [{} for _ in range(sessions)]
    t0 = time.perf_counter()
    for _ in range(blocks):
        for ns in nss:
            reference_exec(BLOCK, ns)
    ref_bps = sessions * blocks / (time.perf_counter() - t0)
    print(f"throughput ({sessions} sessions x {blocks} blocks, {os.cpu_count()} cores): pool of "
          f"{workers} {pool_bps:.0f} blocks/s, 1 worker {one_bps:.0f} blocks/s "
          f"({pool_bps / one_bps:.2f}x), in-process reference {ref_bps:.0f} blocks/s "
          f"(pool/reference {pool_bps / ref_bps:.2f}x)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--blocks", type=int, default=200)
    ap.add_argument("--sessions", type=int, default=16)
    ap.add_argument("--workers", type=int, default=4)
    args = ap.parse_args()
    with Sandbox(workers=1) as sb:
        print(sb.isolation.strip())
    per_block(args.blocks)
    first_block(10)
    throughput(args.sessions, max(1, args.blocks // args.sessions), args.workers)


if __name__ == "__main__":
    main()
