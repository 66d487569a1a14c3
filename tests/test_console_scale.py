"""The console's lists stay fast when tables hold millions of rows: a fixed number of queries
whatever the page size, no raw bodies loaded, a bounded count (an estimate beyond), exact
indexed search, and filters that never read the whole table. The timings themselves are in
``make bench`` (scale), never here."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.db import connection as db
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from connectors.choices import CredentialKind
from connectors.models import ApiCall, Connection, OAuthApp
from connectors.services.credentials import create_credential, record_audit
from flows.models import Flow, FlowCancellation, FlowRun, Mapping, MappingRule
from syncs.models import MirrorRecord, SyncJob, SyncRun
from webhooks.models import EventAttempt, WebhookEndpoint, WebhookEvent

pytestmark = pytest.mark.django_db


def populate(start: int, count: int) -> None:
    """``count`` of everything the console lists, numbered from ``start``."""
    for i in range(start, start + count):
        conn = Connection.objects.create(
            slug=f"c{i}", name=f"C {i}", base_url="https://127.0.0.1/api", owner="o@example.test"
        )
        create_credential(conn, CredentialKind.API_KEY, f"key-{i}-" + "x" * 20)
        create_credential(conn, CredentialKind.WEBHOOK_SIGNING_SECRET, f"whsec-{i}-" + "y" * 20)
        OAuthApp.objects.create(
            name=f"app {i}",
            authorization_url="https://127.0.0.1/authorize",
            token_url="https://127.0.0.1/token",
            client_id=f"client-{i}",
        )
        endpoint = WebhookEndpoint.objects.create(connection=conn, slug=f"e{i}")
        mapping = Mapping.objects.create(slug=f"m{i}", name=f"M {i}")
        MappingRule.objects.create(mapping=mapping, position=1, source="email", target="email")
        MappingRule.objects.create(
            mapping=mapping, position=2, source="name", target="name", pii=True
        )
        flow = Flow.objects.create(
            slug=f"f{i}",
            name=f"F {i}",
            trigger="webhook",
            endpoint=endpoint,
            connection=conn,
            mapping=mapping,
            method="POST",
            path="/contacts",
        )
        job = SyncJob.objects.create(
            slug=f"j{i}",
            name=f"J {i}",
            cron="0 * * * *",
            source_connection=conn,
            source_path="/contacts",
            mapping=mapping,
            object_type="contact",
        )
        event = WebhookEvent.objects.create(
            endpoint=endpoint,
            event_id=f"evt{i}",
            event_type="payment.succeeded",
            body=b'{"big": "' + b"0" * 5000 + b'"}',
            status="processed",
            correlation_id=f"corr{i}",
        )
        EventAttempt.objects.create(event=event, number=1, outcome="processed")
        ApiCall.objects.create(
            connection=conn,
            method="POST",
            path="/contacts",
            status_code=200,
            correlation_id=f"corr{i}",
        )
        FlowRun.objects.create(
            flow=flow, trigger="webhook", event=event, status="succeeded", correlation_id=f"corr{i}"
        )
        FlowCancellation.objects.create(flow=flow, key=f"bk_{i}", cancelled_by=f"event e{i}")
        SyncRun.objects.create(job=job, status="succeeded", finished_at=timezone.now())
        MirrorRecord.objects.create(
            connection=conn, object_type="contact", external_id=str(i), data={"email": "x"}
        )
        record_audit("credential_created", detail=f"test {i}")


def superuser_request(django_user_model):
    request = RequestFactory().get("/admin/")
    request.user = django_user_model.objects.create_superuser("root", "", "x")
    return request


def list_pages(request) -> list[str]:
    return [
        model["admin_url"] for app in admin.site.get_app_list(request) for model in app["models"]
    ]


def query_counts(client, urls) -> dict[str, tuple[int, int]]:
    out = {}
    for url in urls:
        with CaptureQueriesContext(db) as queries:
            response = client.get(url)
        assert response.status_code == 200, url
        out[url] = (len(queries), len(response.context["cl"].result_list))
    return out


def test_every_list_page_makes_the_same_queries_for_1_and_50_rows(client, django_user_model):
    request = superuser_request(django_user_model)
    client.force_login(request.user)
    urls = list_pages(request)
    assert "/admin/webhooks/webhookevent/" in urls and "/admin/connectors/apicall/" in urls
    populate(0, 1)
    one = query_counts(client, urls)
    populate(1, 49)
    fifty = query_counts(client, urls)
    grew = {url: (one[url][0], fifty[url][0]) for url in urls if fifty[url][0] != one[url][0]}
    assert grew == {}, "queries per row (1 row, 50 rows)"
    # the lists did show the rows (not an empty page twice)
    assert fifty["/admin/webhooks/webhookevent/"][1] == 50
    assert fifty["/admin/flows/mapping/"][1] == 50


def test_the_events_list_loads_no_body_and_searches_identifiers_exactly(admin_client):
    populate(0, 12)
    response = admin_client.get("/admin/webhooks/webhookevent/")
    rows = response.context["cl"].result_list
    assert {"body", "headers"} <= rows[0].get_deferred_fields()
    # an identifier is matched exactly (evt1 is not evt10 or evt11), by event or correlation id
    found = admin_client.get("/admin/webhooks/webhookevent/?q=evt1").context["cl"].result_list
    assert [e.event_id for e in found] == ["evt1"]
    found = admin_client.get("/admin/webhooks/webhookevent/?q=corr11").context["cl"].result_list
    assert [e.event_id for e in found] == ["evt11"]
    calls = admin_client.get("/admin/connectors/apicall/?q=corr1").context["cl"].result_list
    assert [c.correlation_id for c in calls] == ["corr1"]
    # the event's page still shows its body, in full
    event = WebhookEvent.objects.get(event_id="evt1")
    page = admin_client.get(f"/admin/webhooks/webhookevent/{event.pk}/change/").content.decode()
    assert "0" * 5000 in page


def typed_events(start: int, count: int) -> None:
    populate(start, count)
    for i in range(start, start + count):
        WebhookEvent.objects.filter(event_id=f"evt{i}").update(event_type=f"type.{i % 3}")


def test_the_event_type_filter_lists_each_type_once_without_reading_the_table(admin_client):
    typed_events(0, 7)
    WebhookEvent.objects.filter(event_id="evt6").update(event_type="")
    with CaptureQueriesContext(db) as few:
        response = admin_client.get("/admin/webhooks/webhookevent/")
    spec = next(f for f in response.context["cl"].filter_specs if f.title == "event type")
    assert [value for value, _label in spec.lookup_choices] == ["", "type.0", "type.1", "type.2"]
    filtered = admin_client.get("/admin/webhooks/webhookevent/?event_type=type.1")
    assert {e.event_id for e in filtered.context["cl"].result_list} == {"evt1", "evt4"}
    # its cost is one index step per type, whatever the number of events
    typed_events(7, 30)
    with CaptureQueriesContext(db) as many:
        admin_client.get("/admin/webhooks/webhookevent/")
    assert len(many) == len(few)


def test_a_long_list_counts_a_bounded_number_of_rows_and_says_so(admin_client, monkeypatch):
    from connectors.admin import scale

    monkeypatch.setattr(scale, "CAP", 5)
    typed_events(0, 8)
    response = admin_client.get("/admin/webhooks/webhookevent/")
    paginator = response.context["cl"].paginator
    assert paginator.capped and paginator.count == 5
    text = response.content.decode()
    if db.vendor == "postgresql":
        with db.cursor() as cursor:
            cursor.execute("ANALYZE webhooks_webhookevent")
        text = admin_client.get("/admin/webhooks/webhookevent/").content.decode()
        assert "About 8 webhook events" in text
    else:
        assert "More than 5 webhook events" in text
    assert "the first 5 are listed" in text
    # a filtered list is counted the same bounded way, and a short one exactly
    short = admin_client.get("/admin/webhooks/webhookevent/?event_type=type.2")
    assert short.context["cl"].result_count == 2 and not short.context["cl"].paginator.capped
