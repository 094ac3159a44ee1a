"""Finks AWS infrastructure: a Pulumi program that is also an importable package.

`__main__.py` is the program Pulumi runs; `components/` holds one
ComponentResource per concern; `plan.py` runs the program under Pulumi's
mocks (a dry plan with no CLI or cloud), `policies.py` checks that plan and
`deploy.py` drives the real CLI through the Automation API.
"""
