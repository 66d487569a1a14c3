"""Integrations as code: export → apply on an empty database → the same file; errors that point
at their place with nothing written; secrets only as ${ENV_NAME} references; dry runs."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from connectors.models import AuditEntry, Connection, Credential
from flows import iac
from flows.models import Flow, Mapping, MappingRule
from webhooks.models import WebhookEndpoint

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo.yaml"


@pytest.fixture
def demo_env(monkeypatch, secret_value):
    monkeypatch.setenv("SANDBOX_CRM_API_KEY", secret_value)
    monkeypatch.setenv("SANDBOX_PAYMENTS_WEBHOOK_SECRET", "whsec_" + "QUJDRA==" * 4)
    return secret_value


def apply_text(text: str, *args) -> str:
    out = io.StringIO()
    path = Path("var") / "test-apply.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    try:
        call_command("integrations", "apply", str(path), *args, stdout=out)
    finally:
        path.unlink()
    return out.getvalue()


def export_text() -> str:
    out = io.StringIO()
    call_command("integrations", "export", stdout=out)
    return out.getvalue()


def wipe():
    from syncs.models import SyncJob

    SyncJob.objects.all().delete()
    Flow.objects.all().delete()
    Mapping.objects.all().delete()
    WebhookEndpoint.objects.all().delete()
    Connection.objects.all().delete()


@pytest.mark.django_db
def test_export_then_apply_on_an_empty_database_gives_the_same_file(demo_env, monkeypatch):
    apply_text(DEMO.read_text())
    first = export_text()
    # the export names each secret by an environment variable, never by its value
    assert demo_env not in first and "whsec_" not in first
    assert "api_key: ${HUB_SANDBOX_CRM_API_KEY}" in first
    monkeypatch.setenv("HUB_SANDBOX_CRM_API_KEY", demo_env)
    monkeypatch.setenv("HUB_SANDBOX_PAYMENTS_WEBHOOK_SIGNING_SECRET", "whsec_" + "QUJDRA==" * 4)

    wipe()
    assert Connection.objects.count() == 0
    apply_text(first)

    assert export_text() == first
    credential = Credential.objects.get(connection__slug="sandbox-crm", kind="api_key")
    assert credential.value.reveal() == demo_env


@pytest.mark.django_db
def test_apply_is_idempotent_and_prints_what_changes(demo_env):
    created = apply_text(DEMO.read_text())
    assert "+ connection sandbox-crm (created)" in created
    assert "+ flow payment-succeeded-upsert-contact (created)" in created
    again = apply_text(DEMO.read_text())
    assert "= flow payment-succeeded-upsert-contact (unchanged)" in again
    assert "= connection sandbox-crm (unchanged)" in again
    assert Credential.objects.filter(connection__slug="sandbox-crm").count() == 1

    changed = DEMO.read_text().replace("path: /contacts\n", "path: /people\n")
    changed = changed.replace("transform: title\n", "transform: upper\n", 1)
    report = apply_text(changed)
    assert "~ flow payment-succeeded-upsert-contact: path changed" in report
    assert "~ mapping payment-customer-to-contact: rules changed" in report
    assert Flow.objects.get().path == "/people"


@pytest.mark.django_db
def test_a_changed_secret_is_replaced_and_audited(demo_env, monkeypatch, secret_value):
    apply_text(DEMO.read_text())
    monkeypatch.setenv("SANDBOX_CRM_API_KEY", secret_value + "-new")
    report = apply_text(DEMO.read_text())
    assert "~ connection sandbox-crm: secret api_key changed" in report
    credential = Credential.objects.get(connection__slug="sandbox-crm", kind="api_key")
    assert credential.value.reveal() == secret_value + "-new"
    assert AuditEntry.objects.filter(action="credential_replaced").count() == 1


@pytest.mark.django_db
def test_a_dry_run_writes_nothing(demo_env):
    report = apply_text(DEMO.read_text(), "--dry-run")
    assert "+ flow payment-succeeded-upsert-contact (created)" in report
    assert "dry run: nothing was written." in report
    assert Connection.objects.count() == 0 and Credential.objects.count() == 0


def broken_demo(edit) -> str:
    document = yaml.safe_load(DEMO.read_text())
    edit(document)
    return yaml.safe_dump(document, sort_keys=False)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (
            lambda d: d["flows"][0]["action"].update(path="/contacts/{target.idd}"),
            'flows[0].action.path: unknown field "target.idd" (the mapping produces: email, '
            "first_name, last_name, phone, tags)",
        ),
        (
            lambda d: d["flows"][0]["action"].update(verb="POST"),
            'flows[0].action: unknown field "verb"',
        ),
        (
            lambda d: d["mappings"][0]["rules"][3]["args"].update(country="FR"),
            'mappings[0].rules[3].args: unknown argument "country" for transform phone_e164 '
            "(it takes: region)",
        ),
        (
            lambda d: d["mappings"][0]["rules"][0].update(transform="shout"),
            "mappings[0].rules[0].transform: Value 'shout' is not a valid choice.",
        ),
        (
            lambda d: d["connections"][0].update(base_url="not a url"),
            "connections[0].base_url: Enter a valid URL.",
        ),
        (
            lambda d: d["connections"][0]["secrets"].update(api_key="sk_live_written_in_the_file"),
            "connections[0].secrets.api_key: write secrets as ${ENV_NAME} references, never as "
            "values in the file",
        ),
        (
            lambda d: d["connections"][0]["secrets"].update(api_key="${NOT_SET_ANYWHERE}"),
            "connections[0].secrets.api_key: environment variable NOT_SET_ANYWHERE is not set",
        ),
        (
            lambda d: d["endpoints"][0].update(connection="nowhere"),
            'endpoints[0].connection: unknown connection "nowhere"',
        ),
        (
            lambda d: d["flows"][0]["trigger"].update(endpoint="nowhere"),
            'flows[0].trigger.endpoint: unknown endpoint "nowhere"',
        ),
        (
            lambda d: d["flows"][0]["condition"][0].update(op="like"),
            'flows[0].condition[0].op: unknown operator "like"',
        ),
        (lambda d: d.update(extras=[]), 'unknown section "extras"'),
        (lambda d: d["flows"].append(d["flows"][0]), 'flows[1].slug: "payment-succeeded'),
    ],
)
def test_a_bad_file_names_the_place_and_writes_nothing(demo_env, edit, error, caplog):
    with caplog.at_level(logging.INFO), pytest.raises(iac.InvalidDocument) as caught:
        iac.apply_document(iac.load(broken_demo(edit)))
    # nothing was written, and the logs do not say otherwise
    assert not [r for r in caplog.records if r.getMessage() == "credential created"]
    assert any(message.startswith(error) for message in caught.value.errors), caught.value.errors
    assert Connection.objects.count() == 0
    assert Mapping.objects.count() == 0 and MappingRule.objects.count() == 0
    assert Credential.objects.count() == 0


@pytest.mark.django_db
def test_the_command_prints_every_error_and_fails(demo_env, capsys):
    text = broken_demo(lambda d: d["flows"][0]["action"].update(path="/x/{nope}", verb="GET"))
    with pytest.raises(CommandError, match="nothing was written"):
        apply_text(text)
    err = capsys.readouterr().err
    assert 'flows[0].action: unknown field "verb"' in err


@pytest.mark.django_db
def test_a_connection_that_only_receives_webhooks_needs_no_base_url(demo_env):
    from connectors import hub

    document = yaml.safe_load(DEMO.read_text())
    receiver = dict(document["connections"][0], slug="inbound-only", name="Inbound only")
    receiver.pop("base_url")
    receiver.pop("secrets", None)
    document["connections"].append(receiver)
    iac.apply_document(iac.load(yaml.safe_dump(document, sort_keys=False)))
    assert Connection.objects.get(slug="inbound-only").base_url == ""
    with pytest.raises(hub.HubError, match="only receives webhooks"):
        hub.call("inbound-only", "GET", "/anything")


@pytest.mark.django_db
def test_yaml_is_read_safely():
    with pytest.raises(iac.InvalidDocument, match="not valid YAML"):
        iac.load("connections: [\n")
    with pytest.raises(iac.InvalidDocument, match="not valid YAML"):
        iac.load("!!python/object/apply:os.system ['echo pwned']")
    with pytest.raises(iac.InvalidDocument, match="must be a mapping"):
        iac.load("- a\n- b\n")


@pytest.mark.django_db
def test_oauth_apps_are_declared_in_the_file_with_their_secret_as_a_reference(monkeypatch):
    from connectors.models import AuditEntry, OAuthApp

    monkeypatch.setenv("HUB_OAUTH_CRM_APP_CLIENT_SECRET", "client-secret-from-env")
    text = """
version: 1
oauth_apps:
- name: CRM app
  grant_type: authorization_code
  authorization_url: https://crm.example.test/oauth/authorize
  token_url: https://127.0.0.1/oauth/token
  client_id: hub-client
  client_secret: ${HUB_OAUTH_CRM_APP_CLIENT_SECRET}
  default_scopes: [contacts.read]
connections:
- slug: crm
  name: CRM
  base_url: https://127.0.0.1/api
  auth_method: oauth2
  oauth_app: CRM app
"""
    report = apply_text(text)
    assert "+ oauth app CRM app (created)" in report
    app = OAuthApp.objects.get(name="CRM app")
    assert app.client_secret.reveal() == "client-secret-from-env"
    assert Connection.objects.get(slug="crm").oauth_app == app
    assert AuditEntry.objects.filter(detail__contains="OAuth app 'CRM app'").count() == 1
    # the export names the secret, never its value, and applies back to no change
    exported = export_text()
    assert "client-secret-from-env" not in exported
    assert "${HUB_OAUTH_CRM_APP_CLIENT_SECRET}" in exported
    assert "= oauth app CRM app (unchanged)" in apply_text(exported)
    # a value written in the file is refused, with its place
    with pytest.raises(iac.InvalidDocument) as caught:
        iac.apply_document(iac.load(text.replace("${HUB_OAUTH_CRM_APP_CLIENT_SECRET}", "s3cret")))
    assert any(
        e.startswith("oauth_apps[0].client_secret: write secrets as") for e in caught.value.errors
    )


def configured_models():
    """Each section's model with its settings and the fields the hub records itself."""
    from connectors.models.connection import CONNECTION_STATE
    from syncs.models import SYNC_JOB_STATE

    state = {"connections": CONNECTION_STATE, "syncs": SYNC_JOB_STATE}
    return [(name, s, state.get(name, [])) for name, s in iac.SECTIONS.items()]


@pytest.mark.parametrize(("name", "section", "state"), configured_models())
def test_every_field_a_person_sets_is_a_setting_of_the_console_and_of_the_file(
    name, section, state
):
    """A new model field must be classified: a setting (then the console's form and the file
    both carry it, from the model's one list) or state the hub records. The client secret is
    write-only and has its own key in the file."""
    from django.contrib import admin

    editable = {
        f.name
        for f in section.model._meta.concrete_fields
        if f.editable and not f.primary_key and f.name != "client_secret"
    }
    assert editable - set(section.settings) - set(state) == set(), "unclassified fields"
    assert set(section.settings) & set(state) == set()
    # the console's form shows every setting
    from django.contrib.auth.models import User
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = User(is_superuser=True, is_active=True)
    model_admin = admin.site.get_model_admin(section.model)
    shown = [f for _title, opts in model_admin.get_fieldsets(request) for f in opts["fields"]]
    assert set(section.settings) <= set(shown), set(section.settings) - set(shown)
    assert len(shown) == len(set(shown)), "a field shown twice"
    # the file carries every setting, each in one place
    top, groups = section.layout()
    places = [section.place(n) for n in section.fields]
    assert len(places) == len(set(places))
    for place in places:
        head, _, rest = place.partition(".")
        assert head in top and (not rest or rest in groups[head])


@pytest.mark.django_db
def test_a_setting_absent_from_the_file_takes_its_default_and_the_report_says_so(demo_env):
    """The file is the truth for what it declares: a value changed in the console and absent
    from the file goes back to its default on the next apply, and the change is printed."""
    apply_text(DEMO.read_text())
    default = Connection._meta.get_field("circuit_cooldown_seconds").get_default()
    Connection.objects.filter(slug="sandbox-payments").update(circuit_cooldown_seconds=default + 7)
    report = apply_text(DEMO.read_text())
    assert "~ connection sandbox-payments: circuit_cooldown_seconds changed" in report
    assert Connection.objects.get(slug="sandbox-payments").circuit_cooldown_seconds == default
    assert "= connection sandbox-payments (unchanged)" in apply_text(DEMO.read_text())


def test_each_section_is_declared_once_and_applied_in_dependency_order():
    names = list(iac.SECTIONS)
    assert names == ["oauth_apps", "connections", "endpoints", "mappings", "flows", "syncs"]
    for position, section in enumerate(iac.SECTIONS.values()):
        for target in section.references.values():
            assert names.index(target) < position, f"{section.name} names {target} before it"
    with pytest.raises(ValueError, match="already registered"):
        iac.SECTIONS.add("flows", iac.SECTIONS["flows"])
