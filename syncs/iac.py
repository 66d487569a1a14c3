"""The ``syncs`` section of integrations as code (see docs/integrations-as-code.md): the sync
job's settings (the same list as its console form), its source and its target as groups."""

from __future__ import annotations

from flows import iac
from syncs.models import SYNC_JOB_SETTINGS, SyncJob

SECTION = iac.Section(
    name="syncs",
    noun="sync job",
    model=SyncJob,
    settings=iac.settings_of(SYNC_JOB_SETTINGS),
    places={
        **{
            name: "source." + name.removeprefix("source_")
            for name in dict(SYNC_JOB_SETTINGS)["Source"]
            if name != "page_size"
        },
        **{
            name: "target." + name.removeprefix("target_")
            for name in dict(SYNC_JOB_SETTINGS)["Target"]
        },
    },
    references={
        "source_connection": "connections",
        "mapping": "mappings",
        "target_flow": "flows",
    },
    defaults={"name": iac.name_from_slug},
    exclude=("cursor",),
)
