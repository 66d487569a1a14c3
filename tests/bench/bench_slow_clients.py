"""Slow clients: 20 connections that send their body one byte a second, held open while valid
signed deliveries arrive, against gunicorn's sync workers directly and behind nginx with the
shipped buffering configuration (docs/deploy/hub-buffering.conf). Target: behind nginx, the
valid deliveries' p99 stays under 1 s. Needs Debian's nginx (``apt-get install nginx-light``);
without it the benchmark says so and is skipped. Bounded: 20 slow clients for at most 30 s,
80 deliveries (10 a second), every request with a 15 s timeout."""

from __future__ import annotations

import secrets
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from connectors.choices import CredentialKind
from connectors.models import Connection
from connectors.services.credentials import create_credential
from tests import signing
from tests.bench.bench_ingest import ROOT, start_gunicorn, stop
from tests.processes import free_port
from webhooks.models import WebhookEndpoint

SLOW_CLIENTS = 20
SLOW_SECONDS_CAP = 30
DELIVERIES = 80
TARGET_P99_MS = 1000
SNIPPET = ROOT / "docs" / "deploy" / "hub-buffering.conf"


def start_nginx(upstream_port: int) -> tuple[subprocess.Popen, int]:
    workdir = Path(tempfile.mkdtemp(prefix="hub-nginx-"))
    port = free_port()
    temp = " ".join(
        f"{name}_temp_path {workdir / name};" for name in ("client_body", "proxy", "fastcgi")
    )
    conf = workdir / "nginx.conf"
    conf.write_text(
        f"""worker_processes 1; daemon off; pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off; {temp} uwsgi_temp_path {workdir}/uwsgi; scgi_temp_path {workdir}/scgi;
  upstream hub {{ server 127.0.0.1:{upstream_port}; keepalive 16; }}
  server {{
    listen 127.0.0.1:{port};
    include {SNIPPET};
    location / {{ proxy_pass http://hub; }}
  }}
}}
"""
    )
    process = subprocess.Popen(
        [shutil.which("nginx"), "-c", str(conf), "-p", str(workdir)],
        start_new_session=True,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("nginx did not start")


def slow_client(port: int, path: str, done: threading.Event) -> None:
    """Headers at once, then one byte of the body a second, until the deliveries are done (or
    ``SLOW_SECONDS_CAP``)."""
    sock = None
    stop_at = time.monotonic() + SLOW_SECONDS_CAP
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(
            (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                "Content-Length: 1000\r\n\r\n"
            ).encode()
        )
        while not done.is_set() and time.monotonic() < stop_at:
            sock.sendall(b" ")
            done.wait(1)
    except OSError:
        pass  # the server gave up on it: that is allowed
    finally:
        if sock is not None:
            sock.close()


def deliver(port: int, path: str, body: bytes, secret: str, delivery: str) -> tuple[float, bool]:
    headers = {
        **signing.github_headers(body, secret, delivery),
        "Content-Type": "application/json",
    }
    started = time.perf_counter()
    try:
        response = requests.post(
            f"http://127.0.0.1:{port}{path}", data=body, headers=headers, timeout=15
        )
        ok = response.status_code == 202
    except requests.RequestException:
        ok = False
    return (time.perf_counter() - started) * 1000, ok


def scenario(port: int, endpoint: WebhookEndpoint, secret: str, label: str) -> list[float]:
    path = f"/webhooks/{endpoint.slug}/"
    done = threading.Event()
    slow = [
        threading.Thread(target=slow_client, args=(port, path, done), daemon=True)
        for _ in range(SLOW_CLIENTS)
    ]
    for thread in slow:
        thread.start()
    time.sleep(1)  # the slow clients are connected and holding what they hold
    body = signing.fixture("github", "push")
    # deliveries at a steady 10 per second while the slow clients stay open
    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = []
        for i in range(DELIVERIES):
            delivery = f"slow-{label[:8]}-{i}-{secrets.token_hex(4)}"
            futures.append(pool.submit(deliver, port, path, body, secret, delivery))
            time.sleep(0.1)
        results = [future.result() for future in futures]
    done.set()
    for thread in slow:
        thread.join(timeout=10)
    latencies = sorted(ms for ms, _ in results)
    failures = sum(1 for _, ok in results if not ok)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(
        f"  {label:<28} {DELIVERIES} deliveries with {SLOW_CLIENTS} slow clients open: "
        f"p50 {statistics.median(latencies):7.1f} ms, p99 {p99:7.1f} ms, "
        f"max {latencies[-1]:7.1f} ms, {failures} not accepted in 15 s"
    )
    return latencies


def run() -> None:
    print(
        f"== Slow clients: {SLOW_CLIENTS} bodies sent one byte a second, gunicorn 4 sync "
        "workers, directly and behind nginx =="
    )
    if shutil.which("nginx") is None:
        print("  skipped: nginx is not installed (apt-get install nginx-light)")
        return
    secret = secrets.token_hex(20)
    connection = Connection.objects.create(
        name="bench-slow", slug="bench-slow", base_url="https://partner.example.test"
    )
    create_credential(connection, CredentialKind.WEBHOOK_SIGNING_SECRET, secret)
    endpoint = WebhookEndpoint.objects.create(
        connection=connection, slug="bench-slow", scheme="github"
    )
    port = free_port()
    server = start_gunicorn(port)
    nginx = None
    try:
        scenario(port, endpoint, secret, "gunicorn directly")
        nginx, nginx_port = start_nginx(port)
        behind = scenario(nginx_port, endpoint, secret, "behind nginx (buffering)")
    finally:
        if nginx is not None:
            stop(nginx)
        stop(server)
    p99 = behind[int(len(behind) * 0.99) - 1]
    verdict = "meets" if p99 < TARGET_P99_MS else "ABOVE"
    print(f"  behind nginx: p99 {p99:.0f} ms (target < {TARGET_P99_MS} ms: {verdict})")
