"""Never clipped: a busy week's digest stays under 100 KB in every variant, the rest of a
long section is one line linking to the issue online, and an issue too large is refused."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime
from html import unescape

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from newsletter.models import Delivery, Issue
from newsletter.selectors.issues import DIGEST_MAX_BYTES, issue_digest_size, issue_preview
from newsletter.services.issues import IssueNotSendable, issue_schedule, issue_start_sending
from tests.factories import (
    ArticleFactory,
    CategoryFactory,
    IssueFactory,
    IssueItemFactory,
    KeywordFactory,
    StaffUserFactory,
    SubscriberFactory,
)
from tests.language_steps import chinese_version

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("site")]
NOW = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
SECTIONS = ["Trade", "Finance", "Energy", "Infrastructure"]
ABSTRACT = (
    "The agreement signed on Thursday covers customs clearance, rail freight capacity and "
    "the financing of two new logistics hubs along the corridor, officials said, adding "
    "that the first trains under the new schedule would leave before the end of the "
    "month. Analysts expect trade volumes on the route to grow by a fifth next year, "
    "driven by electronics, machinery and agricultural exports to Central Asia and Europe."
)
CHINESE_ABSTRACT = (
    "周四签署的协议涵盖通关、铁路货运能力以及沿线两个新物流枢纽的融资。官员表示，"
    "按新时刻表运行的首批列车将在月底前发车。分析人士预计该线路明年贸易量将增长五分之一。"
)


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def busy_week() -> Issue:
    """80 articles over four sections, each with keywords and related reading."""
    issue = IssueFactory(number=9, week="2026-W48")
    keywords = [KeywordFactory(name=f"topic {n}") for n in range(12)]
    for s, name in enumerate(SECTIONS):
        category = CategoryFactory(name=name, slug=name.lower(), position=s)
        for n in range(20):
            article = ArticleFactory(
                title=f"{name} story {n}: corridor partners sign new cooperation deal",
                category=category,
                abstract=ABSTRACT,
            )
            article.keywords.set(keywords[(s + n) % 12 : (s + n) % 12 + 3])
            IssueItemFactory(issue=issue, article=article, position=n)
    for n in range(30):  # older articles for related reading
        ArticleFactory(published_at=datetime(2026, 11, 1, tzinfo=UTC)).keywords.set(
            keywords[n % 12 : n % 12 + 2]
        )
    return issue


def variants(issue: Issue):
    ids = sorted(set(issue.items.values_list("section_id", flat=True)))
    for size in range(len(ids) + 1):
        yield from itertools.combinations(ids, size)


def in_chinese_too(issue: Issue, abstract: str) -> None:
    """Give every story of `issue` a Chinese version with `abstract`."""
    for item in issue.items.select_related("article"):
        chinese_version(item.article, abstract=abstract)


def test_a_busy_week_fits_every_variant_under_100_kb_with_its_unsubscribe_link(busy_week):
    in_chinese_too(busy_week, CHINESE_ABSTRACT)
    seen = 0
    for language, unsubscribe in (("en", "Unsubscribe"), ("zh-hans", "退订")):
        for chosen in variants(busy_week):
            email = issue_preview(issue=busy_week, categories=chosen, language=language).email
            assert len(email.html.encode()) <= DIGEST_MAX_BYTES, (language, chosen)
            assert "/newsletter/unsubscribe/" in email.html and unsubscribe in email.html
            seen += 1
    # In each language: none chosen (every section) and each of the 15 combinations.
    assert seen == 32


def test_a_chinese_edition_over_100_kb_is_measured_and_named_though_the_english_fits(
    busy_week, run_on_commit
):
    # A long Chinese abstract: three bytes a character, the English edition is unchanged.
    in_chinese_too(busy_week, CHINESE_ABSTRACT * 5)
    english = issue_preview(issue=busy_week).email.html
    chinese = issue_preview(issue=busy_week, language="zh-hans").email.html
    assert len(english.encode()) <= DIGEST_MAX_BYTES < len(chinese.encode())
    size = issue_digest_size(issue=busy_week)
    assert size.html_bytes == len(chinese.encode())
    SubscriberFactory(language="zh-hans")
    with pytest.raises(IssueNotSendable) as refused, run_on_commit():
        issue_start_sending(issue=busy_week)
    assert (
        "the variant with every section of the 简体中文 edition: Trade, Finance, Energy, Infrastructure is"
        in str(refused.value)
    ) and f"{size.over_kb} KB over the 100 KB limit" in str(refused.value)
    assert not Delivery.objects.exists() and mail.outbox == []
    # Fewer stories per section, and the Chinese reader gets the whole footer.
    busy_week.section_cap = 6
    busy_week.save()
    with run_on_commit():
        issue_start_sending(issue=busy_week)
    (message,) = mail.outbox
    html = message.alternatives[0][0]
    assert len(html.encode()) <= DIGEST_MAX_BYTES and "退订" in html


def test_the_rest_of_a_long_section_is_one_line_linking_to_the_issue_online(busy_week, client):
    email = issue_preview(issue=busy_week).email
    web = "https://weekly.example.org/newsletter/archive/9/"
    trade = busy_week.items.filter(article__category__name="Trade").first().section_id
    more = f'<a href="{web}#section-{trade}"'
    assert more in email.html
    assert "10 more Trade stories in this issue online →" in unescape(email.html)
    assert f"10 more Trade stories in this issue online: {web}#section-{trade}" in email.text
    assert "Trade story 9:" in email.text and "Trade story 10:" not in email.text
    # The archive page has the whole section, under the anchor the line points to.
    Issue.objects.filter(pk=busy_week.pk).update(status=Issue.Status.SENT, sent_at=NOW)
    page = client.get(reverse("newsletter:archive-issue", args=[9])).content.decode()
    assert f'id="section-{trade}"' in page
    assert "Trade story 19:" in page


def test_editors_change_the_cap_per_issue_and_per_newsletter(busy_week):
    busy_week.newsletter.section_cap = 4
    busy_week.newsletter.save()
    text = issue_preview(issue=busy_week).email.text
    assert "16 more Energy stories in this issue online" in text
    busy_week.section_cap = 19
    busy_week.save()
    text = issue_preview(issue=busy_week).email.text
    assert "1 more Energy story in this issue online" in text
    busy_week.section_cap = 20
    busy_week.save()
    assert "more Energy" not in issue_preview(issue=busy_week).email.text


def test_an_issue_over_100_kb_cannot_be_sent_or_scheduled_and_the_message_says_by_how_much(
    busy_week, run_on_commit
):
    SubscriberFactory()
    busy_week.section_cap = 100
    busy_week.save()
    size = issue_digest_size(issue=busy_week)
    assert size.html_bytes > DIGEST_MAX_BYTES
    pattern = (
        r"No\. 9 cannot be (sent|scheduled): the variant with every section: Trade, Finance, "
        r"Energy, Infrastructure is \d+\.\d KB of HTML, (\d+\.\d) KB over the 100 KB limit"
    )
    with pytest.raises(IssueNotSendable, match=pattern) as refused, run_on_commit():
        issue_start_sending(issue=busy_week)
    over = float(re.search(pattern, str(refused.value)).group(2))
    assert over == pytest.approx((size.html_bytes - DIGEST_MAX_BYTES) / 1024, abs=0.1)
    with pytest.raises(IssueNotSendable, match=pattern):
        issue_schedule(issue=busy_week, at=datetime(2026, 11, 28, tzinfo=UTC))
    busy_week.refresh_from_db()
    assert (busy_week.status, busy_week.scheduled_at) == ("draft", None)
    assert not Delivery.objects.exists() and mail.outbox == []
    # Trimmed back to the cap, it goes.
    busy_week.section_cap = None
    busy_week.save()
    with run_on_commit():
        issue_start_sending(issue=busy_week)
    assert len(mail.outbox) == 1


def test_the_issue_page_shows_the_size_meter(busy_week, client):
    client.force_login(StaffUserFactory(username="amina", groups=["Editors"]))
    page = client.get(reverse("admin:newsletter_issue_change", args=[busy_week.pk]))
    shown = " ".join(unescape(re.sub(r"<[^>]+>", " ", page.content.decode())).split())
    size = issue_digest_size(issue=busy_week)
    assert (
        f"Largest email: {size.kb} KB of HTML (the variant with every section: Trade, Finance"
        in shown
    )
    assert "against a limit of 100 KB" in shown
    assert "too large" not in shown
    busy_week.section_cap = 100
    busy_week.save()
    page = client.get(reverse("admin:newsletter_issue_change", args=[busy_week.pk]))
    shown = " ".join(unescape(re.sub(r"<[^>]+>", " ", page.content.decode())).split())
    assert "KB too large: it cannot be sent." in shown
