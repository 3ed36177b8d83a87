"""Sandbox EHR: a real FHIR server (sekmet-fhir) behind a scope-enforcing proxy, a SMART
authorization server built on authlib, and EHR screens that launch apps and call CDS Hooks.

It imports nothing from salvage, smart_app or cds_hooks: it plays the other side and must catch
their mistakes (a test enforces this).
"""
