"""AWS access: the only package that imports boto3/botocore.

`client` builds rate-limited, retrying clients and the call/paginate helpers; `reader` reads a
stack's live state; `writer` is the applier's port to KMS (one call, kmsplan's own errors);
`quotas` and `ratelimit` keep every API under its request quota.
"""
