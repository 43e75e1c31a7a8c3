"""spider-validate: proves a Spiderpool underlay cluster works, and fetches its kubeconfig."""
