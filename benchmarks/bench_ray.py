"""`genprm verify --ray` throughput with 1 and 2 CPU workers, same rows, same Ray instance, same run.

    PYTHONPATH=build/python python benchmarks/bench_ray.py [--rows 24] [--majority 2] [--max-tokens 160]
        [--cpus 2] [--batch-size 4]

The shipped arithmetic GenPRM (genprm.arith) verifies --rows held-out rows through the CLI's
distributed driver (genprm.ray.run_job: the rows stream back from Ray actors, one engine and one
thread each). Prints per worker count the rows/s over the whole job (worker start and model load
included) and over the rows after the first one arrived (steady state), and the ratio 2 / 1
workers. On a machine with 2 cores the ratio is bounded by 2, less what the driver and the
sandbox workers take; the outputs of the two runs are checked to be the same lines.
"""
import argparse
import sys
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=24)
    ap.add_argument("--majority", type=int, default=2)
    ap.add_argument("--max-tokens", dest="max_tokens", type=int, default=160)
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    ap.add_argument("--batch-size", dest="batch_size", type=int, default=4,
                    help="rows per batch sent to a worker, the same for both runs (0: the CLI's default)")
    args = ap.parse_args(argv)

    try:
        import ray
    except ImportError:
        print("bench_ray: Ray is not installed (pip install 'genprm[ray]'); skipped")
        return 0
    from genprm import arith, cli
    from genprm import ray as genprm_ray
    from genprm.cli import verify

    if not arith.available():
        print("bench_ray: the shipped arithmetic models are missing; skipped")
        return 0
    rows = arith.heldout_rows(args.rows)
    ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="WARNING")
    results = {}
    outputs = {}
    try:
        for workers in (1, 2):
            argv = ["verify", "--model", arith.genprm_dir(), "--input", "-", "--output", "-", "--majority",
                    str(args.majority), "--max-tokens", str(args.max_tokens), "--seed", "0", "--no-progress",
                    "--ray", "--workers", str(workers)]
            if args.batch_size:
                argv += ["--batch-size", str(args.batch_size)]
            job_args = cli.build_parser().parse_args(argv)
            times = []
            written = []

            def write(record):
                times.append(time.perf_counter())
                written.append(record)

            t0 = time.perf_counter()
            genprm_ray.run_job(verify.JOB, job_args, rows, write)
            t1 = time.perf_counter()
            steady = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
            results[workers] = (len(rows) / (t1 - t0), steady, t1 - t0)
            outputs[workers] = {r["id"]: (r["value"], r["first_wrong_step"]) for r in written}
    finally:
        ray.shutdown()

    print(f"genprm verify --ray, {args.rows} rows, Maj@{args.majority}, arith-genprm, {args.cpus} CPUs")
    print(f"{'workers':>7} {'seconds':>8} {'rows/s (job)':>13} {'rows/s (steady)':>16}")
    for w, (job, steady, secs) in results.items():
        print(f"{w:>7} {secs:>8.2f} {job:>13.3f} {steady:>16.3f}")
    print(f"ratio 2/1 workers: job {results[2][0] / results[1][0]:.2f}x, steady {results[2][1] / results[1][1]:.2f}x")
    same = outputs[1] == outputs[2]
    print(f"same rewards with 1 and 2 workers: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
