"""kmsplan's benchmark: kmsplan at account scale against KMS-like latency and request quotas.

`python -m bench` (see bench/README.md) starts the moto KMS server behind a proxy that adds a
network round trip and enforces KMS's per-API request quotas, then runs the scenarios.
"""
