"""What every stage of the reports shares, and nothing else: the order outcomes and verdicts rank in,
where each page of a run lives (the links every renderer writes), how a run's identity is named,
and how text is made safe for a page.

It sits under the pipeline (records -> model -> renderers) and imports nothing from it, so the
model, the renderers and the evidence pages the workers write all take the same words from here.
"""

from __future__ import annotations

import re
from hashlib import sha1

from ..vocabulary import OUTCOME_ORDER


def cause_name(cause: dict) -> str:
    """A cause as a reader meets it: its name, then where it was seen ('`n` ignored: one choice
    returned where 3 were asked (chat, completions; 3 checks, 48 instances)'). A cause of a
    matrix written before causes had names is named by its masked message."""
    endpoints = ", ".join(cause.get("endpoints", []))
    spread = f"{len(cause['checks'])} check{'s' if len(cause['checks']) != 1 else ''}, {cause['instances']} instance" \
             f"{'s' if cause['instances'] != 1 else ''}"
    return f"{cause.get('name') or cause['signature']} ({endpoints + '; ' if endpoints else ''}{spread})"


def share_text(passed: int, judged: int) -> str:
    """A pass share that never reads better than its counts: 100% only when all passed, else cut
    (not rounded) to a tenth of a percent: 1350 of 1355 is 99.6%, never 100%; 1 of 2000 is 0.05%,
    shown as <0.1%, never 0%."""
    if not judged:
        return "n/a"
    if passed == judged:
        return "100%"
    tenths = 1000 * passed // judged
    return "<0.1%" if passed and not tenths else f"{tenths / 10:.1f}%"


def outcome_rank(outcome: str) -> int:
    return OUTCOME_ORDER.index(outcome) if outcome in OUTCOME_ORDER else len(OUTCOME_ORDER)


def instance_sort_key(instance: dict) -> tuple:
    """How the instances of a check are listed: deviations first."""
    return (outcome_rank(instance.get("outcome")), instance.get("mode") or "", instance.get("path") or "",
            instance.get("variant") or "")


# C0 control characters (a random-weight model emits them) are not allowed in an HTML page: each
# is shown as its Unicode control picture (U+0005 as U+2405), one visible character for one.
CONTROL_PICTURES = {c: 0x2400 + c for c in range(32) if chr(c) not in "\t\n\r"} | {0x7F: 0x2421}


def evidence_page(evidence_json_relpath: str) -> str:
    """The readable page of an evidence file, at the same place: 'evidence/ab12.json' -> 'evidence/ab12.html'."""
    path = evidence_json_relpath.replace("\\", "/")
    return (path[:-len(".json")] if path.endswith(".json") else path) + ".html"


def check_file_name(check_id: str) -> str:
    """The file name of a check's page (check ids are already file-safe; anything else is replaced)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", check_id) + ".html"


def model_anchor(model: str) -> str:
    """The id of a model's section on a check page, e.g. 'model-ref-small'.

    A model id that is not URL- and id-safe ('meta-llama/Llama-3.1-8B') is cleaned and given a
    short hash of itself, so two models never share an anchor."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-")
    if cleaned != model:
        cleaned = f"{cleaned}-{sha1(model.encode()).hexdigest()[:6]}".lstrip("-")
    return f"model-{cleaned}"


def check_page(check_id: str, model: str | None = None) -> str:
    """A check's page relative to the run folder, at a model's section when one is given:
    'checks/chat.stop.excluded-from-output.html#model-ref-small'."""
    page = f"checks/{check_file_name(check_id)}"
    return f"{page}#{model_anchor(model)}" if model is not None else page


def target_identity(name: str, quirks=(), faults=None) -> str:
    """What a run tested: the target's name, and how the embedded server was set up (quirks,
    injected faults). Equal for two runs exactly when they tested the same thing the same way,
    so Allure keeps one history per identity and never mixes two identities as retries."""
    parts = [name]
    if quirks:
        parts.append("quirks " + ", ".join(sorted(set(quirks))))  # the server takes them as a set
    if faults is not None:
        rates = ", ".join(f"{kind}={rate:g}" for kind, rate in sorted(faults.rates.items()))
        parts.append(f"faults {rates} (seed {faults.seed})")
    return " · ".join(parts)


def server_changes(run: dict) -> str:
    """What the embedded server was made to do in a run (its matrix's `run`), in words; "" when nothing.
    A run with quirks or injected faults says so wherever it is read (the terminal, matrix.md and .html,
    the migration page, Allure), so that its deviations are never taken for the reference's."""
    parts = []
    if run.get("quirks"):
        parts.append(f"quirks {', '.join(run['quirks'])}")
    faults = run.get("faults")
    if faults:
        rates = ",".join(f"{kind}={rate:g}" for kind, rate in sorted(faults["rates"].items()))
        parts.append(f"injected faults {rates} (seed {faults['seed']})")
    return f"the embedded reference server ran with {' and '.join(parts)}" if parts else ""


def changed_on_purpose(run: dict) -> str:
    """One line saying so, for a run whose server was changed ("" for any other)."""
    changes = server_changes(run)
    return f"CHANGED ON PURPOSE: {changes}; the deviations below are theirs" if changes else ""
