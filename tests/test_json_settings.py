"""The console's JSON settings: each has a known shape, a wrong key is named (with the nearest
right one), and its empty box shows an example."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.html import escape

from connectors.models import OAuthApp
from connectors.shapes import check_object
from syncs.models import SyncJob
from webhooks.models import WebhookEndpoint


def errors_of(instance) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        instance.full_clean()
    return caught.value.message_dict


def test_a_wrong_key_is_named_with_the_nearest_right_one():
    rules = {"header": str, "algorithm": ("sha256", "sha512"), "first_page": int}
    assert check_object({"header": "X-Sig"}, rules, example="{}") == []
    problems = check_object(
        {"heder": "X-Sig", "algorithm": "md5", "first_page": "2"}, rules, example="{}"
    )
    assert problems == [
        'unknown key "heder" (did you mean "header"?); known: header, algorithm, first_page',
        '"algorithm": "md5" is not one of "sha256", "sha512"',
        '"first_page" is a whole number, not "2"',
    ]
    assert check_object(["header"], rules, example='{"header": "X"}') == [
        'a JSON object is expected, e.g. {"header": "X"}'
    ]


@pytest.mark.django_db
def test_each_json_setting_names_its_wrong_key(make_endpoint, connection):
    endpoint = make_endpoint("hmac", "s", scheme_options={"header": "X-Sig"})
    endpoint.scheme_options = {"heder": "X-Sig", "signed": "timestamp.body"}
    message = errors_of(endpoint)["scheme_options"][0]
    assert message.startswith('"header" is missing')
    assert 'unknown key "heder" (did you mean "header"?)' in message
    assert '"signed": "timestamp.body" needs "timestamp_header"' in message

    job = SyncJob(
        slug="contacts",
        name="contacts",
        source_connection=connection,
        source_path="/contacts",
        pagination="page_number",
        pagination_options={"page_parm": "p", "first_page": "1"},
        cursor={"at": "yesterday", "idz": []},
        target_kind="python",
        target_python="nowhere",
    )
    errors = errors_of(job)
    assert 'unknown key "page_parm" (did you mean "page_param"?)' in errors["pagination_options"][0]
    assert '"first_page" is a whole number, not "1"' in errors["pagination_options"][0]
    assert 'unknown key "idz" (did you mean "ids"?)' in errors["cursor"][0]
    job.cursor = {"at": "yesterday"}
    assert '"at": "yesterday" is not an ISO time' in errors_of(job)["cursor"][0]

    app = OAuthApp(
        name="crm",
        token_url="https://127.0.0.1/token",
        extra_authorize_params={"state": "mine", "access_type": True, "prompt": "consent"},
    )
    message = errors_of(app)["extra_authorize_params"][0]
    assert '"state" is set by the hub itself' in message
    assert '"access_type" is text, not true' in message and "prompt" not in message


@pytest.mark.parametrize(
    ("model", "field", "example"),
    [
        (WebhookEndpoint, "scheme_options", '{"header": "X-Signature"'),
        (SyncJob, "pagination_options", '{"cursor_param": "cursor"'),
        (SyncJob, "cursor", '{"at": "2026-12-01T02:00:00+00:00"'),
        (OAuthApp, "extra_authorize_params", '{"access_type": "offline"'),
    ],
)
def test_an_empty_json_box_shows_an_example(rf, admin_user, model, field, example):
    request = rf.get("/")
    request.user = admin_user
    form = admin.site.get_model_admin(model).get_form(request)()
    assert form.fields[field].widget.attrs["placeholder"].startswith(example)
    assert f'placeholder="{escape(example)}' in str(form[field])
