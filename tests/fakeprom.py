"""A fake Prometheus HTTP API for tests: serves `{__name__="..."}` range queries from a canonical frame."""

import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import polars as pl


class FakeProm:
    """Serves `{__name__="..."}` range queries from a canonical frame, recording each query."""

    def __init__(self, frame: pl.DataFrame):
        self.frame = frame
        self.queries: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                fake.queries.append(params)
                body = json.dumps(fake.answer(params)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)

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

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
