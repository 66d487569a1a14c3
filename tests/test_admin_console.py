"""The operator console: secrets are write-only, and each role sees what it may and no more."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from connectors.choices import AuditAction, CredentialKind
from connectors.models import AuditEntry, Credential
from connectors.services.credentials import create_credential

pytestmark = pytest.mark.django_db


def credential_pages(credential) -> list[str]:
    pk = credential.pk
    return [
        reverse("admin:connectors_credential_changelist"),
        reverse("admin:connectors_credential_add"),
        reverse("admin:connectors_credential_change", args=[pk]),
        reverse("admin:connectors_credential_history", args=[pk]),
        reverse("admin:connectors_credential_delete", args=[pk]),
    ]


def readable_pages(credential) -> list[str]:
    return [
        reverse("admin:index"),
        reverse("admin:connectors_connection_changelist"),
        reverse("admin:connectors_connection_change", args=[credential.connection.pk]),
        reverse("admin:connectors_connection_history", args=[credential.connection.pk]),
    ]


def test_integration_admin_adds_a_credential_and_never_sees_it_again(
    integration_admin_client, connection, secret_value
):
    # when an integration admin stores a secret through the add form
    response = integration_admin_client.post(
        reverse("admin:connectors_credential_add"),
        {
            "connection": connection.pk,
            "kind": CredentialKind.API_KEY,
            "label": "prod key",
            "secret": secret_value,
            "expires_at_0": "",
            "expires_at_1": "",
            "rotate_by_0": "",
            "rotate_by_1": "",
        },
        follow=True,
    )
    # then it is stored encrypted, audited, and no page shows it
    assert response.status_code == 200
    credential = Credential.objects.get()
    assert credential.value.reveal() == secret_value
    assert AuditEntry.objects.filter(
        action=AuditAction.CREDENTIAL_CREATED,
        credential=credential,
        actor_name="integration_admins",
    ).exists()
    pages = [
        *credential_pages(credential),
        *readable_pages(credential),
        reverse("admin:connectors_auditentry_changelist"),
    ]
    for url in pages:
        page = integration_admin_client.get(url)
        assert page.status_code == 200, url
        assert secret_value not in page.content.decode(), url
    assert secret_value not in response.content.decode()
    # the change page offers an empty "replace secret" box and the fingerprint
    change = integration_admin_client.get(
        reverse("admin:connectors_credential_change", args=[credential.pk])
    ).content.decode()
    assert "Replace secret" in change and credential.fingerprint in change
    assert 'type="password"' in change


def test_replacing_a_secret_keeps_the_row_and_audits_it(
    integration_admin_client, credential, secret_value
):
    new_secret = "replacement-" + "k" * 30
    url = reverse("admin:connectors_credential_change", args=[credential.pk])
    response = integration_admin_client.post(
        url,
        {
            "label": "rotated",
            "secret": new_secret,
            "expires_at_0": "",
            "expires_at_1": "",
            "rotate_by_0": "",
            "rotate_by_1": "",
        },
        follow=True,
    )
    assert response.status_code == 200
    credential.refresh_from_db()
    assert credential.value.reveal() == new_secret and credential.label == "rotated"
    assert AuditEntry.objects.filter(action=AuditAction.CREDENTIAL_REPLACED).count() == 1
    history = integration_admin_client.get(
        reverse("admin:connectors_credential_history", args=[credential.pk])
    ).content.decode()
    assert new_secret not in history and secret_value not in history
    # an empty box keeps the secret
    integration_admin_client.post(
        url,
        {
            "label": "relabelled",
            "secret": "",
            "expires_at_0": "",
            "expires_at_1": "",
            "rotate_by_0": "",
            "rotate_by_1": "",
        },
    )
    credential.refresh_from_db()
    assert credential.value.reveal() == new_secret and credential.label == "relabelled"


def test_a_bad_secret_is_refused_and_not_echoed(integration_admin_client, connection):
    bad = " pasted-with-spaces-" + "m" * 20 + "\n"
    response = integration_admin_client.post(
        reverse("admin:connectors_credential_add"),
        {
            "connection": connection.pk,
            "kind": CredentialKind.API_KEY,
            "secret": bad,
            "expires_at_0": "",
            "expires_at_1": "",
            "rotate_by_0": "",
            "rotate_by_1": "",
        },
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "white space" in html
    assert bad.strip() not in html
    assert not Credential.objects.exists()


@pytest.mark.parametrize("role_fixture", ["operator_client", "auditor_client"])
def test_operators_and_auditors_get_403_on_every_credential_page(
    request, role_fixture, credential, secret_value
):
    client: Client = request.getfixturevalue(role_fixture)
    for url in credential_pages(credential):
        assert client.get(url).status_code == 403, url
    # and cannot write one either
    response = client.post(
        reverse("admin:connectors_credential_add"),
        {"connection": credential.connection.pk, "kind": "api_key", "secret": "x" * 30},
    )
    assert response.status_code == 403
    assert Credential.objects.count() == 1


@pytest.mark.parametrize("role_fixture", ["operator_client", "auditor_client"])
def test_no_page_an_operator_or_auditor_opens_contains_a_secret(
    request, role_fixture, credential, secret_value
):
    client: Client = request.getfixturevalue(role_fixture)
    for url in readable_pages(credential):
        page = client.get(url)
        assert page.status_code == 200, url
        html = page.content.decode()
        assert secret_value not in html, url
        # the credential inline is not shown to roles without credential access
        assert credential.fingerprint not in html, url


def test_operators_cannot_change_connections_and_auditors_read_the_audit_trail(
    operator_client, auditor_client, credential
):
    url = reverse("admin:connectors_connection_change", args=[credential.connection.pk])
    response = operator_client.post(url, {"name": "hijacked"})
    assert response.status_code == 403
    assert auditor_client.post(url, {"name": "hijacked"}).status_code == 403
    credential.connection.refresh_from_db()
    assert credential.connection.name == "Sandbox CRM"
    audit = reverse("admin:connectors_auditentry_changelist")
    assert auditor_client.get(audit).status_code == 200
    assert operator_client.get(audit).status_code == 403


def test_an_unreadable_credential_does_not_break_the_pages(
    integration_admin_client, credential, settings
):
    settings.FERNET_KEYS = [Fernet.generate_key().decode()]
    for url in [*credential_pages(credential), *readable_pages(credential)]:
        page = integration_admin_client.get(url)
        assert page.status_code == 200, url
    change = integration_admin_client.get(
        reverse("admin:connectors_credential_change", args=[credential.pk])
    )
    assert "unreadable: encryption key missing" in change.content.decode()
    connection_page = integration_admin_client.get(
        reverse("admin:connectors_connection_change", args=[credential.connection_id])
    )
    assert "Unreadable: its encryption key is missing" in connection_page.content.decode()


def test_the_connection_page_shows_its_credentials_first_with_their_state(
    integration_admin_client, operator_client, connection, credential
):
    """Under the name, before the settings: each secret and whether the hub can use it. An
    operator sees the states too (an expired key explains the failures), never a link to a
    credential; an admin gets the table with the fingerprints."""
    expired = create_credential(
        connection, CredentialKind.WEBHOOK_SIGNING_SECRET, "whsec-expired-0123456789", label="old"
    )
    expired.expires_at = timezone.now() - timedelta(days=2)
    expired.save(update_fields=["expires_at"])
    url = reverse("admin:connectors_connection_change", args=[connection.pk])
    page = integration_admin_client.get(url).content.decode()
    credentials_at = page.index(">Credentials<")
    assert credentials_at < page.index(">Status<") < page.index(">Reliability<")
    # the table of fingerprints sits right after the credentials' fieldset, before Status
    assert credentials_at < page.index(credential.fingerprint) < page.index(">Status<")
    assert re.search(r'hub-error"[^>]*>[^<]*Expired ' + f"{expired.expires_at:%Y-%m-%d}", page)
    assert re.search(r'hub-ok"[^>]*>[^<]*Active', page)
    assert "Add a credential" in page

    seen = operator_client.get(url).content.decode()
    assert re.search(r'hub-error"[^>]*>[^<]*Expired', seen)
    assert credential.fingerprint not in seen
    assert "/connectors/credential/" not in seen and "Add a credential" not in seen


def test_a_connection_without_credentials_says_whether_it_needs_one(admin_client, connection):
    url = reverse("admin:connectors_connection_change", args=[connection.pk])
    assert "None yet: calls cannot authenticate" in admin_client.get(url).content.decode()
    connection.auth_method = "none"
    connection.save(update_fields=["auth_method"])
    assert "None needed" in admin_client.get(url).content.decode()


def test_revoke_action_asks_first_then_revokes_and_audits(integration_admin_client, credential):
    action = {"action": "revoke_selected", "_selected_action": [credential.pk]}
    url = reverse("admin:connectors_credential_changelist")
    # one click only asks: nothing is revoked yet
    page = integration_admin_client.post(url, action)
    assert page.status_code == 200
    assert "cannot be restored" in page.content.decode()
    assert credential.fingerprint in page.content.decode()
    credential.refresh_from_db()
    assert credential.state != "revoked"
    response = integration_admin_client.post(url, {**action, "confirmed": "yes"}, follow=True)
    assert response.status_code == 200
    credential.refresh_from_db()
    assert credential.state == "revoked"
    assert AuditEntry.objects.filter(action=AuditAction.CREDENTIAL_REVOKED).exists()


def test_the_debug_error_page_does_not_show_a_posted_secret(
    integration_admin_client, credential, secret_value, settings, monkeypatch
):
    # given a failure deep inside the replacement (the audit write), with DEBUG error pages on
    import connectors.services.credentials as credential_services

    def explode(action, **kwargs):
        raise RuntimeError("storage failed")

    monkeypatch.setattr(credential_services, "record_audit", explode)
    settings.DEBUG = True
    integration_admin_client.raise_request_exception = False
    new_secret = "never-on-an-error-page-" + "e" * 20
    response = integration_admin_client.post(
        reverse("admin:connectors_credential_change", args=[credential.pk]),
        {
            "label": "x",
            "secret": new_secret,
            "expires_at_0": "",
            "expires_at_1": "",
            "rotate_by_0": "",
            "rotate_by_1": "",
        },
        HTTP_ACCEPT="text/html",
    )
    # then the technical 500 page is shown, without the secret
    assert response.status_code == 500
    html = response.content.decode()
    assert "storage failed" in html
    assert new_secret not in html
    assert secret_value not in html
    assert all(key not in html for key in settings.FERNET_KEYS)
    assert settings.SECRET_KEY not in html
    # and the failed replacement was rolled back
    credential.refresh_from_db()
    assert credential.value.reveal() == secret_value


@pytest.mark.django_db
def test_the_home_page_puts_the_hubs_sections_first_and_internals_under_system(admin_client):
    apps = admin_client.get("/admin/").context["app_list"]
    names = [app["name"] for app in apps]
    assert names[:2] == ["Connections", "Webhooks"] and names[-1] == "System"
    assert not {"Python Social Auth", "Task queue", "Authentication and Authorization"} & set(names)
    system = [model["name"] for model in apps[-1]["models"]]
    assert {"Nonces (Python Social Auth)", "Scheduled tasks (Task queue)"} <= set(system)
    assert "Users (Authentication and Authorization)" in system


@pytest.mark.django_db
def test_statuses_have_one_look_with_words_and_http_classes_are_coloured(operator_client):
    from connectors.admin.status import TONES, status
    from connectors.models import ApiCall, Connection

    crm = Connection.objects.create(name="CRM", slug="crm", base_url="https://crm.example.test")
    for code in (200, 404, 503):
        ApiCall.objects.create(connection=crm, method="GET", path=f"/x{code}", status_code=code)
    html = operator_client.get("/admin/connectors/apicall/").content.decode()
    assert '<strong class="hub-status hub-error">503</strong>' in html
    assert '<strong class="hub-status hub-warning">404</strong>' in html
    assert '<strong class="hub-status hub-ok">200</strong>' in html
    # every tone has its symbol in the one stylesheet, so colour is never the only signal
    from django.contrib.staticfiles import finders

    css = Path(finders.find("hub/status.css")).read_text()
    tones = {tone for kind in TONES.values() for tone in kind.values()}
    for tone in tones:
        assert f".hub-status.hub-{tone}::before" in css and f"--hub-{tone}:" in css
    assert status("event", "unhandled", "No handler") == (
        '<strong class="hub-status hub-warning">No handler</strong>'
    )


def test_scopes_are_typed_as_a_list_and_a_wrong_one_is_named():
    from django.core.exceptions import ValidationError

    from connectors.admin.fields import ScopesField

    field = ScopesField()
    assert field.clean("contacts.read, contacts.write\ncontacts.read  crm.objects.read") == [
        "contacts.read",
        "contacts.write",
        "crm.objects.read",
    ]
    assert field.clean("") == []
    assert field.clean('["contacts.read", "contacts.write"]') == ["contacts.read", "contacts.write"]
    assert field.prepare_value(["a.read", "b.write"]) == "a.read\nb.write"
    with pytest.raises(ValidationError) as caught:
        field.clean('contacts.read "contacts.write"')
    assert caught.value.messages[0].startswith('""contacts.write"" is not a scope')


@pytest.mark.django_db
def test_the_console_edits_scopes_as_lists(rf, admin_user):
    from django.contrib import admin

    from connectors.admin.fields import ScopesField
    from connectors.models import Connection, OAuthApp
    from flows.models import Flow

    request = rf.get("/")
    request.user = admin_user
    for model, names in [
        (Connection, ["requested_scopes", "granted_scopes"]),
        (Flow, ["required_scopes"]),
        (OAuthApp, ["default_scopes"]),
    ]:
        form = admin.site.get_model_admin(model).get_form(request)
        for name in names:
            assert isinstance(form.base_fields[name], ScopesField), (model, name)


@pytest.mark.django_db
def test_a_person_chooses_french_and_dates_show_their_time_zone(operator_client, settings):
    from connectors.models import ApiCall, Connection

    crm = Connection.objects.create(name="CRM", slug="crm", base_url="https://crm.example.test")
    ApiCall.objects.create(connection=crm, method="GET", path="/x", status_code=200)
    english = operator_client.get("/admin/connectors/apicall/").content.decode()
    assert '<html lang="en' in english and re.search(
        r"[A-Z][a-z]{2}\.? \d+, \d{4}, \d\d:\d\d UTC<", english
    )
    # the header's selector posts to Django's set_language; the choice sticks for this person
    answer = operator_client.post("/i18n/setlang/", {"language": "fr", "next": "/admin/"})
    assert answer.status_code == 302
    french = operator_client.get("/admin/connectors/apicall/").content.decode()
    assert '<html lang="fr"' in french and "Déconnexion" in french
    assert re.search(r"\d+ \w+ \d{4}, \d\d:\d\d UTC", french)  # French date, zone shown


def test_the_french_catalogue_is_complete_and_compiled():
    """Every string marked for translation has its French (no empty or fuzzy entry), and the
    compiled catalogue in the repository says the same (make run needs no gettext tools)."""
    import gettext

    folder = Path(__file__).resolve().parent.parent / "integrations_site/locale/fr/LC_MESSAGES"
    po = (folder / "django.po").read_text()
    entries = re.findall(r'\nmsgid ((?:".*"\n)+)msgstr ((?:".*"\n?)+)', po)
    assert len(entries) > 50
    compiled = gettext.GNUTranslations((folder / "django.mo").open("rb"))
    for msgid, msgstr in entries:
        quoted = "".join(re.findall(r'"(.*)"', msgid))  # its escapes (\", \n) undone
        source = quoted.encode("latin-1", "backslashreplace").decode("unicode_escape")
        french = "".join(re.findall(r'"(.*)"', msgstr))
        assert french, f"no French for {source!r}"
        # the same placeholders, or msgfmt refuses the catalogue (or the text shows a raw {x})
        placeholders = re.compile(r"%\(\w+\)\w|\{\w+\}")
        assert sorted(placeholders.findall(french)) == sorted(placeholders.findall(source)), source
        assert compiled.gettext(source) != source or source == french, source
    assert "#, fuzzy" not in po
    # plural entries too: no empty translation anywhere (the header's continues on its next line)
    assert not re.search(r'msgstr(\[\d\])? ""\n(?!")', po)
    assert compiled.ngettext("%(n)s row holds this person", "%(n)s rows hold this person", 2) == (
        "%(n)s lignes contiennent cette personne"
    )


@pytest.mark.django_db
def test_the_home_page_and_a_refusal_read_in_french(operator_client):
    operator_client.post("/i18n/setlang/", {"language": "fr", "next": "/admin/"})
    home = operator_client.get("/admin/").content.decode()
    assert "Incidents ouverts" in home and "Événements, dernières 24 h" in home
    refused = operator_client.get("/admin/connectors/credential/").content.decode()
    assert "Votre compte <strong>operators</strong> fait partie de : Operators" in refused
    assert "Retour à la console" in refused


@pytest.mark.django_db
def test_a_connection_page_its_messages_and_a_command_read_in_french(
    integration_admin_client, connection, credential, settings
):
    """The hub's own words, not only Django's: field names, help texts, fieldsets, the
    credentials' states, an action's message and validation errors; a command speaks the
    hub's LANGUAGE_CODE, and so does a notification, whoever sends it."""
    from monitoring.messages import test_message
    from monitoring.models import Channel

    client = integration_admin_client
    client.post("/i18n/setlang/", {"language": "fr", "next": "/admin/"})
    url = reverse("admin:connectors_connection_change", args=[connection.pk])
    page = client.get(url).content.decode()
    for french in (
        "Identifiants",
        "Fiabilité",
        "Tester la connexion",
        "Racine de l\u2019API du partenaire",  # a help text
        "Cl\u00e9 d\u2019API dans un en-t\u00eate",  # a choice
        "Ajouter un identifiant",  # a panel of the page
    ):
        assert french in page, french
    assert "Reliability" not in page and "Root of the partner's API" not in page
    # a validation error names the problem in French
    form = client.post(
        reverse("admin:connectors_connection_add"),
        {
            "name": "x",
            "slug": "x",
            "service_kind": "crm",
            "environment": "production",
            "base_url": "http://partner.example",
            "auth_method": "none",
        },
    ).content.decode()
    assert "Une connexion de production doit utiliser https" in form

    settings.LANGUAGE_CODE = "fr"
    out = io.StringIO()
    call_command("webhooks", "retry", "--dry-run", stdout=out)
    assert out.getvalue().strip() == "0 événement(s) seraient relancés."
    channel = Channel.objects.create(slug="ops", name="Ops", kind="email", recipients="a@x.test")
    with translation.override("en"):  # a person reading in English clicks Send test
        message = test_message(channel)
    assert message.subject == "[Test] Le hub d\u2019int\u00e9grations peut joindre le canal Ops"


@pytest.mark.django_db
def test_a_long_value_in_a_list_is_cut_with_the_whole_of_it_on_hover(
    operator_client, make_endpoint
):
    from django.utils.html import escape

    from webhooks.models import WebhookEvent

    endpoint = make_endpoint("github", "s", slug="shop")
    error = "the partner refused the contact: " + "field 'notes' is too long; " * 12
    WebhookEvent.objects.create(
        endpoint=endpoint, event_id="e1", body=b"{}", status="failed", last_error=error
    )
    page = operator_client.get(reverse("admin:webhooks_webhookevent_changelist")).content.decode()
    cut = escape(error[:80].rstrip())
    assert f'title="{escape(error)}" aria-label="{escape(error)}">{cut}…</span>' in page
    assert page.count(escape(error)) == 2  # in its title and label only, not spelt out in the row
