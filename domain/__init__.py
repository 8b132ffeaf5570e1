"""The domain: image references, policy, trust roots, verdicts and the pure verifiers.

Synchronous and free of I/O: imports only the standard library, ``cryptography`` and itself.
"""
