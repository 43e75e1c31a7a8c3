"""Session Manager shells that leave a record: a Session document that streams what every session started with it
types and prints to the cluster's session log group, which the cluster's key encrypts."""

from __future__ import annotations

import json

from cdktn_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktn_provider_aws.ssm_document import SsmDocument
from constructs import Construct

from cdk.checkov import checkov_skip
from cdk.constructs.secrets import ClusterSecrets


def session_document_name(cluster_name: str) -> str:
    """What `aws ssm start-session --document-name` takes for a logged shell on one of the cluster's nodes."""
    return f"{cluster_name}-session"


class SessionLogging(Construct):
    """The log group and the Session document (schema 1.0, Standard_Stream: Session Manager user guide,
    "Session document schema"). Session Manager checks the group is encrypted before it streams to it
    (cloudWatchEncryptionEnabled); the node roles may write there (constructs/iam.py)."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        cluster_name: str,  # the document's name: `<cluster_name>-session`
        secrets: ClusterSecrets,  # the log group's name and the key that encrypts it
        retention_days: int,  # how long CloudWatch Logs keeps the sessions (the flow logs' retention)
    ) -> None:
        super().__init__(scope, id_)
        self.log_group = CloudwatchLogGroup(
            self,
            "log-group",
            name=secrets.session_log_group_name,
            retention_in_days=retention_days,
            kms_key_id=secrets.key.arn,
        )
        content = {
            "schemaVersion": "1.0",
            "description": f"A shell on a node of {cluster_name}, logged to {secrets.session_log_group_name}",
            "sessionType": "Standard_Stream",
            "inputs": {
                "cloudWatchLogGroupName": secrets.session_log_group_name,
                "cloudWatchEncryptionEnabled": True,
                "cloudWatchStreamingEnabled": True,
                "idleSessionTimeout": "20",
                "runAsEnabled": False,
            },
        }
        self.document = SsmDocument(
            self,
            "document",
            name=session_document_name(cluster_name),
            document_type="Session",
            document_format="JSON",
            content=json.dumps(content),
            depends_on=[self.log_group],
        )
        checkov_skip(
            self.document,
            "CKV_AWS_112",
            "session data travels over Session Manager's TLS; a kmsKeyId layer would need every node to call KMS "
            "with the cluster's key directly, which the nodes may use only through SSM",
        )
