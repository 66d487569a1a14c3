from django.urls import path

from connectors.oauth import views

app_name = "oauth"

urlpatterns = [
    path("connect/<int:pk>/", views.connect_account, name="connect"),
    path("callback/", views.callback, name="callback"),
]
