"""Staff roles (least privilege) as Django groups, and the permissions each one holds.

* **Integration admins** configure connections, credentials and (later) endpoints and flows.
* **Operators** watch and retry: they view connections and events, and never reach a credential.
* **Auditors** read everything that is not secret (the DPO among them sees mirrored personal
  data); they change nothing.
* **Data protection officers** read what auditors read and hold the GDPR desk (find, export and
  erase one person's data): a permission no other role has, superusers aside.

The groups are created by a data migration; their permissions are (re)granted after every
``migrate`` from the patterns below, so a model added by a later release gets its permissions
without another hand-written migration. Granting only adds: permissions an administrator gave a
group by hand are kept. A pattern is ``app_label.codename`` with shell wildcards.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

__all__ = [
    "ADMINS",
    "AUDITORS",
    "DATA_PROTECTION",
    "OPERATORS",
    "ROLE_PERMISSIONS",
    "connect_signals",
    "sync_roles",
]

ADMINS = "Integration admins"
OPERATORS = "Operators"
AUDITORS = "Auditors"
DATA_PROTECTION = "Data protection officers"
GDPR_DESK = "connectors.use_gdpr_desk"

SECRET_MODELS = {"connectors.credential"}

ROLE_PERMISSIONS: dict[str, dict[str, list[str]]] = {
    ADMINS: {
        "include": [
            "connectors.*",
            "webhooks.*",
            "flows.*",
            "syncs.*",
            "api.*",
            "sandbox.*",
            "monitoring.*",
            "django_q.*",
        ],
        "exclude": [
            # The audit trail is written by the hub, never by hand.
            "connectors.add_auditentry",
            "connectors.change_auditentry",
            "connectors.delete_auditentry",
            # Configuring connections is not reading and erasing people's data.
            GDPR_DESK,
        ],
    },
    OPERATORS: {
        "include": [
            "connectors.view_connection",
            "connectors.view_apicall",
            "webhooks.view_*",
            "webhooks.retry_*",
            "flows.view_*",
            "flows.run_flow",
            "syncs.view_*",
            "syncs.run_syncjob",
            "monitoring.view_*",
            "monitoring.manage_incident",
            "django_q.view_*",
        ],
        # operators work on runs, not on people: mirrored personal data is masked for them
        "exclude": ["connectors.*credential*", "syncs.view_pii"],
    },
    AUDITORS: {
        "include": [
            "connectors.view_*",
            "webhooks.view_*",
            "flows.view_*",
            "syncs.view_*",
            "api.view_*",
            "monitoring.view_*",
            "django_q.view_*",
        ],
        "exclude": ["connectors.*credential*", GDPR_DESK],
    },
    DATA_PROTECTION: {
        "include": [
            "connectors.view_*",
            GDPR_DESK,
            "webhooks.view_*",
            "flows.view_*",
            "syncs.view_*",
            "monitoring.view_*",
        ],
        "exclude": ["connectors.*credential*"],
    },
}


def _wanted(role: str, label: str) -> bool:
    rules = ROLE_PERMISSIONS[role]
    if any(fnmatchcase(label, pattern) for pattern in rules["exclude"]):
        return False
    return any(fnmatchcase(label, pattern) for pattern in rules["include"])


def sync_roles(group_model, permission_model) -> None:
    """Create the three groups if missing and grant each the permissions its patterns match.

    Takes the models as arguments so that a migration can pass its historical ones.
    """
    permissions = list(
        permission_model.objects.select_related("content_type").only(
            "id", "codename", "content_type__app_label"
        )
    )
    for role in ROLE_PERMISSIONS:
        group, _ = group_model.objects.get_or_create(name=role)
        wanted = [
            perm.pk
            for perm in permissions
            if _wanted(role, f"{perm.content_type.app_label}.{perm.codename}")
        ]
        group.permissions.add(*wanted)


def _after_migrate(sender, using="default", **kwargs):
    from django.contrib.auth.models import Group, Permission

    # Sent once per app, after that app's permissions were created: running each time (a few
    # queries) means the permissions of apps listed after this one are granted too.
    sync_roles(Group, Permission)


def _member_is_staff(sender, instance, action, reverse, model, pk_set, **kwargs):
    """A user added to a role group can log in to the console: they become staff (without it
    the login page would only say the password is wrong)."""
    if action != "post_add" or not pk_set:
        return
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    users = get_user_model().objects
    if reverse:  # group.user_set.add(user, …)
        if instance.name in ROLE_PERMISSIONS:
            users.filter(pk__in=pk_set, is_staff=False).update(is_staff=True)
    elif Group.objects.filter(pk__in=pk_set, name__in=list(ROLE_PERMISSIONS)).exists():
        users.filter(pk=instance.pk, is_staff=False).update(is_staff=True)
        instance.is_staff = True


def connect_signals() -> None:
    from django.contrib.auth import get_user_model
    from django.db.models.signals import m2m_changed, post_migrate

    post_migrate.connect(_after_migrate, dispatch_uid="connectors.roles.sync")
    m2m_changed.connect(
        _member_is_staff,
        sender=get_user_model().groups.through,
        dispatch_uid="connectors.roles.staff",
    )
