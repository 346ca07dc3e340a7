"""factory-boy factories for test data."""

from __future__ import annotations

import importlib
from datetime import timedelta

import factory
from django.apps import apps as django_apps
from django.utils import timezone

from articles.models import Article, Category, Keyword
from newsletter.models import Delivery, Issue, IssueItem, Newsletter, Subscriber


def default_newsletter() -> Newsletter:
    """Return the newsletter the data migration creates (re-made after a transactional flush)."""
    newsletter = Newsletter.objects.filter(slug="belt-and-road-weekly").first()
    if newsletter is None:
        migration = importlib.import_module("newsletter.migrations.0002_belt_and_road_weekly")
        migration.create_newsletter(django_apps, None)
        newsletter = Newsletter.objects.get(slug="belt-and-road-weekly")
    return newsletter


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.LazyAttribute(lambda o: o.name.lower().replace(" ", "-").replace("&", "and"))
    position = factory.Sequence(lambda n: n)


class KeywordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Keyword
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"keyword {n}")
    slug = factory.LazyAttribute(lambda o: o.name.lower().replace(" ", "-"))


class ArticleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Article

    title = factory.Sequence(lambda n: f"Belt and Road story number {n}")
    slug = factory.Sequence(lambda n: f"story-{n}")
    url = factory.Sequence(lambda n: f"https://portal.example.com/beltandroad/story-{n}.html")
    source = "Xinhua Silk Road"
    published_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    abstract = factory.Sequence(
        lambda n: f"Abstract of story {n}: what happened and why it matters."
    )
    body = "<p>Body.</p>"
    category = factory.SubFactory(CategoryFactory)
    status = Article.Status.PUBLISHED


class SubscriberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscriber

    newsletter = factory.LazyFunction(default_newsletter)
    email = factory.Sequence(lambda n: f"reader{n}@example.com")
    name = factory.Sequence(lambda n: f"Reader {n}")
    status = Subscriber.Status.ACTIVE
    confirmed_at = factory.LazyFunction(timezone.now)


class IssueFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Issue

    newsletter = factory.LazyFunction(default_newsletter)
    number = factory.Sequence(lambda n: n + 1)
    title = factory.LazyAttribute(lambda o: f"Belt & Road Weekly No. {o.number}")
    week = "2026-W48"
    window_start = factory.LazyFunction(lambda: timezone.now() - timedelta(days=7))
    window_end = factory.LazyFunction(timezone.now)


class IssueItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = IssueItem

    issue = factory.SubFactory(IssueFactory)
    article = factory.SubFactory(ArticleFactory)
    section = factory.LazyAttribute(lambda o: o.article.category)
    position = factory.Sequence(lambda n: n)


class DeliveryFactory(factory.django.DjangoModelFactory):
    """A digest that went out: the ledger row a tracking event finds."""

    class Meta:
        model = Delivery

    issue = factory.SubFactory(
        IssueFactory, status=Issue.Status.SENT, sent_at=factory.LazyFunction(timezone.now)
    )
    subscriber = factory.SubFactory(SubscriberFactory)
    status = Delivery.Status.SENT
    sent_at = factory.LazyFunction(timezone.now)
    esp_message_id = factory.Sequence(lambda n: f"<20261127.{n}.ABCDEF@mg.example.com>")


def staff_group(name: str):
    """Return the group ("Editors" or "Publishers") the data migration creates (re-made after a flush)."""
    from django.contrib.auth.models import Group

    group = Group.objects.filter(name=name).first()
    if group is None:
        migration = importlib.import_module("newsletter.migrations.0004_editors_review_groups")
        migration.create_groups(django_apps, None)
        importlib.import_module("inbox.migrations.0001_initial").grant_groups(django_apps, None)
        group = Group.objects.get(name=name)
    return group


class StaffUserFactory(factory.django.DjangoModelFactory):
    """A staff user; pass groups=["Editors"] or ["Publishers"] for a newsroom role."""

    class Meta:
        model = "auth.User"
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"editor{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@newsroom.example.org")
    is_staff = True
    password = factory.django.Password("correct horse battery staple")

    @factory.post_generation
    def groups(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.set([staff_group(name) for name in extracted])
