"""Forms readers fill in: subscribe, preferences, change of address, pause, erase; admin import.

Every text field refuses line breaks and control characters, so nothing a reader
types can reach an email header; addresses are normalised (case, spaces, IDN
domains) before they are validated or compared.
"""

from __future__ import annotations

import re
from functools import lru_cache

from django import forms
from django.conf import settings
from django.core.validators import EmailValidator
from django.forms.utils import flatatt
from django.template.defaultfilters import filesizeformat
from django.utils import translation
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django_countries import countries

from articles.languages import reader_language
from newsletter.abuse import TrapFields, identifying_code_field
from newsletter.models import ConsentText, LeavingReason, Newsletter
from newsletter.selectors.subscribers import categories_offered
from newsletter.services.subscribers import PAUSE_WEEKS, Profile
from newsletter.suppression import normalise_email

# Bidi overrides can make text read differently from what it is (spoofed names).
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


# Unicode's Cc (C0, DEL, C1), Zl and Zp, and the bidi overrides, as one class: a regex
# search is a hundred times faster than asking unicodedata about every character, and a
# CSV import checks four fields of a million rows.
_NOT_ON_ONE_LINE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029" + "".join(sorted(_BIDI_CONTROLS)) + "]"
)


def has_control_characters(value: str) -> bool:
    """Whether `value` holds CR, LF, tab, another control character or a bidi override."""
    return _NOT_ON_ONE_LINE.search(value) is not None


class OneLineField(forms.CharField):
    """Text on one line: trimmed, and refused when it holds a line break or control character."""

    default_error_messages = {
        "one_line": _("Please write this on one line, without line breaks or control characters.")
    }

    def validate(self, value: str) -> None:
        super().validate(value)
        if value and has_control_characters(value):
            raise forms.ValidationError(self.error_messages["one_line"], code="one_line")


class ReaderEmailField(forms.EmailField):
    """An address, normalised before it is checked: "  Li@Bücher.DE " becomes "li@xn--bcher-kva.de"."""

    default_error_messages = {
        "invalid": _("Enter a valid email address, like name@example.com."),
        "one_line": _("An email address cannot contain line breaks or control characters."),
    }
    default_validators = [
        EmailValidator(message=_("Enter a valid email address, like name@example.com."))
    ]

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("max_length", 254)
        kwargs.setdefault("label", _("Email address"))
        super().__init__(**kwargs)
        self.widget.attrs.update(
            {"autocomplete": "email", "inputmode": "email", "spellcheck": "false"}
        )

    def to_python(self, value: str | None) -> str:
        value = super().to_python(value)
        if value and has_control_characters(value):
            raise forms.ValidationError(self.error_messages["one_line"], code="one_line")
        return normalise_email(value) if value else value

    def clean(self, value):
        # A raw value with CR/LF is refused before any normalising could hide it.
        if isinstance(value, str) and ("\r" in value or "\n" in value):
            raise forms.ValidationError(self.error_messages["one_line"], code="one_line")
        return super().clean(value)


class CategoriesField(forms.ModelMultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", _("Sections"))
        kwargs.setdefault(
            "help_text", _("Tick the sections you want, or none to receive every section.")
        )
        kwargs.setdefault(
            "error_messages",
            {
                "invalid_choice": _("%(value)s is not one of our sections; choose from the list."),
                "invalid_pk_value": _("%(pk)s is not one of our sections; choose from the list."),
            },
        )
        super().__init__(queryset=kwargs.pop("queryset"), **kwargs)

    def label_from_instance(self, obj) -> str:
        return obj.name_in(translation.get_language())  # issue 14: the page's language


def country_choices() -> list[tuple[str, str]]:
    return [("", _("— Choose your country or region —")), *countries]


@lru_cache(maxsize=16)
def _country_options(language: str) -> str:
    with translation.override(language):
        return "\n".join(
            f'<option value="{escape(code)}">{escape(name)}</option>'
            for code, name in country_choices()
        )


class CountrySelect(forms.Select):
    """The country <select>, its 250 options written once per language.

    Django renders each option through two templates of its own: for this list that
    was half the CPU of showing the signup form, the page a surge of sign-ups loads
    first. Only which option is selected differs from one render to the next.
    """

    def render(self, name, value, attrs=None, renderer=None) -> str:
        final = self.build_attrs(self.attrs, attrs)
        chosen = f'<option value="{escape(value or "")}">'
        options = _country_options(translation.get_language() or settings.LANGUAGE_CODE)
        options = options.replace(chosen, chosen[:-1] + " selected>", 1)
        return mark_safe(f'<select name="{escape(name)}"{flatatt(final)}>\n{options}\n</select>')  # noqa: S308 - every value escaped above


class ProfileForm(forms.Form):
    """The details a reader gives: name, organisation, country and sections."""

    name = OneLineField(label=_("Name"), max_length=100, required=False)
    organisation = OneLineField(label=_("Organisation"), max_length=150, required=False)
    country = forms.ChoiceField(
        label=_("Country or region"),
        choices=country_choices,
        required=False,
        widget=CountrySelect,
    )

    def __init__(self, *args, newsletter: Newsletter, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["name"].widget.attrs["autocomplete"] = "name"
        self.fields["organisation"].widget.attrs["autocomplete"] = "organization"
        self.fields["country"].widget.attrs["autocomplete"] = "country"
        self.fields["categories"] = CategoriesField(
            queryset=categories_offered(newsletter=newsletter)
        )
        # Issue 14: the edition the reader gets. Each language is named in itself
        # ("English", "简体中文"), as a reader looks for their own.
        self.fields["language"] = forms.ChoiceField(
            label=_("Language of your newsletter"),
            choices=settings.LANGUAGES,
            widget=forms.RadioSelect,
            required=False,
            error_messages={"invalid_choice": _("Choose one of the languages listed.")},
        )

    def clean_language(self) -> str:
        # Left unset (an old form, the embed snippet): the language of the page in front of them.
        return self.cleaned_data.get("language") or reader_language(translation.get_language())

    def profile(self) -> Profile:
        data = self.cleaned_data
        return Profile(
            name=data["name"],
            organisation=data["organisation"],
            country=data["country"],
            categories=tuple(data["categories"]),
            language=data["language"],
        )


class SubscribeForm(TrapFields, ProfileForm):
    """The subscription form; field order is the order on the page."""

    email = ReaderEmailField()
    consent = forms.BooleanField(
        required=True,
        error_messages={
            "required": _("Please tick the box to agree, or we cannot send the newsletter.")
        },
    )
    consent_version = forms.IntegerField(widget=forms.HiddenInput)

    field_order = ["email", "name", "organisation", "country", "categories", "language", "consent"]

    def __init__(
        self,
        *args,
        newsletter: Newsletter,
        consent_text: ConsentText,
        captcha: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(*args, newsletter=newsletter, **kwargs)
        self.consent_text = consent_text
        self.fields["email"].widget.attrs["required"] = True
        self.fields["consent"].label = consent_text.text
        self.initial.setdefault("consent_version", consent_text.version)
        if captcha:
            self.fields["captcha"] = identifying_code_field()
        self.order_fields(self.field_order)

    def clean_consent_version(self) -> int:
        version = self.cleaned_data["consent_version"]
        if version != self.consent_text.version:
            raise forms.ValidationError(
                _(
                    "Our consent text changed while the form was open: please read it and tick the box again."
                )
            )
        return version


class EmailChangeForm(forms.Form):
    email = ReaderEmailField(label=_("New email address"))


class PauseForm(forms.Form):
    weeks = forms.TypedChoiceField(
        coerce=int,
        choices=[(weeks, _("%(weeks)s weeks") % {"weeks": weeks}) for weeks in PAUSE_WEEKS],
        label=_("Pause for"),
    )


class EraseForm(forms.Form):
    confirm = forms.BooleanField(
        required=True,
        label=_("I understand that my details and history are deleted for good."),
        error_messages={"required": _("Tick the box to confirm that we should erase your data.")},
    )


class LeavingReasonForm(forms.Form):
    """ "Why are you leaving?": optional, one of four reasons and/or the reader's own words."""

    reason = forms.ChoiceField(
        label=_("Why are you leaving?"),
        choices=LeavingReason.Reason.choices,
        widget=forms.RadioSelect,
        required=False,
    )
    comment = forms.CharField(
        label=_("Anything else you would like to tell the editors?"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=1000,
        required=False,
    )

    def clean(self) -> dict:
        data = super().clean()
        if not data.get("reason") and not (data.get("comment") or "").strip():
            raise forms.ValidationError(_("Choose a reason or write a few words, then send."))
        return data


class SubscriberImportForm(forms.Form):
    """The admin's CSV import: the same checks as import_subscribers."""

    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "UTF-8, with a header row. Columns: email (required), name, organisation, "
            "country (ISO code), categories (slugs or names separated by ';')."
        ),
    )
    newsletter = forms.ModelChoiceField(queryset=Newsletter.objects.all(), label=_("Newsletter"))
    prior_consent = OneLineField(
        required=False,
        max_length=300,
        label=_("Prior consent"),
        help_text=_(
            "Only if these readers already agreed to receive the newsletter: say where and "
            "when (e.g. “Signed up at the Boao Forum stand, 12 March 2026”). They are then "
            "imported as active and this note is kept with their consent record. Leave empty "
            "to import them as pending and send each a confirmation email."
        ),
    )
    dry_run = forms.BooleanField(required=False, label=_("Only check the file; import nothing"))

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = settings.NEWSLETTER_IMPORT_MAX_MB * 1024 * 1024
        if upload.size > limit:
            raise forms.ValidationError(
                _(
                    "The file is %(size)s; an import takes at most %(limit)s "
                    "(NEWSLETTER_IMPORT_MAX_MB). Split it into smaller files and import each."
                )
                % {"size": filesizeformat(upload.size), "limit": filesizeformat(limit)}
            )
        return upload


    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        newsletters = list(Newsletter.objects.all()[:2])
        if len(newsletters) == 1:  # nothing to choose: choose it
            self.fields["newsletter"].initial = newsletters[0].pk
