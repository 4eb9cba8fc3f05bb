"""The generated gRPC stubs of mnemo's wire API (mnemo/v1/*.proto), written
here by setup.py at build time."""
