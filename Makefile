# faceguard: `make run` starts the app, `make test` runs every test. Both install first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8501

.PHONY: install run test bench bench-peers lock clean-data

install: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml tools/system-deps.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip==25.3
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -r requirements-nodeps.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	bash tools/system-deps.sh
	$(BIN)/faceguard models setup
	@touch $(STAMP)

run: install
	@mkdir -p data
	$(BIN)/streamlit run Home.py --server.address localhost --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

bench: install
	$(BIN)/python -m bench

bench-peers: install
	bash bench/peers_setup.sh
	$(BIN)/python bench/peers.py

# Re-pin requirements.txt from requirements.in in a scratch venv.
lock:
	rm -rf /tmp/faceguard-lock && $(PYTHON) -m venv /tmp/faceguard-lock
	/tmp/faceguard-lock/bin/pip install -q -r requirements.in
	(head -2 requirements.txt; /tmp/faceguard-lock/bin/pip freeze) > requirements.txt.new && mv requirements.txt.new requirements.txt

clean-data:
	rm -rf data
