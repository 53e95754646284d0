"""The HTTP side of the reference server: routing, the Bearer key check, JSON and SSE framing."""

from __future__ import annotations

import hmac
import json
import threading
import time

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from .model import ToyModel
from .protocol import ApiError, Generator, model_object, models_list, response_body, stream_events

MAX_BODY = 8 * 1024 * 1024
DEFAULT_MODELS = ("ref-small", "ref-large")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet by default
        if self.server.verbose:
            super().log_message(format, *args)

    # --- plumbing -------------------------------------------------------------------------
    def _send_json(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _send_error(self, err: ApiError) -> None:
        self._send_json(err.status, err.body)

    def _send_stream(self, events) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for data in events:
            frame = f"data: {data}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def _authorise(self) -> None:
        header = self.headers.get("Authorization", "")
        if not header:
            raise ApiError(401, "You didn't provide an API key. You need to provide your API key in an "
                                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not any(hmac.compare_digest(key.strip(), k) for k in self.server.api_keys):
            raise ApiError(401, "Incorrect API key provided. You can find your API key in your account settings.",
                           code="invalid_api_key")

    def _read_json(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ApiError(413, "Request body too large.")
        raw = self.rfile.read(length) if length else b""
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

    def _route(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        try:
            if method == "POST" and path in ("/v1/chat/completions", "/v1/completions"):
                # Drain the body before answering so keep-alive connections stay in step.
                self._authorise_after_read(path)
            elif method == "GET" and path == "/v1/models":
                self._authorise()
                self._send_json(200, models_list(self.server.models, self.server.created))
            elif method == "GET" and path.startswith("/v1/models/"):
                self._authorise()
                model_id = unquote(path[len("/v1/models/"):])
                if model_id not in self.server.models:
                    raise ApiError(404, f"The model '{model_id}' does not exist", param="model",
                                   code="model_not_found")
                self._send_json(200, model_object(model_id, self.server.created))
            else:
                if method == "POST":
                    self.rfile.read(int(self.headers.get("Content-Length") or 0))
                raise ApiError(404, f"Invalid URL ({method} {path})")
        except ApiError as err:
            self._send_error(err)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _authorise_after_read(self, path: str) -> None:
        endpoint = "chat" if path.endswith("/chat/completions") else "completions"
        try:
            body = self._read_json()
        except ApiError as parse_error:
            self._authorise()  # a missing key is reported before a bad body, as OpenAI does
            raise parse_error
        self._authorise()
        generator = self.server.generator
        generator.validate(endpoint, body)
        choices, usage = generator.generate(endpoint, body)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            self._send_stream(stream_events(endpoint, body["model"], choices, usage, include_usage))
        else:
            self._send_json(200, response_body(endpoint, body["model"], choices, usage))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, api_keys: tuple[str, ...], models: tuple[str, ...], verbose: bool):
        super().__init__(address, _Handler)
        self.api_keys = api_keys
        self.models = {name: ToyModel(name) for name in models}
        self.generator = Generator(self.models)
        self.created = int(time.time())
        self.verbose = verbose


class ReferenceServer:
    """The embedded reference server; `with ReferenceServer(...) as srv:` serves on srv.base_url."""

    def __init__(self, api_key: str, host: str = "127.0.0.1", port: int = 0,
                 models: tuple[str, ...] = DEFAULT_MODELS, verbose: bool = False):
        self.api_key = api_key
        self._server = _Server((host, port), (api_key,), tuple(models), verbose)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> "ReferenceServer":
        self._thread = threading.Thread(target=self._server.serve_forever, name="reference-server", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "ReferenceServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()



