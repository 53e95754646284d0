"""The quirk layer (conformance/server/quirks/): declared once, composed around a plain reference."""

import ast
from pathlib import Path

import pytest

from conformance.server import ReferenceServer
from conformance.server.behaviour import REFERENCE
from conformance.server.quirks import Layer, Quirk, check_names, registry

SERVER = Path(__file__).resolve().parents[1] / "conformance" / "server"
PLAIN = ["validate.py", "generate.py", "render.py", "behaviour.py", "model.py", "structured.py"]


def test_a_misspelt_quirk_fails_at_once_naming_it():
    with pytest.raises(ValueError, match=r"^unknown quirk\(s\): stop-keep \(did you mean stop-kept\?\); "):
        ReferenceServer(api_key="sk-test", quirks=["stop-kept", "stop-keep"])
    with pytest.raises(ValueError, match="nonsense"):
        Layer(["nonsense"])
    assert check_names(["stop-kept"]) == {"stop-kept"}


def test_a_declaration_with_a_misspelt_behaviour_field_or_no_change_fails():
    with pytest.raises(TypeError):
        Quirk("x", "a quirk", (), behaviour={"stop_kep": True})
    with pytest.raises(TypeError, match="changes nothing"):
        Quirk("x", "a quirk", ())


def test_every_quirk_composes_on_its_own():
    for name in registry():
        layer = Layer([name])
        assert layer.names == {name}


def test_no_quirks_is_the_reference():
    layer = Layer()
    assert layer.behaviour == REFERENCE
    assert layer.body_out("chat", {"a": 1}) == {"a": 1}
    assert layer.error_out(400, {"error": {}}) == (400, {"error": {}})
    assert layer.frames_out(["data: x\n\n"]) == ["data: x\n\n"]
    assert not layer.drops(b'{"seed": 1}')


def test_sets_of_roles_add_up():
    layer = Layer(["developer-role-dropped", "tool-message-dropped"])
    assert layer.behaviour.prompt_dropped_roles == {"developer", "tool"}


@pytest.mark.parametrize("module", PLAIN)
def test_the_plain_reference_knows_no_quirk(module):
    tree = ast.parse((SERVER / module).read_text(encoding="utf-8"))
    imports = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [m for m in imports if "quirks" in m]
    if module == "model.py":
        return  # the toy model's Drift keeps its seed string, "greedy-drift", so drifted outputs stay the same
    names = set(registry())
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert strings & names == set()


def test_a_run_of_a_few_quirks_does_not_call_the_other_checks_unkillable():
    from conformance.selftest import KillMatrix, QuirkRun

    features = {"chat.stop.excluded-from-output": "chat.stop", "models.list.shape": "models.list"}
    baseline = QuirkRun("(none)", dict.fromkeys(features, "pass"), features, {}, 0, "")
    stop_kept = QuirkRun("stop-kept", {"chat.stop.excluded-from-output": "fail", "models.list.shape": "pass"},
                         features, {"chat.stop": "deviates", "completions.stop": "deviates"}, 1, "")
    few = KillMatrix(baseline, {"stop-kept": stop_kept}, registry())
    assert few.problems() == []
    assert few.caught_by("stop-kept") == ["chat.stop.excluded-from-output"]
    # Every quirk run: (a) names the check that none of them makes fail, and only that one.
    everything = KillMatrix(baseline, {name: stop_kept for name in registry()}, registry())
    assert [p for p in everything.problems() if p.startswith("(a)")] == ["(a) no quirk makes models.list.shape fail"]
