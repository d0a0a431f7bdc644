-- Undo V9: drop the RPC function (the application falls back to its three
-- queries per branch).
DROP FUNCTION get_branch_dashboard(uuid, uuid);
