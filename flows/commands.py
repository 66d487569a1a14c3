"""Actions other apps add to ``manage.py integrations`` (governance's ``diff``), without flows
importing them: ``name → action`` with ``help``, ``add_arguments(parser)`` and
``handle(command, options)``."""

from __future__ import annotations

INTEGRATIONS_ACTIONS: dict[str, object] = {}
