"""The cloud side of the IPAM audit: what EC2 really routes to the nodes (interfaces, prefixes, reservations).

`ec2.py` is the narrow, read-only interface to EC2 (boto3, or saved AWS CLI output answering the same questions),
`inventory.py` maps Kubernetes nodes to instances and gathers their interfaces, `reconcile.py` holds the rules that
hold Spiderpool's pools and addresses against them. Only `ec2.Boto3Ec2` imports boto3 (the validator's `aws` extra).
"""
