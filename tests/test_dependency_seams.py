"""Public APIs only (docs/architecture.md): product code uses no leading-underscore name of its
dependencies, with two stated exceptions, each checked here so that an upgrade that changes
them fails loudly instead of breaking the hub silently:

* ``Model._meta``: Django's documented "Model _meta API" (its underscore is historical);
* urllib3's ``HTTPConnection._new_conn()``, overridden by the SSRF guard (connectors/engine/
  transport.py) because urllib3 has no public hook between resolving a name and connecting.
"""

from __future__ import annotations

import ast
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from urllib3.connection import HTTPConnection

from connectors.engine.ssrf import BlockedAddress
from connectors.engine.transport import GuardedHTTPConnection

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ["connectors", "webhooks", "flows", "syncs", "api", "sandbox", "integrations_site"]
ALLOWED_ATTRIBUTES = {"_meta"}


def private_uses(path: Path) -> list[str]:
    """Leading-underscore attributes read on anything but ``self``/``cls``, and
    leading-underscore names imported from another module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute):
            name, base = node.attr, node.value
            if not name.startswith("_") or name.startswith("__") or name in ALLOWED_ATTRIBUTES:
                continue
            if isinstance(base, ast.Name) and base.id in ("self", "cls"):
                continue
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} import {alias.name}")
    return found


def test_product_code_reads_no_private_name_of_another_module():
    found = [
        use
        for app in PRODUCT
        for path in sorted((ROOT / app).rglob("*.py"))
        if "migrations" not in path.parts
        for use in private_uses(path)
    ]
    assert found == []


def test_the_only_private_method_overridden_is_urllib3s_new_conn():
    """Every method of the hub's classes whose name starts with one underscore and that a
    dependency's base class also defines: only the SSRF guard's, in one module."""
    overrides = []
    for app in PRODUCT:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef) and node.bases:
                    for item in node.body:
                        if isinstance(item, ast.FunctionDef) and item.name == "_new_conn":
                            overrides.append(f"{path.relative_to(ROOT)}:{node.name}")
    assert overrides == [
        "connectors/engine/transport.py:GuardedHTTPConnection",
        "connectors/engine/transport.py:GuardedHTTPSConnection",
    ]


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        return


@pytest.fixture
def loopback_server():
    server = HTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def test_urllib3_still_opens_its_sockets_through_new_conn(loopback_server, settings):
    # given urllib3's own connect(), which must call the method the guard overrides
    assert callable(getattr(HTTPConnection, "_new_conn", None)), (
        "urllib3 no longer has HTTPConnection._new_conn: the SSRF guard "
        "(connectors/engine/transport.py) must move to its replacement"
    )
    settings.HUB_ALLOW_PRIVATE_NETWORKS = False
    # when a guarded connection connects to a loopback server (refused without the setting)
    conn = GuardedHTTPConnection("127.0.0.1", loopback_server, timeout=5)
    # then the guard refused it before any socket connected
    with pytest.raises(BlockedAddress):
        conn.connect()
    settings.HUB_ALLOW_PRIVATE_NETWORKS = True
    conn = GuardedHTTPConnection("127.0.0.1", loopback_server, timeout=5)
    conn.connect()
    assert isinstance(conn.sock, socket.socket)
    assert conn.sock.getpeername() == ("127.0.0.1", loopback_server)
    conn.request("GET", "/")
    assert conn.getresponse().status == 204
    conn.close()


def test_no_help_text_holds_what_the_console_would_read_as_html():
    """The admin renders help texts as HTML: ``/webhooks/<slug>/`` showed as ``/webhooks//``."""
    from django.apps import apps

    offending = [
        f"{model._meta.label}.{field.name}: {field.help_text}"
        for model in apps.get_models()
        if model._meta.app_label in PRODUCT
        for field in model._meta.get_fields()
        if "<" in str(getattr(field, "help_text", "") or "")
    ]
    assert offending == []


def test_every_docs_file_a_help_text_names_exists():
    import re

    from django.apps import apps

    named = {
        match
        for model in apps.get_models()
        if model._meta.app_label in PRODUCT
        for field in model._meta.get_fields()
        for match in re.findall(r"docs/[\w./-]+\.md", str(getattr(field, "help_text", "") or ""))
    }
    assert named and all((ROOT / name).is_file() for name in named), named
