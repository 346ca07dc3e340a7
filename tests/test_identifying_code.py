"""The identifying code: Enter sends the form, Reload works without JavaScript, and it can be heard."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.conftest import IN_CI
from tests.inbox_steps import ASK, WRITE
from tests.reader_steps import SUBSCRIBE

pytestmark = pytest.mark.django_db


def _submit_buttons(page: str) -> list[str]:
    form = re.search(r"<form[^>]*method=\"post\".*?</form>", page, re.S).group(0)
    return re.findall(r"<button[^>]*type=\"submit\"[^>]*>", form)


@pytest.mark.parametrize("url", [SUBSCRIBE, ASK, WRITE])
def test_the_first_submit_button_sends_the_form_not_reload(client, settings, url):
    # Enter and the Go key press a form's first submit button (HTML's implicit submission).
    settings.NEWSLETTER_CAPTCHA_ALWAYS = True
    buttons = _submit_buttons(client.get(url).content.decode())
    assert len(buttons) >= 3  # the default, Reload, and the form's own
    assert "reload_code" not in buttons[0] and "name=" not in buttons[0]
    assert 'tabindex="-1"' in buttons[0] and 'aria-hidden="true"' in buttons[0]
    assert any('name="reload_code"' in button for button in buttons[1:])


@pytest.mark.skipif(
    not shutil.which("flite") and not IN_CI, reason="Debian's flite is not installed here"
)
@pytest.mark.parametrize("url", [ASK, WRITE])
def test_the_code_can_be_heard(client, url):
    page = client.get(url).content.decode()
    href = re.search(r'class="code-audio" href="([^"]+)"', page).group(1)
    assert "Listen to the code" in page
    response = client.get(href)
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/wav"
    assert b"".join(response.streaming_content if response.streaming else [response.content])[:4] == b"RIFF"
