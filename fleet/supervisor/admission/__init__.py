"""The admission every launch passes: one :class:`~fleet.supervisor.admission.request.
LaunchRequest` in, :class:`Started`, :class:`Queued` or :class:`Refused` out
(:mod:`fleet.supervisor.admission.admit`), the concurrency caps' slots beside it
(:mod:`fleet.supervisor.admission.slots`)."""
