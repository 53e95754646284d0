import subprocess
import sys

import pytest

from conformance.config.targets import TargetError, load_target


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
    # The page the declarations come from, and its words where they promise something testable.
    assert netmind.docs.url == "https://netmind-power.gitbook.io/inference-api-documentation/openai-api"
    assert dict(netmind.docs.claims)["stop"] == '"Up to 4 sequences where the API will stop generating further tokens"'
    assert load_target("openai").api_key_env == "OPENAI_API_KEY"


def test_overrides_apply():
    t = load_target("netmind", base_url="http://127.0.0.1:9/v1/", api_key_env="MY_KEY", models=["a", "b"])
    assert (t.base_url, t.api_key_env, t.models, t.embedded) == ("http://127.0.0.1:9/v1", "MY_KEY", ("a", "b"), False)


def test_base_url_turns_the_reference_target_into_a_live_one_and_needs_a_key_variable():
    with pytest.raises(TargetError, match="--api-key-env"):
        load_target("reference", base_url="http://127.0.0.1:9/v1")
    custom = load_target("reference", base_url="http://127.0.0.1:9/v1", api_key_env="K")
    assert not custom.embedded and custom.name == "custom-127-0-0-1-9-v1"
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


BASE = "name = 'x'\nbase_url = 'http://h/v1'\nmodels = ['m']\n"


@pytest.mark.parametrize("text, field, expected", [
    (BASE + "[limits]\nconcurrency = 'four'\n", "limits.concurrency", "an integer"),
    (BASE + "[limits]\nconcurrency = 2.5\n", "limits.concurrency", "an integer"),
    (BASE + "[limits]\nconcurrency = true\n", "limits.concurrency", "an integer"),
    (BASE + "[limits]\nconcurrency = 0\n", "limits.concurrency", "more than 0"),
    (BASE + "[limits]\ntimeout_seconds = 'x'\n", "limits.timeout_seconds", "a number of seconds"),
    (BASE + "[limits]\nrequests_per_minute = '60'\n", "limits.requests_per_minute", "an integer"),
    (BASE + "[limits]\nretry_base_seconds = -1\n", "limits.retry_base_seconds", "0 or more"),
    (BASE + "limits = 3\n", "limits", "a table"),
    (BASE + "[declared]\nparameters = 'stop'\n", "declared.parameters", "a list of strings"),
    (BASE + "[declared]\nmodes = ['batch']\n", "declared.modes", "not one of regular, stream"),
    (BASE + "declared = []\n", "declared", "a table"),
    (BASE + "[headers]\nX-Org = 5\n", "headers.X-Org", "a string"),
    (BASE + "[docs]\nurl = 'docs.example'\n", "docs.url", "an http(s) link"),
    (BASE + "[docs]\nurl = 3\n", "docs.url", "an http(s) link"),
    (BASE + "[docs.claims]\nstop = 1\n", "docs.claims.stop", "a string"),
    (BASE + "docs = 'https://x'\n", "docs", "a table"),
    (BASE + "headers = 'X-Org: 5'\n", "headers", "a table"),
    (BASE + "[model_endpoints]\nm = 'chat'\n", "model_endpoints.m", "a list of strings"),
    (BASE + "[model_endpoints]\nm = ['embeddings']\n", "model_endpoints.m", "not one of chat"),
    (BASE + "model_unsupported = ['tools']\n", "model_unsupported", "a table"),
    (BASE.replace("'x'", "42"), "name", "a string"),
    (BASE.replace("'x'", "'../../etc/x'"), "name", "a name usable in file names"),
    (BASE + "description = ['a']\n", "description", "a string"),
    (BASE + "embedded = 'no'\n", "embedded", "true or false"),
    (BASE + "api_key_env = 1\n", "api_key_env", "a string"),
    (BASE.replace("'http://h/v1'", "8000"), "base_url", "a string"),
])
def test_a_field_of_the_wrong_type_is_one_line_naming_file_field_and_type(tmp_path, text, field, expected):
    path = write(tmp_path, text)
    with pytest.raises(TargetError) as info:
        load_target(path)
    message = str(info.value)
    assert message.startswith(f"{path}: '{field}' ") and expected in message and "\n" not in message


def test_well_typed_limits_are_kept():
    target = load_target("reference")
    assert (target.limits.concurrency, target.limits.timeout_seconds) == (8, 30)


def test_a_base_url_gives_the_target_an_identity_of_its_own():
    def at(url, name="reference"):
        return load_target(name, base_url=url, api_key_env="K").name

    assert at("http://localhost:8000/v1") == "custom-localhost-8000-v1"
    # different servers never share a name (history, expectations, report folders)
    assert len({at("http://localhost:8000/v1"), at("http://localhost:8001/v1"), at("http://other:8000/v1"),
                at("http://localhost:8000/openai/v1")}) == 4
    # the name is usable in file names and never holds credentials
    name = at("https://user:secret@Host.Example:8443/a b/v1?key=k")
    assert name == "custom-host-example-8443-a-b-v1"
    long = at("https://" + "a" * 200 + ".example/v1")
    assert len(long) <= 60 and long != at("https://" + "a" * 199 + ".example/v1")
    # a named target keeps its name (and expectations) elsewhere, as a real engine on a free port
    # does; its history tells the addresses apart by the base URL
    assert at("http://127.0.0.1:9/v1", "netmind") == "netmind"
    assert load_target("netmind", base_url="http://127.0.0.1:9/v1", api_key_env="K").base_url == \
        "http://127.0.0.1:9/v1"


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


@pytest.mark.parametrize("limits, fragment", [
    ("concurrency = \"four\"", "'limits.concurrency' must be an integer"),
    ("timeout_seconds = \"x\"", "'limits.timeout_seconds' must be a number of seconds"),
])
def test_cli_wrongly_typed_target_file_is_one_line_with_exit_code_2(tmp_path, limits, fragment):
    path = write(tmp_path, f"name = 'bad'\nembedded = true\nmodels = ['ref-small']\n[limits]\n{limits}\n", "bad.toml")
    result = _cli("run", "--target", path, "--report-dir", str(tmp_path / "run"), "--no-history")
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0] == f"conformance: error: {path}: {fragment}, not " + limits.split(" = ")[1] \
        .replace('"', "'") + " (a string)"
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()


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


def test_the_docs_of_a_target_reach_its_parameter_verdicts(tmp_path):
    """[docs] is data: its page and claims land in the matrix beside [declared], and a claim about a
    parameter the catalogue does not know is refused in one line."""
    from conformance.report.model import parameter_verdicts

    path = write(tmp_path, BASE + "[declared]\nparameters = ['stop']\n[docs]\nurl = 'https://docs.example/api'\n"
                                  "[docs.claims]\nstop = 'up to 4 sequences'\n")
    rows = {(r["endpoint"], r["parameter"]): r for r in parameter_verdicts([], load_target(path))}
    assert rows["chat", "stop"]["docs"] == {"url": "https://docs.example/api", "claim": "up to 4 sequences"}
    assert rows["chat", "n"]["docs"] == {"url": "https://docs.example/api", "claim": ""}
    bad = write(tmp_path, BASE + "[docs.claims]\nstopp = 'x'\n")
    with pytest.raises(TargetError, match="names 'stopp', which is no parameter"):
        load_target(bad)
