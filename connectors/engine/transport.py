"""The one HTTP client factory. Nothing else in the hub builds a ``requests`` session.

Sessions made here:

* connect only to addresses the SSRF guard allows, checked on the socket's actual peer address
  (the connection classes resolve, check, then connect to that same address);
* ignore proxy variables and ``.netrc`` from the environment (``trust_env = False``), so no
  ambient configuration can route a partner call elsewhere or add credentials to it;
* never follow redirects by themselves (the engine decides, per call);
* are kept one per thread, so keep-alive connections are reused across calls.
"""

from __future__ import annotations

import socket
import threading

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from connectors.engine.ssrf import BlockedAddress, resolve_allowed

__all__ = ["BlockedAddress", "get_session", "new_session"]


def _guarded_socket(conn: HTTPConnection) -> socket.socket:
    """Resolve, refuse blocked addresses, then connect to one of the checked addresses."""
    host, port = conn.host, conn.port
    try:
        infos = resolve_allowed(host, port)
    except socket.gaierror as exc:
        raise NewConnectionError(conn, f"Failed to resolve {host!r}: {exc}") from exc
    last_error: OSError | None = None
    for family, socktype, proto, _canon, address in infos:
        sock = socket.socket(family, socktype, proto)
        try:
            for option in conn.socket_options or ():
                sock.setsockopt(*option)
            if conn.timeout is not None:
                sock.settimeout(conn.timeout)
            sock.connect(address)
            return sock
        except TimeoutError as exc:
            sock.close()
            raise ConnectTimeoutError(
                conn, f"Connection to {host} timed out. (connect timeout={conn.timeout})"
            ) from exc
        except OSError as exc:
            sock.close()
            last_error = exc
    raise NewConnectionError(conn, f"Failed to establish a new connection: {last_error}")


# The hub's one use of a dependency's private name (docs/architecture.md says why): urllib3 opens
# every connection's socket in ``_new_conn()``, HTTP and HTTPS alike (TLS is set up after it),
# and offers no public hook between name resolution and ``connect()``. Checking the address
# the socket really connects to, there, is what makes the guard immune to DNS rebinding.
# tests/test_dependency_seams.py fails loudly if an upgrade of urllib3 stops calling it.
class GuardedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _guarded_socket(self)


class GuardedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _guarded_socket(self)


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """A transport adapter whose pools use the guarded connection classes, and no retries of
    its own (the engine retries, knowing which requests are safe to repeat)."""

    def __init__(self, **kwargs):
        super().__init__(max_retries=0, pool_connections=20, pool_maxsize=20, **kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": GuardedHTTPConnectionPool,
            "https": GuardedHTTPSConnectionPool,
        }

    def proxy_manager_for(self, proxy, **proxy_kwargs):  # pragma: no cover - defensive
        raise BlockedAddress("proxies are not used for partner calls")


def new_session() -> requests.Session:
    """A fresh guarded session (tests and one-off tools; the engine uses :func:`get_session`)."""
    session = requests.Session()
    session.trust_env = False
    adapter = GuardedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = "integrations-hub/0.1"
    return session


_local = threading.local()


def get_session() -> requests.Session:
    """This thread's guarded session (kept so keep-alive connections are reused)."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = new_session()
    return session
