# The two commands a newcomer runs on a fresh clone: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Models folder: models.paths.models_root() decides for make, the CLI and the tests alike (VIGIA_MODELS_DIR
# from the environment or the command line, else this checkout's .cache/models).
OPENCV_DOC := /usr/share/doc/opencv-doc/examples/data/vtest.avi

.PHONY: demo test lint unit models services bench eval-edge eval-system clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -e ".[all]"
	# CPU PyTorch: the tests check the verifier's GPU path (torch) against OpenVINO on the same graph.
	$(BIN)/pip install -q --disable-pip-version-check "torch==2.13.0"
	touch $(STAMP)

venv: $(STAMP)

# The models the defaults run (the demo, the tests); tests of other catalog models prepare their own.
models: $(STAMP)
	$(BIN)/vigia models prepare --in-service

# Servers and footage the integration tests use: Mosquitto (MQTT with mutual TLS) and Debian's OpenCV
# sample clips. Installed from Debian when we are root; moto server comes from pip with the venv.
services:
	@if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null; fi
	@if [ ! -f $(OPENCV_DOC) ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq opencv-doc >/dev/null; fi
	@# Debian's Chromium for the review console's browser test (Playwright drives it; no browser download).
	@if [ ! -x /usr/bin/chromium ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi
	@# GStreamer's RTSP server (run by /usr/bin/python3 through gi) for the live-source tests.
	@if ! /usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0'); \
		from gi.repository import GstRtspServer" 2>/dev/null || ! command -v gst-inspect-1.0 >/dev/null \
		|| ! gst-inspect-1.0 h264parse >/dev/null 2>&1 || ! gst-inspect-1.0 matroskademux >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gir1.2-gst-rtsp-server-1.0 \
		python3-gi gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly \
		gstreamer1.0-libav gstreamer1.0-tools >/dev/null; fi

lint: $(STAMP)
	$(BIN)/ruff check .

# checkov pins boto3/botocore and packaging to versions the project does not use: it gets a venv of its own.
CHECKOV := .cache/checkov/bin/checkov
$(CHECKOV):
	$(PY) -m venv .cache/checkov
	.cache/checkov/bin/pip install -q --disable-pip-version-check checkov

test: services models lint $(CHECKOV)
	@# If a native library kills pytest, the last lines name the test that was running.
	@rm -f .cache/running-test
	CHECKOV=$(CURDIR)/$(CHECKOV) VIGIA_RUNNING_TEST_FILE=$(CURDIR)/.cache/running-test $(BIN)/python -m pytest -q \
		|| { rc=$$?; echo "pytest exited with status $$rc; the test running last: $$(cat .cache/running-test 2>/dev/null)"; \
		     exit $$rc; }

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

demo: models
	$(BIN)/vigia --log-level WARNING demo  # the per-decision JSON log lines show at the default INFO

eval-edge: models
	$(BIN)/vigia eval --stage edge --dataset ../shared/datasets --out out/eval-edge

eval-system: models
	$(BIN)/vigia eval --stage system --dataset ../shared/datasets --out out/eval-system

bench: models services
	$(BIN)/python benchmarks/bench_edge.py --out out/bench

clean:
	rm -rf $(VENV) .cache var out
