"""genprm.ray and `genprm verify|label|search --ray` on a local Ray instance (2 CPUs) with the
shipped arithmetic models: the same output lines as the single-machine run, the resume rule,
a worker killed mid-job, a killed driver, rows that fail every try, and the message without Ray."""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from genprm import arith, cli
from genprm.cli import label as label_cmd, verify as verify_cmd
from genprm.cli.jobs import Job

pytestmark = pytest.mark.skipif(not arith.available(), reason="the shipped arithmetic models are missing")

VERIFY = ["--majority", "2", "--max-tokens", "160", "--seed", "1", "--no-progress"]
LABEL = ["--k", "4", "--first-k", "4", "--max-tokens", "48", "--seed", "3", "--no-progress"]
SEARCH = ["--scorer", "none", "--method", "best-of-n", "--n", "2", "--max-tokens", "48", "--seed", "2",
          "--no-progress"]
# what differs between two runs of the same rows: wall-clock times, and how much of a prompt the
# prefix cache held (that depends on which other rows shared the engine before)
TIMES = {"time", "elapsed", "seconds", "cached_prompt_tokens"}


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray instance for the module (its start is the slow part)."""
    ray = pytest.importorskip("ray")
    # on a loaded machine Ray's node agents can take longer to start than the raylet waits by default
    os.environ.setdefault("RAY_agent_register_timeout_ms", "600000")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def _pruned(x, drop):
    """The value without the dict items for which drop(key, value) holds, at any depth."""
    if isinstance(x, dict):
        return {k: _pruned(v, drop) for k, v in x.items() if not drop(k, v)}
    if isinstance(x, list):
        return [_pruned(v, drop) for v in x]
    return x


def _untimed(x):
    """The value without wall-clock fields, at any depth."""
    return _pruned(x, lambda k, v: k in TIMES)


def _by_id(rows):
    ids = [str(r["id"]) for r in rows]
    assert len(ids) == len(set(ids)), f"an id written twice: {sorted(ids)}"
    return {str(r["id"]): _untimed(r) for r in rows}


@pytest.fixture(scope="module")
def verify_rows():
    return arith.heldout_rows(8)


@pytest.fixture(scope="module")
def local_verify(verify_rows, tmp_path_factory):
    """The single-machine `genprm verify` output of verify_rows: {id: line without times}."""
    d = tmp_path_factory.mktemp("local_verify")
    assert cli.main(["verify", "--model", arith.genprm_dir(), "--input", _write(d / "in.jsonl", verify_rows),
                     "--output", str(d / "out.jsonl")] + VERIFY) == 0
    return _by_id(_lines(d / "out.jsonl"))


def _label_rows(n):
    from genprm import rpe, synthetic
    return [{"id": r["id"], "problem": r["problem"], "steps": rpe.split_steps(synthetic.solution_text(r["steps"])),
             "answer": r["answer"]} for r in arith.heldout_rows(n, level="small")]


def test_without_ray_the_option_says_how_to_install(tmp_path):
    inp = _write(tmp_path / "in.jsonl", [{"id": "a", "problem": "1+1", "steps": ["1+1=2"]}])
    code = textwrap.dedent(f"""
        import sys
        sys.modules["ray"] = None  # as if Ray were not installed
        from genprm import cli
        sys.exit(cli.main(sys.argv[1:]))
    """)
    argv = [sys.executable, "-c", code, "verify", "--model", arith.genprm_dir(), "--input", inp,
            "--output", str(tmp_path / "out.jsonl"), "--ray", "--workers", "2"]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    assert "pip install 'genprm[ray]'" in p.stderr and "pip install 'ray[data]'" in p.stderr
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_ray_options_without_ray(tmp_path, capsys):
    # parsing, help and this check import no Ray
    inp = _write(tmp_path / "in.jsonl", [{"id": "a", "problem": "1+1", "steps": ["1+1=2"]}])
    assert cli.main(["verify", "--model", arith.genprm_dir(), "--input", inp, "--output", str(tmp_path / "o.jsonl"),
                     "--workers", "2"]) == 2
    assert "--workers needs --ray" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["label", "-h"])
    assert "--gpus-per-worker" in capsys.readouterr().out


def test_cli_verify_on_ray_matches_local_and_resumes(ray_cluster, verify_rows, local_verify, tmp_path, capsys):
    inp = _write(tmp_path / "in.jsonl", verify_rows)
    dist = tmp_path / "ray.jsonl"
    ray_args = ["verify", "--model", arith.genprm_dir(), "--input", inp, "--output", str(dist), "--ray", "--workers",
                "2", "--batch-size", "3"] + VERIFY
    assert cli.main(ray_args) == 0
    assert _by_id(_lines(dist)) == local_verify  # same rows, same seeds: the same lines
    capsys.readouterr()

    # a torn last line and a lost row: the rerun (from the same rows as Parquet, read by Ray
    # Data) redoes those two, once each
    import pyarrow
    import pyarrow.parquet
    parquet = str(tmp_path / "in.parquet")
    pyarrow.parquet.write_table(pyarrow.Table.from_pylist(verify_rows), parquet)
    kept = dist.read_text().splitlines(keepends=True)[:5]
    dist.write_text("".join(kept) + kept[-1][:20])
    ray_args[ray_args.index(inp)] = parquet
    assert cli.main(ray_args) == 0
    assert "5 already in" in capsys.readouterr().err
    assert _by_id(_lines(dist)) == local_verify


def test_cli_label_and_search_on_ray_match_local(ray_cluster, tmp_path):
    inp = _write(tmp_path / "label.jsonl", _label_rows(3))
    base = ["label", "--model", arith.policy_dir(), "--input", inp] + LABEL
    assert cli.main(base + ["--output", str(tmp_path / "l0.jsonl")]) == 0
    assert cli.main(base + ["--output", str(tmp_path / "l1.jsonl"), "--ray", "--workers", "2"]) == 0
    assert _by_id(_lines(tmp_path / "l1.jsonl")) == _by_id(_lines(tmp_path / "l0.jsonl"))

    inp = _write(tmp_path / "search.jsonl", arith.heldout_problems(4))
    base = ["search", "--policy", arith.policy_dir(), "--input", inp] + SEARCH
    assert cli.main(base + ["--output", str(tmp_path / "s0.jsonl")]) == 0
    assert cli.main(base + ["--output", str(tmp_path / "s1.jsonl"), "--ray", "--workers", "2"]) == 0
    assert _by_id(_lines(tmp_path / "s1.jsonl")) == _by_id(_lines(tmp_path / "s0.jsonl"))


def _busy_worker_pids():
    """Process ids of the genprm Ray workers computing rows now (Ray titles an actor's process
    ray::Class.method while it runs one)."""
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    if f.read().startswith(b"ray::GenprmWorker.process"):
                        pids.append(int(name))
            except OSError:
                pass
    return pids


def _when_written(path, rows, then, timeout=120):
    """Runs then() in a thread once ``path`` has ``rows`` lines."""
    def watch():
        t0 = time.time()
        while time.time() - t0 < timeout:
            if os.path.exists(path):
                with open(path) as f:
                    if f.read().count("\n") >= rows:
                        then()
                        return
            time.sleep(0.05)
    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def test_a_worker_killed_mid_job_costs_only_its_rows_in_flight(ray_cluster, verify_rows, tmp_path, capsys):
    inp = _write(tmp_path / "in.jsonl", verify_rows)
    out = tmp_path / "out.jsonl"
    killed = []

    def kill():
        pids = _busy_worker_pids()
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    watcher = _when_written(out, 1, kill)
    argv = ["verify", "--model", arith.genprm_dir(), "--input", inp, "--output", str(out), "--ray", "--workers", "2",
            "--batch-size", "2"] + VERIFY
    assert cli.main(argv) == 0
    watcher.join()
    assert killed, "no worker to kill"
    assert "lost" in capsys.readouterr().err  # the driver saw it and retried its rows
    rows = _lines(out)
    assert sorted(str(r["id"]) for r in rows) == sorted(r["id"] for r in verify_rows)  # all, once each
    assert all("error" not in r for r in rows)


def test_a_killed_driver_resumes_on_rerun(ray_cluster, tmp_path):
    rows = _label_rows(8)
    inp = _write(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    address = ray_cluster.get_runtime_context().gcs_address
    argv = [sys.executable, "-m", "genprm", "label", "--model", arith.policy_dir(), "--input", inp,
            "--output", str(out), "--ray", address, "--workers", "1", "--batch-size", "1"] + LABEL
    driver = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    watcher = _when_written(out, 1, lambda: driver.send_signal(signal.SIGKILL))
    driver.wait(timeout=300)
    watcher.join()
    assert driver.returncode == -signal.SIGKILL
    first = len(_lines(out))
    assert 1 <= first < len(rows)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert f"{first} already in" in p.stderr
    assert sorted(r["id"] for r in _lines(out)) == sorted(r["id"] for r in rows)


# ---- the driver's retry rule, on a job without a model ------------------------------------------


def _echo_load(args):
    return None


def _echo_records(models, args, rows, on_record, progress):
    """Echoes each row with value [1.0]; row "crash" kills its worker, row "raise" raises."""
    for i, row in enumerate(rows):
        if row["id"] == "crash":
            os._exit(3)
        if row["id"] == "raise":
            raise ValueError("this row cannot be verified")
        on_record(i, dict(row, value=[1.0]))


ECHO = dataclasses.replace(verify_cmd.JOB, load=_echo_load, records=_echo_records, stats=lambda models: {},
                           in_flight=lambda args: 2)


def test_rows_that_fail_every_try_are_written_once_with_their_error(ray_cluster, tmp_path, capsys):
    import ray.cloudpickle
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this file
    ids = [f"r{i}" for i in range(8)]
    rows = [{"id": i, "problem": "p", "steps": ["s"]} for i in ids[:3] + ["crash"] + ids[3:6] + ["raise"] + ids[6:]]
    args = cli.build_parser().parse_args(["verify", "--model", "m", "--input", "-", "--output", "-", "--ray",
                                          "--workers", "2", "--batch-size", "3", "--no-progress"])
    written = []
    from genprm import ray as genprm_ray
    genprm_ray.run_job(ECHO, args, rows, written.append)
    by_id = {r["id"]: r for r in written}
    assert len(written) == len(by_id) == len(rows)  # nothing lost, nothing twice
    assert all(by_id[i]["value"] == [1.0] and "error" not in by_id[i] for i in ids)
    assert f"failed {genprm_ray.ATTEMPTS} times" in by_id["crash"]["error"]
    assert "this row cannot be verified" in by_id["raise"]["error"]
    assert by_id["raise"]["value"] is None  # done: a rerun skips it


def test_map_batches_callables_match_the_cli(ray_cluster, verify_rows, local_verify, tmp_path):
    from genprm.ray import GenPRMVerifier, RPELabeler
    rows = verify_rows[:4]
    bad = dict(rows[0], id="bad", steps=[])  # no steps: this row's error, not the batch's
    opts = {"model": arith.genprm_dir(), "majority": 2, "max_tokens": 160, "seed": 1}
    ds = ray_cluster.data.from_items(rows + [bad]).map_batches(GenPRMVerifier, fn_constructor_kwargs=opts,
                                                               concurrency=1, batch_size=3)
    out = {r["id"]: genprm_plain(r) for r in ds.take_all()}
    assert "'steps' must be a non-empty list" in out["bad"]["error"] and "value" not in out["bad"]
    for rid in (r["id"] for r in rows):
        got, r = _untimed(out[rid]), local_verify[rid]
        assert "error" not in got and got == genprm_plain(r)

    lrows = _label_rows(2)
    ds = ray_cluster.data.from_items(lrows).map_batches(
        RPELabeler, fn_constructor_kwargs={"model": arith.policy_dir(), "k": 4, "first_k": 4, "max_tokens": 48,
                                           "seed": 3}, concurrency=1, batch_size=2)
    labelled = {r["id"]: genprm_plain(r) for r in ds.take_all()}
    assert cli.main(["label", "--model", arith.policy_dir(), "--input", _write(tmp_path / "l.jsonl", lrows),
                     "--output", str(tmp_path / "l0.jsonl")] + LABEL) == 0
    for rid, r in _by_id(_lines(tmp_path / "l0.jsonl")).items():
        got = _untimed(labelled[rid])
        assert "error" not in got and got == genprm_plain(r)


def genprm_plain(row):
    """A row Ray Data gave back as the CLI writes it: numpy values as Python, and no null fields
    (Arrow's struct columns give every row every key, null where it had none)."""
    from genprm.ray import _plain
    return _pruned(_plain(row), lambda k, v: v is None)


def _broken_load(args):
    raise ValueError("no model here")


def test_no_worker_that_can_load_the_models_stops_the_job(ray_cluster, capsys):
    import ray.cloudpickle
    from genprm import ray as genprm_ray
    from genprm.cli.jobs import JobError
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    args = cli.build_parser().parse_args(["verify", "--model", "m", "--input", "-", "--output", "-", "--ray",
                                          "--workers", "1", "--no-progress"])
    written = []
    with pytest.raises(JobError, match="no worker could load the models; 2 rows not done"):
        genprm_ray.run_job(dataclasses.replace(ECHO, load=_broken_load), args,
                           [{"id": "a", "problem": "p", "steps": ["s"]}, {"id": "b", "problem": "p", "steps": ["s"]}],
                           written.append)
    assert written == []  # a rerun does them all
    assert "no model here" in capsys.readouterr().err
