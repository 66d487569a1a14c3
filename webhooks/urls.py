from django.urls import path

from webhooks.views import WebhookReceiver

app_name = "webhooks"

urlpatterns = [
    path("<slug:slug>/", WebhookReceiver.as_view(), name="receive"),
]
