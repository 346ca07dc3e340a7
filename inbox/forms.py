"""The two reader forms: "Ask Us A Question" and "Write to Us".

They reuse the subscription form's fields and defences (newsletter/forms.py): one-line
text without CR/LF or control characters, normalised addresses, the honeypot and stamp,
and the identifying code, which these forms always ask for: a free-text box that lands
in editors' inboxes is what spammers look for, and the portal's form always had it.
"""

from __future__ import annotations

from pathlib import PurePath

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from articles.languages import reader_language
from inbox import files, held_files
from inbox.models import QUESTION_MAX_CHARS, STORY_MAX_CHARS, Ticket
from newsletter.forms import (
    OneLineField,
    ReaderEmailField,
    TrapFields,
    country_choices,
    identifying_code_field,
)
from newsletter.models import ConsentText
from newsletter.services.subscribers import Profile

QUESTION_CONSENT = _(
    "I agree that the Belt & Road Weekly editors keep my question and these details to "
    "answer me, and delete them when I ask, as the privacy notice explains."
)
CONTRIBUTION_CONSENT = _(
    "I wrote what I send (or may share it), and I agree that the Belt & Road Weekly editors "
    "keep it with these details to consider it for publication and to contact me about it, "
    "and delete them when I ask, as the privacy notice explains."
)


def attachment_max_bytes() -> int:
    return settings.INBOX_ATTACHMENT_MAX_MB * 1024 * 1024


DOCX_REFUSALS = {
    "size": _(
        "This Word file unpacks to more than %(mb)s MB, far more than a document needs: "
        "save it again (File, Save As), or send it as a PDF."
    ),
    "ratio": _(
        "This Word file is packed far more tightly than a document can be (a “zip bomb”): "
        "save it again, or send it as a PDF."
    ),
    "entries": _(
        "This Word file holds more than %(n)s parts, far more than a document needs: "
        "save it again, or send it as a PDF."
    ),
    "broken": _("This Word file is damaged and cannot be opened: save it again, or send it as a PDF."),
}


class TicketForm(TrapFields):
    """What both forms ask; `kind` says which, and a contribution adds a link and a file."""

    name = OneLineField(label=_("Name"), max_length=100)
    email = ReaderEmailField()
    organisation = OneLineField(label=_("Organisation"), max_length=150, required=False)
    country = forms.ChoiceField(
        label=_("Country or region"), choices=country_choices, required=False
    )
    body = forms.CharField(
        strip=True,
        widget=forms.Textarea(attrs={"rows": 8}),
        error_messages={"required": _("Please write your message.")},
    )
    consent = forms.BooleanField(
        required=True,
        error_messages={
            "required": _(
                "Please tick the box to agree, or we cannot keep and answer your message."
            )
        },
    )
    subscribe = forms.BooleanField(required=False)
    consent_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(
        self,
        *args,
        kind: str,
        newsletter_consent: ConsentText | None,
        captcha: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.newsletter_consent = newsletter_consent
        question = kind == Ticket.Kind.QUESTION
        limit = QUESTION_MAX_CHARS if question else STORY_MAX_CHARS
        body = self.fields["body"]
        body.label = _("Your question") if question else _("Your story")
        self.body_limit = limit
        body.widget.attrs["maxlength"] = str(limit)
        body.help_text = _("Up to %(limit)s characters.") % {"limit": f"{limit:,}"}
        self.fields["consent"].label = QUESTION_CONSENT if question else CONTRIBUTION_CONSENT
        for field, hint in (("name", "name"), ("organisation", "organization")):
            self.fields[field].widget.attrs["autocomplete"] = hint
        self.fields["country"].widget.attrs["autocomplete"] = "country"
        if not question:
            # A story may come as text, as a file, or both: either is enough.
            body.required = False
            body.help_text = _(
                "Up to %(limit)s characters. Or attach your story as a file below: either is enough."
            ) % {"limit": f"{limit:,}"}
            self.fields["link"] = forms.URLField(
                label=_("Link"),
                required=False,
                max_length=500,
                assume_scheme="https",
                help_text=_("Where your story or its pictures are online, if they are."),
                error_messages={
                    "invalid": _("Enter a web address, like https://example.com/story.")
                },
            )
            self.fields["attachment"] = forms.FileField(
                label=_("Attachment"),
                required=False,
                max_length=300,
                help_text=_("One file: %(types)s, up to %(size)s.")
                % {"types": files.allowed_labels(), "size": filesizeformat(attachment_max_bytes())},
                widget=forms.ClearableFileInput(attrs={"accept": files.ACCEPT}),
            )
            # The signed reference to a file kept while the form is fixed (held_files.py).
            self.fields["held_attachment"] = forms.CharField(
                required=False, max_length=2000, widget=forms.HiddenInput
            )
        self.held_attachment_name = ""
        if newsletter_consent is None:
            del self.fields["subscribe"]  # the newsletter takes no signups just now
        else:
            self.fields["subscribe"].label = newsletter_consent.text
            self.initial.setdefault("consent_version", newsletter_consent.version)
        if captcha:
            self.fields["captcha"] = identifying_code_field()

    @property
    def consent_wording(self) -> str:
        return str(self.fields["consent"].label)

    def clean_body(self) -> str:
        # Browsers count a line break as one character and send it as two (CR LF):
        # count what the reader saw, and store it as typed with LF line breaks.
        body = self.cleaned_data["body"].replace("\r\n", "\n").replace("\r", "\n")
        if len(body) > self.body_limit:
            raise forms.ValidationError(
                _("Please shorten your message to %(limit)s characters; it has %(length)s.")
                % {"limit": f"{self.body_limit:,}", "length": f"{len(body):,}"}
            )
        if "\x00" in body:
            raise forms.ValidationError(_("Your message holds characters we cannot store."))
        return body

    def clean_link(self) -> str:
        link = self.cleaned_data.get("link", "")
        if link and not link.lower().startswith(("http://", "https://")):
            raise forms.ValidationError(_("Enter a web address that starts with https://."))
        return link

    def clean_attachment(self):
        upload = self.cleaned_data.get("attachment")
        reference = str(self.data.get("held_attachment", ""))[:2000]
        if reference and not upload:  # the file kept from the last try (held_files.py)
            upload = held_files.take(reference)
            if upload is None:
                raise forms.ValidationError(
                    _("The file you attached before is no longer kept: please choose it again.")
                )
        elif reference:  # a file chosen now replaces the one kept
            held_files.take(reference)
        if not upload:
            return None
        limit = attachment_max_bytes()
        if upload.size > limit:
            raise forms.ValidationError(
                _("The file is %(size)s; the most we take is %(limit)s.")
                % {"size": filesizeformat(upload.size), "limit": filesizeformat(limit)}
            )
        if upload.size == 0:
            raise forms.ValidationError(_("The file is empty."))
        kind = files.sniff(upload)
        if kind is None or files.extension(upload.name) not in kind.extensions:
            raise forms.ValidationError(
                _("We take only these kinds of file: %(types)s. This one is not one of them.")
                % {"types": files.allowed_labels()}
            )
        if kind is files.DOCX:
            refusal = files.docx_refusal(upload)
            if refusal:
                limits = {
                    "mb": settings.INBOX_DOCX_MAX_UNPACKED_MB,
                    "n": files.DOCX_MAX_ENTRIES,
                }
                raise forms.ValidationError(
                    DOCX_REFUSALS[refusal], code=f"docx_{refusal}", params=limits
                )
        upload.sniffed = kind
        return upload

    def clean(self) -> dict:
        data = super().clean()
        if (
            self.kind == Ticket.Kind.CONTRIBUTION
            and not data.get("body")
            and not data.get("attachment")
            and "body" not in self.errors
            and "attachment" not in self.errors
        ):
            self.add_error(
                "body", _("Write your story in the box, or attach it as a file: either is enough.")
            )
        if data.get("subscribe") and data.get("consent_version") != self.newsletter_consent.version:
            self.add_error(
                "subscribe",
                _(
                    "Our newsletter's consent text changed while the form was open: please read it and tick the box again."
                ),
            )
        return data

    def full_clean(self) -> None:
        super().full_clean()
        if not self.is_bound or "held_attachment" not in self.fields:
            return
        # A good file on a form that failed elsewhere is kept and offered again.
        upload = self.cleaned_data.get("attachment")
        reference = held_files.hold(upload) if upload and self._errors else ""
        self.held_attachment_name = PurePath(upload.name or "").name[:150] if reference else ""
        self.data = self.data.copy()
        self.data["held_attachment"] = reference

    @property
    def file_not_kept(self) -> str:
        """Return the name of a file the reader chose that this page cannot give back, or ""."""
        upload = (
            self.files.get("attachment") if self.is_bound and "attachment" in self.fields else None
        )
        return upload.name[:150] if upload and self.errors and not self.held_attachment_name else ""

    def profile(self) -> Profile:
        data = self.cleaned_data
        return Profile(
            name=data["name"],
            organisation=data["organisation"],
            country=data["country"],
            # The newsletter comes in the language of the page they wrote from (issue 14).
            language=reader_language(translation.get_language()),
        )
