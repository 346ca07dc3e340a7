"""{% subscribe_form %}: the subscription form on any page of this site (a sidebar, an article)."""

from __future__ import annotations

from django import template
from django.conf import settings

from newsletter import abuse
from newsletter.forms import SubscribeForm
from newsletter.selectors.newsletters import newsletter_default
from newsletter.selectors.subscribers import consent_text_current

register = template.Library()


@register.inclusion_tag("newsletter/includes/subscribe_form.html", takes_context=True)
def subscribe_form(context: template.Context, form_name: str = "embedded") -> dict:
    """Render a fresh subscription form; `form_name` is recorded with each signup's consent."""
    newsletter = newsletter_default()
    consent_text = consent_text_current(newsletter=newsletter)
    request = context.get("request")
    form = None
    if consent_text is not None:
        form = SubscribeForm(
            initial={"stamp": abuse.form_stamp()},
            newsletter=newsletter,
            consent_text=consent_text,
            captcha=request is not None and abuse.captcha_required(request),
        )
    return {
        "form": form,
        "form_name": form_name,
        "privacy_url": (consent_text.privacy_url if consent_text else "")
        or settings.NEWSLETTER_PRIVACY_URL,
        "csrf_token": context.get("csrf_token"),
        "request": request,
    }
