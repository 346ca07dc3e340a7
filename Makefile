# Two commands do all set-up on a fresh machine with Python 3.11+:
#   make demo   # venv, database, sample data, this week's issue sent to var/outbox/
#   make test   # venv, the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test serve worker beat bench bench-scale lint clean

# The venv is (re)built when missing or when pyproject.toml is newer than the last install.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

serve: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py runserver $(or $(PORT),8000)

worker: $(STAMP)
	$(BIN)/celery -A config worker --loglevel=INFO

beat: $(STAMP)
	$(BIN)/celery -A config beat --loglevel=INFO

bench: $(STAMP)
	$(BIN)/python -m bench

# The whole service at 1,000,000 readers (issue 16): writes bench/SCALE.md. READERS=20000 is quick.
bench-scale: $(STAMP)
	$(BIN)/python -m bench.scale --readers $(or $(READERS),1000000)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var
