"""Enrichment: DNS, ASN and prefix, RDAP, security.txt, the contact ladder and languages."""
