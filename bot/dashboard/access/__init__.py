"""Who gets into the dashboard: the dashboard command's one-time links (command), signing in
with them (signin, signin_routes), and how fleetwarden status reaches it from this machine
(status_door)."""
