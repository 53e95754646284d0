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

from ..vocabulary import LEVELS as LEVEL_ORDER, variant_subject

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


# How a parameter that does not work is named in a cause: "`n` ignored", "`seed` rejected".
_VERDICT_WORDS = {"broken": "breaks the request", "rejected": "rejected", "ignored": "ignored", "deviates": "deviates"}
# Its category, whichever check saw it (Allure's categories: report/allure.py).
VERDICT_CATEGORY = {"broken": "parameter breaks the server", "rejected": "rejected parameter",
                     "ignored": "ignored parameter"}
_CLEAR_VERDICTS = ("broken", "rejected", "ignored")  # each one cause, whatever the checks' messages say


def _verdict_of(parameters: dict, endpoint: str, parameter: str, model: str) -> str | None:
    cell = parameters.get((endpoint, parameter), {}).get("models", {}).get(model)
    return cell["verdict"] if cell else None


def _parameters_about(record: dict, parameters: dict) -> list[str]:
    """The catalogue parameters a failed instance is directly about: one it observed not working,
    the one it is declared for, the one its feature is named after (`chat.stream`)."""
    endpoint = record["endpoint"]
    about = [o["parameter"] for o in record.get("observations", [])
             if o["endpoint"] == endpoint and o["verdict"] in _CLEAR_VERDICTS]
    about.append(record.get("parameter"))
    about.append(record["feature"].removeprefix(f"{endpoint}."))
    seen = []
    for name in about:
        if name and (endpoint, name) in parameters and name not in seen:
            seen.append(name)
    return seen


def _status(message: str) -> str | None:
    """What came back, when it is an HTTP status ('HTTP 500'), else None."""
    got = kind_of(message.split("\n", 1)[0].partition("; got ")[2])
    return got if got.startswith("HTTP ") else None


_REFUSED = "expected a successful response; got "  # a valid request refused (harness.oracles.require_accepted)


def cause_key(record: dict, parameters: dict) -> tuple:
    """What a failed instance observed, as the cause it belongs to (the first that applies).

    1. A stream, when this target's streams break whatever they carry (`stream` broken) and the
       instance failed on the stream, not on a status: one cause, not one per parameter whose
       streamed check broke with them.
    2. A parameter the instance is about, directly (observed, declared, named by its feature)
       or through its variant (an invalid temperature answered 500 is `temperature` breaking
       the request; not a parameter the target declares unsupported, whose checks of errors
       are about the error), that does not work plainly:
       - broken, rejected: every parameter that breaks the request, or is refused, the same way
         (HTTP 500, HTTP 400) is one cause. A request refused for a parameter every request
         carries (max_tokens) refuses every check's, which observe their own parameters
         refused; and a reader wants "these are refused", once.
       - ignored: one cause per parameter (`n` ignored fails three checks with three
         messages: one cause).
    3. The finding its check named (`expect(..., finding=...)`): the same difference, in the
       same words, wherever it was seen (`created` a float fails the schema of a response, of a
       chunk and of an example: one cause).
    4. A server error (HTTP 5xx), or a valid request refused (4xx), with the parameters seen so.
    5. A parameter whose checks fail (`deviates`): one cause per parameter.
    6. The failure message with what varies masked (`signature`)."""
    endpoint, model = record["endpoint"], record["dimensions"]["model"]
    status = _status(record["message"])
    if (record["dimensions"]["mode"] == "stream" and (status is None or status.startswith("HTTP 2"))
            and _verdict_of(parameters, endpoint, "stream", model) == "broken"):
        return ("parameter", "stream", "broken")
    finding = record.get("finding")
    about = _parameters_about(record, parameters)
    subject = variant_subject(record.get("variant"), endpoint)
    through_variant = (subject if subject and (endpoint, subject) in parameters and subject not in about
                       and parameters[(endpoint, subject)].get("declared") != "declared unsupported" else None)
    for name in about + ([through_variant] if through_variant else []):
        verdict = _verdict_of(parameters, endpoint, name, model)
        if verdict == "broken" and name == through_variant and status and not status.startswith("HTTP 5"):
            continue  # an invalid value of a parameter that breaks requests, served or refused: the error's finding
        if verdict == "broken" and not (finding and status and status.startswith("HTTP 4")):
            return ("broken", status or "")  # (a refusal outside the envelope is the envelope's finding)
        if verdict == "rejected":  # (the refusal's status, or a check of errors on what it refuses)
            return ("rejected", "")
        if verdict == "ignored" and name != through_variant:  # an invalid value of an ignored parameter
            return ("parameter", name, verdict)                # answered wrongly is the error's finding
    if finding:
        return ("finding", finding)
    if status and status.startswith("HTTP 5"):
        return ("broken", status)
    if status and status.startswith("HTTP 4") and record["message"].startswith(_REFUSED):
        return ("rejected", "")
    for name in about:  # (not the variant's subject: a check of errors failing is no fault of it)
        if _verdict_of(parameters, endpoint, name, model) == "deviates":
            return ("parameter", name, "deviates")
    return ("message", signature(record["message"]))


def _commonest(values) -> str | None:
    counted = Counter(v for v in values if v)
    return counted.most_common(1)[0][0] if counted else None


def _listed(names: list[str], room: int = 4) -> str:
    shown = ", ".join(f"`{n}`" for n in names[:room])
    return shown + (f" and {len(names) - room} more" if len(names) > room else "")


def _name(key: tuple, members: list[dict], parameters: dict) -> str:
    """The cause in words: what the target does wrong, as a reader would say it."""
    example = min(members, key=lambda m: m["nodeid"])
    if key[0] == "finding":
        about = {m.get("parameter") for m in members}
        return f"`{about.pop()}`: {key[1]}" if len(about) == 1 and None not in about else key[1]
    if key[0] == "message":
        return key[1]
    if key[0] in ("broken", "rejected"):
        seen = Counter()
        for m in members:
            names = _parameters_about(m, parameters) + [variant_subject(m.get("variant"), m["endpoint"])]
            seen.update({n for n in names if n and _verdict_of(parameters, m["endpoint"], n,
                                                                  m["dimensions"]["model"]) == key[0]})
        names = [n for n, _ in seen.most_common()]
        one = len(names) == 1
        if key[0] == "broken":
            what = f"{_listed(names)} {'breaks' if one else 'break'} the request" if names else "the server fails"
        else:
            what = f"{_listed(names)} {'is' if one else 'are'} refused" if names else "valid requests are refused"
        detail = key[1] or _commonest(_status(m["message"]) for m in members) or _commonest(m.get("finding")
                                                                                         for m in members)
        return f"{what}: {detail or signature(example['message'])}"
    _, name, verdict = key
    # Said by the instances that saw the verdict themselves where there are any (n.choices observed
    # n ignored; a check of errors under the same parameter did not).
    seen = [m for m in members if any(o["parameter"] == name and o["verdict"] == verdict
                                      for o in m.get("observations", []))] or members
    detail = _commonest(m.get("finding") for m in seen)
    example = min(seen, key=lambda m: m["nodeid"])
    return f"`{name}` {_VERDICT_WORDS[verdict]}: {detail or signature(example['message'])}"


def _category(key: tuple, members: list[dict]) -> str:
    if key[0] == "parameter" and key[2] in VERDICT_CATEGORY:
        return VERDICT_CATEGORY[key[2]]
    if key[0] in ("broken", "rejected"):
        return VERDICT_CATEGORY[key[0]]
    # Checks of different features can fail the same way; the cause takes their commonest category.
    return Counter(m.get("category") or "other deviation" for m in members).most_common(1)[0][0]


def parameter_index(parameter_rows: list[dict]) -> dict:
    """(endpoint, parameter) -> its row of the parameter verdicts (model.parameter_verdicts)."""
    return {(row["endpoint"], row["parameter"]): row for row in parameter_rows}


def root_causes(records: list[dict], parameter_rows: list[dict] | None = None) -> list[dict]:
    """Failed instances grouped by cause (`cause_key`), worst level first, then by how many
    instances each explains. Each cause has a name in words, one category, its checks, endpoints
    and models, and one example instance with its evidence.

    Each failed record is given its cause's id and category (`cause`, `category`): one category
    per cause wherever the instance is counted or shown (the summary, Allure)."""
    parameters = parameter_index(parameter_rows or [])
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        if r["outcome"] == "fail":
            groups[cause_key(r, parameters)].append(r)
    causes = []
    for key, members in groups.items():
        level = min((m["level"] for m in members), key=lambda lv: LEVEL_ORDER.index(lv) if lv in LEVEL_ORDER else 9)
        checks = sorted({m["check"] for m in members})
        example = min(members, key=lambda m: (LEVEL_ORDER.index(m["level"]) if m["level"] in LEVEL_ORDER else 9,
                                              m["nodeid"]))
        causes.append({
            "_key": key, "name": _name(key, members, parameters), "signature": signature(example["message"]),
            "category": _category(key, members), "level": level, "instances": len(members),
            "checks": checks, "endpoints": sorted({m["endpoint"] for m in members}),
            "models": sorted({m["dimensions"]["model"] for m in members}),
            "example": {"check": example["check"], "message": example["message"],
                        "evidence": example["evidence_file"], "model": example["dimensions"]["model"],
                        "mode": example["dimensions"]["mode"], "path": example["dimensions"]["path"],
                        "variant": example.get("variant")},
        })
    causes.sort(key=lambda c: (LEVEL_ORDER.index(c["level"]) if c["level"] in LEVEL_ORDER else 9, -c["instances"],
                               c["name"]))
    for number, cause in enumerate(causes, 1):
        cause["id"] = f"cause-{number}"
        for member in groups[cause.pop("_key")]:
            member["cause"], member["category"] = cause["id"], cause["category"]
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
