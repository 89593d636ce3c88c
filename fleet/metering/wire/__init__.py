"""The proxy on the wire: an agent's request as it is taken and checked, the request on its way
upstream, the answer relayed as it streams, and the proxy's own answers."""
