"""The HTTP side of the reference server: routing, the Bearer key check, JSON and SSE framing.

Here the server is composed: the plain reference (validate, generate, render) with the quirk
layer (server/quirks/) called at each seam, a no-op when the server has no quirks.
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import json
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterable
from urllib.parse import unquote

from .faults import STATUS_KINDS, Faults
from .generate import Generator
from .model import ToyModel
from .quirks import Layer
from .render import Responses, error_response, model_object, models_list, sse_frames
from .responses_api import VALUE_TYPES, ResponseRenderer, Store, input_item_resources, input_items, request_rules, to_chat
from .validate import ApiError, Validator

MAX_BODY = 8 * 1024 * 1024
SHUTDOWN_POLL_SECONDS = 0.05  # how soon stop() ends the serving loop
DEFAULT_MODELS = ("ref-small", "ref-large")
ENDPOINTS = {"/v1/chat/completions": "chat", "/v1/completions": "completions", "/v1/responses": "responses"}
STORED = "/v1/responses/"  # GET and DELETE of a stored response, its input_items, its cancel
STORED_ROUTES = {("GET", ""), ("DELETE", ""), ("GET", "input_items"), ("POST", "cancel")}
INPUT_ITEMS_LIMIT = (1, 100)
KEEPALIVE_SECONDS = 0.5  # between the comments of a silent stream (Behaviour.silent_with)
SILENT_AT_MOST_SECONDS = 600.0  # a silent stream whose client never leaves ends after this long
BUSY_AFTER_SECONDS = 5.0  # how long a silent stream's generation goes on once its client has left


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave in separate writes: no 40 ms delayed-ACK stalls
    server: "Server"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet unless asked
        if self.server.verbose:
            super().log_message(format, *args)

    # --- plumbing -------------------------------------------------------------------------
    def _send_body(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _send_json(self, status: int, body: dict) -> None:
        self._send_body(status, json.dumps(body).encode(), "application/json")

    def _send_error(self, err: ApiError) -> None:
        status, body = error_response(err)
        if isinstance(body, bytes):  # a crash: plain text, no envelope
            self._send_body(status, body, "text/plain; charset=utf-8")
        else:
            self._send_json(*self.server.layer.error_out(status, body))

    def _send_stream(self, payloads: Iterable[str], status: int = 200, event_name: str | None = None,
                     events: bool = False) -> None:
        layer = self.server.layer
        # one event a token, as a model server streams them
        pace = max(self.server.token_latency, self.server.behaviour.stream_seconds)
        self.send_response(status)
        headers = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache",
                   "Transfer-Encoding": "chunked"}
        for name, value in layer.stream_headers(headers).items():
            self.send_header(name, value)
        self.end_headers()
        # `events`: each payload's `type` names its event (`event:` line), as the Responses API streams
        frames = [f.encode() for f in layer.frames_out(sse_frames(list(payloads), event_name, named=events))]
        for number, frame in enumerate(frames):
            if number == 2 and getattr(self, "_fault", None) == "stall":  # stop answering mid-stream
                time.sleep(self.server.faults.stall_seconds)
                self._drop_connection()
                return
            if pace and number:
                time.sleep(pace)
            if number and layer.behaviour.streams_interrupted and self.server.waiting:
                # As llama-cpp-python's server does by default: a request waiting for the model ends the
                # running stream where it stands, with [DONE] and no finish_reason.
                done = b"data: [DONE]\n\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(done), done))
                break
            for part in layer.writes(frame):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def _authorise(self) -> None:
        if not self.server.behaviour.keys_checked:
            return
        header = self.headers.get("Authorization", "")
        if not header:
            raise ApiError(401, "You didn't provide an API key. You need to provide your API key in an "
                                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not any(hmac.compare_digest(key.strip(), k) for k in self.server.api_keys):
            raise ApiError(401, "Incorrect API key provided. You can find your API key in your account settings.",
                           code="invalid_api_key")

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ApiError(413, "Request body too large.")
        return self.rfile.read(length) if length else b""

    def _parse_json(self, raw: bytes):
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ApiError(400, "We could not parse the JSON body of your request. (HINT: This likely means you "
                                "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
                                "but what was sent was not valid JSON.)") from None

    # --- routes ---------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._route("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._route("DELETE")

    def _drop_connection(self) -> None:
        """Close the connection with a TCP reset, as a crashed proxy or a load balancer does."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _inject(self, fault: str, streaming: bool) -> bool:
        """Act out a fault; True when the request is answered (or dropped) by it."""
        if fault in STATUS_KINDS:
            status = int(fault)
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "0")
            body = json.dumps({"error": {"message": f"Injected fault: HTTP {status}", "type": "server_error",
                                         "param": None, "code": None}}).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return True
        if fault == "reset":
            self._drop_connection()
            return True
        if fault == "cut":  # a status line and headers with no framing, then nothing
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream" if streaming else "application/json")
            self.end_headers()
            self.wfile.flush()
            self.close_connection = True
            return True
        if fault == "stall" and not streaming:
            time.sleep(self.server.faults.stall_seconds)
            self._drop_connection()
            return True
        return False  # a stall of a stream happens mid-stream (see _send_stream)

    def _route(self, method: str) -> None:
        try:
            # Read the body first, so keep-alive connections stay in step whatever the answer.
            raw = self._read_body() if method == "POST" else b""
        except ApiError as err:
            self._send_error(err)
            return
        if self.server.overhead:  # the HTTP side's own time, spent beside other requests even on a serial server
            time.sleep(self.server.overhead)
        self.server.hold.arrived(raw)
        if self.server.serial is not None:  # one request at a time, the others wait their turn
            with self.server.serial:
                self._answer(method, raw)
        else:
            self._answer(method, raw)

    def _answer(self, method: str, raw: bytes) -> None:
        path = self.path.split("?", 1)[0]
        try:
            if self.server.request_log is not None:
                self.server.log_request_seen(method, self.path, self.headers.get("Authorization"), raw,
                                             self.headers.get("User-Agent") or "")
            if self.server.latency:  # a model server's time to the first token (benchmarks, slow targets)
                time.sleep(self.server.latency)
            faults = self.server.faults
            self._fault = faults.draw() if faults is not None else None
            if self._fault and self._inject(self._fault, streaming=_asks_for_stream(raw)):
                return
            if self.server.layer.drops(raw):
                self._drop_connection()
                return
            if method == "POST" and path in ENDPOINTS:
                self.server.hold.wait_if_held()
                self._complete(ENDPOINTS[path], raw)
            elif path.startswith(STORED) and method in ("GET", "DELETE", "POST"):
                self._authorise()
                self._stored(method, path[len(STORED):])
            elif method == "GET" and path == "/v1/models":
                self._authorise()
                body = models_list(list(self.server.models), self.server.created)
                self._send_json(200, self.server.layer.body_out("models", body))
            elif (method == "GET" and path.startswith("/v1/models/")
                  and self.server.behaviour.models_retrieve_served):
                self._authorise()
                self._retrieve(unquote(path[len("/v1/models/"):]))
            else:
                raise ApiError(404, f"Invalid URL ({method} {path})")
        except ApiError as err:
            self._send_error(err)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _stored(self, method: str, rest: str) -> None:
        """GET /responses/{id}, DELETE it, GET its input_items, POST its cancel."""
        response_id, _, sub = unquote(rest).partition("/")
        if (method, sub) not in STORED_ROUTES:
            raise ApiError(404, f"Invalid URL ({method} {self.path})")
        store = self.server.store
        kept = store.get(response_id)
        if kept is None:
            raise ApiError(404, f"Response with id '{response_id}' not found.", param="response_id")
        layer = self.server.layer
        if sub == "input_items":
            self._send_json(200, layer.body_out("input_items", _item_page(kept["items"], self.path)))
        elif sub == "cancel":
            if not kept["response"]["background"]:
                raise ApiError(400, "Only responses created with background set to true can be cancelled.",
                               param="response_id", code="invalid_value")
            self._send_json(200, layer.body_out("responses", kept["response"]))
        elif method == "DELETE":
            if not self.server.behaviour.responses_delete_kept:
                store.delete(response_id)
            self._send_json(200, layer.body_out("deleted", {"id": response_id, "object": "response",
                                                            "deleted": True}))
        else:
            self._send_json(200, layer.body_out("responses", kept["response"]))

    def _retrieve(self, model_id: str) -> None:
        if model_id not in self.server.models and not self.server.behaviour.unknown_models_retrieved:
            raise ApiError(404, f"The model '{model_id}' does not exist", param="model", code="model_not_found")
        self._send_json(200, self.server.layer.body_out("model", model_object(model_id, self.server.created)))

    def _complete(self, endpoint: str, raw: bytes) -> None:
        self._authorise()  # a missing key is reported before a bad body, as OpenAI does
        if self.server.generating is None:
            self._generate(endpoint, raw)
            return
        with self.server.turn():
            self._generate(endpoint, raw)

    def _stay_silent(self) -> None:
        """A stream that never sends an event: keep-alive comments until the client leaves (a write
        fails), then the generation goes on without it for BUSY_AFTER_SECONDS, the model still held."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        comment = b": keep-alive\n\n"
        started = time.monotonic()
        try:
            while time.monotonic() - started < SILENT_AT_MOST_SECONDS:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(comment), comment))
                self.wfile.flush()
                time.sleep(KEEPALIVE_SECONDS)
        except OSError:
            pass
        time.sleep(BUSY_AFTER_SECONDS)
        self.close_connection = True

    def _valid_request(self, endpoint: str, body) -> dict:
        """The request as the server acts on it: through the quirk layer's request seams, validated (the
        model's existence last, as OpenAI checks it)."""
        server, layer = self.server, self.server.layer
        models = tuple(server.models)
        request = server.validator.validate(endpoint, layer.request_in(endpoint, body, models))
        request = layer.request_valid(endpoint, request, models)
        server.validator.check_model(request)
        return request

    def _respond(self, request: dict) -> None:
        """POST /v1/responses, once valid: generated as the chat request it stands for
        (responses_api.py), answered as a Response object or its events, and kept when `store`."""
        server, layer = self.server, self.server.layer
        context = server.store.context(request)
        chat = to_chat(request, context)
        server.validator.validate("chat", chat)  # the translation is a valid chat request
        choices, usage = server.generator.generate("chat", chat)
        choice = choices[0]
        renderer = server.renderer
        response = renderer.envelope(request, request["model"])
        k = chat.get("top_logprobs") if chat.get("logprobs") else None
        stream = renderer.events(response, choice, usage, k) if request.get("stream") else None
        # A stream's final response is the one its events end with (the ids its items were streamed with).
        final = stream.base if stream is not None else renderer.finish(response, choice, usage,
                                                                       renderer.items(choice, k))
        if request.get("store", True) is not False:
            server.store.put(final, input_item_resources(input_items(request.get("input"))), context)
        if server.token_latency and not stream:
            time.sleep(server.token_latency * usage.get("completion_tokens", 0))
        if stream is not None:
            self._send_stream((c.payload() for c in layer.events_out(stream)), events=True)
        elif request.get("background"):  # answered at once, queued: its outcome is read with GET
            self._send_json(200, layer.body_out("responses", {**response, "status": "queued"}))
        else:
            self._send_json(200, layer.body_out("responses", final))

    def _generate(self, endpoint: str, raw: bytes) -> None:
        server, layer = self.server, self.server.layer
        layer.raw_in(raw)
        body = self._parse_json(raw)
        if endpoint == "responses":
            self._respond(self._valid_request(endpoint, body))
            return
        streaming = isinstance(body, dict) and body.get("stream") is True
        try:  # a refusal found while generating (a prompt over the context) is a refusal too
            request = self._valid_request(endpoint, body)
            if streaming and server.behaviour.silent_with and server.behaviour.silent_with in request:
                self._stay_silent()
                return
            choices, usage = server.generator.generate(endpoint, request)
            usage = layer.usage_out(usage)
        except ApiError as err:
            event = layer.error_event(err) if streaming else None
            if event is not None:
                self._send_stream([event], event_name="error")
                return
            raise
        responses = server.responses
        if server.token_latency and not request.get("stream"):  # a stream is paced event by event
            time.sleep(server.token_latency * usage.get("completion_tokens", 0))
        if request.get("stream"):
            include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
            def payloads():  # rendered once the headers are out, so a rendering failure cuts the stream
                stream = responses.stream(endpoint, request["model"], choices, usage, include_usage)
                for chunk in layer.chunks_out(stream):
                    yield chunk.payload()
            self._send_stream(payloads())
        else:
            body = responses.body(endpoint, request["model"], choices, usage)
            self._send_json(200, layer.body_out(endpoint, body))


def _item_page(items: list[dict], url: str) -> dict:
    """One page of input_items: `order` (desc by default), `after` an item id, `limit` 1 to 100 (20)."""
    query = dict(part.partition("=")[::2] for part in url.partition("?")[2].split("&") if part)
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ApiError(400, f"Invalid value: '{order}'. Supported values are: 'asc' and 'desc'.", param="order",
                       code="invalid_value")
    try:
        limit = int(query.get("limit", 20))
    except ValueError:
        raise ApiError(400, "Invalid 'limit': expected an integer.", param="limit", code="invalid_type") from None
    if not INPUT_ITEMS_LIMIT[0] <= limit <= INPUT_ITEMS_LIMIT[1]:
        raise ApiError(400, f"Invalid 'limit': expected a value between 1 and 100, but got {limit} instead.",
                       param="limit", code="invalid_value")
    ordered = items if order == "asc" else items[::-1]
    ids = [i["id"] for i in ordered]
    start = ids.index(unquote(query["after"])) + 1 if query.get("after") in ids else 0
    page = ordered[start:start + limit]
    return {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None, "has_more": start + limit < len(ordered)}


def _asks_for_stream(raw: bytes) -> bool:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(body, dict) and body.get("stream") is True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address) -> None:
        """A client that hangs up (or a dropped connection of our own) is routine, not a traceback."""
        if isinstance(sys.exc_info()[1], (ConnectionError, OSError)):
            return
        super().handle_error(request, client_address)

    def __init__(self, address, api_keys: tuple[str, ...], models: tuple[str, ...], layer: Layer,
                 verbose: bool, faults: Faults | None = None, request_log: str | None = None,
                 latency: float = 0.0, token_latency: float = 0.0, serial: bool = False, listen: bool = True,
                 overhead: float = 0.0, toy_models: dict[str, ToyModel] | None = None, hold: int = 0):
        # listen=False: no socket bound, for answering without one (server/offline.py), whose servers
        # share their toy models (`toy_models`, by name: a model is a function of its name)
        super().__init__(address, Handler, bind_and_activate=listen)
        self.latency = latency
        self.token_latency = token_latency
        self.overhead = overhead
        self.serial = threading.Lock() if serial else None
        self.hold = Hold(hold)
        self.generating = threading.Lock() if layer.behaviour.one_generation_at_a_time else None
        self.waiting = 0  # generation requests waiting for the model (self.generating)
        self._waiting_lock = threading.Lock()
        self.request_log = open(request_log, "a", encoding="utf-8") if request_log else None
        self._log_lock = threading.Lock()
        self.api_keys = api_keys
        self.layer = layer
        self.behaviour = layer.behaviour
        self.faults = faults
        self.models = toy_models if toy_models is not None else {name: ToyModel(name) for name in models}
        self.store = Store()
        # The Responses API's own value types and whole-request rules (responses_api.py), beside chat's.
        self.validator = Validator(self.models, layer.behaviour, types=VALUE_TYPES, rules={
            "responses": functools.partial(request_rules, store=self.store,
                                           json_word_required=layer.behaviour.json_word_required)})
        self.generator = Generator(self.models, layer.behaviour)
        self.responses = Responses()
        self.renderer = ResponseRenderer()
        self.created = int(time.time())
        self.verbose = verbose

    @contextlib.contextmanager
    def turn(self):
        """The model, for one generation: the requests that find it busy wait, counted in `waiting`."""
        with self._waiting_lock:
            self.waiting += 1
        try:
            self.generating.acquire()
        finally:
            with self._waiting_lock:
                self.waiting -= 1
        try:
            yield
        finally:
            self.generating.release()

    def log_request_seen(self, method: str, path: str, authorization: str | None, raw: bytes,
                         user_agent: str) -> None:
        """One JSON line per request received (for the benchmark's bare replay); the key is not
        written, only whether the request carried the server's key, another one, or none; and
        whether the openai SDK sent it (by its User-Agent) or another client."""
        key = (authorization or "").partition(" ")[2].strip()
        auth = "none" if authorization is None else "server" if key in self.api_keys else "other"
        client = "sdk" if user_agent.startswith("OpenAI/") else "other"
        line = json.dumps({"method": method, "path": path, "auth": auth, "client": client,
                           "body": raw.decode("latin-1")})
        with self._log_lock:
            self.request_log.write(line + "\n")
            self.request_log.flush()

    def server_close(self) -> None:
        super().server_close()
        if self.request_log is not None:
            self.request_log.close()


class Hold:
    """The first `count` generation requests held until released (ReferenceServer's `hold`), and
    the bodies of the requests that arrived meanwhile (kept only when something is held)."""

    LONGEST_SECONDS = 300  # a test that never releases does not hang the server for ever

    def __init__(self, count: int) -> None:
        self.left = count
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._bodies: list[bytes] = []

    def arrived(self, raw: bytes) -> None:
        if self.left or self._bodies:
            with self._lock:
                self._bodies.append(raw)

    def bodies(self) -> list[bytes]:
        with self._lock:
            return list(self._bodies)

    def wait_if_held(self) -> None:
        with self._lock:
            held = self.left > 0
            self.left -= held
        if held:
            self.release.wait(self.LONGEST_SECONDS)


class ReferenceServer:
    """The embedded reference server; `with ReferenceServer(...) as srv:` serves on srv.base_url.

    `quirks` (names from conformance.server.quirks) make it reproduce real-world deviations;
    `faults` (conformance.server.faults) inject transient trouble at seeded rates; `latency`
    (seconds) is added to every request, as a model server's time to the first token, and
    `token_latency` (seconds) to every generated token, streamed events paced by it; `serial`
    serves one request at a time, as Ollama's default or a one-slot llama-server does; `overhead`
    (seconds) is spent by every request before it waits for that turn, as a server whose HTTP side is
    concurrent and whose generations are serial spends it (a tiny request then looks parallel);
    `request_log` (a path) receives every request as a JSON line (for the benchmark's bare replay).
    `hold` (tests): the first `hold` generation requests are held, their turn taken, until
    `release_held()`; `arrived()` lists every request body as it arrived, before it waited for
    its turn, so a test releases them on an event it can see, not after a guessed time.
    """

    def __init__(self, api_key: str, host: str = "127.0.0.1", port: int = 0,
                 models: tuple[str, ...] = DEFAULT_MODELS, quirks=(), verbose: bool = False,
                 faults: Faults | None = None, request_log: str | None = None, latency: float = 0.0,
                 token_latency: float = 0.0, serial: bool = False, overhead: float = 0.0, hold: int = 0):
        self.api_key = api_key
        self.layer = Layer(quirks)  # an unknown quirk name: ValueError, before anything listens
        self.quirks = self.layer.names
        self.faults = faults
        self._server = Server((host, port), (api_key,), tuple(models), self.layer, verbose, faults, request_log,
                               latency, token_latency, serial, overhead=overhead, hold=hold)
        self._thread: threading.Thread | None = None

    def release_held(self) -> None:
        self._server.hold.release.set()

    def arrived(self) -> list[bytes]:
        return self._server.hold.bodies()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> "ReferenceServer":
        self._thread = threading.Thread(target=self.serve_forever, name="reference-server", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        # shutdown() waits for the loop's next poll: socketserver's 0.5 s default was up to half a
        # second at the end of every run; twenty wake-ups a second cost nothing measurable.
        self._server.serve_forever(poll_interval=SHUTDOWN_POLL_SECONDS)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "ReferenceServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
