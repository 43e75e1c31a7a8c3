"""Terraform's own verdict on the synthesized stacks: the real binary and provider against an emulated AWS."""
