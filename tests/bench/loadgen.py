"""A bounded load generator: wrk when installed, else a small Python one.

Both send the same signed GitHub delivery with a unique ``X-GitHub-Delivery`` per request (the
delivery id is not part of GitHub's signature, so one signature serves every request), over
``connections`` keep-alive connections for ``seconds`` seconds, and return requests per second,
p50 and p99 latency in ms, and how many answers were 2xx.
"""

from __future__ import annotations

import http.client
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path


@dataclass
class LoadResult:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    tool: str


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [==[%(body)s]==]
%(headers)s
local counter = 0
local thread_id = 0
local threads = {}
function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end
request = function()
  counter = counter + 1
  wrk.headers["X-GitHub-Delivery"] = "bench-%(run)s-" .. tid .. "-" .. counter
  return wrk.format(nil, %(path)q)
end
"""


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(
    url: str, path: str, body: bytes, headers: dict, connections: int, seconds: int
) -> LoadResult:
    lua_headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    script = WRK_SCRIPT.replace("%(body)s", body.decode()).replace("%(headers)s", lua_headers)
    script = script.replace("%(path)q", f'"{path}"')
    # unique per load: wrk seeds Lua's random numbers the same way every run
    script = script.replace("%(run)s", uuid.uuid4().hex)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "30s",
            "--latency",
            "-s",
            handle.name,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    Path(handle.name).unlink()
    latency = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M))

    def parse(label):
        match = re.match(r"([\d.]+)(us|ms|s)", latency[label])
        return _ms(*match.groups())

    total = int(re.search(r"(\d+) requests in", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if errors:
        print(f"    wrk socket errors: {errors.group(1)}")
    return LoadResult(
        total,
        float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        parse("50"),
        parse("99"),
        int(non_2xx.group(1)) if non_2xx else 0,
        "wrk",
    )


def run_python(
    url: str, path: str, body: bytes, headers: dict, connections: int, seconds: int
) -> LoadResult:
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    non_2xx = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker():
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        mine, bad = [], 0
        while time.monotonic() < stop_at:
            start = time.perf_counter()
            conn.request(
                "POST",
                path,
                body=body,
                headers={**headers, "X-GitHub-Delivery": f"bench-{uuid.uuid4().hex}"},
            )
            response = conn.getresponse()
            response.read()
            mine.append((time.perf_counter() - start) * 1000)
            bad += not 200 <= response.status < 300
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=10)
        with lock:
            latencies.extend(mine)
            non_2xx[0] += bad

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 30)
    elapsed = time.monotonic() - started
    latencies.sort()
    return LoadResult(
        len(latencies),
        len(latencies) / elapsed,
        latencies[len(latencies) // 2],
        latencies[int(len(latencies) * 0.99)],
        non_2xx[0],
        "python",
    )


def run(
    url: str, path: str, body: bytes, headers: dict, *, connections: int = 16, seconds: int = 10
) -> LoadResult:
    runner = run_wrk if shutil.which("wrk") else run_python
    return runner(url, path, body, headers, connections, seconds)
