"""Adversarial tests: property-based and fuzz tests of every parser that sees attacker bytes.

``targets.py`` names each parser and its invariant, ``corpus.py`` seeds it with the real
artefacts of ``tests/conformance/data``, ``mutate.py`` derives hostile inputs, and
``python -m tests.fuzz`` (``make fuzz``) runs the long campaign. See docs/threat-model.md.
"""
