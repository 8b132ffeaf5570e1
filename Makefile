PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,/work/main/.venv/bin/python)

.PHONY: bench
# Webhook throughput and latency against a bare asyncio HTTPS server (bench/README.md).
bench:
	$(PYTHON) bench/webhook.py $(BENCH_ARGS)
