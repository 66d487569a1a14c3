"""Staff roles, and the commands behind `make run`."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command

from connectors.roles import ADMINS, AUDITORS, OPERATORS
from tests.processes import free_port

ROOT = Path(__file__).resolve().parent.parent


def perms(role: str) -> set[str]:
    group = Group.objects.get(name=role)
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}


@pytest.mark.django_db
def test_the_three_roles_exist_with_least_privilege():
    admins, operators, auditors = perms(ADMINS), perms(OPERATORS), perms(AUDITORS)
    assert {
        "connectors.add_credential",
        "connectors.change_credential",
        "connectors.view_credential",
        "connectors.change_connection",
    } <= admins
    # nobody edits the audit trail by hand
    assert not {p for p in admins if "auditentry" in p and not p.endswith("view_auditentry")}
    # operators and auditors never touch a credential
    assert not {p for p in operators | auditors if "credential" in p}
    assert "connectors.view_connection" in operators
    assert "connectors.change_connection" not in operators
    # auditors only read
    assert auditors and all(p.split(".")[1].startswith("view_") for p in auditors)
    assert "connectors.view_auditentry" in auditors


@pytest.mark.django_db
def test_bootstrap_creates_the_first_admin_once_in_debug(settings):
    settings.DEBUG = True
    out = io.StringIO()
    call_command("hub_bootstrap", stdout=out)
    text = out.getvalue()
    assert "user:     admin" in text and "changepassword admin" in text
    password = text.split("password: ")[1].split()[0]
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser and user.check_password(password)
    # the second time, nothing is created or printed
    again = io.StringIO()
    call_command("hub_bootstrap", stdout=again)
    assert "password" not in again.getvalue()
    assert get_user_model().objects.count() == 1


@pytest.mark.django_db
def test_bootstrap_creates_no_account_in_production(settings):
    settings.DEBUG = False
    out = io.StringIO()
    call_command("hub_bootstrap", stdout=out)
    assert not get_user_model().objects.exists()


def children_of(pid: int) -> list[int]:
    result = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(line) for line in result.stdout.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie waiting for its parent to reap it is not running
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


@pytest.mark.django_db(transaction=True)
def test_hub_run_serves_and_ctrl_c_stops_everything(tmp_path):
    # given the web server and the workers started together (on a database of their own)
    port = free_port()
    env = {**os.environ, "DEBUG": "true", "DATABASE_URL": f"sqlite:///{tmp_path / 'run.sqlite3'}"}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    process = subprocess.Popen(
        [sys.executable, "manage.py", "hub_run", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        status, deadline = None, time.monotonic() + 60
        while status is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/admin/login/", timeout=2
                ) as r:
                    status = r.status
            except OSError:
                time.sleep(0.3)
        assert status == 200
        children = children_of(process.pid)
        assert len(children) == 3  # the web server, the cluster and the sweeper
        # when Ctrl-C reaches it
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # then it stops both, and nothing it started is left running
    assert process.returncode == 0, output
    assert "Stopped." in output
    assert not [pid for pid in children if alive(pid)]


@pytest.mark.django_db
def test_a_user_added_to_a_role_group_can_log_in_and_a_forbidden_page_explains(
    django_user_model, client
):
    # adding a user to a role group (either side of the relation) makes them staff
    user = django_user_model.objects.create_user("nadia", "", "pw-nadia-123")
    assert not user.is_staff
    user.groups.add(Group.objects.get(name=OPERATORS))
    user.refresh_from_db()
    assert user.is_staff
    other = django_user_model.objects.create_user("omar", "", "pw-omar-123")
    Group.objects.get(name=OPERATORS).user_set.add(other)
    other.refresh_from_db()
    assert other.is_staff
    # a group of no role does not
    plain = django_user_model.objects.create_user("paul", "", "pw-paul-123")
    plain.groups.add(Group.objects.create(name="Newsletter"))
    plain.refresh_from_db()
    assert not plain.is_staff
    # they log in, and a page their role cannot open says why and links back
    assert client.login(username="nadia", password="pw-nadia-123")
    assert client.get("/admin/").status_code == 200
    page = client.get("/admin/connectors/credential/")
    assert page.status_code == 403
    text = page.content.decode()
    assert "Your account <strong>nadia</strong> is in Operators" in text
    assert 'href="/admin/">Back to the console</a>' in text and "Integration hub" in text


@pytest.mark.django_db
def test_no_link_leads_an_operator_to_a_credential_page(operator_client, integration_admin_client):
    from connectors.models import Connection

    crm = Connection.objects.create(name="CRM", slug="crm", base_url="https://crm.example.test")
    page = f"/admin/connectors/connection/{crm.pk}/change/"
    assert "Add a credential" not in operator_client.get(page).content.decode()
    assert "Add a credential" in integration_admin_client.get(page).content.decode()
