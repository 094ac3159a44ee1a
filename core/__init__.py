"""The platform's ground floor: settings, errors, AWS clients, paths, the lake and gold.

Every platform package (connectors, jobs, flows, api, infra) and the
orchestrator build on it; it imports none of them.
"""
