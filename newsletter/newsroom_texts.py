"""The newsroom's own words as shipped, so that makemessages puts them in the catalogues.

The newsletter's name, From name, description and postal address are data (admin
edits them), shown in each reader's language through Newsletter.display_* (issue 14):
the catalogue translates the texts listed here. A newsroom that changes one adds its
new wording here and to locale/*/LC_MESSAGES/django.po; until then it shows as typed.
"""

from django.utils.translation import gettext_noop

NEWSROOM_TEXTS = (
    gettext_noop("Belt & Road Weekly"),
    gettext_noop("The week's news from the Belt & Road portal: abstracts and links, every Friday."),
    gettext_noop("Belt & Road Weekly newsroom\n1 Example Road, Beijing 100000, China"),
)
