from django.urls import path

from sandbox import services, views

urlpatterns = [
    path("crm/v1/me", views.me, name="sandbox-me"),
    path("crm/v1/contacts", views.contacts, name="sandbox-contacts"),
    path("crm/v1/contacts/<str:contact_id>", views.contact, name="sandbox-contact"),
    # the other partners (sandbox/services.py)
    path(
        "<slug:service>/v1/exports/accounting",
        services.accounting_export,
        name="sandbox-accounting-export",
    ),
    path("<slug:service>/v1/<slug:collection>", services.records, name="sandbox-records"),
    path("<slug:service>/v1/<slug:collection>/<str:ref>", services.record, name="sandbox-record"),
    path(
        "<slug:service>/v1/<slug:collection>/<str:ref>/<slug:name>",
        services.action,
        name="sandbox-action",
    ),
]
