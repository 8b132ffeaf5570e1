"""Connaisseur for Python: a Kubernetes admission webhook that verifies image signatures.

The layers live in the repository's top-level folders (``domain/``, ``application/``,
``adapters/``, ``config/``, ``entrypoints/``) and are installed as ``connaisseur.<layer>``
through the symbolic links beside this file (docs/decisions/0012-one-package-name.md).
"""
