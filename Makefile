# Two commands for a newcomer: `make run` and `make test`. Only python3 (3.11+) and make needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
export PORT

.PHONY: install prepare run dev test lint format lock clean

$(BIN)/.installed: requirements.lock requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock
	touch $@

install: $(BIN)/.installed

# What run and dev share: migrate, collect static files, seed the demo tutor (empty
# database only), print where to go.
prepare: install
	@mkdir -p var/mail var/celery/queue var/celery/processed
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py seed_demo
	@PUBLIC_BASE_URL=$${PUBLIC_BASE_URL:-http://127.0.0.1:$(PORT)} $(BIN)/python manage.py welcome

## run: set up, then serve web (gunicorn, config/gunicorn.conf.py) + Celery worker + beat
run: prepare
	PUBLIC_BASE_URL=$${PUBLIC_BASE_URL:-http://127.0.0.1:$(PORT)} PATH="$(CURDIR)/$(BIN):$$PATH" \
		$(BIN)/honcho -f Procfile start -p $(PORT)

## dev: the same with Django's autoreloading runserver (its short listen queue resets bursts)
dev: prepare
	PUBLIC_BASE_URL=$${PUBLIC_BASE_URL:-http://127.0.0.1:$(PORT)} PATH="$(CURDIR)/$(BIN):$$PATH" \
		$(BIN)/honcho -f Procfile.dev start -p $(PORT)

## test: set up and run the whole suite (SQLite by default; DATABASE_URL/CELERY_BROKER_URL for PostgreSQL/Redis)
test: install
	$(BIN)/pytest $(PYTEST_ARGS)

## lint: ruff (lint + format check) and mypy
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## lock: re-resolve the pinned versions from pyproject.toml in a throwaway virtualenv
lock:
	rm -rf var/lockenv && $(PYTHON) -m venv var/lockenv
	var/lockenv/bin/pip install --quiet . && var/lockenv/bin/pip uninstall --quiet -y tutoring
	(echo '# Exact versions for production and `make run` (regenerate: make lock).'; \
	 var/lockenv/bin/pip freeze) > requirements.lock
	var/lockenv/bin/pip install --quiet '.[dev]' && var/lockenv/bin/pip uninstall --quiet -y tutoring
	(echo '# Test and lint tools on top of requirements.lock (regenerate: make lock).'; \
	 echo '-r requirements.lock'; \
	 var/lockenv/bin/pip freeze | grep -v -i -x -F -f requirements.lock) > requirements-dev.lock
	rm -rf var/lockenv

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .mypy_cache .ruff_cache
