"""The wire protocols, one package each: `v2/` (AgentOps REST, JSON). Each module is the
endpoints of one resource with their parsing and OpenAPI schema; the domain they call lives in
`sessions/`, `events/`, `projects/` and `analytics/`."""
