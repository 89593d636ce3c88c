"""Events from a forge: webhook deliveries and polled changes read into
:class:`~fleet.forge.model.ForgeEvent`, who may act, and why an event waits."""
