"""What the door lets through: every method an agent may send (:mod:`.methods`), what a
call is checked for before it is relayed (:mod:`.gate`, :mod:`.calls`), what the door says
in the handshake on the agent's behalf (:mod:`.handshake`), and the caps on each agent's
sessions and opens (:mod:`.limits`, :mod:`.opens`)."""
