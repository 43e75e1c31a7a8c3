"""The cloud: EC2's interfaces, prefixes and reservations read only (boto3 or saved AWS CLI output), nodes' instances.
May import names only (nothing else of spider_validate)."""
