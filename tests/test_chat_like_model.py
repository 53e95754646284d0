"""A model that answers like a chat model (issue 28, point 9): brief answers that end their turn.

A stub server answers as such a model did on `transformers serve`: the story prompt gets exactly
as many visible tokens as the limit, then its end-of-sequence (counted in usage); an instruction
to repeat gets one word, while raw repetitive text is continued by repeating it. The checks run
as the plugin runs them (one instance, regular mode, raw HTTP), against that server."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conformance.config.targets import Declared, Limits, Target
from conformance.harness.checks import outcome_of
from conformance.wire.client import Api, Runtime
# The modules, not their functions: a check imported by name here would be collected as a test.
from conformance.suites.generation import test_max_tokens as max_tokens_checks
from conformance.suites.generation import test_penalties as penalty_checks

KEY = "sk-chat-like-test-key"
ANSWER = [" Once", " upon", " a", " time", " ."]  # five visible tokens, then the end of the turn
REPEATED = " apple," * 24


def _generate(body: dict) -> tuple[str, int, str]:
    """(text, completion tokens, finish_reason) as the brief model answers `body`."""
    asked = body.get("prompt") if "prompt" in body else body["messages"][-1]["content"]
    limit = body.get("max_tokens") or body.get("max_completion_tokens") or 16
    if asked.startswith("apple, apple"):  # raw repetitive text: continued, whatever penalty is asked
        pieces, ends = [" apple,"] * 24, False
    elif asked.startswith("Continue this list"):
        pieces, ends = [" apple"], True
    else:
        pieces, ends = ANSWER, True
    if len(pieces) > limit:
        return "".join(pieces[:limit]), limit, "length"
    if ends and len(pieces) == limit:  # the end-of-sequence would be one token more: cut at the limit
        return "".join(pieces), limit, "length"
    return "".join(pieces), len(pieces) + ends, "stop" if ends else "length"


class Brief(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text, used, finish = _generate(body)
        chat = self.path.endswith("/chat/completions")
        choice = ({"index": 0, "message": {"role": "assistant", "content": text, "refusal": None}, "logprobs": None,
                   "finish_reason": finish} if chat else
                  {"index": 0, "text": text, "logprobs": None, "finish_reason": finish})
        answer = json.dumps({"id": "x-1", "object": "chat.completion" if chat else "text_completion", "created": 1,
                             "model": "brief", "choices": [choice],
                             "usage": {"prompt_tokens": 9, "completion_tokens": used, "total_tokens": 9 + used}})
        data = answer.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def brief():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Brief)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def judge(url: str, check, endpoint: str):
    target = Target(name="brief", base_url=url, models=("brief",),
                    declared=Declared(parameters=("max_tokens", "presence_penalty", "frequency_penalty")),
                    limits=Limits(timeout_seconds=10.0, retry_attempts=1))
    runtime = Runtime(target, url, KEY)
    api = Api(runtime, model="brief", mode="regular", path="http")
    try:
        check(api, endpoint=endpoint)
        excinfo = None
    except BaseException:  # noqa: BLE001 - exactly what the plugin would see
        excinfo = pytest.ExceptionInfo.from_current()
    finally:
        runtime.close()
    return outcome_of(excinfo), api


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_an_answer_exactly_as_long_as_the_limit_is_rightly_returned_whole(brief, endpoint):
    """Uncut: five visible tokens and the end of the turn (6 counted). With max_tokens 5 the same text comes back,
    finish_reason 'length': the limit held, judged by tokens, though the text is not shorter."""
    (outcome, message), _ = judge(brief, max_tokens_checks.test_max_tokens_limits_length, endpoint)
    assert outcome == "pass", message


def test_a_penalty_is_judged_on_raw_text_the_model_repeats_when_it_answers_an_instruction_briefly(brief):
    """The instruction to repeat gets one word; the raw repetitive prompt is continued, penalty or not: presence_penalty
    ignored is found (it was inconclusive with one prompt)."""
    (outcome, message), api = judge(brief, penalty_checks.test_presence_penalty, "completions")
    assert outcome == "fail" and "the same as without the penalty" in message, (outcome, message)
    assert [o["verdict"] for o in api.observations if o["parameter"] == "presence_penalty"] == ["ignored"]
