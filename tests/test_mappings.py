"""Mappings (paths, rules, errors naming the rule), conditions, flow validation, and the
console's mapping preview and mapping sheet (CSV, Markdown)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.exceptions import ValidationError

from connectors.roles import ADMINS
from flows.conditions import check_condition, evaluate
from flows.mapping import RuleSpec, apply_rules, check_rule
from flows.models import Flow, Mapping, MappingRule
from flows.paths import MISSING, PathError, get_path, parse_path, set_path

PAYMENT = {
    "type": "payment.succeeded",
    "data": {
        "object": {
            "amount": 4200,
            "customer_details": {"email": " Ada@Example.test ", "phone": "06 12 34 56 78"},
            "items": [{"sku": "A1"}, {"sku": "B2"}],
            "card": {"last4": "4242"},
        }
    },
}


def rule(position, source, target, transform="copy", **kwargs):
    return RuleSpec(position=position, source=source, target=target, transform=transform, **kwargs)


def test_paths_read_dotted_keys_and_list_indexes_both_ways():
    assert get_path(PAYMENT, "data.object.customer_details.email") == " Ada@Example.test "
    assert get_path(PAYMENT, "data.object.items.1.sku") == "B2"
    assert get_path(PAYMENT, "data.object.items[0].sku") == "A1"
    assert get_path(PAYMENT, "data.object.items.5.sku") is MISSING
    assert get_path(PAYMENT, "data.object.amount.value") is MISSING
    assert parse_path("a[2].b") == ("a", 2, "b")
    with pytest.raises(PathError, match="malformed"):
        parse_path("a..b")
    with pytest.raises(PathError, match="malformed index"):
        parse_path("a[x]")


def test_set_path_builds_nested_objects_and_refuses_list_indexes():
    out: dict = {}
    set_path(out, "properties.email", "a@b")
    set_path(out, "properties.phone", "+33")
    assert out == {"properties": {"email": "a@b", "phone": "+33"}}
    with pytest.raises(PathError, match="object keys only"):
        set_path(out, "items.0", 1)


def test_only_mapped_fields_come_out():
    result = apply_rules(
        [
            rule(1, "data.object.customer_details.email", "contact.email", "lower", pii=True),
            rule(2, "data.object.amount", "deal.amount", "to_major_units"),
            rule(3, "", "source", "constant", args={"value": "shop"}),
        ],
        PAYMENT,
    )
    assert result.ok
    assert result.output == {
        "contact": {"email": "ada@example.test"},
        "deal": {"amount": "42.00"},
        "source": "shop",
    }
    assert result.pii_fields == ["contact.email"]
    assert "4242" not in json.dumps(result.output)


def test_missing_fields_use_the_default_are_skipped_or_fail_when_required():
    result = apply_rules(
        [
            rule(1, "data.object.company", "company", default="n/a"),
            rule(2, "data.object.nickname", "nickname"),
            rule(3, "data.object.customer_details.name", "name", required=True),
        ],
        PAYMENT,
    )
    assert result.output == {"company": "n/a"}
    assert result.skipped == ["nickname"]
    assert result.errors == [
        "rule 3 (data.object.customer_details.name → name): required field "
        '"data.object.customer_details.name" is missing'
    ]


def test_a_failing_transform_names_the_rule_and_the_field_and_every_error_is_reported():
    result = apply_rules(
        [
            rule(
                1,
                "data.object.customer_details.phone",
                "phone",
                "phone_e164",
                args={"region": "US"},
            ),
            rule(2, "data.object.amount", "paid", "boolean"),
        ],
        PAYMENT,
    )
    assert result.errors == [
        "rule 1 (data.object.customer_details.phone → phone): transform phone_e164 failed: "
        "not a valid phone number for region US",
        'rule 2 (data.object.amount → paid): transform boolean failed: "4200" is not a '
        "yes/no value",
    ]


def test_rule_definitions_are_checked():
    assert check_rule(rule(1, "a.b", "c")) == {}
    assert check_rule(rule(1, "a..b", "c"))["source"].startswith("malformed path")
    assert "object keys only" in check_rule(rule(1, "a", "items.0"))["target"]
    assert "unknown transform" in check_rule(rule(1, "a", "b", "shout"))["transform"]
    assert "needs the argument" in check_rule(rule(1, "a", "b", "lookup"))["args"]
    assert "a source path is needed" in check_rule(rule(1, "", "b", "lower"))["source"]


def test_conditions():
    condition = [
        {"path": "type", "op": "eq", "value": "payment.succeeded"},
        {"path": "data.object.amount", "op": "gte", "value": 1000},
        {"path": "data.object.card", "op": "exists"},
        {"path": "data.object.refunded", "op": "missing"},
        {"path": "data.object.items.0.sku", "op": "in", "value": ["A1", "A2"]},
    ]
    assert check_condition(condition) == []
    assert evaluate(condition, PAYMENT) == (True, "")
    holds, why = evaluate([{"path": "data.object.amount", "op": "lt", "value": 100}], PAYMENT)
    assert not holds and why == "data.object.amount lt 100 does not hold (present)"
    assert check_condition([{"path": "a", "op": "like", "value": 1}]) == [
        'condition[0].op: unknown operator "like" (known: eq, ne, in, not_in, gt, gte, lt, lte, '
        "contains, exists, missing)"
    ]
    assert check_condition([{"path": "a", "op": "in", "value": "x"}]) == [
        "condition[0].value: operator in needs a list"
    ]


@pytest.fixture
def contact_mapping(db):
    mapping = Mapping.objects.create(slug="to-contact", name="Payment → contact")
    MappingRule.objects.create(
        mapping=mapping,
        position=1,
        source="data.object.customer_details.email",
        target="email",
        transform="lower",
        required=True,
        pii=True,
    )
    MappingRule.objects.create(
        mapping=mapping,
        position=2,
        source="data.object.customer_details.phone",
        target="phone",
        transform="phone_e164",
        args={"region": "FR"},
        pii=True,
    )
    MappingRule.objects.create(
        mapping=mapping, position=3, source="data.object.amount", target="deal.amount"
    )
    return mapping


def test_flow_validation_points_at_unknown_fields_in_paths(contact_mapping, connection):
    flow = Flow(
        slug="f",
        name="f",
        trigger="manual",
        connection=connection,
        mapping=contact_mapping,
        path="/contacts/{idd}",
        match_key="email",
        lookup_path="/contacts?email={email}",
        update_path="/contacts/{id}",
    )
    with pytest.raises(ValidationError) as caught:
        flow.full_clean()
    assert caught.value.message_dict == {
        "path": ['unknown field "idd" (the mapping produces: deal, deal.amount, email, phone)']
    }
    flow.path, flow.match_key = "/contacts", "mail"
    with pytest.raises(ValidationError, match='unknown field "mail": not a mapped target'):
        flow.full_clean()


def test_flow_validation_needs_what_each_trigger_and_upsert_needs(contact_mapping, connection):
    flow = Flow(
        slug="g",
        name="g",
        trigger="schedule",
        cron="every night",
        connection=connection,
        mapping=contact_mapping,
        path="/contacts",
        match_key="email",
        condition=[{"path": "a", "op": "eq"}],
    )
    with pytest.raises(ValidationError) as caught:
        flow.full_clean()
    errors = caught.value.message_dict
    assert errors["cron"] == ['"every night" is not a cron expression (e.g. "0 2 * * *").']
    assert errors["lookup_path"] and errors["update_path"]
    assert errors["condition"] == ["condition[0].value: operator eq needs a value"]


def test_a_schedule_flow_gets_a_cron_schedule_that_follows_it(contact_mapping, connection):
    from django_q.models import Schedule

    flow = Flow.objects.create(
        slug="nightly",
        name="n",
        trigger="schedule",
        cron="0 2 * * *",
        connection=connection,
        mapping=contact_mapping,
        path="/contacts",
    )
    schedule = Schedule.objects.get(name="flow:nightly")
    assert (schedule.schedule_type, schedule.cron, schedule.func) == (
        Schedule.CRON,
        "0 2 * * *",
        "flows.services.dispatch.run_scheduled",
    )
    flow.enabled = False
    flow.save()
    assert not Schedule.objects.filter(name="flow:nightly").exists()


def test_the_preview_shows_output_errors_and_pii_for_a_pasted_payload(
    contact_mapping, integration_admin_client
):
    url = f"/admin/flows/mapping/{contact_mapping.pk}/preview/"
    page = integration_admin_client.post(url, {"payload": json.dumps(PAYMENT)})
    text = page.content.decode()
    assert page.status_code == 200
    assert "ada@example.test" in text and "+33612345678" in text
    assert "PII fields that would leave the hub" in text and "phone" in text
    missing = integration_admin_client.post(url, {"payload": json.dumps({"data": {}})})
    assert "required field &quot;data.object.customer_details.email&quot; is missing" in (
        missing.content.decode()
    )
    broken = integration_admin_client.post(url, {"payload": "{not json"})
    assert broken.status_code == 200 and "not valid JSON" in broken.content.decode()


def test_the_preview_can_use_a_recent_event(
    contact_mapping, integration_admin_client, make_endpoint
):
    from webhooks.models import WebhookEvent

    endpoint = make_endpoint("github", "s" * 20, slug="pay")
    event = WebhookEvent.objects.create(
        endpoint=endpoint, event_id="e1", event_type="payment", body=json.dumps(PAYMENT).encode()
    )
    url = f"/admin/flows/mapping/{contact_mapping.pk}/preview/"
    page = integration_admin_client.post(url, {"event": event.pk})
    assert "ada@example.test" in page.content.decode()


def test_the_mapping_sheet_exports_as_csv_and_markdown(contact_mapping, auditor_client):
    csv_page = auditor_client.get(f"/admin/flows/mapping/{contact_mapping.pk}/sheet.csv")
    assert csv_page["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(csv_page.content.decode())))
    assert rows[0] == ["source", "target", "transform", "required", "PII"]
    assert rows[1] == ["data.object.customer_details.email", "email", "lower", "yes", "yes"]
    assert rows[2] == [
        "data.object.customer_details.phone",
        "phone",
        'phone_e164 {"region": "FR"}',
        "no",
        "yes",
    ]
    md = auditor_client.get(f"/admin/flows/mapping/{contact_mapping.pk}/sheet.md").content.decode()
    assert "| source | target | transform | required | PII |" in md
    assert "| data.object.amount | deal.amount | copy | no | no |" in md


def test_auditors_read_mappings_but_cannot_change_them(contact_mapping, auditor_client):
    assert (
        auditor_client.get(f"/admin/flows/mapping/{contact_mapping.pk}/change/").status_code == 200
    )
    response = auditor_client.post(
        f"/admin/flows/mapping/{contact_mapping.pk}/change/", {"slug": "x", "name": "x"}
    )
    assert response.status_code == 403


def test_integration_admins_manage_flows(role_client, contact_mapping):
    client = role_client(ADMINS)
    assert client.get("/admin/flows/flow/add/").status_code == 200
    assert client.get("/admin/flows/mapping/add/").status_code == 200
