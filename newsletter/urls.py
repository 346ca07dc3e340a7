from django.urls import path

from newsletter import views

app_name = "newsletter"

urlpatterns = [
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("preferences/<str:token>/", views.preferences, name="preferences"),
    path("archive/", views.archive, name="archive"),
    path("archive/<int:number>/", views.archive_issue, name="archive-issue"),
]
