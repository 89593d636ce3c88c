"""The dashboard's serving: its HTTP server and routes (server), its sockets, names and headers
on the machine (listener), live updates to every open page (live), and the config's
dashboard section (settings)."""
