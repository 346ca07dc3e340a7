from datetime import time

from django.db import migrations

CONSENT_TEXT = (
    "Yes, send me Belt & Road Weekly by email: the week's Belt & Road news with abstracts and links, "
    "once a week. I can unsubscribe at any time with the link in every issue. My email address and "
    "the details I give are used only to send and improve this newsletter, as the privacy notice explains."
)


def create_newsletter(apps, schema_editor):
    Newsletter = apps.get_model("newsletter", "Newsletter")
    ConsentText = apps.get_model("newsletter", "ConsentText")
    newsletter, created = Newsletter.objects.get_or_create(
        slug="belt-and-road-weekly",
        defaults={
            "name": "Belt & Road Weekly",
            "description": "The week's news from the Belt & Road portal: abstracts and links, every Friday.",
            "from_name": "Belt & Road Weekly",
            "from_email": "weekly@news.example.org",
            "reply_to": "silkroadweekly@news.example.org",
            "postal_address": "Belt & Road Weekly newsroom\n1 Example Road, Beijing 100000, China",
            "send_weekday": 4,
            "send_time": time(9, 0),
            "timezone": "Asia/Shanghai",
        },
    )
    if created:
        ConsentText.objects.create(newsletter=newsletter, version=1, text=CONSENT_TEXT)


def remove_newsletter(apps, schema_editor):
    Newsletter = apps.get_model("newsletter", "Newsletter")
    Newsletter.objects.filter(slug="belt-and-road-weekly", issues__isnull=True, subscribers__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("newsletter", "0001_initial")]

    operations = [migrations.RunPython(create_newsletter, remove_newsletter)]
