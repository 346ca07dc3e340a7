"""ESP tracking webhooks at /anymail/<esp>/tracking/: anymail's own views, hardened.

Each ESP's anymail view is served at its usual URL with two changes:

- It refuses every request while ANYMAIL_WEBHOOK_SECRET is unset. Anymail would
  accept anyone then (with a warning), and a forged "complained" event would take a
  reader off the list.
- A body that is not the ESP's format (bad JSON, wrong shape) gets one 400 answer
  instead of a server error that the ESP would retry for days.

The ESP's own signature (Mailgun's signing key, SendGrid's verification key, ...) is
still checked by anymail on top of the basic-auth secret.
"""

from __future__ import annotations

from anymail import urls as anymail_urls
from anymail.exceptions import AnymailWebhookValidationFailure
from django.core.exceptions import SuspiciousOperation
from django.urls import URLPattern, path


class MalformedWebhookPayload(SuspiciousOperation):
    """The body is not an event in the ESP's format; Django answers 400."""


class HardenedWebhookMixin:
    def validate_request(self, request) -> None:
        if not getattr(self, "basic_auth", None):
            raise AnymailWebhookValidationFailure(
                f"{self.esp_name} webhook refused: set ANYMAIL_WEBHOOK_SECRET (user:password) "
                "and put it in the webhook URL you give the ESP."
            )

    def parse_events(self, request):
        try:
            return super().parse_events(request)
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            raise MalformedWebhookPayload(
                f"{self.esp_name} webhook body is not in {self.esp_name}'s event format "
                f"({type(exc).__name__}); nothing was recorded."
            ) from exc


def _hardened(pattern: URLPattern) -> URLPattern:
    view_class = pattern.callback.view_class
    hardened = type(view_class.__name__, (HardenedWebhookMixin, view_class), {})
    return path(str(pattern.pattern), hardened.as_view(), name=pattern.name)


urlpatterns = [
    _hardened(pattern)
    for pattern in anymail_urls.urlpatterns
    if isinstance(pattern, URLPattern)
    and ((pattern.name or "").endswith("_tracking_webhook") or pattern.name == "mandrill_webhook")
]
