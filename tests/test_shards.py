"""One target's checks cut into shards (`--shard I/N`, issue 19.5), run apart and combined into one run
(`conformance report --combine-shards`): the union of the shards is the full run, instance for instance."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.config.shards import Shard, instance_identity, shard_of
from conformance.report import history

# Templates on both endpoints, data-driven variants, two models, both modes and paths; the quirk makes
# some instances fail, so that outcomes are compared, not only passes.
SUBSET = ["--check", "chat.stop.*", "--check", "completions.echo.*", "--check", "*.errors.invalid-value@temperature"]
QUIRK = ["--", "--server-quirk", "stop-kept"]
COUNT = 3


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "conformance", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**os.environ})


def conformance_run(work: Path, name: str, *args, checks=SUBSET):
    result = run_cli("run", *checks, "--report-dir", name, "--no-history", "-n", "1", *args, *QUIRK, cwd=work)
    assert (work / name / "matrix.json").is_file(), result.stdout[-3000:] + result.stderr[-3000:]
    return result


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for path in sorted((run_dir / "results").glob("*.jsonl"))
            for line in path.read_text().splitlines() if line]


def instances(run_dir: Path) -> dict[tuple, str]:
    """(check, variant, model, mode, path) -> outcome: the run, instance for instance."""
    out = {}
    for r in records(run_dir):
        key = (r["check"], r.get("variant"), r["dimensions"]["model"], r["dimensions"]["mode"], r["dimensions"]["path"])
        assert key not in out, key
        out[key] = r["outcome"]
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    work = tmp_path_factory.mktemp("shards")
    out = {"full": conformance_run(work, "full")}
    for i in range(1, COUNT + 1):
        out[f"s{i}"] = conformance_run(work, f"s{i}", "--shard", f"{i}/{COUNT}")
    out["s2-xdist"] = conformance_run(work, "s2-xdist", "--shard", f"2/{COUNT}", "-n", "2")
    out["s2-narrow"] = conformance_run(work, "s2-narrow", "--shard", f"2/{COUNT}", checks=["--check", "chat.stop.*"])
    return work, out


def test_the_union_of_the_shards_is_the_full_run_instance_for_instance(runs):
    work, _ = runs
    full = instances(work / "full")
    shards = [instances(work / f"s{i}") for i in range(1, COUNT + 1)]
    union = {k: v for shard in shards for k, v in shard.items()}
    assert sum(map(len, shards)) == len(union) == len(full) > 100  # disjoint, and nothing lost
    assert union == full  # the same instances, with the same outcomes
    assert {"pass", "fail"} <= set(full.values())
    assert all(shards), [len(s) for s in shards]  # every shard has work
    print(f"full run: {len(full)} instances; shards: {[len(s) for s in shards]}; "
          f"outcomes {sorted(set(full.values()))}")


def test_the_assignment_is_stable_across_workers_and_selections(runs):
    work, _ = runs
    two = instances(work / "s2")
    assert instances(work / "s2-xdist") == two  # two xdist workers: the same shard
    narrow = instances(work / "s2-narrow")  # another --check selection holding some of its instances
    assert narrow and narrow == {k: v for k, v in two.items() if k[0].startswith("chat.stop.")}
    # the rule: sha256 of the instance's identity, nothing of the process or the collection
    for key in two:
        assert Shard(2, COUNT).holds(instance_identity(*key))
    assert shard_of("chat.stop.string-form\x1f\x1fref-small\x1fregular\x1fsdk", 3) == \
        shard_of("chat.stop.string-form\x1f\x1fref-small\x1fregular\x1fhttp", 3)  # twins share their answers


def test_a_shard_says_which_it_is(runs):
    work, results = runs
    matrix = json.loads((work / "s2" / "matrix.json").read_text())
    assert matrix["run"]["shard"] == f"2/{COUNT}" and matrix["run"]["id"].endswith(f"-shard2of{COUNT}")
    assert f"shard 2 of {COUNT}" in results["s2"].stdout
    full = json.loads((work / "full" / "matrix.json").read_text())
    assert "shard" not in full["run"]
    # a shard is compared only with the same shard of like runs, never with a whole run
    assert history.is_like(matrix["run"], {**matrix["run"], "id": "other"})
    assert not history.is_like(matrix["run"], {**matrix["run"], "shard": None})
    assert not history.is_like(matrix["run"], {**matrix["run"], "shard": f"1/{COUNT}"})


@pytest.mark.parametrize("value", ["0/3", "4/3", "x", "3", "1/0", "-1/3", ""])
def test_a_bad_shard_is_one_usage_line(tmp_path, value):
    result = run_cli("run", f"--shard={value}", "--report-dir", "run", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"conformance: error: {Shard.USAGE}, not {value!r}"]
    assert not (tmp_path / "run").exists()


def test_a_bad_shard_is_a_usage_error_in_pytest_too(tmp_path):
    import conformance.suites

    suites = list(conformance.suites.__path__)[0]
    result = subprocess.run([sys.executable, "-m", "pytest", suites, "--target", "reference", "--shard", "4/3",
                             "-p", "no:cacheprovider", "--report-dir", str(tmp_path / "run")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 4 and f"{Shard.USAGE}, not '4/3'" in result.stderr


def comparable(matrix: dict) -> dict:
    """What a reader is shown of a run, less what depends on when and how it was cut: the outcome
    counts, every check row (outcome per model with its counts) and every parameter verdict."""
    summary = {k: v for k, v in matrix["summary"].items() if k not in ("requests", "tokens")}
    rows = [{"id": r["id"], "level": r["level"], "outcomes": r["outcomes"],
             "models": {m: (c["outcome"], c["counts"]) for m, c in r["models"].items()},
             "instances": sorted((i["model"], i["mode"], i["path"], i["variant"] or "", i["outcome"])
                                 for i in r["instances"])} for r in matrix["checks"]]
    verdicts = [(p["endpoint"], p["parameter"], p["declared"], {m: c["verdict"] for m, c in p["models"].items()})
                for p in matrix["parameters"]]
    return {"summary": summary, "checks": rows, "parameters": verdicts,
            "failing": [(f["id"], f["failed"], f["errors"]) for f in matrix["failing_checks"]],
            "causes": sorted((c["signature"], c["level"], c["instances"], c["checks"]) for c in matrix["causes"])}


def test_the_combined_shards_are_the_full_runs_report(runs):
    work, _ = runs
    result = run_cli("report", "--combine-shards", *[f"s{i}" for i in (3, 1, 2)], "--out", "combined",
                     "--history", "history.jsonl", cwd=work)
    assert result.returncode == 1, result.stdout + result.stderr  # the quirk's deviations, as the full run's
    assert result.stderr == ""
    combined = json.loads((work / "combined" / "matrix.json").read_text())
    full = json.loads((work / "full" / "matrix.json").read_text())
    assert comparable(combined) == comparable(full)
    assert combined["summary"]["instances"] == full["summary"]["instances"]
    assert "shard" not in combined["run"] and combined["run"]["shards"]["combined"] == [1, 2, 3]
    assert combined["run"]["id"] == json.loads((work / "s1" / "matrix.json").read_text())["run"]["id"].rsplit("-", 1)[0]
    # a run folder like any other: evidence behind every instance, records, pages, its history line
    assert len(records(work / "combined")) == full["summary"]["instances"]
    assert all((work / "combined" / i["evidence"]).is_file() for r in combined["checks"] for i in r["instances"])
    assert (work / "combined" / "matrix.html").is_file() and list((work / "combined" / "checks").glob("*.html"))
    (entry,) = history.read(work / "history.jsonl")[0]
    assert entry["run"] == combined["run"]["id"] and history.is_like(entry, full["run"])  # a whole run again
    print(f"combined: {combined['summary']['outcomes']}; full: {full['summary']['outcomes']}; requests "
          f"{combined['summary']['requests']} (shards) vs {full['summary']['requests']} (one process)")


def test_missing_shards_are_named_and_the_rest_is_combined(runs):
    work, _ = runs
    result = run_cli("report", "--combine-shards", "s1", "s3", "--out", "partial", "--history", "partial.jsonl",
                     cwd=work)
    assert result.stderr.strip().splitlines() == \
        [f"conformance: shard(s) 2 of {COUNT} missing: the combined run holds shard(s) 1, 3 only"]
    assert result.returncode in (1, 3)
    partial = instances(work / "partial")
    assert partial == {**instances(work / "s1"), **instances(work / "s3")}
    mixed = run_cli("report", "--combine-shards", "s1", "s2", "s2-xdist", "s3", "full", "--out", "mixed", cwd=work)
    assert mixed.returncode == 2 and "full: not a shard" in mixed.stderr
    twice = run_cli("report", "--combine-shards", "s1", "s2", "s2-xdist", "s3", "--out", "twice",
                    "--history", "twice.jsonl", cwd=work)
    assert f"shard 2 of {COUNT} given twice (s2 and s2-xdist): s2-xdist left out" in twice.stderr
    assert instances(work / "twice") == instances(work / "full")
