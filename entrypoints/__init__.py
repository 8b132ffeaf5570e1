"""Entrypoints: the aiohttp webhook and the ``connaisseur`` command line. Thin by design."""
