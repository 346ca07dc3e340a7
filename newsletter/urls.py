from django.urls import path
from django.views.decorators.cache import cache_page

from newsletter.views import archive, readers, sunset

app_name = "newsletter"

urlpatterns = [
    path("subscribe/", readers.subscribe, name="subscribe"),
    path("subscribe/embed/", readers.subscribe_embed, name="subscribe-embed"),
    path("confirm/<str:token>/", readers.confirm, name="confirm"),
    path("privacy/", readers.privacy, name="privacy"),
    path("unsubscribe/<str:token>/", readers.unsubscribe, name="unsubscribe"),
    path("unsubscribe/<str:token>/resubscribe/", readers.resubscribe, name="resubscribe"),
    path("unsubscribe/<str:token>/reason/", readers.leaving_reason, name="leaving-reason"),
    path("preferences/<str:token>/", readers.preferences, name="preferences"),
    path("keep/<str:token>/", sunset.keep, name="keep"),
    path("archive/", archive.archive, name="archive"),
    path("archive/<int:number>/", archive.archive_issue, name="archive-issue"),
    path("preview/<str:token>/", archive.issue_preview, name="issue-preview"),
    # Feed readers poll often; five minutes' lag on a weekly feed costs nothing.
    path("feed/", cache_page(300)(archive.IssueFeed()), name="feed"),
]
