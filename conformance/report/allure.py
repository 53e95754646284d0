"""Allure output: a step per request with redacted attachments, failure categories, and the run's
environment.properties, executor.json and categories.json.

The categories sort failures the way a reader of a compatibility report asks about them.  A
failure's category is decided from its record (the parameter verdicts the check observed, its
feature) and written into the failure message as `[category]`, which the categories match.
Allure 2 reads them from categories.json in the results; Allure 3 only from its configuration
(`categories` in allurerc), which render_html writes.

Every result carries the identity of what was tested (target_identity) as a parameter, so that
Allure, which keys a test's history and retries on its parameters, never takes one target's
result for a retry of another's when a merged report holds both.

Two parts: what the plugin calls while the checks run (attach_record, category_of, tag_failure,
the writers' speed-ups), and a renderer of the report model at the end of the run (write_metadata:
environment, executor and categories), which only draws what model.RunReport holds.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from ..wire.reuse import REUSED_NOTE
from .causes import VERDICT_CATEGORY, signature
from .terms import server_changes, target_identity

if TYPE_CHECKING:  # pragma: no cover
    from .model import RunReport

__all__ = ["ALLURE_NPM", "CATEGORIES", "attach_record", "categories_json", "allure3_categories", "category_of",
           "render_html", "tag_failure", "target_identity", "transcript", "with_compiled_json_writer",
           "without_fixture_containers", "write_metadata"]

ALLURE_NPM = "allure@3.18.0"  # Allure 3 (Node, no Java), pinned

# (category, Allure statuses it applies to); the order is the order Allure lists them in.
CATEGORIES = (
    ("rejected parameter", ("failed",)),
    ("ignored parameter", ("failed",)),
    ("parameter breaks the server", ("failed",)),
    ("strict field absent", ("failed",)),  # required though nullable: the SDK copes, a strict client does not
    ("schema mismatch", ("failed",)),
    ("stream framing", ("failed",)),
    ("error envelope", ("failed",)),
    ("other deviation", ("failed",)),
    ("infrastructure", ("broken",)),
    ("suite error", ("broken",)),
)
_CATEGORY_PREFIX = re.compile(r"\[(?:" + "|".join(re.escape(name) for name, _ in CATEGORIES) + r")\] ")
SUITE_ERROR_PREFIX = "the suite could not judge this"


def category_of(record: dict) -> str | None:
    """The category of a failed or errored check instance (None for the other outcomes)."""
    outcome = record["outcome"]
    if outcome == "error":
        return "suite error" if record["message"].startswith(SUITE_ERROR_PREFIX) else "infrastructure"
    if outcome != "fail":
        return None
    verdicts = {o["verdict"] for o in record.get("observations", [])}
    for verdict, category in VERDICT_CATEGORY.items():
        if verdict in verdicts:
            return category
    check, feature = record["check"], record["feature"]
    if ".strict-" in check:
        return "strict field absent"
    if ".stream." in check or feature.endswith((".stream", ".events")):  # responses.events: its stream's grammar
        return "stream framing"
    if feature.endswith(".errors") or feature.startswith("auth."):  # auth.key: refusals in the envelope
        return "error envelope"
    if "schema" in check or "shape" in check:
        return "schema mismatch"
    return "other deviation"


def _category_title(name: str) -> str:
    return name[0].upper() + name[1:]


def _category_pattern(name: str) -> str:
    return rf"[\s\S]*\[{name}\][\s\S]*"


def categories_json() -> list[dict]:
    """The categories as Allure 2 reads them (categories.json in the results)."""
    return [{"name": _category_title(name), "matchedStatuses": list(statuses), "messageRegex": _category_pattern(name)}
            for name, statuses in CATEGORIES]


def allure3_categories() -> dict:
    """The same categories as Allure 3 reads them (`categories` in its configuration), each split
    by target so that a merged report says whose failures they are, then by root cause."""
    return {"rules": [{"id": name, "name": _category_title(name),
                       "matchers": {"statuses": list(statuses), "message": _category_pattern(name)},
                       "groupBy": [{"label": "target"}, {"label": "cause"}]} for name, statuses in CATEGORIES]}


def tag_failure(exception: BaseException, category: str) -> None:
    """Prefix the exception's message with its category, for Allure (which reads the message later)."""
    if exception.args and isinstance(exception.args[0], str):
        exception.args = (f"[{category}] {exception.args[0]}", *exception.args[1:])
    else:
        exception.args = (f"[{category}]", *exception.args)


def attach_record(record: dict, identity: str) -> None:
    """Title, labels, links, and one step per request with its redacted request and response.

    `identity` (target_identity) is what was tested: a parameter, so that it is part of the
    result's history id (allure-pytest's and Allure 3's own), and the `target` label.

    When allure-pytest's listener alone takes these calls (as it does unless another Allure plugin
    is installed), they are made on its test result directly: the same title, labels, links,
    steps and attachments as allure.dynamic's, without a round of plugin hooks for each of the
    twenty-odd (a tenth of a millisecond per instance). Otherwise through allure.dynamic."""
    try:
        import allure
    except ImportError:  # pragma: no cover - allure-pytest is a dependency
        return
    facts = _facts(record, identity)
    listener = _sole_listener()
    if listener is not None and _apply_directly(listener, facts, record):
        return
    title, parameters, description, labels, links = facts
    allure.dynamic.title(title)
    for name, value in parameters:
        allure.dynamic.parameter(name, value)
    allure.dynamic.description(description)
    for label_type, value in labels:
        allure.dynamic.label(label_type, value)
    for url, name in links:
        allure.dynamic.link(url, name=name)
    for step, exchange in _steps(record):
        with allure.step(step):
            # One attachment per request (a file each costs as much as the request itself).
            allure.attach(transcript(exchange), name="exchange", attachment_type=allure.attachment_type.TEXT)
    if record["evidence"]["retries"]:
        allure.attach("\n".join(record["evidence"]["retries"]), name="retries",
                      attachment_type=allure.attachment_type.TEXT)


def _facts(record: dict, identity: str) -> tuple:
    """What attach_record says of an instance, in the order it says it: the title, the parameters,
    the description, the labels (type, value) and the links (url, name)."""
    dims = record["dimensions"]
    title = f"{_instance_title(record['check'], {**dims, 'variant': record.get('variant')})} on {identity}"
    labels = [("epic", record["endpoint"]), ("feature", record["feature"]), ("story", record["check"]),
              ("severity", {"MUST": "critical", "SHOULD": "normal", "MAY": "minor"}[record["level"]]),
              ("target", identity)]
    if record["outcome"] == "fail":  # the same clause failing the same way (INTERPRETING.md, root causes)
        labels.append(("cause", record.get("finding") or signature(record["message"])))  # the run's, at its end
    for name in ("endpoint", "check", "level", "outcome", "category"):  # feature: set above
        if record.get(name) is not None:
            labels.append((name, str(record[name])))
    labels += [(name, str(value)) for name, value in dims.items() if name != "target"]
    # Labels and links are two lists of the result: the order within each is what the file keeps.
    return title, [("target", identity)], record["statement"], labels, [(record["clause"], "clause")]


def _steps(record: dict):
    """(step title, exchange) for each request of the instance."""
    for number, exchange in enumerate(record["evidence"]["exchanges"], 1):
        request, response = exchange["request"], exchange["response"]
        outcome = response["status"] if response["status"] is not None else exchange.get("transport_error")
        yield f"{number}. {request['method']} {request['url']} -> {outcome}", exchange


# The allure-commons hooks attach_record's calls go through; made directly when one listener takes them all.
_DIRECT_HOOKS = ("add_title", "add_parameter", "add_description", "add_label", "add_link", "start_step", "stop_step",
                 "attach_data")


def _apply_directly(listener, facts: tuple, record: dict) -> bool:
    """What allure-pytest's listener does for each allure.dynamic call, allure.step and allure.attach
    of attach_record, done on its current test result; False (and nothing done) when there is no
    test result or no item to hang the steps on, for allure.dynamic to take as it would."""
    from allure_commons import plugin_manager
    from allure_commons.model2 import ATTACHMENT_PATTERN, Attachment, Label, Link, Parameter, TestStepResult
    from allure_commons.types import AttachmentType
    from allure_commons.utils import now, represent, uuid4
    from allure_pytest.utils import format_allure_link, get_status, get_status_details

    reporter = listener.allure_logger
    result = reporter.get_test(None)
    parent_uuid = reporter._last_executable()
    if result is None or parent_uuid is None:
        return False
    title, parameters, description, labels, links = facts
    result.name = title
    for name, value in parameters:
        existing = next((p for p in result.parameters if p.name == name), None)
        if existing is not None:
            existing.value = represent(value)
        else:
            result.parameters.append(Parameter(name=name, value=represent(value), excluded=None, mode=None))
    result.description = description
    result.labels.extend(Label(label_type, value) for label_type, value in labels)
    for url, name in links:
        link_url = format_allure_link(listener.config, url, "link")
        if all(link.url != link_url for link in result.links):
            result.links.append(Link("link", link_url, link_url if name is None else name))
    text = AttachmentType.TEXT

    def attach(item, body: str, name: str) -> None:
        file_name = ATTACHMENT_PATTERN.format(prefix=uuid4(), ext=text.extension)
        item.attachments.append(Attachment(source=file_name, name=name, type=text.mime_type))
        plugin_manager.hook.report_attached_data(body=body, file_name=file_name)

    parent = reporter.get_item(parent_uuid)
    for step_title, exchange in _steps(record):
        step = TestStepResult(name=step_title, start=now(), parameters=[])
        parent.steps.append(step)
        try:
            attach(step, transcript(exchange), "exchange")
        except BaseException as exc:
            step.stop, step.status = now(), get_status(exc)
            step.statusDetails = get_status_details(type(exc), exc, exc.__traceback__)
            raise
        step.stop, step.status, step.statusDetails = now(), get_status(None), get_status_details(None, None, None)
    if record["evidence"]["retries"]:
        attach(parent, "\n".join(record["evidence"]["retries"]), "retries")
    return True


def _sole_listener():
    """allure-pytest's listener when it is the one implementation of every hook in _DIRECT_HOOKS
    (and looks as this module expects); else None."""
    try:
        from allure_commons import plugin_manager
        from allure_pytest.listener import AllureListener
    except ImportError:  # pragma: no cover - allure-pytest is a dependency
        return None
    owner = None
    for name in _DIRECT_HOOKS:
        caller = getattr(plugin_manager.hook, name, None)
        impls = caller.get_hookimpls() if caller is not None else []
        if len(impls) != 1 or (owner is not None and impls[0].plugin is not owner):
            return None
        owner = impls[0].plugin
    if type(owner) is not AllureListener or not hasattr(owner, "allure_logger") or not hasattr(owner, "config"):
        return None
    return owner


def _json(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def without_fixture_containers(pluginmanager) -> bool:
    """Stop allure-pytest from writing a container file per fixture per check instance.

    Fixtures here are the harness (the target connection, the instance's dimensions), not steps
    of the check; their containers were 2.5 files per instance, a third of the run's time. The
    listener is registered again without its fixture hooks. Returns whether it was done (False
    when allure-pytest is absent or its listener no longer looks as expected)."""
    listener = pluginmanager.getplugin("allure_listener")
    hooks = ("pytest_fixture_setup", "pytest_fixture_post_finalizer", "_update_fixtures_children")
    if listener is None or not all(callable(getattr(listener, name, None)) for name in hooks):
        return False
    pluginmanager.unregister(listener)
    listener.pytest_fixture_setup = None
    listener.pytest_fixture_post_finalizer = None
    listener._update_fixtures_children = lambda item: None
    pluginmanager.register(listener, "allure_listener")
    return True


def with_compiled_json_writer() -> bool:
    """Let allure-commons write its result files with the C JSON encoder.

    Its file logger writes them with json.dump, which always takes Python's pure-Python encoder
    (a few percent of a whole run). Same content, same file names, same atomic
    rename. Returns whether it was done (False without allure-pytest's file logger, or when
    ALLURE_INDENT_OUTPUT asks for indented files)."""
    try:
        import allure_commons
        from allure_commons.logger import AllureFileLogger
    except ImportError:  # pragma: no cover - allure-pytest is a dependency
        return False
    if os.environ.get("ALLURE_INDENT_OUTPUT"):
        return False
    done = False
    for plugin in allure_commons.plugin_manager.get_plugins():
        report_dir = getattr(plugin, "_report_dir", None)
        if isinstance(plugin, AllureFileLogger) and isinstance(report_dir, Path) and \
                callable(getattr(plugin, "_report_item", None)):
            plugin._report_item = functools.partial(_write_allure_item, report_dir)
            done = True
    return done


def _write_allure_item(report_dir: Path, item) -> None:
    data = _plain(item)
    name = item.file_pattern.format(prefix=uuid.uuid4())
    temporary = report_dir / f"{name}.tmp"
    temporary.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    os.replace(temporary, report_dir / name)


_FIELDS: dict[type, tuple[str, ...] | None] = {}  # an attrs class's field names, in order (None: not attrs)


def _plain(value):
    """`attr.asdict(value, filter=lambda _, v: v or v is False)`, as allure-commons writes a result:
    an attrs instance as a dict of its fields in order, those empty (but False) left out; lists,
    tuples and sets as lists; dicts as dicts (their keys as they are); the rest as it is. With each
    class's fields looked up once, where asdict looks them up again for every instance (a result
    has dozens)."""
    kind = type(value)
    try:
        fields = _FIELDS[kind]
    except KeyError:
        import attr

        fields = _FIELDS[kind] = tuple(a.name for a in attr.fields(kind)) if attr.has(kind) else None
    if fields is not None:
        out = {}
        for name in fields:
            member = getattr(value, name)
            if member or member is False:
                out[name] = _plain(member)
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(member) for member in value]
    if isinstance(value, dict):
        return {key: _plain(member) for key, member in value.items()}  # keys as they are (hashable)
    return value


def transcript(exchange: dict) -> str:
    """A redacted exchange as a reader expects it (like `curl -v`): the request line, headers and
    body, then the status, headers and the body: JSON indented as on the evidence pages (when that
    hides nothing), an event stream as it came."""
    from .evidence import content_type, pretty_body, pretty_request

    request, response = exchange["request"], exchange["response"]
    body = request["body"]
    lines = [f"{request['method']} {request['url']}", *(f"{k}: {v}" for k, v in request["headers"].items()), "",
             body if isinstance(body, str) else pretty_request(body), ""]
    if response["status"] is None:
        return "\n".join(lines + [f"no response: {exchange.get('transport_error')}"])
    if exchange.get("reused"):
        lines.append(f"[not sent again: {REUSED_NOTE}]")
    lines += [f"HTTP {response['status']} ({exchange.get('elapsed_ms')} ms)",
              *(f"{k}: {v}" for k, v in (response.get("headers") or {}).items()), "",
              pretty_body(response["body"], content_type(response.get("headers")))]
    if response.get("truncated"):
        lines.append("[... the body was cut here in the evidence; the check read all of it]")
    return "\n".join(lines)


def executor(report: "RunReport | None" = None) -> dict:
    """Where the run happened, from the CI's variables (GitHub Actions, GitLab CI, Jenkins) or 'local'; the
    build's name says when the embedded server was changed on purpose (quirks, faults)."""
    found = _executor()
    changes = server_changes(report.run) if report is not None else ""
    if changes:
        found["buildName"] = f"{found.get('buildName') or 'conformance run'} ({changes})"
    return found


def _executor() -> dict:
    env = os.environ
    if env.get("GITHUB_ACTIONS") == "true":
        server, repo, run = env.get("GITHUB_SERVER_URL", "https://github.com"), env.get("GITHUB_REPOSITORY", ""), \
            env.get("GITHUB_RUN_ID", "")
        url = f"{server}/{repo}/actions/runs/{run}"
        return {"name": "GitHub Actions", "type": "github", "url": f"{server}/{repo}", "buildOrder": run,
                "buildName": f"{env.get('GITHUB_WORKFLOW', 'workflow')} #{env.get('GITHUB_RUN_NUMBER', run)}",
                "buildUrl": url, "reportUrl": url}
    if env.get("GITLAB_CI") == "true":
        return {"name": "GitLab CI", "type": "gitlab", "url": env.get("CI_PROJECT_URL", ""),
                "buildOrder": env.get("CI_PIPELINE_ID", ""), "buildName": env.get("CI_JOB_NAME", ""),
                "buildUrl": env.get("CI_JOB_URL", ""), "reportUrl": env.get("CI_PIPELINE_URL", "")}
    if env.get("BUILD_URL"):
        return {"name": "Jenkins", "type": "jenkins", "url": env.get("JENKINS_URL", ""),
                "buildOrder": env.get("BUILD_NUMBER", ""), "buildName": env.get("JOB_NAME", ""),
                "buildUrl": env["BUILD_URL"], "reportUrl": env["BUILD_URL"]}
    return {"name": "local", "type": "local", "buildName": "conformance run"}


def environment(report: "RunReport") -> dict[str, str]:
    """What Allure's environment widget shows of the run."""
    run = report.run
    partial = report.summary.get("partial")
    return {"target": run["target"], "base_url": run["base_url"], "models": ", ".join(run["models"]),
            **({"changed_on_purpose": server_changes(run)} if server_changes(run) else {}),
            "run": run["id"], "suite": run["suite_version"], "openai_sdk": run["openai_sdk"], "python": run["python"],
            # a stopped run's results are not the whole run's: said where Allure shows the run
            **({"partial": f"PARTIAL RUN, stopped before its end: {partial['judged']} of {partial['collected']} "
                           "check instances judged"} if partial else {})}


def write_metadata(results_dir: Path, report: "RunReport") -> None:
    """environment.properties, executor.json and categories.json beside the results, and each
    failed result labelled with its cause (`relabel_causes`)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    relabel_causes(results_dir, report)
    lines = [f"{key}={_properties_value(value)}" for key, value in environment(report).items()]
    (results_dir / "environment.properties").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (results_dir / "executor.json").write_text(_json(executor(report)), encoding="utf-8")
    (results_dir / "categories.json").write_text(_json(categories_json()), encoding="utf-8")


def _instance_title(check_id: str, instance: dict) -> str:
    """An instance's title (a matrix instance, or a record's dimensions and variant), up to ' on <target>'."""
    variant = f" {instance['variant']}" if instance.get("variant") else ""
    return f"{check_id}{variant} [{instance['model']} · {instance['mode']} · {instance['path']}]"


def relabel_causes(results_dir: Path, report: "RunReport") -> int:
    """Give each failed result the cause the whole run found for it (report/causes.py): its `cause`
    label (the cause's name) and its category (label and message prefix), which an instance's own
    result could not know while it ran (`n` ignored is seen by one check, and explains three).
    Returns how many results were changed."""
    causes = {c["id"]: c for c in report.causes}
    of_title = {_instance_title(row["id"], i): causes[i["cause"]] for row in report.matrix["checks"]
                for i in row["instances"] if i.get("cause") in causes}
    changed = 0
    for path in results_dir.glob("*-result.json"):
        text = path.read_text(encoding="utf-8")
        if '"failed"' not in text:
            continue
        result = json.loads(text)
        cause = of_title.get(result.get("name", "").rsplit(" on ", 1)[0])
        if result.get("status") != "failed" or cause is None:
            continue
        result["labels"] = [label for label in result.get("labels", []) if label.get("name") not in ("cause", "category")]
        result["labels"] += [{"name": "cause", "value": f"{cause['id']}: {cause.get('name') or cause['signature']}"},
                             {"name": "category", "value": cause["category"]}]
        details = result.get("statusDetails") or {}
        if isinstance(details.get("message"), str):
            details["message"] = _CATEGORY_PREFIX.sub(f"[{cause['category']}] ", details["message"], count=1)
        path.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
        changed += 1
    return changed


def _properties_value(value) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", " ")


def render_html(results_dirs: list[Path], out: Path, name: str = "OpenAI compatibility") -> str:
    """Render the Allure 3 report as one HTML file, OUT/allure-report/index.html; returns a one-line account."""
    npx = shutil.which("npx")
    if npx is None:
        return (f"Allure HTML not rendered: Node.js (npx) was not found; install Node.js 20 or newer and rerun, or "
                f"run `npx {ALLURE_NPM} generate {' '.join(map(str, results_dirs))}` yourself")
    out.mkdir(parents=True, exist_ok=True)
    config = out / "allurerc.json"
    # Allure 3 takes categories from here only (its categories.json reader feeds the Allure 2
    # plugins); the tree opens by target, then endpoint and feature.
    awesome = {"singleFile": True, "reportName": name, "groupBy": ["target", "epic", "feature"]}
    config.write_text(_json({"name": name, "categories": allure3_categories(),
                             "plugins": {"awesome": {"options": awesome}}}))
    target = out / "allure-report"
    command = [npx, "--yes", ALLURE_NPM, "generate", "--config", str(config), "--output", str(target),
               *map(str, results_dirs)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"Allure HTML not rendered: {exc}"
    finally:
        config.unlink(missing_ok=True)
    if done.returncode != 0 or not (target / "index.html").is_file():
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"Allure HTML not rendered: `npx {ALLURE_NPM} generate` exited {done.returncode}: {last[0]}"
    return f"Allure HTML: {target / 'index.html'}"
