"""The cluster: the narrow `Cluster` interface, its kubernetes implementation, kubeconfig, Spiderpool's object shapes.
May import names only (nothing else of spider_validate)."""
