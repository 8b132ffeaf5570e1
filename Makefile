.PHONY: setup run test bench bench-image demo demo-containers fuzz

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
	.venv/bin/python -m bench.cosign_bundle_roundtrips
	.venv/bin/python -m bench.notation_roundtrips
	.venv/bin/python -m bench.mirror_roundtrips
	.venv/bin/python -m bench.event_loop_stall
	.venv/bin/python -m bench.policy_match
	.venv/bin/python -m bench.offline

demo: setup
	bash scripts/system-packages.sh
	.venv/bin/python scripts/demo.py

# registry, Notary and the product image all in containers (a Docker engine and the images are
# brought by scripts/with-docker.sh; the chart is rendered with helm)
demo-containers: setup
	bash scripts/system-packages.sh
	bash scripts/install-helm.sh
	bash scripts/with-docker.sh .venv/bin/python scripts/demo.py --containers

# the product image as the chart runs it: size, start-to-ready time, memory
bench-image: setup
	bash scripts/install-helm.sh
	bash scripts/with-docker.sh .venv/bin/python -m bench.image

# >= 100,000 inputs per parser target (atheris where it installs, else the built-in engine),
# then >= 100,000 mutated AdmissionReviews against `connaisseur serve` over HTTPS.
fuzz: setup
	.venv/bin/python -m pip install -q -e ".[fuzz]" || echo "atheris unavailable: built-in engine"
	.venv/bin/python -m tests.fuzz --inputs $${FUZZ_INPUTS:-100000} --webhook-inputs $${FUZZ_WEBHOOK_INPUTS:-100000}
