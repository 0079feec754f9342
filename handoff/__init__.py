"""Hand-off to CSIRTs and law enforcement: evidence packages, MISP and STIX.

``package.py`` writes the evidence zip (with ``load``, ``har``, ``matches`` and
``render``), ``timestamp.py`` gets its RFC 3161 token and ``verify.py`` checks
both. ``campaign.py`` reads a campaign out of the store once; ``misp.py`` and
``stix.py`` turn that into a MISP event and a STIX 2.1 bundle; ``misp_push.py``
adds or updates the event on a MISP instance. See docs/handoff.md.
"""
