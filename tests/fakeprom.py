"""A fake Prometheus HTTP API for tests: serves `{__name__="..."}` range queries from a canonical frame."""

import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import polars as pl


class FakeHttpServer:
    """A threaded HTTP server on 127.0.0.1 (ephemeral port) that answers with ``self.route(path, params)``.

    Subclasses implement ``route`` returning ``(status, body, content_type)``; ``body`` may be a
    JSON-able object or bytes. GET query strings and POST forms both arrive in ``params``; every
    request is logged in ``self.requests`` as ``(method, path, params, headers)``.
    """

    def __init__(self):
        self.requests: list[tuple[str, str, dict, dict]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                parts = urllib.parse.urlsplit(self.path)
                params = dict(urllib.parse.parse_qsl(parts.query))
                if self.command == "POST":
                    n = int(self.headers.get("Content-Length", 0))
                    params.update(urllib.parse.parse_qsl(self.rfile.read(n).decode()))
                fake.requests.append((self.command, parts.path, params, dict(self.headers)))
                status, body, ctype = fake.route(parts.path, params)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)

    def route(self, path, params):  # pragma: no cover - subclasses answer
        raise NotImplementedError

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class FakeProm(FakeHttpServer):
    """Serves `{__name__="..."}` range queries from a canonical frame, recording each query."""

    def __init__(self, frame: pl.DataFrame):
        super().__init__()
        self.frame = frame

    @property
    def queries(self) -> list[dict]:
        """Parameters of every request, in order."""
        return [params for _, _, params, _ in self.requests]

    def route(self, path, params):
        return 200, self.answer(params), "application/json"

    def answer(self, params):
        name = re.fullmatch(r'\{__name__="([^"]+)"\}', params["query"]).group(1)
        lo, hi = float(params["start"]) * 1000, float(params["end"]) * 1000
        sel = self.frame.filter(pl.col("metric") == name,
                                pl.col("timestamp").dt.epoch("ms").is_between(lo, hi))
        labels = [c for c in sel.columns if c not in ("timestamp", "metric", "value")]
        result = []
        for key, g in sel.group_by(labels, maintain_order=True):
            metric = {"__name__": name, **{k: v for k, v in zip(labels, key) if v is not None}}
            values = [[t / 1000, repr(v)] for t, v in zip(g["timestamp"].dt.epoch("ms"), g["value"])]
            result.append({"metric": metric, "values": values})
        return {"status": "success", "data": {"resultType": "matrix", "result": result}}
