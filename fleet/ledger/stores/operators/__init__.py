"""The stores of the people around the fleet: chat threads and processed events, the command
audit, approvals, and the dashboard's sign-ins and sums."""
