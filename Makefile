# The two commands the README starts with:
#   make run   - set up .venv (what running needs), ingest ./docs, answer a sample question, serve the API and chat page
#   make test  - add the test, bench, milvus and ray extras (and Debian's chromium for the page tests), run all tests
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HASH   := $(shell cat pyproject.toml Makefile | sha1sum | cut -c1-12)
STAMP  := $(VENV)/.installed-$(HASH)
TEST_STAMP := $(VENV)/.installed-test-$(HASH)
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: install install-test browser run test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml Makefile
	# torch first, pinned, so nothing drags in a CUDA build.
	$(BIN)/pip install "torch==2.13.0"
	$(BIN)/pip install -e ".[media]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install -e ".[media,test,bench,milvus,ray]"
	touch $(TEST_STAMP)

install: $(STAMP)

install-test: $(TEST_STAMP)

# The chat page tests drive Debian's chromium through Playwright (never `playwright install`).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get install -y chromium || { $$SUDO apt-get update && $$SUDO apt-get install -y chromium; }; }

run: install
	$(BIN)/rag ingest docs
	$(BIN)/rag stats
	$(BIN)/rag ask "How do I make re-ingesting a folder fast?"
	$(BIN)/rag serve

test: install-test browser
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

bench: install-test
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) .rag
