"""Forms of the issue admin's own pages: preview variant, test send, schedule, compile."""

from __future__ import annotations

import re

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _

from articles.models import Category
from newsletter.digest import Digest
from newsletter.models import IssueItem
from newsletter.weeks import IsoWeek

TEST_RECIPIENTS_MAX = 20


class VariantForm(forms.Form):
    """The sections a reader chose; none ticked is a reader who takes every section."""

    categories = forms.ModelMultipleChoiceField(
        label=_("Reader's sections"),
        queryset=Category.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("Tick none for a reader who chose none: they get every section."),
    )

    # Issue 14: variants are language x sections; each edition previews and tests apart.
    language = forms.ChoiceField(label=_("Edition"), choices=(), required=False)

    def __init__(self, *args, digest: Digest, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["categories"].queryset = Category.objects.filter(
            pk__in=digest.section_keys
        ).order_by("position", "name")
        self.fields["language"].choices = settings.LANGUAGES

    def category_ids(self) -> list[int]:
        return [c.pk for c in self.cleaned_data.get("categories") or []]

    def language_code(self) -> str:
        return (
            self.cleaned_data.get("language") if self.is_bound else ""
        ) or settings.LANGUAGE_CODE


class SendTestForm(VariantForm):
    to = forms.CharField(
        label=_("Send to"),
        widget=forms.Textarea(attrs={"rows": 3, "cols": 50}),
        help_text=_("One or more addresses, separated by commas or new lines (at most %(n)s).")
        % {"n": TEST_RECIPIENTS_MAX},
    )
    field_order = ["to", "language", "categories"]

    def clean_to(self) -> list[str]:
        addresses: dict[str, str] = {}
        for address in filter(None, re.split(r"[\s,;]+", self.cleaned_data["to"])):
            try:
                validate_email(address)
            except ValidationError:
                raise ValidationError(
                    _("%(address)s is not a valid email address."), params={"address": address}
                ) from None
            addresses.setdefault(address.lower(), address)
        if not addresses:
            raise ValidationError(_("Give at least one address."))
        if len(addresses) > TEST_RECIPIENTS_MAX:
            raise ValidationError(
                _("A test goes to at most %(n)s addresses; send the issue for everyone."),
                params={"n": TEST_RECIPIENTS_MAX},
            )
        return list(addresses.values())


class ScheduleForm(forms.Form):
    """The send time, read in the newsletter's time zone (the view activates it)."""

    at = forms.DateTimeField(
        label=_("Send at"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )


class CompileForm(forms.Form):
    week = forms.CharField(
        label=_("Week"),
        max_length=8,
        help_text=_("ISO week, e.g. 2026-W48. Re-compiling a draft keeps the editors' work."),
    )

    def clean_week(self) -> IsoWeek:
        try:
            return IsoWeek.parse(self.cleaned_data["week"])
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class LabelledCheckbox(forms.CheckboxInput):
    """A checkbox that says what it does beside it, not only in the column's header."""

    def __init__(self, label: str, attrs: dict | None = None) -> None:
        super().__init__(attrs)
        self.label = label

    def render(self, name, value, attrs=None, renderer=None) -> str:
        from django.utils.html import format_html

        box = super().render(name, value, attrs, renderer)
        return format_html('<label class="issue-flag">{} <span>{}</span></label>', box, self.label)


class IssueItemForm(forms.ModelForm):
    """One row of the issue page: the abstract box holds the article's own abstract to edit.

    Left as it is, nothing is overridden (a later fix to the article still shows);
    edited, it becomes this issue's abstract; emptied, the article's own is used again.
    """

    class Meta:
        model = IssueItem
        fields = ["position", "section", "article", "pinned", "removed", "abstract_override"]
        widgets = {
            "pinned": LabelledCheckbox(_("Pinned")),
            "removed": LabelledCheckbox(_("Removed")),
        }
        labels = {"abstract_override": _("Abstract")}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields.get("abstract_override")
        if field is not None and self.instance.pk and not self.instance.abstract_override:
            self.initial["abstract_override"] = self.instance.article.abstract

    def clean_abstract_override(self) -> str:
        value = self.cleaned_data.get("abstract_override", "")
        article = self.cleaned_data.get("article") or (
            self.instance.article if self.instance.article_id else None
        )
        if article is not None and " ".join(value.split()) == " ".join(article.abstract.split()):
            return ""
        return value
