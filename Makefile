# The two commands of the README:  make demo  (set up + encode/decode the bundled example + quality table + picture)
#                                  make test  (set up + lint + tests)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXAMPLE := examples/astronaut_synthetic_canon.dng
OUT := demo_out

.PHONY: demo test bench acceptance clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0      # the CPU wheel on local disk; an unpinned torch pulls CUDA
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: $(STAMP)
	@mkdir -p $(OUT)
	$(BIN)/invisp encode $(EXAMPLE) -o $(OUT)/example.jpg --force
	$(BIN)/invisp decode $(OUT)/example.jpg -o $(OUT)/example.dng --force
	$(BIN)/invisp info $(OUT)/example.jpg
	$(BIN)/invisp compare $(EXAMPLE) $(OUT)/example.dng --jpeg $(OUT)/example.jpg
	$(BIN)/python scripts/demo_figure.py $(EXAMPLE) $(OUT)/example.jpg $(OUT)/example.dng -o $(OUT)/example_side_by_side.png

test: $(STAMP)
	$(BIN)/ruff check invisp_cli tests
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/invisp bench ../shared/data/raw --quality 50,70,90,95 --out docs/bench

acceptance: $(STAMP)
	$(BIN)/python ../shared/tools/acceptance.py

clean:
	rm -rf $(OUT) bench_out .pytest_cache
