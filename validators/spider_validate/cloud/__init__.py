"""The cloud side of the IPAM audit: what EC2 routes to the nodes (`ec2.py`, read-only), `inventory.py`, `reconcile.py`.
May import cluster and names (only `ec2.Boto3Ec2` imports boto3, the validator's `aws` extra)."""
