"""A faithful emulator of the parts of Percona Server for MongoDB that kmipops.psmdb touches.

Behaviour reference: shared/reference/psmdb-kmip.md. Test-only: never shipped in the collection.
"""
