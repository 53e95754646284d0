import subprocess
import sys

import pytest

from conformance.targets import TargetError, load_target


def write(tmp_path, text, name="t.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_builtin_targets_load():
    reference = load_target("reference")
    assert reference.embedded and reference.models == ("ref-small", "ref-large")
    netmind = load_target("netmind")
    assert netmind.base_url == "https://inference-api.netmind.ai/inference-api/openai/v1"
    assert netmind.api_key_env == "NETMIND_API_KEY"
    assert netmind.models == ("meta-llama/Meta-Llama-3.1-8B-Instruct", "meta-llama/Meta-Llama-3.1-70B-Instruct")
    assert "repetition_penalty" in netmind.declared.extensions
    assert set(netmind.declared.parameters) == {
        "model", "messages", "prompt", "max_tokens", "stream", "temperature", "top_p", "stop", "n",
        "presence_penalty", "frequency_penalty", "logit_bias"}
    assert load_target("openai").api_key_env == "OPENAI_API_KEY"


def test_overrides_apply():
    t = load_target("netmind", base_url="http://127.0.0.1:9/v1/", api_key_env="MY_KEY", models=["a", "b"])
    assert (t.base_url, t.api_key_env, t.models, t.embedded) == ("http://127.0.0.1:9/v1", "MY_KEY", ("a", "b"), False)


def test_base_url_turns_the_reference_target_into_a_live_one_and_needs_a_key_variable():
    with pytest.raises(TargetError, match="--api-key-env"):
        load_target("reference", base_url="http://127.0.0.1:9/v1")
    custom = load_target("reference", base_url="http://127.0.0.1:9/v1", api_key_env="K")
    assert not custom.embedded and custom.name == "custom"
    # a server of unknown make declares nothing
    assert custom.declared.parameters == () and custom.declared.extensions == ()


@pytest.mark.parametrize("text, message", [
    ("name = 'x'\nbase_url = 'http://h/v1'\nmodels = [\n", "not valid TOML"),
    ("name = 'x'\nmodels = ['m']\n", "'base_url' is required"),
    ("name = 'x'\nbase_url = 'http://h/v1'\nmodels = 'm'\n", "'models' must be a list"),
    ("name = 'x'\nbase_url = 'http://h/v1'\nmodels = ['m']\nmodles = 1\n", "unknown key(s) modles"),
    ("name = 'x'\nbase_url = 'ftp://h'\nmodels = ['m']\n", "must start with http"),
    ("name = 'x'\nbase_url = 'http://h/v1'\nmodels = []\n", "lists no models"),
    ("name = 'x'\nbase_url = 'http://h/v1'\nmodels = ['m']\n[limits]\nconcurency = 3\n", "[limits]"),
])
def test_malformed_target_files_name_the_problem(tmp_path, text, message):
    with pytest.raises(TargetError) as info:
        load_target(write(tmp_path, text))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_target_lists_the_known_ones():
    with pytest.raises(TargetError, match="unknown target 'nope'.*netmind.*reference"):
        load_target("nope")


def test_missing_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("NETMIND_API_KEY", raising=False)
    with pytest.raises(TargetError, match="set the environment variable NETMIND_API_KEY"):
        load_target("netmind").api_key()


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "conformance", *args], capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.mark.parametrize("args, fragment", [
    (["run", "--target", "nope"], "unknown target 'nope'"),
    (["run", "--target", "netmind"], "NETMIND_API_KEY"),
    (["run", "--target", "/no/such/file.toml"], "does not exist"),
    (["run", "--base-url", "http://127.0.0.1:9/v1"], "--api-key-env"),
])
def test_cli_usage_errors_are_one_line_with_exit_code_2(args, fragment, monkeypatch):
    monkeypatch.delenv("NETMIND_API_KEY", raising=False)
    result = _cli(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in result.stderr


def test_cli_malformed_target_file(tmp_path):
    result = _cli("run", "--target", write(tmp_path, "base_url = [\n"))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "not valid TOML" in result.stderr


def test_cli_unreachable_url_is_one_line_and_incomplete(monkeypatch):
    monkeypatch.setenv("UNREACHABLE_KEY", "k-unreachable-123")
    # Port 9 (discard) on loopback: nothing listens there, the connection is refused at once.
    result = _cli("run", "--base-url", "http://127.0.0.1:9/v1", "--api-key-env", "UNREACHABLE_KEY")
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach http://127.0.0.1:9/v1" in lines[0]
    assert "k-unreachable-123" not in result.stderr + result.stdout


def test_a_target_may_say_what_a_model_does_not_offer(tmp_path):
    text = ("name = 'x'\nbase_url = 'http://h/v1'\nmodels = ['a', 'b']\n[declared]\nunsupported = ['audio']\n"
            "[model_unsupported]\nb = ['tools']\n")
    target = load_target(write(tmp_path, text))
    assert target.unsupported_for("a") == ("audio",)
    assert target.unsupported_for("b") == ("audio", "tools")
