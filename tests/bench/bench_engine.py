"""Outbound engine overhead: N POSTs through ``hub.call`` (call log on) against a raw
``requests.Session`` loop to the same local server, once against an instant server, a server that
answers after 20 ms and one that answers after 50 ms (a realistic partner)."""

from __future__ import annotations

import subprocess
import sys
import time

import requests

from connectors import hub
from connectors.choices import CredentialKind
from connectors.engine.circuit import reset
from connectors.models import ApiCall, Connection
from connectors.services.credentials import create_credential

# The instant server is a stress figure (recorded, not a target); 50 ms is a realistic partner.
TARGETS = {0.0: None, 0.02: None, 0.05: 0.90}
COUNTS = {0.0: 2000, 0.02: 300, 0.05: 120}


def start_server(delay: float) -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.partner_server", "--delay", str(delay)],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    if not line.startswith("LISTENING"):
        process.kill()
        raise RuntimeError(f"bench server did not start: {line!r}")
    return process, int(line.split()[1])


def raw_rate(url: str, count: int, key: str) -> float:
    session = requests.Session()
    session.trust_env = False
    started = time.perf_counter()
    for i in range(count):
        response = session.post(
            url + "/contacts",
            json={"email": f"c{i}@example.test", "n": i},
            headers={"X-API-Key": key},
            timeout=(3.05, 10),
        )
        response.raise_for_status()
    return count / (time.perf_counter() - started)


def engine_rate(slug: str, count: int, run: str, *, with_keys: bool = False) -> float:
    started = time.perf_counter()
    for i in range(count):
        hub.call(
            slug,
            "POST",
            "/contacts",
            json={"email": f"c{i}@example.test", "n": i},
            idempotency_key=f"{run}-{i}" if with_keys else None,
        )
    return count / (time.perf_counter() - started)


def run() -> None:
    print("== Outbound engine: hub.call() vs a raw requests.Session loop ==")
    for delay, target in TARGETS.items():
        count = COUNTS[delay]
        server, port = start_server(delay)
        try:
            url = f"http://127.0.0.1:{port}"
            slug = f"bench-{int(delay * 1000)}ms"
            connection = Connection.objects.create(
                name=slug,
                slug=slug,
                base_url=url,
                auth_method="api_key_header",
                retry_max_attempts=1,
            )
            key = "bench-key-" + "x" * 24
            create_credential(connection, CredentialKind.API_KEY, key)
            reset(connection)
            # warm both paths (connections, imports, caches)
            raw_rate(url, 20, key)
            engine_rate(slug, 20, "warm", with_keys=True)
            raw = raw_rate(url, count, key)
            engine = engine_rate(slug, count, "run")
            keyed = engine_rate(slug, count, "keyed", with_keys=True)
            logged = ApiCall.objects.filter(connection=connection).count()
        finally:
            server.terminate()
            server.wait(timeout=10)
        ratio = engine / raw
        if target is None:
            verdict = "recorded, not a target"
        else:
            verdict = f"target >= {target:.2f}: {'meets' if ratio >= target else 'BELOW'}"
        print(
            f"server delay {delay * 1000:>3.0f} ms, {count} POSTs: raw {raw:8.1f} req/s, "
            f"engine {engine:8.1f} req/s, ratio {ratio:.2f} "
            f"({verdict}); {logged} call rows written"
        )
        print(
            f"    with an idempotency key on every POST (local record + header): "
            f"{keyed:8.1f} req/s, ratio {keyed / raw:.2f} (informational)"
        )
