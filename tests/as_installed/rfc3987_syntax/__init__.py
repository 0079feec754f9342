"""Absent, as in an install of tocsin without its dev extras (see tests/conftest.py).

``stix2-validator`` (a dev extra, for tests/export/test_stix.py) asks for
``jsonschema[format-nongpl]``, which installs ``rfc3987-syntax``; ``jsonschema`` then
imports it on every import, and it builds a Lark grammar for IRIs: 1.2 s of CPU in
every `tocsin notify` or `tocsin recheck` the tests start (X-ARF reports import
``jsonschema``), half of such a process's CPU. tocsin checks X-ARF with
``jsonschema-rs`` and never asks ``jsonschema`` for the ``iri`` format, so this module
only stands in for the package that a user's install does not have.
"""

raise ImportError("rfc3987_syntax: not installed for tocsin's own processes in the tests")
