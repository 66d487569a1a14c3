"""The outbound engine: the one way the hub calls a partner.

``call()`` resolves the connection, claims the idempotency key, then for each attempt: circuit
breaker → rate limiter → credential → request with connect/read timeouts, correlation id and
idempotency key → the answer classified (success, transient, permanent) → one ``ApiCall`` row →
retry after a backoff with full jitter (or the partner's ``Retry-After``) while the attempts and
the call's deadline allow, else a typed error.
"""

from __future__ import annotations

import json as jsonlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings
from django.utils import timezone
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError

from connectors.choices import ConnectionStatus, Environment
from connectors.correlation import current_correlation_id, new_correlation_id
from connectors.engine import budget as task_budget
from connectors.engine import bulkhead, calllog, config_cache, idempotency, ratelimit
from connectors.engine.auth import OutboundRequest, get_auth_method
from connectors.engine.circuit import Breaker, state_keys
from connectors.engine.errors import (
    AuthError,
    BlockedURLError,
    CircuitOpenError,
    ConnectionBusyError,
    ConnectionUnavailableError,
    HubError,
    OutcomeUnknownError,
    PermanentError,
    QuotaExceededError,
    RetryableError,
)
from connectors.engine.policy import (
    IDEMPOTENT_METHODS,
    RETRYABLE_STATUSES,
    backoff_delay,
    parse_quota,
    parse_quota_limit,
    parse_retry_after,
)
from connectors.engine.ssrf import BlockedAddress
from connectors.engine.transport import get_session
from connectors.models import Connection, ErrorKind
from connectors.secrets import SecretUnreadable
from connectors.services.credentials import current_credential

__all__ = ["HubResponse", "call"]

logger = logging.getLogger("connectors.engine")

MAX_REDIRECTS = 3
# Seconds a process trusts its last read of the shared state (configuration generation and
# circuit breaker): other processes' changes are seen within this delay, its own at once.
SHARED_STATE_MAX_AGE = 0.5


@dataclass
class HubResponse:
    """A partner's answer, as the engine returns it."""

    status: int
    headers: CaseInsensitiveDict
    content: bytes
    attempts: int
    correlation_id: str
    duration_ms: int
    replayed: bool = False
    _parsed: object = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 400

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self):
        """The body parsed as JSON (``None`` for an empty body); ``ValueError`` if it is not."""
        if self._parsed is None and self.content:
            self._parsed = jsonlib.loads(self.content)
        return self._parsed


class _ResponseTooLarge(Exception):
    pass


class _DeadlineDuringRead(Exception):
    pass


@dataclass
class _Outcome:
    """One attempt's result, before the retry decision."""

    response: requests.Response | None = None
    content: bytes = b""
    error: HubError | None = None
    error_kind: str = ""
    retryable: bool = False
    never_sent: bool = False
    retry_after: float | None = None
    counts_against_circuit: bool = False


def _load_connection(slug: str) -> Connection:
    try:
        return Connection.objects.get(slug=slug)
    except Connection.DoesNotExist:
        raise ConnectionUnavailableError(
            f"No connection with slug {slug!r}. Check the slug in the console (Connections)."
        ) from None


def _connection(target) -> tuple[Connection, dict]:
    """The connection (from the process cache when still current) and the shared state read
    with the configuration generation in one cache round trip (the breaker's keys)."""
    slug = target.slug if isinstance(target, Connection) else str(target)
    shared = config_cache.shared_state(slug, state_keys(slug), SHARED_STATE_MAX_AGE)
    if isinstance(target, Connection):
        return target, shared
    return config_cache.cached_connection(slug, _load_connection), shared


def _check_status(connection: Connection) -> None:
    if connection.status == ConnectionStatus.REAUTH_REQUIRED:
        raise AuthError(
            f"Connection {connection.slug!r} needs its account reconnected: "
            f"{connection.status_reason or 'the partner refused its tokens'}.",
            hint="Reconnect the account in the admin (Connections → Connect account).",
        )
    if connection.status in (ConnectionStatus.PAUSED, ConnectionStatus.DISABLED):
        raise ConnectionUnavailableError(
            f"Connection {connection.slug!r} is {connection.get_status_display().lower()}"
            + (f": {connection.status_reason}" if connection.status_reason else "")
            + ". Set it back to active in the console to call it."
        )


def _build_url(connection: Connection, path: str) -> str:
    if urlsplit(path).scheme or path.startswith("//"):
        raise BlockedURLError(
            f"Give a path relative to the base URL of {connection.slug!r}, not a full URL."
        )
    if not connection.base_url:
        raise ConnectionUnavailableError(
            f"Connection {connection.slug!r} has no base URL: it only receives webhooks. Give "
            "it the partner's API base URL in the console to call it."
        )
    # checked on save too; a row changed behind the console's back (SQL, an old version)
    # must still never send a production secret over plain http
    if (
        connection.environment == Environment.PRODUCTION
        and urlsplit(connection.base_url).scheme != "https"
    ):
        raise BlockedURLError(
            f"Connection {connection.slug!r} is a production connection and its base URL is "
            "not https: the call was not sent. Set an https:// base URL in the console."
        )
    return connection.base_url.rstrip("/") + "/" + path.lstrip("/")


def _same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port) == (pb.scheme, pb.hostname, pb.port)


def _read_capped(response: requests.Response, limit: int, deadline_at: float) -> bytes:
    """Read the body without trusting the partner: bounded in size and in time."""
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit:
        response.close()
        raise _ResponseTooLarge(f"the response declares {declared} bytes (limit {limit})")
    chunks, size = [], 0
    for chunk in response.iter_content(chunk_size=65536):
        size += len(chunk)
        if size > limit:
            response.close()
            raise _ResponseTooLarge(f"the response is over {limit} bytes")
        if time.monotonic() > deadline_at:
            response.close()
            raise _DeadlineDuringRead()
        chunks.append(chunk)
    return b"".join(chunks)


def _partner_message(content: bytes) -> str:
    """The partner's own short explanation of an error, from common JSON shapes or text."""
    try:
        data = jsonlib.loads(content)
    except ValueError:
        return content.decode("utf-8", errors="replace").strip()[:300]
    if isinstance(data, dict):
        for key in ("message", "error_description", "detail", "error", "title", "errors"):
            value = data.get(key)
            if isinstance(value, dict):
                value = value.get("message") or jsonlib.dumps(value)
            if value:
                return str(value)[:300]
    return jsonlib.dumps(data)[:300]


def _never_sent(exc: requests.ConnectionError) -> bool:
    """True when the connection itself failed, so the request certainly did not leave."""
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError | NameResolutionError)


def _classify_status(response, content, connection, correlation_id) -> _Outcome:
    status = response.status_code
    if status < 400:
        return _Outcome(response=response, content=content)
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    message = _partner_message(content)
    kind = ErrorKind.HTTP_4XX if status < 500 else ErrorKind.HTTP_5XX
    if status == 429:
        error = QuotaExceededError(
            f"{connection.slug}: the partner's quota is exhausted (429)",
            status=status,
            correlation_id=correlation_id,
        )
        return _Outcome(
            response, content, error, ErrorKind.RATE_LIMITED, True, retry_after=retry_after
        )
    if status in RETRYABLE_STATUSES:
        error = RetryableError(
            f"{connection.slug}: transient error {status} from the partner: {message}",
            status=status,
            correlation_id=correlation_id,
        )
        return _Outcome(
            response,
            content,
            error,
            kind,
            True,
            retry_after=retry_after,
            counts_against_circuit=True,
        )
    if status in (401, 403):
        hint = (
            "The key or token is wrong, expired or revoked: check the credential."
            if status == 401
            else "The credential is valid but lacks a scope or permission for this call."
        )
        error = AuthError(
            f"{connection.slug}: {status} from the partner: {message}",
            hint=hint,
            status=status,
            partner_message=message,
            correlation_id=correlation_id,
        )
        return _Outcome(response, content, error, ErrorKind.AUTH)
    error = PermanentError(
        f"{connection.slug}: {status} from the partner: {message}",
        status=status,
        partner_message=message,
        correlation_id=correlation_id,
    )
    return _Outcome(response, content, error, kind)


def _record_lifecycle(connection: Connection, headers) -> None:
    """Keep the partner's Deprecation (RFC 9745) and Sunset (RFC 8594) signals on the
    connection, writing only when they change."""
    deprecation = (headers.get("Deprecation") or "")[:100]
    sunset = (headers.get("Sunset") or "")[:100]
    if not deprecation and not sunset:
        return
    link = ""
    for part in requests.utils.parse_header_links(headers.get("Link") or ""):
        if part.get("rel") in ("deprecation", "sunset") and part.get("url"):
            link = part["url"][:500]
            break
    changes = {
        "deprecation_date": deprecation or connection.deprecation_date,
        "sunset_date": sunset or connection.sunset_date,
        "deprecation_link": link or connection.deprecation_link,
    }
    if all(getattr(connection, name) == value for name, value in changes.items()):
        return
    if connection.deprecation_seen_at is None:
        changes["deprecation_seen_at"] = timezone.now()
    Connection.objects.filter(pk=connection.pk).update(**changes)
    for name, value in changes.items():
        setattr(connection, name, value)
    logger.warning(
        "partner API deprecation signalled for %s: deprecation=%s sunset=%s",
        connection.slug,
        deprecation or "-",
        sunset or "-",
        extra={"connection": connection.slug},
    )


class _Call:
    """The state of one ``call()``: its attempts share the deadline, the key and the id."""

    def __init__(
        self,
        connection,
        method,
        path,
        params,
        body,
        headers,
        idempotency_key,
        correlation_id,
        deadline,
        max_attempts,
        use_breaker,
    ):
        self.connection = connection
        self.method = method.upper()
        self.url = _build_url(connection, path)
        self.path = path if path.startswith("/") else "/" + path
        self.params = [
            (str(k), str(v))
            for k, v in (params.items() if isinstance(params, dict) else params or [])
        ]
        self.body = body
        self.extra_headers = dict(headers or {})
        self.idempotency_key = idempotency_key
        self.correlation_id = correlation_id
        self.max_attempts = max_attempts or connection.retry_max_attempts
        budget = deadline if deadline is not None else connection.retry_max_elapsed
        left = task_budget.remaining()
        if left is not None:
            budget = min(budget, max(0.0, left))  # never past the task's own timeout
        self.started = time.monotonic()
        self.deadline_at = self.started + budget
        self.use_breaker = use_breaker
        self.auth = get_auth_method(connection.auth_method)
        self.secret_params = self.auth.secret_query_params(connection)
        self.max_bytes = settings.HUB_MAX_RESPONSE_BYTES
        self.attempt = 0
        self.reauthorised = False
        self._secret: str | None = None
        self.prefetched: dict | None = None
        self.log_path = ""

    # -- helpers ---------------------------------------------------------------------------
    def _secret_value(self) -> str | None:
        if self.auth.credential_kind is None:
            return None
        if self._secret is None:
            self._secret = config_cache.cached_secret(
                self.connection.pk, self.auth.credential_kind, self._load_secret
            )
        return self._secret

    def _load_secret(self) -> tuple[str, datetime | None]:
        credential = current_credential(self.connection, self.auth.credential_kind)
        if credential is None:
            raise self.auth.missing_secret(self.connection)
        try:
            return credential.value.reveal(), credential.expires_at
        except SecretUnreadable:
            raise AuthError(
                f"The credential of {self.connection.slug!r} cannot be decrypted: its "
                "encryption key is missing from FERNET_KEYS.",
                hint="Put the old key back in FERNET_KEYS, or replace the secret.",
            ) from None

    def _log(
        self,
        *,
        url,
        status=None,
        error_kind="",
        message="",
        started_at,
        duration_ms=0,
        response_bytes=0,
        headers=None,
        params=None,
    ):
        remaining, reset_at = parse_quota(headers) if headers is not None else (None, None)
        limit = parse_quota_limit(headers) if headers is not None else None
        calllog.log_attempt(
            connection=self.connection,
            created_at=started_at,
            method=self.method,
            path=self.log_path
            or calllog.redact_path(
                self._relative(url),
                self.params if params is None else params,
                self.secret_params,
            ),
            status_code=status,
            duration_ms=duration_ms,
            attempt=self.attempt,
            correlation_id=self.correlation_id,
            idempotency_key=self.idempotency_key or "",
            error_kind=error_kind,
            error_message=message[:500],
            request_bytes=len(self.body or b""),
            response_bytes=response_bytes,
            quota_remaining=remaining,
            quota_reset_at=reset_at,
            quota_limit=limit,
        )

    def _relative(self, url: str) -> str:
        base = self.connection.base_url.rstrip("/")
        return url[len(base) :] or "/" if url.startswith(base) else urlsplit(url).path

    def _remaining(self) -> float:
        return self.deadline_at - time.monotonic()

    def _raise(self, error: HubError, *, retry_in: float | None = None):
        error.attempts = self.attempt
        error.correlation_id = error.correlation_id or self.correlation_id
        if retry_in is not None and isinstance(error, RetryableError):
            error.retry_at = datetime.now(UTC) + timedelta(seconds=retry_in)
        raise error

    # -- one attempt -----------------------------------------------------------------------
    def _request_headers(self) -> OutboundRequest:
        headers = {"Accept": "application/json"}
        if self.body is not None:
            headers["Content-Type"] = "application/json"
        headers.update(self.extra_headers)
        headers[self.connection.correlation_header_name or "X-Request-ID"] = self.correlation_id
        if self.idempotency_key and self.connection.idempotency_header_name:
            headers[self.connection.idempotency_header_name] = self.idempotency_key
        request = OutboundRequest(self.method, self.url, headers, list(self.params))
        self.auth.apply(request, self.connection, self._secret_value())
        self.sent_request = request  # what a 401 answered (the OAuth refresh compares it)
        return request

    def _attempt(self) -> _Outcome:
        url, redirects = self.url, 0
        while True:
            request = self._request_headers()
            started_at, t0 = timezone.now(), time.monotonic()
            read_timeout = max(0.05, min(self.connection.read_timeout, self._remaining()))
            outcome = self._send(request, url, read_timeout)
            duration_ms = int((time.monotonic() - t0) * 1000)
            response = outcome.response
            if response is None:
                self._log(
                    url=url,
                    error_kind=outcome.error_kind,
                    started_at=started_at,
                    message=outcome.error.message if outcome.error else "",
                    duration_ms=duration_ms,
                    params=request.params,
                )
                return outcome
            self._log(
                url=url,
                status=response.status_code,
                error_kind=outcome.error_kind,
                message=outcome.error.message if outcome.error else "",
                started_at=started_at,
                duration_ms=duration_ms,
                params=request.params,
                response_bytes=len(outcome.content),
                headers=response.headers,
            )
            _record_lifecycle(self.connection, response.headers)
            location = response.headers.get("Location")
            if not (300 <= response.status_code < 400 and response.status_code != 304 and location):
                return outcome
            target = urljoin(url, location)
            if not _same_origin(url, target):
                return _Outcome(
                    error=BlockedURLError(
                        f"{self.connection.slug}: the partner redirected to another host "
                        f"({urlsplit(target).hostname}); redirects are only followed on the "
                        "same host.",
                        status=response.status_code,
                    ),
                    error_kind=ErrorKind.BLOCKED_URL,
                )
            if self.method not in ("GET", "HEAD") or redirects >= MAX_REDIRECTS:
                return outcome  # the caller sees the 3xx itself
            url, redirects = target, redirects + 1

    def _send(self, request: OutboundRequest, url: str, read_timeout: float) -> _Outcome:
        session = get_session()
        try:
            response = session.request(
                self.method,
                url,
                params=request.params or None,
                headers=request.headers,
                data=self.body,
                timeout=(self.connection.connect_timeout, read_timeout),
                allow_redirects=False,
                stream=True,
            )
            try:
                content = _read_capped(response, self.max_bytes, self.deadline_at)
            finally:
                response.close()
        except BlockedAddress as exc:
            return _Outcome(error=BlockedURLError(str(exc)), error_kind=ErrorKind.BLOCKED_URL)
        except requests.ConnectTimeout:
            return self._transient(ErrorKind.TIMEOUT, "connect timeout", never_sent=True)
        except (requests.ReadTimeout, _DeadlineDuringRead):
            return self._transient(ErrorKind.TIMEOUT, "read timeout (no answer in time)")
        except requests.ConnectionError as exc:
            never_sent = _never_sent(exc)
            what = "connection refused or unreachable" if never_sent else "connection lost"
            return self._transient(ErrorKind.CONNECTION, what, never_sent=never_sent)
        except _ResponseTooLarge as exc:
            return _Outcome(
                error=PermanentError(f"{self.connection.slug}: {exc}"),
                error_kind=ErrorKind.RESPONSE_TOO_LARGE,
            )
        except requests.RequestException as exc:
            return self._transient(ErrorKind.CONNECTION, type(exc).__name__)
        return _classify_status(response, content, self.connection, self.correlation_id)

    def _transient(self, kind: str, what: str, *, never_sent: bool = False) -> _Outcome:
        error = RetryableError(f"{self.connection.slug}: {what}")
        return _Outcome(
            error=error,
            error_kind=kind,
            retryable=True,
            never_sent=never_sent,
            counts_against_circuit=True,
        )

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> HubResponse:
        while True:
            self.attempt += 1
            if self._remaining() <= 0:
                self._raise(
                    RetryableError(f"{self.connection.slug}: the call's deadline passed"),
                    retry_in=0,
                )
            # the connection's slot first: a busy connection must not take the breaker's probe
            # (a probe granted, then no call made, would hold the circuit half-open)
            try:
                slot = bulkhead.acquire(self.connection)
            except ConnectionBusyError as error:
                self._log(
                    url=self.url,
                    error_kind=ErrorKind.BUSY,
                    message=error.message,
                    started_at=timezone.now(),
                )
                self._raise(error)  # it carries when to come back
            attempt_started = None
            try:
                breaker = Breaker(self.connection)
                if self.use_breaker:
                    try:
                        breaker.before(self.correlation_id, prefetched=self.prefetched)
                        self.prefetched = None  # later attempts read the state again
                    except CircuitOpenError as error:
                        self._log(
                            url=self.url,
                            error_kind=ErrorKind.CIRCUIT_OPEN,
                            message=error.message,
                            started_at=timezone.now(),
                        )
                        self._raise(error)
                try:
                    ratelimit.acquire(
                        self.connection,
                        max_wait=min(ratelimit.MAX_WAIT_SECONDS, max(0, self._remaining())),
                        correlation_id=self.correlation_id,
                    )
                except QuotaExceededError as error:
                    self._log(
                        url=self.url,
                        error_kind=ErrorKind.RATE_LIMITED,
                        message=error.message,
                        started_at=timezone.now(),
                    )
                    self._raise(error)
                attempt_started = time.monotonic()
                outcome = self._attempt()
            finally:
                bulkhead.release(slot)
                if attempt_started is not None:  # only the partner's own time says it is slow
                    bulkhead.observe(self.connection, time.monotonic() - attempt_started)
            if self.use_breaker:
                if outcome.counts_against_circuit:
                    breaker.failure()
                elif outcome.response is not None:
                    breaker.success()
            if outcome.error is None:
                return self._success(outcome)
            self._decide(outcome)

    def _decide(self, outcome: _Outcome) -> None:
        """Raise the outcome's error, or sleep before the next attempt."""
        error = outcome.error
        if (
            isinstance(error, AuthError)
            and error.status == 401
            and not self.reauthorised
            and self.auth.on_unauthorized(self.connection, getattr(self, "sent_request", None))
        ):
            self.reauthorised, self._secret = True, None
            self.attempt -= 1  # a refreshed credential is a fresh start, not a retry
            return
        if not outcome.retryable:
            self._raise(error)
        if (
            self.method not in IDEMPOTENT_METHODS
            and not self.idempotency_key
            and not outcome.never_sent
        ):
            self._raise(
                OutcomeUnknownError(
                    f"{error.message}. The {self.method} may have reached the partner and was not "
                    "retried, because it carries no idempotency key: check at the partner before "
                    "sending it again, or send it with an idempotency key.",
                    status=error.status,
                )
            )
        if outcome.retry_after is not None:
            delay = outcome.retry_after
        else:
            delay = backoff_delay(
                self.attempt,
                base=self.connection.retry_backoff_base,
                cap=self.connection.retry_backoff_cap,
            )
        if self.attempt >= self.max_attempts or delay > self._remaining():
            self._raise(error, retry_in=delay)
        inline = task_budget.inline_wait_limit()
        if inline is not None and delay > inline:
            # a worker does not sleep through a long wait: the event is retried then
            self._raise(error, retry_in=delay)
        time.sleep(delay)

    def _success(self, outcome: _Outcome) -> HubResponse:
        response = outcome.response
        return HubResponse(
            status=response.status_code,
            headers=CaseInsensitiveDict(response.headers),
            content=outcome.content,
            attempts=self.attempt,
            correlation_id=self.correlation_id,
            duration_ms=int((time.monotonic() - self.started) * 1000),
        )


def _encode_body(json, data) -> bytes | None:
    if json is not None and data is not None:
        raise ValueError("Give json or data, not both.")
    if json is not None:
        return jsonlib.dumps(json, separators=(",", ":"), default=str).encode()
    if isinstance(data, str):
        return data.encode()
    return data


def call(
    connection,
    method: str,
    path: str,
    *,
    params=None,
    json=None,
    data: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    idempotency_key: str | None = None,
    correlation_id: str | None = None,
    deadline: float | None = None,
    max_attempts: int | None = None,
    use_breaker: bool = True,
    log_path: str = "",
) -> HubResponse:
    """Call a partner through a connection (a ``Connection`` or its slug). See
    ``docs/python-api.md`` for every guarantee and error."""
    connection, shared = _connection(connection)
    _check_status(connection)
    correlation_id = correlation_id or current_correlation_id() or new_correlation_id()
    body = _encode_body(json, data)
    state = _Call(
        connection,
        method,
        path,
        params,
        body,
        headers,
        idempotency_key,
        correlation_id,
        deadline,
        max_attempts,
        use_breaker,
    )
    state.prefetched = shared
    # A path that is itself a secret (an incoming-webhook URL of Slack or Teams) is logged as
    # the caller names it instead.
    state.log_path = log_path[:1000]
    if not idempotency_key:
        return state.run()
    fingerprint = idempotency.request_fingerprint(state.method, state.path, state.params, body)
    lease = (state.deadline_at - time.monotonic()) + connection.read_timeout + 30
    record, stored = idempotency.begin(
        f"connection:{connection.pk}",
        idempotency_key,
        fingerprint,
        lease_seconds=lease,
        correlation_id=correlation_id,
    )
    if stored is not None:
        return HubResponse(
            status=stored.response_status,
            headers=CaseInsensitiveDict(stored.response_headers),
            content=bytes(stored.response_body or b""),
            attempts=0,
            correlation_id=stored.correlation_id,
            duration_ms=0,
            replayed=True,
        )
    try:
        response = state.run()
    except BaseException:
        idempotency.fail(record)
        raise
    idempotency.complete(record, response.status, response.headers, response.content)
    return response
