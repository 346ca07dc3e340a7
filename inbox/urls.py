from django.urls import path

from inbox import views

app_name = "inbox"

urlpatterns = [
    path("ask/", views.ask, name="ask"),
    path("ask/embed/", views.ask_embed, name="ask-embed"),
    path("write-to-us/", views.write, name="write"),
    path("write-to-us/embed/", views.write_embed, name="write-embed"),
]
