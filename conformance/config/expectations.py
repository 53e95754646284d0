"""Expectations: a target's known deviations, as data (expectations/<target>.toml).

Each entry names a check id, the outcome expected of it on that target (the worst outcome
across the check's instances, as a matrix cell shows it), the clause link, a note and the
evidence seen by hand.  A run compares itself against them: a check that fails but was
expected to pass is an *unexpected failure* (a regression), one that passes but was expected
to fail an *unexpected pass* (a fix); both are what a nightly job must hear about, and only
they make the exit code 1 when expectations are present.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import tomllib

from ..vocabulary import OUTCOME_ORDER, OUTCOMES


class ExpectationsError(Exception):
    """A malformed expectations file; the message is one line."""


@dataclasses.dataclass(frozen=True)
class Expectation:
    check: str
    outcome: str | tuple[str, ...]  # several: an intermittent deviation, any of them is expected
    link: str = ""
    note: str = ""
    evidence: str = ""

    @property
    def allowed(self) -> tuple[str, ...]:
        return (self.outcome,) if isinstance(self.outcome, str) else tuple(self.outcome)


@dataclasses.dataclass
class Comparison:
    unexpected_failures: list[tuple[str, str, str]]  # (check, expected, actual)
    unexpected_passes: list[tuple[str, str, str]]
    other_changes: list[tuple[str, str, str]]  # e.g. expected fail, now inconclusive
    expected_deviations: list[str]
    partial: bool = False  # compared from a run stopped before its end: failures only

    @property
    def changed(self) -> bool:
        return bool(self.unexpected_failures or self.unexpected_passes)

    def lines(self) -> list[str]:
        if self.partial:
            out = [f"expectations: a partial run, compared for unexpected failures only (a check it did not finish "
                   f"may still fail): {len(self.unexpected_failures)} unexpected failures"]
            return out + [f"  unexpected failure: {c} (expected {e}, got {a})" for c, e, a in self.unexpected_failures]
        out = [f"expectations: {len(self.expected_deviations)} known deviations still present, "
               f"{len(self.unexpected_failures)} unexpected failures, {len(self.unexpected_passes)} unexpected passes"]
        out += [f"  unexpected failure: {c} (expected {e}, got {a})" for c, e, a in self.unexpected_failures]
        out += [f"  unexpected pass: {c} (expected {e}, got {a})" for c, e, a in self.unexpected_passes]
        out += [f"  changed: {c} (expected {e}, got {a})" for c, e, a in self.other_changes]
        return out

    def to_json(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items()}


def default_path(target_name: str) -> Path:
    return Path("expectations") / f"{target_name}.toml"


def chosen_path(given: str | None, ignored: bool, target_name: str) -> Path | None:
    """The file a run is compared with: the one given, else expectations/<target>.toml when it exists;
    None with --no-expectations or when there is none."""
    if ignored:
        return None
    if given:
        return Path(given)
    default = default_path(target_name)
    return default if default.is_file() else None


def load(path: Path) -> dict[str, Expectation]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ExpectationsError(f"expectations file {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ExpectationsError(f"expectations file {path} is not valid TOML: {exc}") from None
    entries = {}
    for number, entry in enumerate(data.get("expect", []), 1):
        if not isinstance(entry, dict) or "check" not in entry or "outcome" not in entry:
            raise ExpectationsError(f"{path}: entry {number} needs 'check' and 'outcome'")
        outcomes = [entry["outcome"]] if isinstance(entry["outcome"], str) else entry["outcome"]
        if not outcomes or any(o not in OUTCOMES for o in outcomes):
            raise ExpectationsError(f"{path}: entry {number} ({entry['check']}): outcome must be one of {OUTCOMES} "
                                    "(or a list of them, for an intermittent deviation)")
        entry = {**entry, "outcome": entry["outcome"] if isinstance(entry["outcome"], str) else tuple(outcomes)}
        unknown = set(entry) - {f.name for f in dataclasses.fields(Expectation)}
        if unknown:
            raise ExpectationsError(f"{path}: entry {number} has unknown key(s) {', '.join(sorted(unknown))}")
        entries[entry["check"]] = Expectation(**entry)
    return entries


def worst_outcomes(matrix: dict) -> dict[str, str]:
    """check id -> the worst outcome over all its instances (fail, error, inconclusive, unsupported, pass)."""
    order = OUTCOME_ORDER
    return {row["id"]: min(row["outcomes"], key=order.index) for row in matrix["checks"] if row["outcomes"]}


def compare(matrix: dict, expectations: dict[str, Expectation], partial: bool = False) -> Comparison:
    """The run's worst outcome of each check against its expectation. `partial`: the run was stopped
    before its end, so a check may not have reached its failing instances: only a failure that was
    not expected counts; a pass, or a deviation gone, says nothing yet."""
    actual = worst_outcomes(matrix)
    result = Comparison([], [], [], [], partial=partial)
    for check_id, outcome in sorted(actual.items()):
        allowed = expectations[check_id].allowed if check_id in expectations else ("pass",)
        expected = "/".join(allowed)
        if outcome in allowed:
            if allowed != ("pass",):
                result.expected_deviations.append(check_id)
        elif outcome == "fail":
            result.unexpected_failures.append((check_id, expected, outcome))
        elif partial:
            continue
        elif "fail" in allowed and outcome == "pass":
            result.unexpected_passes.append((check_id, expected, outcome))
        else:
            result.other_changes.append((check_id, expected, outcome))
    return result


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


GENERATED_HEADER = ("# Known deviations of target ", "# its instances). Written by", "# across updates. Checks not",
                    "# Last updated from run ")


def hand_written_header(text: str) -> list[str]:
    """The comment lines someone added at the top of an expectations file (how the deviations were
    verified, say), without the lines render() writes itself: an update keeps them."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        if not line.startswith(GENERATED_HEADER):
            lines.append(line)
    return lines


def render(target_name: str, matrix: dict, existing: dict[str, Expectation], header: list[str] = ()) -> str:
    """The expectations file for a run: every check not passing, keeping notes already written, and
    keeping as they were the entries of checks the run did not judge (a `--check` or `-k` subset).
    `header`: hand-written comment lines kept at the top (hand_written_header of the old file)."""
    rows = {row["id"]: row for row in matrix["checks"]}
    judged = worst_outcomes(matrix)
    lines = [f"# Known deviations of target '{target_name}': check id -> expected outcome (the worst over",
             "# its instances). Written by `conformance expectations update`; notes and evidence are kept",
             "# across updates. Checks not listed are expected to pass.",
             *header,
             *_run_note(matrix.get("run")),
             f"target = {_quote(target_name)}", ""]
    checks = sorted(set(judged) | {c for c, e in existing.items() if len(e.allowed) > 1 or c not in judged})
    for check_id in checks:
        old = existing.get(check_id)
        if check_id not in judged:  # not in this run: what was known still holds
            lines += _entry_lines(check_id, old.allowed, old.link, old.note, old.evidence)
            continue
        outcome = judged[check_id]
        if outcome == "pass" and not (old and len(old.allowed) > 1):
            continue
        row = rows.get(check_id, {"clause": old.link if old else "", "instances": []})
        example = next((i for i in row["instances"] if i["outcome"] == outcome), {})
        # an intermittent deviation keeps its list of outcomes
        allowed = old.allowed if old and len(old.allowed) > 1 else (outcome,)
        lines += _entry_lines(check_id, allowed, row["clause"], old.note if old and old.note else
                              example.get("message", ""), old.evidence if old else "")
    return "\n".join(lines)


def _entry_lines(check_id: str, allowed: tuple[str, ...], link: str, note: str, evidence: str) -> list[str]:
    shown = "[" + ", ".join(_quote(o) for o in allowed) + "]" if len(allowed) > 1 else _quote(allowed[0])
    return ["[[expect]]", f"check = {_quote(check_id)}", f"outcome = {shown}", f"link = {_quote(link)}",
            f"note = {_quote(note)}", f"evidence = {_quote(evidence)}", ""]


def _run_note(run: dict | None) -> list[str]:
    """The comment naming the run the file was last updated from, and what it was beyond its target."""
    if not run:
        return []
    selection = run.get("selection") or {}
    parts = [f"--check {' '.join(selection['checks'])}" if selection.get("checks") else "",
             f"-k {selection['keyword']}" if selection.get("keyword") else "",
             f"quirks {', '.join(run['quirks'])}" if run.get("quirks") else "",
             "injected faults" if run.get("faults") else ""]
    shown = "; ".join(p for p in parts if p)
    return [f"# Last updated from run {run.get('id', '?')}" + (f" ({shown})." if shown else ".")]
