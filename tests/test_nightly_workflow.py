"""The nightly workflow as a user copies it: its structure, and its steps run here, two nights in a row,
against the embedded reference target, with a local folder served over HTTP as the published site."""

import functools
import http.server
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "nightly.yml"
NIGHTLY = ROOT / "tools" / "nightly.py"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def workflow() -> dict:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(WORKFLOW.read_text())


def steps_using(job: dict, action: str) -> list[dict]:
    return [s for s in job["steps"] if s.get("uses", "").startswith(action + "@")]


# --- structure ----------------------------------------------------------------------------------------

def test_every_job_can_read_the_repository():
    flow = workflow()
    for name, job in flow["jobs"].items():
        # A job's own permissions replace the workflow's, they do not add to them.
        permissions = job.get("permissions", flow.get("permissions", {}))
        assert permissions.get("contents") in ("read", "write"), name
    assert {"pages": "write", "id-token": "write"}.items() <= flow["jobs"]["publish"]["permissions"].items()


def test_the_history_is_not_kept_in_the_evictable_cache_and_re_runs_can_save_their_results():
    jobs = workflow()["jobs"]
    for job in jobs.values():
        for step in steps_using(job, "actions/cache") + steps_using(job, "actions/cache/save"):
            assert "history" not in str(step["with"]["path"])  # a cache is evicted after 7 days unused
            assert "github.run_attempt" in step["with"]["key"]  # a re-run cannot save an existing key
        for step in steps_using(job, "actions/upload-artifact"):
            # v4 artifacts are immutable: a re-run attempt must overwrite its own, or be named apart
            assert step["with"].get("overwrite") is True or "run_attempt" in step["with"]["name"]
    assert all("matrix.target" in s["with"]["name"] for s in steps_using(jobs["run"], "actions/upload-artifact"))


def test_the_steps_logic_is_in_the_tested_script():
    jobs = workflow()["jobs"]
    for job in jobs.values():
        for step in job["steps"]:
            lines = [line for line in step.get("run", "").splitlines() if line.strip()]
            assert len(lines) <= 2, step  # anything longer belongs in tools/nightly.py, which is tested
    run_names = [step.get("name", step.get("run", step.get("uses"))) for step in jobs["run"]["steps"]]
    assert run_names.index("fetch the history from the published site") < run_names.index("conformance run")
    publish = "\n".join(step.get("run", "") for step in jobs["publish"]["steps"])
    assert "tools/nightly.py publish" in publish and "tools/nightly.py check-site" in publish
    pages = steps_using(jobs["publish"], "actions/upload-pages-artifact")[0]["with"]["path"]
    assert f"--out {pages}" in publish  # the folder deployed is the one holding the history


# --- the steps, run here ------------------------------------------------------------------------------

class Site:
    """A local folder served over HTTP: the published site. `deploy` replaces it, as Pages does."""

    def __init__(self, root: Path, status: int | None = None):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        status_override = status

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if status_override:
                    self.send_error(status_override)
                else:
                    super().do_GET()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def deploy(self, folder: Path) -> None:
        shutil.rmtree(self.root)
        shutil.copytree(folder, self.root)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site(tmp_path):
    served = Site(tmp_path / "published")
    yield served
    served.close()


class Night:
    """One workflow run, its jobs executed step by step as GitHub Actions would: `run:` steps with bash
    in a fresh workspace (a checkout of this repository), the actions it uses by their effect."""

    def __init__(self, tmp: Path, number: int, site: Site, variables: dict):
        self.tmp, self.number, self.site, self.variables = tmp, number, site, variables
        self.artifacts = tmp / f"night{number}-artifacts"
        self.flow = workflow()
        self.log: list[str] = []

    def value(self, expression: str, matrix: dict, outputs: dict) -> str:
        scope, _, name = expression.partition(".")
        if scope == "matrix":
            return str(matrix[name])
        if scope == "secrets":
            return ""  # no secrets here: netmind's key is missing, as on a fork
        if scope == "vars":
            return self.variables.get(name, "")
        if scope == "github":
            return {"run_id": str(1000 + self.number), "run_attempt": "1"}[name]
        if scope == "steps":
            step_id, _, output = name.partition(".outputs.")
            return outputs.get(step_id, {}).get(output, "")
        raise AssertionError(f"the simulation does not know ${{{{ {expression} }}}}: teach it")

    def render(self, text, matrix, outputs):
        if isinstance(text, dict):
            return {k: self.render(v, matrix, outputs) for k, v in text.items()}
        if isinstance(text, str):
            return EXPRESSION.sub(lambda m: self.value(m.group(1), matrix, outputs), text)
        return text

    def condition(self, step, failed, matrix, outputs) -> bool:
        condition = EXPRESSION.sub(r"\1", str(step.get("if", "success()"))).strip()
        if condition == "always()":
            return True
        if failed:
            return False
        if condition == "success()":
            return True
        left, op, literal = re.fullmatch(r"(\S+) (!=|==) '(.*)'", condition).groups()
        actual = self.value(left, matrix, outputs)
        return (actual != literal) if op == "!=" else (actual == literal)

    def job(self, name: str, matrix: dict | None = None) -> bool:
        """Run one job in a fresh workspace; True when it succeeded."""
        matrix = matrix or {}
        job = self.flow["jobs"][name]
        workspace = self.tmp / f"night{self.number}-{name}-{'-'.join(map(str, matrix.values())) or 'job'}"
        workspace.mkdir()
        outputs: dict = {}
        failed = False
        for index, step in enumerate(job["steps"]):
            if not self.condition(step, failed, matrix, outputs):
                continue
            ok = self.step(step, workspace, matrix, outputs, index)
            failed = failed or not ok
        return not failed

    def step(self, step, workspace: Path, matrix, outputs, index) -> bool:
        uses = step.get("uses", "").split("@")[0]
        settings = self.render(step.get("with", {}), matrix, outputs)
        if uses == "actions/checkout":
            for folder in ("tools", "targets", "expectations"):
                shutil.copytree(ROOT / folder, workspace / folder, ignore=shutil.ignore_patterns("__pycache__"))
            return True
        if uses in ("actions/setup-python", "actions/setup-node"):
            return True  # this interpreter, with the project installed
        if uses == "actions/upload-artifact":
            store = self.artifacts / settings["name"]
            if store.exists():
                assert settings.get("overwrite") is True, "a second upload of an artifact fails without overwrite"
                shutil.rmtree(store)
            store.mkdir(parents=True)
            for line in settings["path"].split():
                if (workspace / line).is_dir():
                    shutil.copytree(workspace / line, store / line)
                elif (workspace / line).is_file():
                    (store / line).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(workspace / line, store / line)
            return True
        if uses == "actions/download-artifact":
            assert settings["merge-multiple"] is True
            for artifact in sorted(self.artifacts.glob(settings["pattern"])):
                shutil.copytree(artifact, workspace, dirs_exist_ok=True)
            return True
        if uses == "actions/upload-pages-artifact":
            self.pages = workspace / settings["path"]
            return True
        if uses == "actions/deploy-pages":
            self.site.deploy(self.pages)
            outputs[step["id"]] = {"page_url": self.site.url}
            return True
        assert not uses, f"the simulation does not know the action {uses}: teach it"
        script = self.render(step["run"], matrix, outputs)
        if script.strip() == "pip install .":
            return True  # installed already, in this interpreter's environment
        output_file = workspace / f".output-{index}"
        output_file.touch()
        env = {**os.environ, "GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "someone/conformance",
               "GITHUB_RUN_ID": str(1000 + self.number), "GITHUB_RUN_ATTEMPT": "1", "GITHUB_WORKSPACE": str(workspace),
               "GITHUB_OUTPUT": str(output_file), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               **self.render(self.flow.get("env", {}), matrix, outputs),
               **self.render(step.get("env", {}), matrix, outputs)}
        result = subprocess.run(["bash", "-e", "-c", script], cwd=workspace, env=env, capture_output=True, text=True,
                                timeout=600)
        self.log.append(f"$ {script}\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
        if "id" in step:
            outputs[step["id"]] = dict(line.split("=", 1) for line in output_file.read_text().splitlines() if line)
        return result.returncode == 0

    def all_jobs(self) -> dict[str, bool]:
        axes = self.flow["jobs"]["run"]["strategy"]["matrix"]
        done = {}
        for values in itertools.product(*axes.values()):  # every combination, as GitHub expands a matrix
            matrix = dict(zip(axes, values))
            done["-".join(["run", *map(str, values)])] = self.job("run", matrix)
        done["publish"] = self.job("publish")
        return done


def published_history(site: Site, target: str) -> list[dict]:
    return [json.loads(line) for line in (site.root / "history" / f"{target}.jsonl").read_text().splitlines()]


def test_the_workflow_runs_each_target_in_shards():
    run = workflow()["jobs"]["run"]
    matrix = run["strategy"]["matrix"]
    assert matrix["shard"] == list(range(1, matrix["shards"][0] + 1)) and len(matrix["shards"]) == 1
    (step,) = [s for s in run["steps"] if s.get("id") == "run"]
    assert '--shard "${{ matrix.shard }}/${{ matrix.shards }}"' in step["run"]
    (upload,) = steps_using(run, "actions/upload-artifact")
    assert "matrix.shard" in upload["with"]["name"]  # one artifact per shard job


@pytest.mark.parametrize("shards", [2, 1])
def test_two_nights_keep_the_history_on_the_published_site(tmp_path, site, shards):
    variables = {"CONFORMANCE_SITE_URL": site.url, "CONFORMANCE_RUN_ARGS": "-k list_shape -n 1",
                 "CONFORMANCE_REPORT_ARGS": "--no-allure"}

    def night(number):
        tonight = Night(tmp_path, number, site, variables)
        tonight.flow["jobs"]["run"]["strategy"]["matrix"].update(shard=list(range(1, shards + 1)), shards=[shards])
        return tonight

    first = night(1)
    jobs = first.all_jobs()
    # the first night: no site yet, so no history; netmind has no key (exit 2, its jobs fail); published
    assert jobs == {**{f"run-reference-{i}-{shards}": True for i in range(1, shards + 1)},
                    **{f"run-netmind-{i}-{shards}": False for i in range(1, shards + 1)}, "publish": True}, \
        "\n".join(first.log)
    # one history line a night for the target: the combined run when it ran in shards
    (night_one,) = published_history(site, "reference")
    assert "shard" not in night_one
    assert json.loads((site.root / "history" / "index.json").read_text()) == ["netmind", "reference"]
    second = night(2)
    assert second.all_jobs() == jobs, "\n".join(second.log)
    # the second night fetched the first night's history back, compared with it, and published both
    one, two = published_history(site, "reference")
    assert one == night_one and two["run"] != one["run"]
    tonight = json.loads((site.root / "runs" / two["run"] / "matrix.json").read_text())
    assert tonight["changes"]["previous_run"] == one["run"] and tonight["changes"]["regressed"] == []
    assert [json.loads(line)["run"] for line in (site.root / "history.jsonl").read_text().splitlines()] == \
        [one["run"], two["run"]]
    index = (site.root / "index.html").read_text()
    assert "2 run(s)" in index and f"since {one['run']}" in index
    if shards > 1:  # the published run is the shards combined: every instance of the whole run
        assert tonight["run"]["shards"]["combined"] == list(range(1, shards + 1))
        assert tonight["summary"]["instances"] == sum(
            json.loads((tmp_path / f"night2-run-reference-{i}-{shards}" / "reports" / "reference" / f"shard-{i}" /
                        "matrix.json").read_text())["summary"]["instances"] for i in range(1, shards + 1))


def nightly(*args, cwd, env=None):
    return subprocess.run([sys.executable, str(NIGHTLY), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def test_a_site_that_cannot_be_read_stops_the_night_instead_of_forgetting_the_history(tmp_path):
    broken = Site(tmp_path / "published", status=503)
    try:
        fetched = nightly("--site", broken.url, "fetch-history", "--target", "reference", cwd=tmp_path)
        assert fetched.returncode == 1 and "HTTP 503" in fetched.stderr and "not lost" in fetched.stderr
        assert not (tmp_path / "history").exists()
        (tmp_path / "reports" / "reference").mkdir(parents=True)
        (tmp_path / "reports" / "reference" / "matrix.json").write_text("{}")
        published = nightly("--site", broken.url, "publish", cwd=tmp_path)
        assert published.returncode == 1 and not (tmp_path / "site").exists()
    finally:
        broken.close()


def test_the_site_url_defaults_to_github_pages_and_a_wrong_one_is_caught(tmp_path):
    env = {"SITE_URL": "", "GITHUB_REPOSITORY": "Someone/conformance"}
    checked = nightly("check-site", "--deployed", "https://someone.github.io/conformance/", cwd=tmp_path, env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    user_site = nightly("check-site", "--deployed", "https://someone.github.io/", cwd=tmp_path,
                        env={**env, "GITHUB_REPOSITORY": "someone/someone.github.io"})
    assert user_site.returncode == 0, user_site.stdout
    elsewhere = nightly("check-site", "--deployed", "https://conformance.example.org/", cwd=tmp_path, env=env)
    assert elsewhere.returncode == 1 and "CONFORMANCE_SITE_URL" in elsewhere.stdout
    assert elsewhere.stdout.startswith("::error::")
