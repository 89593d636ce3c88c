"""What the dashboard shows: each page's data (views) from the ledger's stores (stores) as JSON
(shapes) and HTML (pages); an agent's change (change); the Changes page (change_costs); the
Tasks board (task_board); and /metrics (metrics)."""
