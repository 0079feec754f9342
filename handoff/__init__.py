"""Hand-off to CSIRTs and law enforcement: what a campaign holds, as MISP and STIX.

``campaign.py`` reads a campaign out of the store once; ``misp.py`` and
``stix.py`` turn that into a MISP event and a STIX 2.1 bundle; ``misp_push.py``
adds or updates the event on a MISP instance. See docs/handoff.md.
"""
