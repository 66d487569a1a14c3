"""Helpers of the sync tests: sandbox contacts with few distinct update times, mirror jobs."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.utils import timezone

from flows.models import Mapping, MappingRule
from sandbox.models import SandboxContact
from syncs.models import MirrorRecord, SyncJob


def make_mapping(*fields, pii=("email",)) -> Mapping:
    mapping = Mapping.objects.create(slug="m-" + secrets.token_hex(3), name="m")
    for position, name in enumerate(fields, 1):
        MappingRule.objects.create(
            mapping=mapping, position=position, source=name, target=name, pii=name in pii
        )
    return mapping


def mirror_job(connection, **fields) -> SyncJob:
    values = {
        "slug": "contacts",
        "name": "CRM contacts → mirror",
        "source_connection": connection,
        "source_path": "/contacts",
        "pagination": "cursor_token",
        "page_size": 97,
        "mapping": make_mapping("email", "plan"),
        "object_type": "contact",
        **fields,
    }
    job = SyncJob(**values)
    job.full_clean()
    job.save()
    return job


def contacts(count: int, timestamps: int, start=None) -> list[SandboxContact]:
    """``count`` contacts spread over only ``timestamps`` distinct update times."""
    start = start or timezone.now() - timedelta(days=1)
    rows = SandboxContact.objects.bulk_create(
        SandboxContact(email=f"p{i}@x.test", data={"email": f"p{i}@x.test", "plan": "free"})
        for i in range(count)
    )
    per = max(1, count // timestamps)
    for index in range(0, count, per):
        ids = [row.pk for row in rows[index : index + per]]
        SandboxContact.objects.filter(pk__in=ids).update(
            updated_at=start + timedelta(seconds=index // per)
        )
    return rows


def mirrored_ids(connection) -> list[str]:
    return list(
        MirrorRecord.objects.filter(connection=connection).values_list("external_id", flat=True)
    )


def nightly_python_job(name: str, *, age: timedelta, now=None) -> SyncJob:
    """A job ``nightly`` (cron 02:00, Python source and target) created ``age`` ago."""
    job = SyncJob.objects.create(
        slug="nightly",
        name=name,
        cron="0 2 * * *",
        source_kind="python",
        source_python="x.y",
        target_kind="python",
        target_python="x.z",
    )
    SyncJob.objects.filter(pk=job.pk).update(created_at=(now or timezone.now()) - age)
    job.refresh_from_db()
    return job
