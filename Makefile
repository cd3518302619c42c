# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench serve clean

$(STAMP): pyproject.toml requirements.lock client/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c requirements.lock -e ./client -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/loopwatch demo

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy detectors monitor api labeling dashboards gates application client/src/loopwatch_client
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy detectors monitor api labeling dashboards gates application client/src/loopwatch_client

bench: $(STAMP)
	$(PY) bench/ingest.py
	$(PY) bench/drift_vs_evidently.py
	$(PY) bench/alert_quality.py
	$(PY) bench/reference_sample.py
	$(PY) bench/window_scan.py
	$(PY) bench/dashboard.py
	$(PY) bench/metrics_scrape.py
	$(PY) bench/performance_quality.py
	$(PY) bench/streaming.py
	$(PY) bench/gate_validity.py
	$(PY) bench/canary_quality.py
	$(PY) bench/estimated_performance.py
	$(PY) bench/spark_parity.py --cores 1 2
	$(PY) bench/multivariate_drift.py
	$(PY) bench/embedding_scan.py
	$(MAKE) nannyml-venv
	$(PY) bench/vs_nannyml.py
	$(PY) bench/verify_sealed.py
	$(PY) bench/id_index.py
	$(PY) bench/soak.py --minutes 5

serve: $(STAMP)
	$(VENV)/bin/loopwatch serve

clean:
	rm -rf $(VENV) loopwatch-data .pytest_cache .mypy_cache

# Label Studio (its own virtual environment: its pins conflict with ours)
LABEL_STUDIO := $(PYTHON) deploy/label-studio/launch.py
.PHONY: label-studio label-studio-start label-studio-stop
label-studio:
	$(LABEL_STUDIO) install
label-studio-start: label-studio
	$(LABEL_STUDIO) start --data-dir .cache/label-studio --template .cache/label-studio-template
label-studio-stop:
	$(LABEL_STUDIO) stop --data-dir .cache/label-studio

# NannyML for bench/vs_nannyml.py, in its own environment (its pins differ from ours).
NANNYML_VENV := .cache/nannyml-venv
.PHONY: nannyml-venv
nannyml-venv: $(NANNYML_VENV)/.installed
$(NANNYML_VENV)/.installed: bench/nannyml/requirements.txt
	test -x $(NANNYML_VENV)/bin/python || $(PYTHON) -m venv $(NANNYML_VENV)
	$(NANNYML_VENV)/bin/pip install -q -r bench/nannyml/requirements.txt
	touch $@
