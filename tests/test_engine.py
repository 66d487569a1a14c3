"""The outbound engine against a real scripted HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import logging
import socket
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from connectors import hub
from connectors.choices import CredentialKind
from connectors.engine.circuit import circuit_state
from connectors.models import ApiCall, IdempotencyRecord
from connectors.services.credentials import create_credential
from tests.partners import Reply, ScriptedServer

pytestmark = pytest.mark.django_db(transaction=True)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again on exit: nothing listens there


def test_503_503_201_is_retried_to_success_with_the_same_ids(api_connection, partner, secret_value):
    # given a partner that fails twice then creates
    partner.script(Reply(503), Reply(503), Reply(201, json={"id": 42}))
    # when site code POSTs with an idempotency key
    response = hub.call(
        "partner", "POST", "/contacts", json={"email": "a@example.test"}, idempotency_key="order-42"
    )
    # then it succeeds on the third attempt
    assert (response.status, response.json(), response.attempts) == (201, {"id": 42}, 3)
    assert len(partner.requests) == 3
    first = partner.requests[0]
    assert first.method == "POST" and first.path == "/v1/contacts"
    assert first.headers["X-API-Key"] == secret_value
    assert first.headers["Idempotency-Key"] == "order-42"
    assert first.body == b'{"email":"a@example.test"}'
    ids = {r.headers["X-Request-ID"] for r in partner.requests}
    assert ids == {response.correlation_id}
    rows = list(
        ApiCall.objects.order_by("attempt").values_list("attempt", "status_code", "error_kind")
    )
    assert rows == [(1, 503, "http_5xx"), (2, 503, "http_5xx"), (3, 201, "")]


def test_429_retry_after_seconds_is_honoured(api_connection, partner):
    partner.script(Reply(429, headers={"Retry-After": "1"}), Reply(200, json={"ok": 1}))
    response = hub.call("partner", "GET", "/contacts")
    assert response.status == 200 and response.attempts == 2
    gap = partner.requests[1].at - partner.requests[0].at
    assert gap >= 1.0, f"the retry came {gap:.3f}s after the 429"
    assert ApiCall.objects.filter(error_kind="rate_limited", status_code=429).count() == 1


def test_429_retry_after_http_date_is_honoured(api_connection, partner):
    when = datetime.now(UTC) + timedelta(seconds=2)
    partner.script(
        Reply(429, headers={"Retry-After": format_datetime(when, usegmt=True)}), Reply(200, json={})
    )
    hub.call("partner", "GET", "/contacts")
    gap = partner.requests[1].at - partner.requests[0].at
    assert gap >= 0.9  # the HTTP-date has one-second precision


def test_retry_after_beyond_the_budget_fails_at_once_with_retry_at(api_connection, partner):
    partner.script(Reply(503, headers={"Retry-After": "3600"}))
    started = time.monotonic()
    with pytest.raises(hub.RetryableError) as caught:
        hub.call("partner", "GET", "/contacts")
    assert time.monotonic() - started < 5  # it did not sit out the hour
    assert len(partner.requests) == 1
    expected = datetime.now(UTC) + timedelta(seconds=3600)
    assert abs((caught.value.retry_at - expected).total_seconds()) < 60
    assert caught.value.status == 503 and caught.value.attempts == 1


def test_a_slow_answer_past_the_read_timeout_is_a_timeout(api_connection, partner):
    api_connection.read_timeout = 0.3
    api_connection.retry_max_attempts = 2
    api_connection.save()
    partner.script(Reply(200, json={}, delay=1.5))
    with pytest.raises(hub.RetryableError, match="read timeout"):
        hub.call("partner", "GET", "/slow")
    assert list(ApiCall.objects.values_list("error_kind", flat=True)) == ["timeout", "timeout"]
    assert all(ms < 1500 for ms in ApiCall.objects.values_list("duration_ms", flat=True))


def test_connection_refused_is_retried_even_for_a_post_without_key(api_connection):
    api_connection.base_url = f"http://127.0.0.1:{closed_port()}"
    api_connection.save()
    with pytest.raises(hub.RetryableError) as caught:
        hub.call("partner", "POST", "/contacts", json={"a": 1})
    # never sent, so safe to repeat: every attempt was made
    assert caught.value.attempts == 4
    assert not isinstance(caught.value, hub.OutcomeUnknownError)
    assert set(ApiCall.objects.values_list("error_kind", flat=True)) == {"connection"}


def test_a_post_without_key_that_times_out_is_not_retried(api_connection, partner):
    api_connection.read_timeout = 0.3
    api_connection.save()
    partner.script(Reply(201, json={}, delay=1.0))
    with pytest.raises(hub.OutcomeUnknownError, match="idempotency key"):
        hub.call("partner", "POST", "/contacts", json={"a": 1})
    time.sleep(1.0)  # let the slow handler finish recording
    assert len(partner.requests) == 1
    assert ApiCall.objects.count() == 1


def test_a_redirect_to_another_host_is_not_followed(api_connection, partner):
    other = ScriptedServer("127.0.0.2").start()
    try:
        partner.script(Reply(302, headers={"Location": other.url + "/steal"}))
        with pytest.raises(hub.BlockedURLError, match="another host"):
            hub.call("partner", "GET", "/contacts")
        assert other.requests == []
    finally:
        other.stop()


def test_a_redirect_on_the_same_host_is_followed_for_get(api_connection, partner):
    partner.script(Reply(301, headers={"Location": "/v1/contacts/"}), Reply(200, json=[1]))
    response = hub.call("partner", "GET", "/contacts")
    assert response.json() == [1]
    assert [r.path for r in partner.requests] == ["/v1/contacts", "/v1/contacts/"]


def test_a_validation_error_is_permanent_with_the_partners_message(api_connection, partner):
    partner.script(Reply(422, json={"message": "email is invalid"}))
    with pytest.raises(hub.PermanentError) as caught:
        hub.call("partner", "POST", "/contacts", json={"email": "x"}, idempotency_key="k1")
    assert caught.value.partner_message == "email is invalid"
    assert caught.value.status == 422 and len(partner.requests) == 1


@pytest.mark.parametrize(("status", "hint"), [(401, "wrong, expired"), (403, "scope")])
def test_auth_failures_say_what_to_check(api_connection, partner, status, hint):
    partner.script(Reply(status, json={"error": "nope"}))
    with pytest.raises(hub.AuthError) as caught:
        hub.call("partner", "GET", "/me")
    assert hint in caught.value.hint and len(partner.requests) == 1


def test_a_completed_idempotency_key_replays_without_calling(api_connection, partner):
    partner.script(Reply(201, json={"id": 1}, headers={"Set-Cookie": "s=1"}))
    first = hub.call("partner", "POST", "/contacts", json={"n": 1}, idempotency_key="same")
    again = hub.call("partner", "POST", "/contacts", json={"n": 1}, idempotency_key="same")
    assert len(partner.requests) == 1
    assert again.replayed and (again.status, again.json()) == (201, {"id": 1})
    assert again.correlation_id == first.correlation_id
    assert "Set-Cookie" not in again.headers  # replays keep no cookie
    # the same key with another request is refused clearly
    with pytest.raises(hub.IdempotencyMismatchError, match="different request"):
        hub.call("partner", "POST", "/contacts", json={"n": 2}, idempotency_key="same")
    assert len(partner.requests) == 1


def test_a_key_in_flight_is_a_conflict_and_a_failed_one_may_be_retried(api_connection, partner):
    partner.script(Reply(400, json={"message": "bad"}), Reply(201, json={"id": 9}))
    with pytest.raises(hub.PermanentError):
        hub.call("partner", "POST", "/c", json={}, idempotency_key="k")
    assert IdempotencyRecord.objects.get(key="k").state == "failed"
    assert hub.call("partner", "POST", "/c", json={}, idempotency_key="k").status == 201
    # a record held by a live call
    IdempotencyRecord.objects.filter(key="k").update(
        state="in_flight", locked_until=datetime.now(UTC) + timedelta(minutes=5)
    )
    with pytest.raises(hub.IdempotencyConflictError, match="still in flight"):
        hub.call("partner", "POST", "/c", json={}, idempotency_key="k")
    # an abandoned one (its holder died) is taken over
    IdempotencyRecord.objects.filter(key="k").update(
        locked_until=datetime.now(UTC) - timedelta(seconds=1)
    )
    assert hub.call("partner", "POST", "/c", json={}, idempotency_key="k").status == 201


def test_the_correlation_id_of_the_cause_is_propagated(api_connection, partner):
    with hub.correlation_scope("evt-123"):
        hub.call("partner", "GET", "/contacts")
    assert partner.requests[0].headers["X-Request-ID"] == "evt-123"
    assert ApiCall.objects.get().correlation_id == "evt-123"


def test_quota_and_deprecation_headers_are_recorded(api_connection, partner):
    partner.script(
        Reply(
            200,
            json={},
            headers={
                "X-RateLimit-Remaining": "42",
                "X-RateLimit-Reset": "30",
                "Deprecation": "@1767225600",
                "Sunset": "Wed, 30 Jun 2027 23:59:59 GMT",
                "Link": '<https://partner.example.test/migrate>; rel="deprecation"',
            },
        )
    )
    hub.call("partner", "GET", "/contacts")
    row = ApiCall.objects.get()
    assert row.quota_remaining == 42 and row.quota_reset_at is not None
    api_connection.refresh_from_db()
    assert api_connection.deprecation_date == "@1767225600"
    assert api_connection.sunset_date == "Wed, 30 Jun 2027 23:59:59 GMT"
    assert api_connection.deprecation_link == "https://partner.example.test/migrate"
    assert api_connection.deprecation_seen_at is not None


def test_paused_and_reauth_connections_fail_before_any_request(api_connection, partner):
    api_connection.set_status("paused", "partner migration this week")
    with pytest.raises(hub.ConnectionUnavailableError, match="partner migration"):
        hub.call("partner", "GET", "/x")
    api_connection.set_status("reauth_required", "refresh token revoked")
    with pytest.raises(hub.AuthError, match="refresh token revoked") as caught:
        hub.call("partner", "GET", "/x")
    assert "Reconnect the account in the admin" in caught.value.hint
    assert partner.requests == []
    with pytest.raises(hub.ConnectionUnavailableError, match="No connection"):
        hub.call("nope", "GET", "/x")


def test_the_rate_limit_is_shared_and_fails_with_retry_at(api_connection, partner):
    api_connection.rate_limit_requests = 2
    api_connection.rate_limit_window_seconds = 60
    api_connection.save()
    hub.call("partner", "GET", "/a")
    hub.call("partner", "GET", "/b")
    with pytest.raises(hub.QuotaExceededError) as caught:
        hub.call("partner", "GET", "/c")
    assert len(partner.requests) == 2
    wait = (caught.value.retry_at - datetime.now(UTC)).total_seconds()
    assert 20 < wait <= 31  # one token per 30 s
    assert ApiCall.objects.filter(error_kind="rate_limited", status_code=None).count() == 1


def test_the_rate_limit_waits_briefly_for_a_token(api_connection, partner):
    api_connection.rate_limit_requests = 5
    api_connection.rate_limit_window_seconds = 1
    api_connection.save()
    for _ in range(7):
        hub.call("partner", "GET", "/a")
    assert len(partner.requests) == 7
    spread = partner.requests[-1].at - partner.requests[0].at
    assert spread >= 0.3  # two calls had to wait for refills (0.2 s each)


def test_the_circuit_opens_then_a_probe_closes_it(api_connection, partner):
    api_connection.circuit_failure_threshold = 2
    api_connection.circuit_cooldown_seconds = 1
    api_connection.retry_max_attempts = 1
    api_connection.save()
    partner.script(Reply(503))
    for _ in range(2):
        with pytest.raises(hub.RetryableError):
            hub.call("partner", "GET", "/x")
    with pytest.raises(hub.CircuitOpenError) as caught:
        hub.call("partner", "GET", "/x")
    assert caught.value.retry_at is not None
    assert len(partner.requests) == 2  # the open circuit made no call
    assert ApiCall.objects.filter(error_kind="circuit_open").count() == 1
    assert circuit_state(api_connection).startswith("open until")
    # after the cooldown, one probe decides
    time.sleep(1.1)
    partner.script(Reply(200, json={}))
    assert hub.call("partner", "GET", "/x").status == 200
    assert circuit_state(api_connection) == "closed"


def test_a_response_over_the_size_limit_is_refused(api_connection, partner, settings):
    settings.HUB_MAX_RESPONSE_BYTES = 1000
    partner.script(Reply(200, body=b"x" * 5000))
    with pytest.raises(hub.PermanentError, match="limit 1000"):
        hub.call("partner", "GET", "/big")
    assert ApiCall.objects.get().error_kind == "response_too_large"


def test_no_secret_in_call_rows_or_logs(api_connection, partner, secret_value, caplog):
    # given a key sent in the query string (the weakest method), plus a secret-looking param
    api_connection.auth_method = "api_key_query"
    api_connection.api_key_query_param = "hapikey"
    api_connection.save()
    partner.script(Reply(500), Reply(200, json={}))
    with caplog.at_level(logging.DEBUG):
        hub.call("partner", "GET", "/contacts?token=abc123secret", params={"page": "2"})
    # then the partner got the key, and nothing the hub wrote contains it
    assert f"hapikey={secret_value}" in partner.requests[0].path
    for row in ApiCall.objects.all():
        text = " ".join(str(value) for value in row.__dict__.values())
        assert secret_value not in text and "abc123secret" not in text
        assert "hapikey=%5Bredacted%5D" in row.path or "hapikey=[redacted]" in row.path
        assert "page=2" in row.path
    assert secret_value not in caplog.text and "abc123secret" not in caplog.text


def test_bearer_and_basic_send_the_exact_header(api_connection, partner, secret_value):
    api_connection.auth_method = "bearer"
    api_connection.save()
    create_credential(api_connection, CredentialKind.ACCESS_TOKEN, "tok-" + secret_value)
    hub.call("partner", "GET", "/me")
    assert partner.requests[-1].headers["Authorization"] == f"Bearer tok-{secret_value}"
    api_connection.auth_method = "basic"
    api_connection.basic_username = "hub-user"
    api_connection.save()
    create_credential(api_connection, CredentialKind.BASIC_PASSWORD, "pw-" + secret_value)
    hub.call("partner", "GET", "/me")
    expected = base64.b64encode(f"hub-user:pw-{secret_value}".encode()).decode()
    assert partner.requests[-1].headers["Authorization"] == f"Basic {expected}"
    assert "X-API-Key" not in partner.requests[-1].headers


def test_a_missing_credential_is_an_auth_error_naming_the_fix(api_connection, partner):
    api_connection.credentials.all().delete()
    with pytest.raises(hub.AuthError, match="no usable credential") as caught:
        hub.call("partner", "GET", "/me")
    assert "Add one in the console" in caught.value.hint
    assert partner.requests == []


def test_an_absolute_url_is_refused(api_connection, partner):
    with pytest.raises(hub.BlockedURLError, match="relative"):
        hub.call("partner", "GET", "http://127.0.0.2/evil")


def test_a_replaced_or_revoked_secret_is_used_no_more_on_the_next_call(
    api_connection, partner, secret_value
):
    # given a call that cached the connection and its secret
    hub.call("partner", "GET", "/me")
    assert partner.requests[-1].headers["X-API-Key"] == secret_value
    # when the secret is replaced (another process would see the same shared generation)
    from connectors.services.credentials import replace_secret, revoke_credential

    credential = api_connection.credentials.get()
    replace_secret(credential, "replaced-" + secret_value)
    hub.call("partner", "GET", "/me")
    # then the next call sends the new one
    assert partner.requests[-1].headers["X-API-Key"] == "replaced-" + secret_value
    # and once revoked, none at all
    revoke_credential(credential)
    with pytest.raises(hub.AuthError, match="no usable credential"):
        hub.call("partner", "GET", "/me")
    assert len(partner.requests) == 2


def test_a_paused_connection_is_seen_by_the_next_call(api_connection, partner):
    hub.call("partner", "GET", "/me")
    api_connection.set_status("paused", "maintenance")
    with pytest.raises(hub.ConnectionUnavailableError, match="maintenance"):
        hub.call("partner", "GET", "/me")
