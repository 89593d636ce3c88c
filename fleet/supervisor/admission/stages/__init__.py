"""The admission's stages, each a small class answering one question of a launch in
flight (:class:`~fleet.supervisor.admission.stages.chain.Admitting`): go on (``None``),
:class:`~fleet.supervisor.admission.request.Queued` or
:class:`~fleet.supervisor.admission.request.Refused` — in the order of
:data:`~fleet.supervisor.admission.stages.chain.ORDER`."""
