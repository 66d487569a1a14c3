"""Error reports that hide secrets in DEBUG too.

Django's ``SafeExceptionReporterFilter`` only filters when DEBUG is off, so the development error
page would show a secret posted to the credential form or held in a local variable. The hub
filters always: ``sensitive_variables`` / ``sensitive_post_parameters`` and the settings whose
names look secret are masked on every error page and report.
"""

from django.views.debug import SafeExceptionReporterFilter


class AlwaysSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    def is_active(self, request):
        return True
