"""The ``syncs`` section of integrations as code (see docs/integrations-as-code.md)."""

from __future__ import annotations

from flows import iac
from syncs.models import SyncJob

FIELDS = ["name", "description", "enabled", "cron", "mode", "page_size"]
SOURCE = {
    "kind": "source_kind",
    "method": "source_method",
    "path": "source_path",
    "python": "source_python",
    "pagination": "pagination",
    "pagination_options": "pagination_options",
    "records_path": "records_path",
    "id_field": "id_field",
    "updated_field": "updated_field",
    "since_param": "since_param",
    "overlap_seconds": "overlap_seconds",
}
TARGET = {"kind": "target_kind", "object_type": "object_type", "python": "target_python"}
RENAME = {
    **{name: f"source.{key}" for key, name in SOURCE.items()},
    **{name: f"target.{key}" for key, name in TARGET.items()},
    "source_connection": "source.connection",
    "mapping": "target.mapping",
    "target_flow": "target.flow",
}


def export() -> list:
    out = []
    for job in SyncJob.objects.select_related(
        "source_connection", "mapping", "target_flow"
    ).order_by("slug"):
        entry = {"slug": job.slug, **{name: getattr(job, name) for name in FIELDS}}
        source = {key: getattr(job, name) for key, name in SOURCE.items()}
        source["connection"] = job.source_connection.slug if job.source_connection else None
        target = {key: getattr(job, name) for key, name in TARGET.items()}
        target["mapping"] = job.mapping.slug if job.mapping else None
        target["flow"] = job.target_flow.slug if job.target_flow else None
        out.append(entry | {"source": source, "target": target})
    return out


def apply(document: dict, report: iac.ApplyReport, known: dict) -> None:
    existing = {job.slug: job for job in SyncJob.objects.all()}
    defaults = {f.name: f.get_default() for f in SyncJob._meta.fields}
    for where, item in iac.entries(document, "syncs", report):
        if iac.unknown_keys(where, item, {"slug", "source", "target", *FIELDS}, report):
            continue
        source, target = item.get("source") or {}, item.get("target") or {}
        if not isinstance(source, dict) or not isinstance(target, dict):
            report.errors.append(f"{where}: source and target are mappings of fields")
            continue
        bad = iac.unknown_keys(f"{where}.source", source, {"connection", *SOURCE}, report)
        bad |= iac.unknown_keys(f"{where}.target", target, {"mapping", "flow", *TARGET}, report)
        if bad:
            continue
        values = {name: item.get(name, defaults[name]) for name in FIELDS}
        values["name"] = values["name"] or item["slug"]
        values.update({name: source.get(key, defaults[name]) for key, name in SOURCE.items()})
        values.update({name: target.get(key, defaults[name]) for key, name in TARGET.items()})
        problems = False
        for place, key, kind, field in (
            ("source.connection", source.get("connection"), "connections", "source_connection"),
            ("target.mapping", target.get("mapping"), "mappings", "mapping"),
            ("target.flow", target.get("flow"), "flows", "target_flow"),
        ):
            if key in (None, ""):
                values[field] = None
                continue
            found = known[kind].get(key)
            if found is None or found.pk is None:
                report.errors.append(f'{where}.{place}: unknown {kind[:-1]} "{key}"')
                problems = True
            values[field] = found
        if problems:
            continue
        job = existing.get(item["slug"])
        created = job is None
        if created:
            job = SyncJob(slug=item["slug"])
        changed = iac.assign(job, values)
        if (created or changed) and not iac.save_validated(
            job, where, report, rename=RENAME, exclude=["cursor"]
        ):
            continue
        report.note("sync job", item["slug"], None if created else changed)


SECTION = iac.Section("syncs", export, apply)
