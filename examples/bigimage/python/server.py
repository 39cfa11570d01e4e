"""The Python benchmark function (examples/bigimage).

At start it imports a scientific stack, as a data service would, then
serves HTTP on 0.0.0.0:$FC_SERVER_PORT (default 9000):

  GET /                  what was imported and how long it took
  GET /run?seconds=N     the run phase: reads files of the image in a
                         fixed pseudo-random order for N seconds and
                         answers {"Bytes": read, "Seconds": elapsed}
"""
import json
import os
import random
import time

T0 = time.monotonic()
import numpy
import scipy.stats
import scipy.optimize
import scipy.signal
import pandas
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot
import sklearn.ensemble
import sklearn.linear_model
INIT = time.monotonic() - T0

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def files():
    """The image's files (/app/files.txt, made with the image: walking
    them here would take longer than reading them) in a fixed order."""
    with open("/app/files.txt") as f:
        out = f.read().split()
    random.Random(1).shuffle(out)
    return out


def run(seconds):
    t0 = time.monotonic()
    deadline = t0 + seconds
    total = 0
    for p in files():
        if time.monotonic() >= deadline:
            break
        try:
            with open(p, "rb", buffering=0) as f:
                while True:
                    b = f.read(1 << 20)
                    if not b:
                        break
                    total += len(b)
        except OSError:
            pass
    return {"Bytes": total, "Seconds": time.monotonic() - t0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        u = urlparse(self.path)
        if u.path.endswith("/run"):
            q = parse_qs(u.query)
            body = run(float(q.get("seconds", ["10"])[0]))
        else:
            body = {"numpy": numpy.__version__, "scipy": scipy.__version__,
                    "pandas": pandas.__version__, "matplotlib": matplotlib.__version__,
                    "sklearn": sklearn.__version__, "initSeconds": INIT}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_GET

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(os.environ.get("FC_SERVER_PORT", "9000"))
    print("imports took %.2fs; listening on 0.0.0.0:%d" % (INIT, port), flush=True)
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
