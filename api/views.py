"""The hub's REST API: list flows, run one by hand, read runs."""

from __future__ import annotations

import uuid

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from api.auth import HasScope, HubTokenAuthentication
from api.idempotency import HEADER, idempotent
from api.serializers import (
    ErrorSerializer,
    FlowRunSerializer,
    FlowSerializer,
    RunRequestSerializer,
)
from connectors.engine.errors import PermanentError
from flows.mapping import MappingError
from flows.models import Flow, FlowRun, TriggerKind
from flows.services import workflow
from flows.services.dispatch import run_manual


class HubAPIView:
    authentication_classes = [HubTokenAuthentication]
    permission_classes = [HasScope]


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description)


# what every authenticated endpoint may answer besides its own results
AUTH_ERRORS = {
    401: error("No token, or an unknown, revoked or expired one."),
    403: error("The token lacks the scope this request needs."),
}


@extend_schema_view(get=extend_schema(responses={200: FlowSerializer(many=True), **AUTH_ERRORS}))
class FlowList(HubAPIView, generics.ListAPIView):
    """The flows, enabled or not."""

    required_scope = "flows:read"
    serializer_class = FlowSerializer
    queryset = Flow.objects.select_related("endpoint", "connection", "mapping").order_by("slug")


@extend_schema_view(
    get=extend_schema(responses={200: FlowRunSerializer, 404: error("No such run."), **AUTH_ERRORS})
)
class RunDetail(HubAPIView, generics.RetrieveAPIView):
    """One flow run."""

    required_scope = "flows:read"
    serializer_class = FlowRunSerializer
    queryset = FlowRun.objects.select_related("flow")


class RunFlow(HubAPIView, APIView):
    required_scope = "flows:run"

    @extend_schema(
        request=RunRequestSerializer,
        parameters=[
            OpenApiParameter(
                HEADER,
                # what the server accepts (1 to 255 printable characters), as the schema says
                {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
                OpenApiParameter.HEADER,
                description="Same key and body: the first answer is replayed. Same key, "
                "another body: 422. 1 to 255 visible ASCII characters.",
            )
        ],
        responses={
            201: OpenApiResponse(FlowRunSerializer, "The run succeeded (or was skipped)."),
            202: OpenApiResponse(
                FlowRunSerializer,
                '"wait": false: the run is stored and queued; the hub\'s workers carry it.',
            ),
            400: error(
                "A body that is not JSON or lacks payload, a malformed key, or "
                '"wait": false for a flow without steps.'
            ),
            **AUTH_ERRORS,
            404: error("No such flow."),
            409: error("The flow is disabled, or a request with the same key is running."),
            413: error("The body is larger than 2.5 MB."),
            422: OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="FailedRunOrKeyReused",
                    serializers=[FlowRunSerializer, ErrorSerializer],
                    resource_type_field_name=None,
                ),
                "The run failed permanently (mapping, partner's 4xx): the run; or the "
                "Idempotency-Key was already used with another body: an error.",
            ),
            503: OpenApiResponse(FlowRunSerializer, "A transient error: retry with the same key."),
        },
    )
    @idempotent
    def post(self, request, slug: str):
        """Run a flow now on the given payload (manual trigger)."""
        flow = get_object_or_404(Flow.objects.select_related("connection", "mapping"), slug=slug)
        if not flow.enabled:
            return Response({"detail": f"Flow {slug!r} is disabled."}, status=409)
        body = RunRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        key = getattr(request, "idempotency_key", None) or f"request-{uuid.uuid4()}"
        trigger_ref = f"api:{request.auth.prefix}:{key}"
        if not body.validated_data["wait"]:
            if not flow.is_workflow:
                return Response(
                    {
                        "detail": f"Flow {slug!r} has no steps: only a workflow runs without "
                        'waiting ("wait": false). Send "wait": true, or give the flow steps.'
                    },
                    status=400,
                )
            run = workflow.start_later(
                flow,
                body.validated_data["payload"],
                trigger=TriggerKind.MANUAL,
                trigger_ref=trigger_ref,
            )
            response = Response(FlowRunSerializer(run).data, status=202)
            response["Location"] = f"/api/runs/{run.pk}/"
            return response
        try:
            result = run_manual(flow, body.validated_data["payload"], trigger_ref=trigger_ref)
        except (MappingError, PermanentError) as exc:
            return Response(FlowRunSerializer(exc.flow_run).data, status=422)
        except Exception as exc:
            if getattr(exc, "flow_run", None) is None:
                raise
            return Response(
                FlowRunSerializer(exc.flow_run).data,
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": "30"},
            )
        response = Response(FlowRunSerializer(result.run).data, status=201)
        response["Location"] = f"/api/runs/{result.run.pk}/"
        return response
