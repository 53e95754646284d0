"""The reference server's semantics, asserted directly over HTTP."""

import json

import httpx2
import openai
import pytest

from conformance.wire.sse import parse_event_stream


@pytest.fixture
def http(reference_server):
    with httpx2.Client(base_url=reference_server.base_url, headers={"Authorization": f"Bearer {reference_server.api_key}"}) as c:
        yield c


def chat(http, **body):
    body = {"model": "ref-small", "messages": [{"role": "user", "content": "Tell me a story."}], **body}
    return http.post("/chat/completions", json=body)


def test_greedy_is_deterministic_and_max_tokens_bounds_it(http):
    a, b = chat(http, temperature=0, max_tokens=30).json(), chat(http, temperature=0, max_tokens=30).json()
    assert a["choices"][0]["message"]["content"] == b["choices"][0]["message"]["content"]
    short = chat(http, temperature=0, max_tokens=3).json()
    assert short["usage"]["completion_tokens"] == 3 and short["choices"][0]["finish_reason"] == "length"
    assert a["choices"][0]["message"]["content"].startswith(short["choices"][0]["message"]["content"])


def test_stop_sequence_cuts_before_it_and_reports_stop(http):
    text = chat(http, temperature=0, max_tokens=30).json()["choices"][0]["message"]["content"]
    word = text.split()[2]
    cut = chat(http, temperature=0, max_tokens=30, stop=[word]).json()["choices"][0]
    assert cut["message"]["content"] == text[: text.index(word)]
    assert cut["finish_reason"] == "stop"


def test_n_and_seed(http):
    body = dict(temperature=1, max_tokens=8, n=3, seed=7)
    first, second = chat(http, **body).json(), chat(http, **body).json()
    assert [c["index"] for c in first["choices"]] == [0, 1, 2]
    assert [c["message"]["content"] for c in first["choices"]] == [c["message"]["content"] for c in second["choices"]]


def test_stream_framing(http):
    response = chat(http, max_tokens=4, n=2, stream=True, stream_options={"include_usage": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_event_stream(response.content).events
    assert events[-1].data == "[DONE]"
    chunks = [json.loads(e.data) for e in events[:-1]]
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 8
    assert all(c["usage"] is None for c in chunks[:-1])
    firsts = {}
    for c in chunks[:-1]:
        for choice in c["choices"]:
            firsts.setdefault(choice["index"], choice["delta"])
    assert all(d.get("role") == "assistant" for d in firsts.values()) and len(firsts) == 2


@pytest.mark.parametrize("body, status, param", [
    ({"temperature": 2.5}, 400, "temperature"),
    ({"top_p": -0.1}, 400, "top_p"),
    ({"stop": ["a", "b", "c", "d", "e"]}, 400, "stop"),
    ({"n": 0}, 400, "n"),
    ({"logit_bias": {"15": 101}}, 400, "logit_bias"),
    ({"presence_penalty": 2.5}, 400, "presence_penalty"),
    ({"no_such_parameter": 1}, 400, None),
    ({"model": "nope"}, 404, None),
    ({"stream_options": {"include_usage": True}}, 400, "stream_options"),
])
def test_errors_use_openai_envelope(http, body, status, param):
    response = chat(http, **body)
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["param"] == param


def test_authentication(reference_server):
    url = reference_server.base_url + "/models"
    assert httpx2.get(url).status_code == 401
    assert httpx2.get(url, headers={"Authorization": "Bearer wrong"}).json()["error"]["code"] == "invalid_api_key"


def test_malformed_json(http):
    response = http.post("/completions", content=b"{", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "parse the JSON" in response.json()["error"]["message"]


def test_models(http):
    listed = http.get("/models").json()
    assert listed["object"] == "list" and [m["id"] for m in listed["data"]] == ["ref-small", "ref-large"]
    assert http.get("/models/ref-large").json()["owned_by"]
    assert http.get("/models/nope").status_code == 404


def test_completions_default_max_tokens_is_16(http):
    body = {"model": "ref-large", "prompt": "Once upon a time", "temperature": 0, "logit_bias": {"15": 100}}
    choice = http.post("/completions", json=body).json()
    assert choice["usage"]["completion_tokens"] == 16 and choice["choices"][0]["finish_reason"] == "length"


def test_echo_with_max_tokens_zero_returns_the_prompt_alone(http):
    body = {"model": "ref-small", "prompt": "Once upon a time", "echo": True, "max_tokens": 0, "logprobs": 1}
    reply = http.post("/completions", json=body).json()
    choice = reply["choices"][0]
    assert choice["text"] == "Once upon a time" and reply["usage"]["completion_tokens"] == 0
    assert "".join(choice["logprobs"]["tokens"]) == "Once upon a time"
    refused = chat(http, max_tokens=0)  # chat keeps its minimum of 1
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "max_tokens"


def test_prompt_and_max_tokens_over_the_context_is_refused(http):
    reply = chat(http, max_tokens=4096)
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "context_length_exceeded"
    assert chat(http, max_tokens=4000).status_code == 200


def test_the_request_log_holds_every_request_but_never_the_key(tmp_path):
    from conformance.server import ReferenceServer

    log = tmp_path / "requests.jsonl"
    with ReferenceServer(api_key="sk-log-secret-123", request_log=str(log)) as server:
        with httpx2.Client(base_url=server.base_url) as client:
            client.post("/chat/completions", headers={"Authorization": "Bearer sk-log-secret-123"},
                        json={"model": "ref-small", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2})
            client.get("/models", headers={"Authorization": "Bearer wrong"})
            client.post("/completions", content=b"{not json")
        openai.OpenAI(base_url=server.base_url, api_key="sk-log-secret-123", max_retries=0).models.list()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(x["method"], x["path"], x["auth"], x["client"]) for x in lines] == [
        ("POST", "/v1/chat/completions", "server", "other"), ("GET", "/v1/models", "other", "other"),
        ("POST", "/v1/completions", "none", "other"), ("GET", "/v1/models", "server", "sdk")]
    assert json.loads(lines[0]["body"])["max_tokens"] == 2 and lines[2]["body"] == "{not json"
    assert "sk-log-secret" not in log.read_text()


def test_the_server_in_its_own_process_keeps_its_settings_and_reports_its_faults(tmp_path):
    """What an xdist run uses: the key, models, quirks and request log cross to the child, the
    faults it injected come back when it stops, and it does not outlive stop()."""
    from conformance.server.faults import parse_faults
    from conformance.server.process import ServerProcess

    log = tmp_path / "requests.jsonl"
    server = ServerProcess(api_key="sk-child-1", models=("ref-tiny",), quirks=("stop-kept",), request_log=str(log))
    try:
        with httpx2.Client(base_url=server.base_url, headers={"Authorization": "Bearer sk-child-1"}) as client:
            assert [m["id"] for m in client.get("/models").json()["data"]] == ["ref-tiny"]
            body = {"model": "ref-tiny", "temperature": 0, "max_tokens": 20,
                    "messages": [{"role": "user", "content": "Tell me a story."}]}
            text = client.post("/chat/completions", json=body).json()["choices"][0]["message"]["content"]
            word = text.split()[2]
            kept = client.post("/chat/completions", json={**body, "stop": [word]}).json()["choices"][0]
            assert kept["message"]["content"] == text[: text.index(word) + len(word)]  # the quirk: stop text kept
            assert client.get("/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
    finally:
        server.stop()
    assert server.process.returncode == 0
    assert [json.loads(line)["auth"] for line in log.read_text().splitlines()] == ["server"] * 3 + ["other"]

    faults = parse_faults("503=1", seed=3)
    server = ServerProcess(api_key="sk-child-2", models=("ref-tiny",), faults=faults)
    try:
        with httpx2.Client(base_url=server.base_url, headers={"Authorization": "Bearer sk-child-2"}) as client:
            assert [client.get("/models").status_code for _ in range(3)] == [503] * 3
    finally:
        server.stop()
    assert faults.injected == {"503": 3} and server.process.returncode == 0
