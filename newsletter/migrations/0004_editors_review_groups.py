import django.core.validators
import django.db.models.deletion
from django.db import migrations, models

# Editors curate issues and articles and send tests; Publishers also schedule, send and
# cancel (the "send_issue" permission). Neither sees readers' personal data.
EDITOR_PERMISSIONS = [
    ("articles", "view_article"),
    ("articles", "add_article"),
    ("articles", "change_article"),
    ("articles", "view_category"),
    ("articles", "change_category"),
    ("articles", "view_keyword"),
    ("articles", "add_keyword"),
    ("articles", "change_keyword"),
    ("newsletter", "view_newsletter"),
    ("newsletter", "view_issue"),
    ("newsletter", "add_issue"),
    ("newsletter", "change_issue"),
    ("newsletter", "view_issueitem"),
    ("newsletter", "add_issueitem"),
    ("newsletter", "change_issueitem"),
    ("newsletter", "delete_issueitem"),
]
GROUPS = {
    "Editors": EDITOR_PERMISSIONS,
    "Publishers": [*EDITOR_PERMISSIONS, ("newsletter", "send_issue")],
}


def create_groups(apps, schema_editor):
    # Permissions are normally made after migrate; make them now so the groups can hold them.
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in codenames:
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('newsletter', '0003_hygiene_tracking'),
        ('articles', '0001_initial'),
        ('auth', '0012_alter_user_first_name_max_length'),
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        migrations.AddField(
            model_name='newsletter',
            name='review_hours',
            field=models.PositiveSmallIntegerField(default=2, help_text='With "send unless held": hours between drafting the issue and sending it, for editors to curate it or hold it.', validators=[django.core.validators.MaxValueValidator(72)], verbose_name='review time (hours)'),
        ),
        migrations.CreateModel(
            name='EmptyWeek',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('week', models.CharField(max_length=8, verbose_name='week')),
                ('noticed_at', models.DateTimeField(auto_now_add=True, verbose_name='noticed')),
                ('newsletter', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='empty_weeks', to='newsletter.newsletter')),
            ],
            options={
                'verbose_name': 'empty week',
                'verbose_name_plural': 'empty weeks',
                'constraints': [models.UniqueConstraint(fields=('newsletter', 'week'), name='empty_week_unique')],
            },
        ),
        migrations.RunPython(create_groups, remove_groups),
    ]
