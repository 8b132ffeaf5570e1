.PHONY: setup run test bench demo

setup:
	bash scripts/setup.sh

run:
	bash scripts/run.sh

test:
	bash scripts/test.sh

bench: setup
	.venv/bin/python -m bench.webhook
	.venv/bin/python -m bench.notary_roundtrips
	.venv/bin/python -m bench.cosign_roundtrips
	.venv/bin/python -m bench.notation_roundtrips

demo: setup
	bash scripts/system-packages.sh
	.venv/bin/python scripts/demo.py
