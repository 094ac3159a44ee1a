"""Secrets: the FMP API key's secret (its value is put in out of band).

The database credentials are not here on purpose: RDS manages the master
password in Secrets Manager itself (`manage_master_user_password`), so no
password ever appears in code, config or state.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.components.base import Common, FinksComponent


@dataclass(frozen=True)
class SecretsArgs:
    common: Common
    kms_key_arn: pulumi.Input[str]


class Secrets(FinksComponent):
    kind = "Secrets"

    def __init__(self, name: str, args: SecretsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(name, opts)
        c = args.common
        self.fmp_api_key = aws.secretsmanager.Secret(
            self.child("fmp-api-key"),
            name=f"{c.project_path}/fmp-api-key",
            description="FMP API key; set with `aws secretsmanager put-secret-value` (never in files)",
            kms_key_id=args.kms_key_arn,
            recovery_window_in_days=7 if c.env != "prod" else 30,
            tags=c.tags,
            opts=self.opts(),
        )
        self.fmp_secret_arn = self.fmp_api_key.arn
        self.register_outputs({"fmp_secret_arn": self.fmp_secret_arn})
