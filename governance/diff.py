""" "Works in test, not in prod": what differs between a sandbox connection and its production
twin, and could explain it (the brief's FAQ: different keys, webhook URL not configured,
https, scope restrictions, quotas, differences in data).

Each :class:`Difference` says what was compared, both sides, how much it matters (``error``:
this breaks production; ``warning``: it could; ``info``: different, as it should be), and why.
Never a secret: credentials are compared by fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.db.models import Max
from django.db.models.functions import Length
from django.utils.translation import gettext_lazy as _

from connectors.choices import CredentialState
from connectors.models import ApiCall, Connection, Credential

__all__ = ["Difference", "compare"]

SAMPLE = 500  # recent events per endpoint read for the data checks


@dataclass
class Difference:
    topic: str
    sandbox: str
    production: str
    level: str  # error, warning, info
    why: str


def _credentials(connection) -> dict[str, Credential]:
    out = {}
    for credential in Credential.objects.filter(
        connection=connection, state__in=(CredentialState.ACTIVE, CredentialState.RETIRING)
    ).order_by("state", "-created_at"):
        out.setdefault(credential.kind, credential)
    return out


def _connection_level(a: Connection, b: Connection) -> list[Difference]:
    out = []
    if urlsplit(b.base_url).scheme != "https":
        out.append(
            Difference(
                _("base URL"),
                a.base_url,
                b.base_url,
                "error",
                _(
                    "production calls the partner without https: the partner may refuse it, and "
                    "the key travels in clear"
                ),
            )
        )
    elif a.base_url != b.base_url:
        out.append(
            Difference(
                _("base URL"), a.base_url, b.base_url, "info", _("different hosts, as expected")
            )
        )
    if a.auth_method != b.auth_method:
        out.append(
            Difference(
                _("auth method"),
                a.get_auth_method_display(),
                b.get_auth_method_display(),
                "warning",
                _(
                    "the two environments authenticate differently: what works in test proves "
                    "little for production"
                ),
            )
        )
    if (a.api_version or "") != (b.api_version or ""):
        out.append(
            Difference(
                _("API version"),
                a.api_version or _("(default)"),
                b.api_version or _("(default)"),
                "warning",
                _("the partner may answer differently (fields, validation) per version"),
            )
        )
    for name in ("connect_timeout", "read_timeout", "retry_max_attempts"):
        if getattr(a, name) != getattr(b, name):
            out.append(
                Difference(
                    name.replace("_", " "),
                    str(getattr(a, name)),
                    str(getattr(b, name)),
                    "info",
                    _(
                        "a production partner is often slower; a shorter timeout there fails "
                        "calls that pass in test"
                    ),
                )
            )
    limit_a = f"{a.rate_limit_requests or '-'} / {a.rate_limit_window_seconds} s"
    limit_b = f"{b.rate_limit_requests or '-'} / {b.rate_limit_window_seconds} s"
    if limit_a != limit_b:
        out.append(
            Difference(
                _("rate limit"), limit_a, limit_b, "info", _("the hub paces the two differently")
            )
        )
    return out


def _credentials_level(a, b) -> list[Difference]:
    out = []
    ca, cb = _credentials(a), _credentials(b)
    for kind in sorted(set(ca) | set(cb)):
        x, y = ca.get(kind), cb.get(kind)
        label = (x or y).get_kind_display()
        if y is None:
            out.append(
                Difference(
                    _("credential: %(kind)s") % {"kind": label},
                    x.fingerprint,
                    _("missing"),
                    "error",
                    _("production has no such secret: its calls (or its webhook checks) fail"),
                )
            )
        elif x is None:
            continue  # production holds more: fine
        elif x.fingerprint == y.fingerprint:
            out.append(
                Difference(
                    _("credential: %(kind)s") % {"kind": label},
                    x.fingerprint,
                    y.fingerprint,
                    "error",
                    _(
                        "the same secret in both environments: production uses a test key, or "
                        "the sandbox a live one"
                    ),
                )
            )
        else:
            out.append(
                Difference(
                    _("credential: %(kind)s") % {"kind": label},
                    x.fingerprint,
                    y.fingerprint,
                    "info",
                    _("different secrets, as they should be"),
                )
            )
    return out


def _scopes(a, b) -> list[Difference]:
    out = []
    granted_a, granted_b = set(a.granted_scopes or []), set(b.granted_scopes or [])
    missing = granted_a - granted_b
    if missing:
        out.append(
            Difference(
                _("scopes granted"),
                ", ".join(sorted(granted_a)) or _("none"),
                ", ".join(sorted(granted_b)) or _("none"),
                "error",
                _("production lacks %(scopes)s: calls that need them are refused (403) there")
                % {"scopes": ", ".join(sorted(missing))},
            )
        )
    requested_b = set(b.requested_scopes or [])
    if requested_b - granted_b and b.granted_scopes is not None:
        out.append(
            Difference(
                _("scopes requested vs granted (production)"),
                "",
                ", ".join(sorted(requested_b - granted_b)),
                "warning",
                _(
                    "asked for and not granted: the account owner declined them or the app "
                    "lacks them"
                ),
            )
        )
    return out


def _endpoints(a, b) -> list[Difference]:
    from webhooks.models import WebhookEndpoint

    out = []
    ea = list(WebhookEndpoint.objects.filter(connection=a).order_by("slug"))
    eb = list(WebhookEndpoint.objects.filter(connection=b).order_by("slug"))
    if ea and not eb:
        out.append(
            Difference(
                _("webhook endpoint"),
                ", ".join(f"/webhooks/{e.slug}/" for e in ea),
                _("none"),
                "error",
                _(
                    "production has no endpoint: configure one and give its URL to the partner's "
                    "live account"
                ),
            )
        )
    for x, y in zip(ea, eb, strict=False):
        for name, what in (
            ("enabled", _("enabled")),
            ("unsigned", _("unsigned")),
            ("scheme", _("verification scheme")),
        ):
            if getattr(x, name) != getattr(y, name):
                out.append(
                    Difference(
                        _("endpoint %(what)s") % {"what": what},
                        str(getattr(x, name)),
                        str(getattr(y, name)),
                        "error" if name in ("enabled", "scheme") else "warning",
                        _("deliveries are refused or not verified the same way"),
                    )
                )
        if bool(x.ip_allowlist.strip()) != bool(y.ip_allowlist.strip()):
            out.append(
                Difference(
                    _("endpoint IP allowlist"),
                    x.ip_allowlist or _("none"),
                    y.ip_allowlist or _("none"),
                    "warning",
                    _("the partner's live servers send from other addresses than its sandbox"),
                )
            )
    out.extend(_data_seen(ea, eb))
    return out


def _data_seen(ea, eb) -> list[Difference]:
    from webhooks.models import WebhookEvent

    def sample(endpoints):
        return (
            WebhookEvent.objects.filter(endpoint__in=endpoints)
            .order_by("-received_at")
            .values_list("pk", flat=True)[:SAMPLE]
        )

    def facts(endpoints):
        ids = list(sample(endpoints))
        rows = WebhookEvent.objects.filter(pk__in=ids)
        types = set(rows.exclude(event_type="").values_list("event_type", flat=True))
        largest = rows.annotate(size=Length("body")).aggregate(m=Max("size"))["m"] or 0
        non_ascii = sum(
            1 for body in rows.values_list("body", flat=True) if max(bytes(body) or b"\0") > 127
        )
        return types, largest, non_ascii, len(ids)

    if not ea or not eb:
        return []
    types_a, largest_a, non_ascii_a, n_a = facts(ea)
    types_b, largest_b, non_ascii_b, n_b = facts(eb)
    out = []
    only_b = types_b - types_a
    if only_b:
        out.append(
            Difference(
                _("event types seen"),
                ", ".join(sorted(types_a)) or _("none"),
                ", ".join(sorted(types_b)),
                "warning",
                _("production receives %(types)s, never seen in test: no flow was tried on them")
                % {"types": ", ".join(sorted(only_b))},
            )
        )
    if largest_b > 2 * max(largest_a, 1):
        out.append(
            Difference(
                _("largest payload"),
                _("%(n)s bytes") % {"n": largest_a},
                _("%(n)s bytes") % {"n": largest_b},
                "warning",
                _(
                    "production sends much larger events (long lists, notes): check the "
                    "endpoint's size limit and the partner's limits on what the flows send"
                ),
            )
        )
    if non_ascii_b and not non_ascii_a:
        out.append(
            Difference(
                _("non-ASCII characters"),
                _("%(n)s of %(total)s events") % {"n": 0, "total": n_a},
                _("%(n)s of %(total)s events") % {"n": non_ascii_b, "total": n_b},
                "warning",
                _(
                    "real names and addresses carry accents and other scripts that test data "
                    "did not: check the transforms and the partner's field limits"
                ),
            )
        )
    return out


def _flows(a, b) -> list[Difference]:
    from flows.models import Flow

    def signature(flow):
        rules = tuple(
            (r.source, r.target, r.transform, r.pii)
            for r in (flow.mapping.rules.all() if flow.mapping else [])
        )
        return (flow.trigger, flow.event_type, flow.method, flow.path, flow.enabled, rules)

    fa = {f.name: f for f in Flow.objects.filter(connection=a).select_related("mapping")}
    fb = {f.name: f for f in Flow.objects.filter(connection=b).select_related("mapping")}
    out = []
    for name in sorted(set(fa) - set(fb)):
        out.append(
            Difference(
                _("flow"),
                name,
                _("missing"),
                "error",
                _("the flow tried in test does not exist in production"),
            )
        )
    for name in sorted(set(fa) & set(fb)):
        if signature(fa[name]) != signature(fb[name]):
            out.append(
                Difference(
                    _("flow"),
                    f"{name}: {fa[name].method} {fa[name].path}",
                    f"{name}: {fb[name].method} {fb[name].path}",
                    "warning",
                    _(
                        "the two flows differ (trigger, path, enabled or mapping rules): what was "
                        "tested is not what runs"
                    ),
                )
            )
    return out


def _quota(a, b) -> list[Difference]:
    def last(connection):
        row = (
            ApiCall.objects.filter(connection=connection, quota_remaining__isnull=False)
            .order_by("-created_at")
            .values_list("quota_remaining", "quota_limit")
            .first()
        )
        if row is None:
            return _("not reported")
        return _("%(n)s of %(limit)s left") % {"n": row[0], "limit": row[1] or "?"}

    qa, qb = last(a), last(b)
    if qa != qb:
        return [
            Difference(_("observed quota"), qa, qb, "info", _("the partner's live quotas differ"))
        ]
    return []


def compare(sandbox: Connection, production: Connection) -> list[Difference]:
    """Everything that differs and could explain a failure in production, worst first."""
    found = [
        *_connection_level(sandbox, production),
        *_credentials_level(sandbox, production),
        *_scopes(sandbox, production),
        *_endpoints(sandbox, production),
        *_flows(sandbox, production),
        *_quota(sandbox, production),
    ]
    rank = {"error": 0, "warning": 1, "info": 2}
    return sorted(found, key=lambda d: rank[d.level])
