# Two commands do all set-up on a fresh machine with Python 3.11+:
#   make demo   # venv, database, sample data, this week's issue sent to var/outbox/
#   make test   # venv, the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: catalogues demo test serve worker beat bench bench-bilingual bench-scale lint clean

# The venv is (re)built when missing or when pyproject.toml is newer than the last install.
$(STAMP): pyproject.toml
	@# Debian's flite speaks the audio identifying code; as root, install it when missing.
	@command -v flite >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends flite \
	  || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends flite)) ; } \
	  || echo "note: install Debian's flite (apt-get install flite) for the audio identifying code"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

# Translation catalogues are compiled by Babel from the venv (no GNU gettext needed).
catalogues: $(STAMP)
	$(BIN)/python manage.py compile_catalogues

demo: catalogues
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo

test: catalogues
	$(BIN)/python -m pytest $(PYTEST_ARGS)

serve: catalogues
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py runserver $(or $(PORT),8000)

worker: $(STAMP)
	$(BIN)/celery -A config worker --loglevel=INFO

beat: $(STAMP)
	$(BIN)/celery -A config beat --loglevel=INFO

bench: $(STAMP)
	$(BIN)/python -m bench

# Issue 14: readers split across two languages against one language (bench/BILINGUAL.md).
bench-bilingual: catalogues
	$(BIN)/python -m bench.bilingual

# The whole service at 1,000,000 readers (issue 16): writes bench/SCALE.md. READERS=20000 is quick.
bench-scale: $(STAMP)
	$(BIN)/python -m bench.scale --readers $(or $(READERS),1000000)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var
