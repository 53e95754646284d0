"""Check frontmatter: every `info` that quotes OpenAI's OpenAPI document quotes it verbatim, `since`
is a released version, and features come from the closed list."""

import re
from importlib import metadata

import pytest

from conformance.harness.checks import NOT_IN_OPENAI_TEXT, SINCE_PATTERN, check, known_features
from conformance.registry import resolved_checks


def _normalised(text: str) -> str:
    return " ".join(text.split())


def _strings(node):
    """Every string of the document (values and keys), whitespace-normalised."""
    if isinstance(node, str):
        yield _normalised(node)
    elif isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str):
                yield _normalised(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def test_every_openapi_quote_is_verbatim(openapi):
    document = "\n".join(_strings(openapi))
    quoted = [(c.id, q) for c in resolved_checks() if c.info.source == "openapi" for q in c.info.quotes]
    assert len(quoted) >= 80
    missing = [(cid, q) for cid, q in quoted if _normalised(q) not in document]
    assert missing == [], "these info quotes are not OpenAI's words (as the OpenAPI document has them)"


def test_every_check_has_info_and_says_where_openai_is_silent():
    for c in resolved_checks():
        assert c.info.source in ("openapi", "docs", "none"), c.id
        if c.info.source == "none":
            assert c.info.note, f"{c.id}: not_in_openai(...) says where the clause comes from"
            assert c.info.text.startswith(NOT_IN_OPENAI_TEXT)
        else:
            assert c.info.quotes and all(q.strip() for q in c.info.quotes), c.id
    # An extension parameter is never given OpenAI's words.
    assert all(c.info.source == "none" for c in resolved_checks() if c.extension)


def test_since_is_a_version_not_after_this_one():
    version = tuple(int(n) for n in metadata.version("openai-conformance").split(".")[:3])
    for c in resolved_checks():
        assert SINCE_PATTERN.match(c.since), c.id
        assert tuple(int(n) for n in c.since.split(".")) <= version, f"{c.id}: since {c.since} is after {version}"


def test_statements_are_one_sentence_line_ending_in_a_period():
    for c in resolved_checks():
        assert "\n" not in c.statement and c.statement.endswith("."), f"{c.id}: {c.statement!r}"


def test_features_are_the_closed_list():
    known = known_features()
    assert {c.feature for c in resolved_checks()} <= known
    assert {"chat.errors", "auth.key", "chat.stop", "completions.best_of", "models.list"} <= known


def test_quirks_name_known_features():
    from conformance.server.quirks import registry

    named = {f for q in registry().values() for f in q.features}
    assert named <= known_features(), sorted(named - known_features())


GOOD = dict(level="MUST", clause="https://e", since="0.1.0", info="x")


def test_the_decorator_refuses_an_unknown_feature_with_a_hint():
    with pytest.raises(ValueError, match=re.escape("unknown feature 'chat.stopp'") + r".*parameters\.toml.*chat\.stop"):
        check(id="chat.stopp.x", feature="chat.stopp", **GOOD)
    with pytest.raises(ValueError, match="unknown feature 'completions.tools'"):
        check(id="{endpoint}.tools.x", feature="{endpoint}.tools", **GOOD)


def test_the_decorator_refuses_bad_since_and_missing_info():
    for since in (None, "0.1", "v0.1.0", "0.01.0", 1):
        with pytest.raises(ValueError, match="since="):
            check(id="chat.stop.x", feature="chat.stop", **{**GOOD, "since": since})
    with pytest.raises(ValueError, match="info="):
        check(id="chat.stop.x", feature="chat.stop", **{**GOOD, "info": None})
    with pytest.raises(ValueError, match="one entry per endpoint"):
        check(id="{endpoint}.stop.x", feature="{endpoint}.stop", **{**GOOD, "info": {"chat": "x"}})


def test_the_statement_is_the_first_paragraph():
    def probe(api):
        """First line
        and its second line.

        Not the statement."""

    meta = check(id="chat.stop.x", feature="chat.stop", **GOOD)(probe).conformance_check
    assert meta.statement == "First line and its second line."
    assert meta.line > 0 and meta.file.endswith("test_check_info.py")
