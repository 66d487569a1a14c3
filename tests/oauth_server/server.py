"""Start the test OAuth server: ``OAuthServer().start()`` migrates a fresh database, creates a
user and the applications the tests need, and runs the server on a free port of 127.0.0.1."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parents[2]

SETUP = r"""
import json
from django.contrib.auth.models import User
from oauth2_provider.models import Application
user = User.objects.create_user("alice", "alice@example.test", "alice-password")
User.objects.create_user("bob", "bob@elsewhere.test", "bob-password")
apps = {}
for name, grant, redirect in [
    ("hub-code", Application.GRANT_AUTHORIZATION_CODE, REDIRECT),
    ("hub-machine", Application.GRANT_CLIENT_CREDENTIALS, ""),
    ("hub-sso", Application.GRANT_AUTHORIZATION_CODE, SSO_URI),
]:
    secret = "s-" + name + "-" + SUFFIX
    app = Application.objects.create(
        name=name, user=user, client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=grant, redirect_uris=redirect, client_secret=secret,
        skip_authorization=False, algorithm="RS256" if name == "hub-sso" else "",
    )
    apps[name] = {"client_id": app.client_id, "client_secret": secret}
print(json.dumps(apps))
"""


def _rsa_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


class OAuthServer:
    def __init__(
        self, *, redirect_uri: str = "http://testserver/oauth/callback/", token_seconds: int = 3600
    ):
        self.workdir = Path(tempfile.mkdtemp(prefix="oauth-server-"))
        self.redirect_uri = redirect_uri
        self.sso_redirect_uri = "http://testserver/auth/complete/oidc/"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.oauth_server.settings",
            "OAUTH_SERVER_DB": str(self.workdir / "oauth.sqlite3"),
            "OAUTH_SERVER_TOKEN_SECONDS": str(token_seconds),
            "OAUTH_SERVER_RSA_KEY": _rsa_key(),
        }
        self.process: subprocess.Popen | None = None
        self.apps: dict = {}
        self.url = ""

    def _django(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "django", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            **kwargs,
        )

    def start(self) -> OAuthServer:
        self._django("migrate", "-v", "0")
        script = SETUP.replace("SSO_URI", repr(self.sso_redirect_uri))
        script = script.replace("REDIRECT", repr(self.redirect_uri)).replace(
            "SUFFIX", repr(os.urandom(8).hex())
        )
        self.apps = json.loads(self.run(script).splitlines()[-1])
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "django.core.wsgi:get_wsgi_application()",
                "-b",
                f"127.0.0.1:{port}",
                "-w",
                "2",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=self.env,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/test/stats/", timeout=2):  # noqa: S310
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("the test OAuth server did not start")

    def stats(self) -> dict:
        with urllib.request.urlopen(self.url + "/test/stats/", timeout=5) as response:  # noqa: S310
            return json.loads(response.read())

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def run(self, code: str) -> str:
        """Run Python against the server's database (test set-up on the provider's side)."""
        script = "import django\ndjango.setup()\n" + code
        result = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return result.stdout.strip()

    def issue_tokens(self, *, expires_in: int, scope: str = "contacts.read") -> dict:
        """Tokens for alice on the code-flow app, as if she had consented (the consent flow
        itself is exercised by its own tests)."""
        code = f"""
import json, secrets
from datetime import timedelta
from django.utils import timezone
from django.contrib.auth.models import User
from oauth2_provider.models import AccessToken, Application, RefreshToken
app = Application.objects.get(name="hub-code")
user = User.objects.get(username="alice")
access = AccessToken.objects.create(user=user, application=app, token=secrets.token_urlsafe(30),
    expires=timezone.now() + timedelta(seconds={expires_in}), scope={scope!r})
refresh = RefreshToken.objects.create(user=user, application=app,
    token=secrets.token_urlsafe(30), access_token=access)
print(json.dumps({{"access_token": access.token, "refresh_token": refresh.token}}))
"""
        return json.loads(self.run(code).splitlines()[-1])

    def revoke_all_refresh_tokens(self) -> None:
        self.run(
            "from oauth2_provider.models import RefreshToken\n"
            "[t.revoke() for t in RefreshToken.objects.filter(revoked__isnull=True)]"
        )

    def revoke_access_tokens(self) -> None:
        """Invalidate the access tokens but keep the refresh tokens usable (a 401 case)."""
        self.run(
            "from datetime import timedelta\n"
            "from django.utils import timezone\n"
            "from oauth2_provider.models import AccessToken\n"
            "AccessToken.objects.update(expires=timezone.now() - timedelta(seconds=1))"
        )


def consent(
    authorize_url: str, *, allow: bool = True, user: str = "alice", password: str = "alice-password"
) -> str:
    """Play the user at the provider: log in, then allow (or deny) on the consent page.
    Returns the provider's redirect back to the hub."""
    browser = requests.Session()
    browser.trust_env = False
    base = f"{urlsplit(authorize_url).scheme}://{urlsplit(authorize_url).netloc}"
    login = browser.get(base + "/accounts/login/", params={"next": authorize_url[len(base) :]})
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
    page = browser.post(
        login.url,
        data={"csrfmiddlewaretoken": token, "username": user, "password": password},
    )
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    assert "client_id" in fields, page.text[:500]
    if allow:
        fields["allow"] = "Authorize"
    answer = browser.post(page.url, data=fields, allow_redirects=False)
    assert answer.status_code == 302, answer.text[:300]
    return answer.headers["Location"]
