"""Steps shared by the language tests: an article's Chinese version, the English words
left on a page a Chinese reader sees."""

from __future__ import annotations

import re

from articles.models import Article
from articles.services import article_link_translation
from tests.factories import ArticleFactory

# Words a Chinese reader may meet in Latin letters: what they typed or chose, the
# address, and names that are the same in every language.
# A feed format; the language they may switch to; the share links' services, whose
# names are brands written the same in every language.
ALLOWED_LATIN = {"RSS", "English", "LinkedIn", "Facebook", "WhatsApp", "Weibo"}
_TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>|&\w+;|https?://\S+|\S+@\S+", re.S)


def english_words(html: str, *, allowed: set[str] = frozenset()) -> list[str]:
    """Return the Latin-letter words a reader sees on the page (tags, URLs, addresses left out)."""
    text = _TAGS.sub(" ", html)
    return [
        word
        for word in re.findall(r"[A-Za-z][A-Za-z'’]{2,}", text)
        if word not in ALLOWED_LATIN | set(allowed) and not word.isupper()  # codes: Q-MAG4KD
    ]


def chinese_version(article: Article, **fields) -> Article:
    """Return the Chinese version of `article`, linked to it as an editor or a feed would."""
    values = {
        "title": f"中文：{article.title}",
        "abstract": "这是一篇关于“一带一路”合作的中文报道摘要，说明发生了什么以及为何重要。",
        "url": article.url.replace(".html", "-zh.html"),
        "category": article.category,
        "published_at": article.published_at,
        "language": "zh-hans",
        **fields,
    }
    version = ArticleFactory(**values)
    article_link_translation(article=version, original=article)
    return version
