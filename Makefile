# Jobs: `make run` to try it, `make test` to test it. See README.md.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: install run test test-fast lint bench chaos clean

$(VENV)/.installed: requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	@touch $@

install: $(VENV)/.installed

## Migrate, load the demo jobs, print the admin login, serve with a worker and beat on PORT (default 8000).
## A development server: DEBUG on (unless DEBUG is set), so no SECRET_KEY is needed.
run: export DEBUG ?= true
run: export PORT ?= 8000
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py import_jobs demo/jobs.yaml
	$(BIN)/python manage.py ensure_admin
	bash scripts/run.sh

## The whole suite on the embedded default (or on PostgreSQL + Redis when
## DATABASE_URL and CELERY_BROKER_URL are set).
test: install
	bash scripts/test.sh

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/pip install --quiet -r bench/requirements.txt
	$(BIN)/python bench/run.py $(BENCH_ARGS)

## Kill workers, restart Redis and PostgreSQL, run three beats (needs both services on 127.0.0.1, root).
chaos: install
	$(BIN)/python -m chaos.run

clean:
	rm -rf var/test var/test-artifacts
