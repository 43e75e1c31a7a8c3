#!/usr/bin/env bash
# Last user-data part: hand over to the bootstrap unit, which also runs after reboots until complete.
set -euo pipefail
systemctl daemon-reload
systemctl enable spiderpool-rdma-bootstrap.service
systemctl start --no-block spiderpool-rdma-bootstrap.service
