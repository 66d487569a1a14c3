from django.urls import path

from sandbox import views

urlpatterns = [
    path("crm/v1/me", views.me, name="sandbox-me"),
    path("crm/v1/contacts", views.contacts, name="sandbox-contacts"),
    path("crm/v1/contacts/<str:contact_id>", views.contact, name="sandbox-contact"),
]
