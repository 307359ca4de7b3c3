# Two commands for a newcomer: `make run` and `make test`. Only python3 (3.11+) and make needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
export PORT

.PHONY: install prepare run dev test lint check-deploy format lock clean

# requirements-dev.lock is the whole environment (the runtime pins of requirements.lock
# plus the tools), every file checked against its hash.
$(BIN)/.installed: requirements.lock requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
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

## check-deploy: docker-compose.yml against the compose spec, deploy/Caddyfile through caddy
check-deploy: install
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
	@mkdir -p var/caddy
	XDG_DATA_HOME=var/caddy XDG_CONFIG_HOME=var/caddy \
		$(BIN)/caddy validate --config deploy/Caddyfile --adapter caddyfile

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## lock: re-resolve requirements*.lock (hashed) from pyproject.toml; pins that still fit
## are kept, so adding a dependency moves nothing else. LOCK_ARGS=--upgrade moves them all,
## LOCK_ARGS="--upgrade-package django" one.
LOCK_ARGS ?=
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --quiet --universal --python-version 3.11 \
	--generate-hashes --custom-compile-command "make lock" $(LOCK_ARGS)
lock: install
	$(UV_COMPILE) -o requirements.lock
	$(UV_COMPILE) --extra dev -c requirements.lock -o requirements-dev.lock

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .mypy_cache .ruff_cache
