"""A real OAuth 2.0 authorization server for the tests: django-oauth-toolkit in its own Django
project and process on 127.0.0.1, with refresh-token rotation on (see server.py)."""
