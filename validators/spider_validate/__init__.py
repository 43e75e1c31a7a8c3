"""spider-validate: proves a Spiderpool underlay cluster works, and fetches its kubeconfig."""

__version__ = "0.2.0"
