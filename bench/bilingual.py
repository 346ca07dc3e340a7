# ruff: noqa: RUF001 - the Chinese edition's sample text uses Chinese punctuation
"""`make bench-bilingual`: the engine's rate with readers split across two languages.

    python -m bench.bilingual                 # N = 10,000, both paths, three rounds
    python -m bench.bilingual --n 2000 --rounds 1

Issue 14 makes variants language x sections: a batch with English and Chinese readers
renders each (language, sections) variant once, as it renders each set of sections
today. This measures that it costs no speed: for each path, the same issue is sent
to N readers all in English, then to N readers half in Chinese (every story has a
Chinese version), alternating, with the same two real Celery workers and stand-ins
as `make bench` (bench/__main__.py). The target: the two-language rate within 10 %
of the one-language rate. Results go to bench/BILINGUAL.md and bench/results-bilingual.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime

from bench import __main__ as harness

TARGET = 0.90  # two languages at >= 90 % of the one-language rate


def split_languages(issue) -> None:
    """Give every story of `issue` a Chinese version and every second reader Chinese."""
    from django.db import connection

    from articles.models import Article, CategoryName
    from articles.services import article_link_translation

    for item in issue.items.select_related("article", "section"):
        original = item.article
        version, _ = Article.objects.get_or_create(
            slug=f"{original.slug}-zh",
            defaults={
                "title": f"一带一路报道：港口、铁路与电网（{original.pk}）",
                "url": original.url.replace(".html", "-zh.html"),
                "source": "新华丝路",
                "published_at": original.published_at,
                "abstract": "编辑用三句话写明发生了什么、谁参与其中，以及它为何对沿线贸易至关重要。"
                * 2,
                "body": "<p>正文。</p>",
                "category": original.category,
                "status": Article.Status.PUBLISHED,
                "language": "zh-hans",
            },
        )
        if version.translation_of_id != original.pk:
            article_link_translation(article=version, original=original)
        CategoryName.objects.get_or_create(
            category=item.section, language="zh-hans", defaults={"name": "栏目"}
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE newsletter_subscriber SET language ="
            " CASE WHEN id % 2 = 0 THEN 'zh-hans' ELSE 'en' END"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bilingual")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--paths", nargs="+", default=["esp", "smtp"], choices=["esp", "smtp"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    harness.ensure_database(harness.DATABASE_URL)
    harness.setup_django()
    info = harness.machine()
    harness.say(
        f"machine: {info['cpu']}, {info['cores']} cores, load {info['load_average_at_start']}"
    )
    number = int(time.time()) % 1_000_000
    runs = []
    for path in args.paths:
        for round_ in range(args.rounds):
            # Alternate which goes first, so a busy moment on a shared machine hurts both.
            order = (1, 2) if round_ % 2 == 0 else (2, 1)
            for languages in order:
                number += 1
                harness.say(f"{path} N={args.n:,} languages={languages} round {round_ + 1}")
                run = harness.run_engine(path, args.n, number, languages=languages)
                run["languages"] = languages
                runs.append(run)
                harness.say(f"  {run['per_second']:,.0f}/s, exactly once: {run['exactly_once']}")
    summary = []
    for path in args.paths:
        rate = {
            k: statistics.median(
                r["per_second"] for r in runs if r["path"] == path and r["languages"] == k
            )
            for k in (1, 2)
        }
        cpu = {
            k: statistics.median(
                r["cpu_per_1000"] for r in runs if r["path"] == path and r["languages"] == k
            )
            for k in (1, 2)
        }
        summary.append(
            {
                "path": path,
                "n": args.n,
                "one_language_per_second": rate[1],
                "two_languages_per_second": rate[2],
                "ratio": round(rate[2] / rate[1], 3),
                "one_language_cpu_per_1000": cpu[1],
                "two_languages_cpu_per_1000": cpu[2],
                "exactly_once": all(r["exactly_once"] for r in runs if r["path"] == path),
                "meets_target": rate[2] / rate[1] >= TARGET,
            }
        )
    results = {
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m bench.bilingual " + " ".join(sys.argv[1:]),
        "machine": info,
        "rounds": args.rounds,
        "summary": summary,
        "runs": runs,
    }
    text = readme(results)
    harness.say("")
    harness.say(text)
    if not args.no_write:
        (harness.BENCH / "results-bilingual.json").write_text(json.dumps(results, indent=2) + "\n")
        (harness.BENCH / "BILINGUAL.md").write_text(text)
        harness.say("wrote bench/results-bilingual.json and bench/BILINGUAL.md")


def readme(results: dict) -> str:
    rows = "\n".join(
        f"| {s['path']} | {s['n']:,} | {s['one_language_per_second']:,.0f} | "
        f"{s['two_languages_per_second']:,.0f} | {s['ratio'] * 100:.1f} % | "
        f"{s['one_language_cpu_per_1000']:.3f} / {s['two_languages_cpu_per_1000']:.3f} | "
        f"{'yes' if s['exactly_once'] else 'NO'} | {'yes' if s['meets_target'] else 'NO'} |"
        for s in results["summary"]
    )
    machine = results["machine"]
    return f"""# Benchmark: two languages against one (issue 14)

Latest run: {results["finished_at"]} · `{results["command"]}` · {machine["cpu"]}, {machine["cores"]} cores,
load {machine["load_average_at_start"]} at start (a machine shared with other work: rates move
from run to run; each figure is the median of {results["rounds"]} alternating rounds).

Same issue (12 stories in 4 sections), same N readers (a third take every section, the rest
one each), two real Celery workers, the local ESP stand-in or SMTP sink. "Two languages":
every story has a Chinese version and every second reader reads Chinese, so each batch
renders twice the variants (language x sections), each once.

| path | N | one language /s | two languages /s | two / one | worker CPU s/1000 (one / two) | exactly once | within 10 % |
|---|---:|---:|---:|---:|---:|:---:|:---:|
{rows}

Why it holds: a batch reads the curation and every version of its stories in a fixed
number of queries (newsletter/digest.py `curation_read`), builds each language's edition
in memory, and renders each (language, sections) variant once per worker process (the
render cache in sending/render.py); per reader only the tokens differ, as before.
"""


if __name__ == "__main__":
    main()
