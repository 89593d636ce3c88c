"""The admission every launch passes: one :class:`LaunchRequest` in, :class:`Started`,
:class:`Queued` or :class:`Refused` out (:mod:`fleet.supervisor.admission.admit`), the
concurrency caps' slots beside it (:mod:`fleet.supervisor.admission.slots`)."""
