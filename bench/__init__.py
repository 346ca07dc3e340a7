"""`make bench` (python -m bench): the sending engine side by side with django-newsletter."""
