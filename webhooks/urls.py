from django.urls import path

from webhooks.views import receive_webhook

app_name = "webhooks"

urlpatterns = [
    path("<slug:slug>/", receive_webhook, name="receive"),
]
