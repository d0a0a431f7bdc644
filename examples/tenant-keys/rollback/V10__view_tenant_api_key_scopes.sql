-- Undo V10: drop the reporting view.
DROP VIEW tenant_api_key_scopes;
