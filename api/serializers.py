from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from flows.models import Flow, FlowRun


class ErrorSerializer(serializers.Serializer):
    """Every error answer of the API (docs/rest-api.md)."""

    detail = serializers.CharField(help_text=_("What went wrong, for a person to act on."))
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text=_("An invalid request body: the messages of each field."),
    )


class FlowSerializer(serializers.ModelSerializer):
    # null for flows that no webhook triggers (manual, schedule)
    endpoint = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    connection = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    mapping = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Flow
        fields = [
            "slug",
            "name",
            "description",
            "enabled",
            "trigger",
            "endpoint",
            "event_type",
            "cron",
            "connection",
            "mapping",
            "method",
            "path",
            "match_key",
        ]


class FlowRunSerializer(serializers.ModelSerializer):
    flow = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = FlowRun
        fields = [
            "id",
            "flow",
            "trigger",
            "trigger_ref",
            "event",
            "status",
            "outcome",
            "record_id",
            "started_at",
            "finished_at",
            "duration_ms",
            "error",
            "correlation_id",
        ]


class RunRequestSerializer(serializers.Serializer):
    payload = serializers.JSONField(
        allow_null=True,
        help_text=_("The data the flow's mapping reads (as a webhook event's body would be)."),
    )
    wait = serializers.BooleanField(
        default=True,
        help_text=_(
            "True: the flow runs in this request, and the answer says how it ended. False "
            "(workflows only): 202 at once, and the hub's workers carry the run, retrying "
            "transient errors themselves; read it at /api/runs/{id}/."
        ),
    )
