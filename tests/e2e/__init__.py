"""End-to-end tests against a running WebUI (skipped unless SLOTHFUL_E2E_URL is set)."""
