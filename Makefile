# Every target sets up what it needs: a fresh machine needs only Python 3.10+.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: install test test-slow lint format benchmark bench-embed gpu-check clean hear-venv interop interop-full pretrain-demo pretrain-ablations

install: $(INSTALLED)

$(INSTALLED): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[bench,train,cluster,dev]"
	touch $(INSTALLED)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# quick suite (what CI and README call); slow end-to-end checks are in test-slow
test: lint
	$(PY) -m pytest -q -m "not slow"

test-slow: install
	$(PY) -m pytest -q -m slow

# embedding speed against the official code path (README "Speed"); writes results/bench_embed.json
bench-embed: install
	$(PY) benchmarks/bench_embed.py --json results/bench_embed.json

# the prepared GPU check (docs/cluster.md, "GPU check"): under 8 min on one GPU, writes
# results/gpu_check.json; GPU_CHECK_SMOKE=1 runs it on the CPU in seconds (output in runs/)
gpu-check: install
	VENV=$(VENV) bash benchmarks/gpu_check.sh

# the main job: the demo suite offline, or the paper suite on real checkpoints and tasks
benchmark: install
	VENV=$(VENV) bash benchmarks/run_benchmark.sh

# the real hear-validator and hear-eval-kit against atst-hear (docs/interop.md); they need
# pytorch-lightning 1.9, so they get their own venv. CKPT="a.ckpt b.ckpt" replaces the fixtures.
HEAR_VENV ?= .venv-hear
CKPT ?=
INTEROP := $(PY) interop/run_interop.py --hear-venv $(HEAR_VENV) $(foreach c,$(CKPT),--checkpoint $(c))

hear-venv:
	PYTHON=$(PYTHON) HEAR_VENV=$(HEAR_VENV) bash interop/setup_hear_venv.sh

# CI's share: both validators for every configuration, heareval for the first one
interop: install hear-venv
	$(INTEROP) --quick

interop-full: install hear-venv
	$(INTEROP)

clean:
	rm -rf build *.egg-info .pytest_cache .ruff_cache

# tiny ATST-Frame pre-trained on the demo suite's training audio (CPU), then a linear probe
# against random initialisation (docs/pretraining.md); re-running resumes / reuses finished work
DEMO_TASKS ?= demo-tasks
PRETRAIN_DEMO ?= runs/pretrain-demo

pretrain-demo: install
	@start=$$(date +%s); \
	$(VENV)/bin/atst-hear demo-tasks $(DEMO_TASKS) && \
	$(VENV)/bin/atst-hear pretrain --flavour frame --arch tiny --accelerator cpu --devices 1 \
		--data '$(DEMO_TASKS)/*/16000/train' --out $(PRETRAIN_DEMO) --resume && \
	$(VENV)/bin/atst-hear bench --suite pretrain-demo-probe --quiet --device cpu \
		--tasks-dir $(DEMO_TASKS) --checkpoint pretrained=$(PRETRAIN_DEMO)/atst_frame.ckpt \
		--out $(PRETRAIN_DEMO)/probe && \
	grep '^| tiny-frame' $(PRETRAIN_DEMO)/probe/summary.md && \
	echo "pretrain-demo: $$(( $$(date +%s) - start )) s; load average $$(cut -d' ' -f1-3 /proc/loadavg) on $$(nproc) cores"

# what the CPU pre-training does to the probes, run by run (docs/pretraining.md; ~55 min on 2
# cores): benchmarks/pretrain_ablations.yaml -> results/pretrain_ablations/
pretrain-ablations: install
	$(PY) benchmarks/pretrain_ablations.py --demo-tasks $(DEMO_TASKS)
