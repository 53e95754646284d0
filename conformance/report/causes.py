"""Root causes: failures grouped by the clause that fails and the way it fails.

One server defect (say, `error.param` always null) fails hundreds of instances across checks,
endpoints and variants.  A reader needs "1 cause, 656 instances" before the list of instances.
A cause is the failure message with what varies between instances masked: quoted values and
parenthesised details become '…', numbers become N (HTTP statuses are kept: a 500 is not a 200),
and what came back is reduced to its kind (null, a string, a number, an object, HTTP 200 ...): the
checks write it typed, `string ' ask'`, `object {...}` (conformance.harness.describe).

An input of the report model (model.py computes a run's causes and failing checks with it), and
of the Allure `cause` label the plugin sets while the checks run.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict

from ..vocabulary import LEVELS as LEVEL_ORDER

_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_PARENTHESISED = re.compile(r"\s*\([^()]*\)")
_NUMBER = re.compile(r"(?<!HTTP )(?<![\w.])-?\d+(?:\.\d+)?(?![\w])")
_SPACES = re.compile(r"\s+")
_HTTP = re.compile(r"^HTTP (\d{3})")
# What came back, by its first characters, when it is not an HTTP status.
_KINDS = (("None", "null"), ("null", "null"), ("True", "true"), ("False", "false"), ("true", "true"),
          ("false", "false"), ("{", "an object"), ("[", "a list"), ("'", "a string"), ('"', "a string"))


def mask(text: str) -> str:
    while _PARENTHESISED.search(text):  # innermost first: "(five sequences (at most 4))"
        text = _PARENTHESISED.sub("", text)
    text = _QUOTED.sub("'…'", text)
    text = _NUMBER.sub("N", text)
    return _SPACES.sub(" ", text).strip()


# What `describe` (conformance.harness) writes, once masked: a type word, then the value.
_TYPED = re.compile(r"\b(?:an? )?(string|number|object with keys|object|array of N|array) (?='…'|N\b|[{\[])")
_TYPED_KINDS = {"string": "a string", "number": "a number", "object": "an object", "object with keys": "an object",
                "array": "an array", "array of N": "an array"}


def _typed_kinds(masked: str) -> str:
    """Each typed value reduced to its kind: "is string '…', not an object" -> 'is a string, not an object'."""
    out, at = [], 0
    for typed in _TYPED.finditer(masked):
        if typed.start() < at:
            continue  # inside a value already skipped
        rest = typed.end()
        if masked[rest] in "{[":
            depth = 0
            for end in range(rest, len(masked)):
                depth += {"{": 1, "[": 1, "}": -1, "]": -1}.get(masked[end], 0)
                if depth == 0:
                    break
            rest = end + 1
        else:  # a quoted string, masked to '…', or a number, masked to N
            rest += 3 if masked.startswith("'…'", rest) else 1
        if masked.startswith("...", rest):
            rest += 3
        out.append(masked[at:typed.start()] + _TYPED_KINDS[typed.group(1)])
        at = rest
    return "".join(out) + masked[at:]


def kind_of(got: str) -> str:
    """What came back, as a kind: 'null', 'a string', 'HTTP 500', ... or the suite's phrase, masked."""
    stripped = got.strip()
    status = _HTTP.match(stripped)
    if status:
        return f"HTTP {status.group(1)}"
    if stripped == "absent":
        return "absent"
    typed = _typed_kinds(mask(stripped))
    if typed != mask(stripped):
        return typed[:80]
    for prefix, kind in _KINDS:
        if stripped.startswith(prefix):
            return kind
    if re.fullmatch(r"-?\d+(\.\d+)?", stripped):
        return "a number"
    if not stripped:
        return "nothing"
    # A phrase the suite wrote ("the top-level 'error' is a string '…', not an object") is kept,
    # masked: it says how the clause failed. (What came back inside it is typed and quoted.)
    return typed[:80]


def signature(message: str) -> str:
    """The cause of a failure message: the same clause failing the same way gives the same text."""
    message = re.sub(r"^\[[^\]]+\]\s*", "", message)  # the [category] Allure prefix, if any
    # A check that reports several failed clauses (clauses()) is grouped by its first; the others
    # follow on lines of their own ("also: ...").
    message = message.split("\n", 1)[0]
    expected, sep, got = message.partition("; got ")
    return mask(expected) + (f"; got {kind_of(got)}" if sep else "")


def root_causes(records: list[dict]) -> list[dict]:
    """Failed instances grouped by cause, worst level first, then by how many instances each explains."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        if r["outcome"] == "fail":
            groups[signature(r["message"])].append(r)
    causes = []
    for sig, members in groups.items():
        # Checks of different features can fail the same way; the cause takes their commonest category.
        category = Counter(m.get("category") or "other deviation" for m in members).most_common(1)[0][0]
        level = min((m["level"] for m in members), key=lambda lv: LEVEL_ORDER.index(lv) if lv in LEVEL_ORDER else 9)
        checks = sorted({m["check"] for m in members})
        example = min(members, key=lambda m: (LEVEL_ORDER.index(m["level"]) if m["level"] in LEVEL_ORDER else 9,
                                              m["nodeid"]))
        causes.append({
            "signature": sig, "category": category, "level": level, "instances": len(members),
            "checks": checks, "models": sorted({m["dimensions"]["model"] for m in members}),
            "example": {"check": example["check"], "message": example["message"],
                        "evidence": example["evidence_file"], "model": example["dimensions"]["model"],
                        "mode": example["dimensions"]["mode"], "path": example["dimensions"]["path"],
                        "variant": example.get("variant")},
        })
    causes.sort(key=lambda c: (LEVEL_ORDER.index(c["level"]) if c["level"] in LEVEL_ORDER else 9, -c["instances"],
                               c["signature"]))
    for number, cause in enumerate(causes, 1):
        cause["id"] = f"cause-{number}"
    return causes


def failing_checks(check_rows: list[dict]) -> list[dict]:
    """The checks with a failed or errored instance, worst level first: id, level, per-model counts,
    and the first failing instance (its message and evidence)."""
    out = []
    for row in check_rows:
        bad = [i for i in row["instances"] if i["outcome"] in ("fail", "error")]
        if not bad:
            continue
        first = min(bad, key=lambda i: (i["outcome"] != "fail", i["model"], i["mode"], i["path"], i.get("variant") or ""))
        out.append({"id": row["id"], "level": row["level"], "extension": row["extension"],
                    "failed": sum(i["outcome"] == "fail" for i in bad), "errors": sum(i["outcome"] == "error" for i in bad),
                    "instances": len(row["instances"]), "first": first})
    out.sort(key=lambda c: (c["failed"] == 0, LEVEL_ORDER.index(c["level"]) if c["level"] in LEVEL_ORDER else 9,
                            c["id"]))
    return out
