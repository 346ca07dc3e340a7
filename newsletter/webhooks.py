"""ESP tracking webhooks at /anymail/<esp>/tracking/: anymail's own views, hardened.

Only the tracking webhooks of the ESPs this project supports are routed (Mailgun,
SendGrid, Postmark, SparkPost, Mailjet: the ones with tests in tests/test_webhooks_*),
and each answers only while its ESP is configured (NEWSLETTER_WEBHOOK_ESPS, by default
the ESP of EMAIL_BACKEND); any other is a 404. Nothing here reads inbound mail, so no
inbound route exists. Each view differs from anymail's in four ways:

- It refuses every request while ANYMAIL_WEBHOOK_SECRET is unset. Anymail would
  accept anyone then (with a warning), and a forged "complained" event would take a
  reader off the list.
- A body that is not the ESP's format (bad, truncated or deeply nested JSON, wrong
  shape) gets one 400 answer and stores nothing, instead of a server error that the
  ESP would retry for days.
- What the ESP sent is cleaned of NUL and other control characters
  (config/cleaning.py) before it is stored: PostgreSQL refuses NUL in text and jsonb.
- An event that cannot be stored (the database is down) is logged with its ESP event
  id and answered 503 with Retry-After, so the ESP sends it again; the events of the
  same post stored before it are recognised by their ids when it does.

The ESP's own signature (Mailgun's signing key, SendGrid's verification key, ...) is
still checked by anymail on top of the basic-auth secret.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps

from anymail import urls as anymail_urls
from anymail.exceptions import AnymailWebhookValidationFailure
from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, path, resolve

from config.cleaning import clean_data

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 60
WEBHOOK_PREFIX = "/anymail/"  # config/urls.py includes urlpatterns below here
# What parsing a body that is not the ESP's format raises; RecursionError is JSON
# nested thousands deep.
_MALFORMED = (ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError)


class MalformedWebhookPayload(SuspiciousOperation):
    """The body is not an event in the ESP's format; Django answers 400."""


class HardenedWebhookMixin:
    def validate_request(self, request) -> None:
        if not getattr(self, "basic_auth", None):
            raise AnymailWebhookValidationFailure(
                f"{self.esp_name} webhook refused: set ANYMAIL_WEBHOOK_SECRET (user:password) "
                "and put it in the webhook URL you give the ESP."
            )

    def _malformed(self, exc: Exception) -> MalformedWebhookPayload:
        return MalformedWebhookPayload(
            f"{self.esp_name} webhook body is not in {self.esp_name}'s event format "
            f"({type(exc).__name__}); nothing was recorded."
        )

    def run_validators(self, request) -> None:
        # Signature checks (Mailgun's) read the JSON body too.
        try:
            super().run_validators(request)
        except _MALFORMED as exc:
            raise self._malformed(exc) from exc

    def parse_events(self, request):
        try:
            events = list(super().parse_events(request))
        except _MALFORMED as exc:
            raise self._malformed(exc) from exc
        for event in events:
            for name, value in vars(event).items():
                if hasattr(value, "lists"):  # a posted QueryDict: plain values, cleaned
                    value = {key: items if len(items) > 1 else items[0] for key, items in value.lists()}
                setattr(event, name, clean_data(value))
        return events

    def post(self, request, *args, **kwargs):
        self.run_validators(request)
        events = self.parse_events(request)
        for event in events:
            try:
                self.signal.send(sender=self.__class__, event=event, esp_name=self.esp_name)
            except DatabaseError:
                logger.exception(
                    "%s event %s (%s) could not be stored; answered 503 so the ESP retries",
                    self.esp_name,
                    event.event_id or "without an id",
                    event.event_type,
                )
                response = HttpResponse("try again later", status=503, content_type="text/plain")
                response["Retry-After"] = str(RETRY_AFTER_SECONDS)
                return response
        return HttpResponse()


class WebhookShortcutMiddleware:
    """Send an ESP's webhook POST straight to its view, past the middleware people need.

    A webhook is one machine posting to another: it has no session, language, CSRF
    token, login, messages or newsroom time zone, and its body is cleaned by the view
    itself. Going through those middleware classes was a quarter of a webhook
    request's CPU, at hundreds of requests a second. The Host header is still checked
    (ALLOWED_HOSTS), and errors are answered as anywhere else.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST" or not request.path_info.startswith(WEBHOOK_PREFIX):
            return self.get_response(request)
        request.get_host()  # DisallowedHost (400) for a host that is not ours
        match = resolve(request.path_info)
        response = match.func(request, *match.args, **match.kwargs)
        # As CommonMiddleware would: a length, so the ESP's connection is kept alive
        # without chunked encoding.
        if not response.streaming and not response.has_header("Content-Length"):
            response["Content-Length"] = str(len(response.content))
        return response


def _hardened(pattern: URLPattern) -> URLPattern:
    view_class = pattern.callback.view_class
    view = type(view_class.__name__, (HardenedWebhookMixin, view_class), {}).as_view()
    esp = pattern.name.removesuffix("_tracking_webhook")

    # Checked before the view is made: anymail's views check their ESP's settings
    # when they are made, and an ESP we do not send through has none.
    @wraps(view)  # keeps anymail's csrf_exempt
    def routed(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if esp not in settings.NEWSLETTER_WEBHOOK_ESPS:
            raise Http404("this ESP is not configured")
        return view(request, *args, **kwargs)

    return path(str(pattern.pattern), routed, name=pattern.name)


urlpatterns = [
    _hardened(pattern)
    for pattern in anymail_urls.urlpatterns
    if isinstance(pattern, URLPattern)
    and (pattern.name or "").removesuffix("_tracking_webhook") in settings.WEBHOOK_ESPS_SUPPORTED
]
