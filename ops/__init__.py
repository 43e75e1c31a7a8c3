"""Day-two operations on a running cluster, run on its nodes through SSM Run Command: upgrade, restore."""
